//! The STAR and Bloc STAR decision logic, with the current official tie-breaker protocol.
//!
//! See `docs/STAR-RULES.md` §2 (the count), §3 (ties) and §5 (Bloc STAR). In short:
//! - **Scoring round**: the two highest totals go to the runoff. Exactly two tied for second:
//!   head-to-head, then five-star count, then lot. Three or more tied for first or second:
//!   five-star count, then lot for whatever the five-star count cannot separate. Two tied for
//!   first with everyone else lower: both advance.
//! - **Runoff**: the finalist scored higher on more ballots wins; ballots scoring both equally
//!   are counted and reported as "no preference". A tie goes to the higher total, then the
//!   higher five-star count, then the lot.
//! - **Bloc STAR**: repeat on the options not yet elected, once per seat.

use crate::counts::histogram_total;
use crate::lot::lot_order;
use crate::{Counts, MAX_SCORE, Seed};

/// How to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Seats to fill: 1 for single-winner STAR, more for Bloc STAR.
    pub seats: usize,
    /// Seed for the lot (see [`crate::lot`]).
    pub seed: Seed,
}

impl Config {
    /// Single-winner STAR with this lot seed.
    pub fn single_winner(seed: Seed) -> Self {
        Config { seats: 1, seed }
    }
}

/// Why a tally could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TallyError {
    /// There are no ballots to count.
    #[error("no ballots to count")]
    NoBallots,
    /// Zero seats, or more seats than options.
    #[error(
        "cannot fill {} from {}",
        crate::ballots::plural(*seats, "seat", "seats"),
        crate::ballots::plural(*options, "option", "options")
    )]
    Seats {
        /// Seats asked for.
        seats: usize,
        /// Options available.
        options: usize,
    },
}

/// The stage of a count in which a tiebreak happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Choosing the two finalists.
    Scoring,
    /// Deciding between the finalists.
    Runoff,
}

impl Stage {
    /// `scoring` or `runoff`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Scoring => "scoring",
            Stage::Runoff => "runoff",
        }
    }
}

/// A tiebreak rule of the official protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// The tied option scored higher on more ballots than the other (two-way ties only).
    HeadToHead,
    /// More ballots gave the option the maximum score.
    FiveStar,
    /// Higher total score (runoff ties only).
    Score,
    /// Draw by lot: lowest lot number wins (see [`crate::lot`]).
    Lot,
}

impl Rule {
    /// `head_to_head`, `five_star`, `score` or `lot`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::HeadToHead => "head_to_head",
            Rule::FiveStar => "five_star",
            Rule::Score => "score",
            Rule::Lot => "lot",
        }
    }
}

/// One tiebreak step, in the order taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiebreak {
    /// The seat being filled, from 1.
    pub seat: usize,
    /// Scoring round or runoff.
    pub stage: Stage,
    /// The rule applied.
    pub rule: Rule,
    /// The tied options this step looked at (option indices).
    pub between: Vec<usize>,
    /// The figure the rule compared, aligned with `between`: head-to-head preference counts,
    /// five-star counts, total scores, or (for the lot) each option's 1-based place in the lot
    /// order.
    pub values: Vec<u64>,
    /// The options this step chose (to advance, or to win). Empty when it could not separate
    /// them and the next rule was needed.
    pub result: Vec<usize>,
}

/// The automatic runoff between two finalists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runoff {
    /// The finalist with the higher total (the lower index when totals are equal).
    pub a: usize,
    /// The other finalist.
    pub b: usize,
    /// Ballots scoring `a` above `b`.
    pub a_votes: u64,
    /// Ballots scoring `b` above `a`.
    pub b_votes: u64,
    /// Ballots scoring both equally; counted and reported, a vote for neither.
    pub no_preference: u64,
    /// The runoff winner (`a` or `b`).
    pub winner: usize,
}

/// One seat's count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRound {
    /// The seat, from 1.
    pub seat: usize,
    /// Who won it.
    pub winner: usize,
    /// The runoff, or `None` when a single option remained.
    pub runoff: Option<Runoff>,
}

/// A complete, deterministic tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Option names, in column order.
    pub names: Vec<String>,
    /// Ballots counted.
    pub ballot_count: u64,
    /// Score histogram per option.
    pub histograms: Vec<crate::Histogram>,
    /// Total score per option.
    pub totals: Vec<u64>,
    /// The head-to-head matrix, in option order: `pairwise[a][b]` ballots scored option `a`
    /// strictly above option `b` (so the diagonal is 0). Every runoff and head-to-head tiebreak
    /// reads its counts from here; like the histograms, it adds up across precincts.
    pub pairwise: Vec<Vec<u64>>,
    /// Winners in seat order.
    pub winners: Vec<usize>,
    /// Every seat's count, in order.
    pub rounds: Vec<SeatRound>,
    /// Every tiebreak step taken, in order.
    pub tiebreaks: Vec<Tiebreak>,
    /// The lot seed used.
    pub seed: Seed,
    /// All options ordered by lot number (first wins any draw), fixed by the seed.
    pub lot_order: Vec<usize>,
}

impl Tally {
    /// Winner names, in seat order.
    pub fn winner_names(&self) -> Vec<&str> {
        self.winners
            .iter()
            .map(|&i| self.names[i].as_str())
            .collect()
    }

    /// True if any tie had to be decided by lot.
    pub fn lot_used(&self) -> bool {
        self.tiebreaks.iter().any(|t| t.rule == Rule::Lot)
    }

    /// Average score of an option.
    pub fn average(&self, option: usize) -> f64 {
        if self.ballot_count == 0 {
            0.0
        } else {
            self.totals[option] as f64 / self.ballot_count as f64
        }
    }

    /// Ballots that gave an option the maximum score.
    pub fn five_star(&self, option: usize) -> u64 {
        self.histograms[option][MAX_SCORE as usize]
    }
}

/// Counts a STAR (one seat) or Bloc STAR (several seats) election.
///
/// A pure function of `counts` and `config`: the same inputs give the same [`Tally`] on every
/// machine, whatever the order the ballots were added in.
pub fn tally<C: Counts + ?Sized>(counts: &C, config: &Config) -> Result<Tally, TallyError> {
    let names = counts.names().to_vec();
    let options = names.len();
    if config.seats == 0 || config.seats > options {
        return Err(TallyError::Seats {
            seats: config.seats,
            options,
        });
    }
    if counts.ballot_count() == 0 {
        return Err(TallyError::NoBallots);
    }
    let histograms: Vec<_> = (0..options).map(|o| counts.histogram(o)).collect();
    let totals: Vec<u64> = histograms.iter().map(histogram_total).collect();
    let five_stars: Vec<u64> = histograms.iter().map(|h| h[MAX_SCORE as usize]).collect();
    let pairwise = pairwise_matrix(counts);
    let lot = lot_order(&config.seed, &names);
    let mut lot_place = vec![0u64; options];
    for (place, &option) in lot.iter().enumerate() {
        lot_place[option] = place as u64 + 1;
    }

    let ballot_count = counts.ballot_count();
    let mut count = Count {
        ballot_count,
        pairwise: &pairwise,
        totals: &totals,
        five_stars: &five_stars,
        lot_place: &lot_place,
        seat: 0,
        tiebreaks: Vec::new(),
    };
    let mut remaining: Vec<usize> = (0..options).collect();
    let mut rounds = Vec::with_capacity(config.seats);
    for seat in 1..=config.seats {
        count.seat = seat;
        let round = count.seat_round(&remaining);
        remaining.retain(|&o| o != round.winner);
        rounds.push(round);
    }

    let tiebreaks = count.tiebreaks;
    Ok(Tally {
        winners: rounds.iter().map(|r| r.winner).collect(),
        names,
        ballot_count,
        histograms,
        totals,
        pairwise,
        rounds,
        tiebreaks,
        seed: config.seed,
        lot_order: lot,
    })
}

/// Every pair's preference counts, in option order (one [`Counts::preference`] call per pair).
fn pairwise_matrix<C: Counts + ?Sized>(counts: &C) -> Vec<Vec<u64>> {
    let options = counts.option_count();
    // Filled row-major (`a * options + b`), then cut into rows.
    let mut cells = vec![0u64; options * options];
    for a in 0..options {
        for b in a + 1..options {
            let (a_over_b, b_over_a) = counts.preference(a, b);
            cells[a * options + b] = a_over_b;
            cells[b * options + a] = b_over_a;
        }
    }
    cells.chunks(options.max(1)).map(<[u64]>::to_vec).collect()
}

/// The option with the higher figure, or `None` on a tie.
fn higher(a: usize, figure_a: u64, b: usize, figure_b: u64) -> Option<usize> {
    match figure_a.cmp(&figure_b) {
        std::cmp::Ordering::Greater => Some(a),
        std::cmp::Ordering::Less => Some(b),
        std::cmp::Ordering::Equal => None,
    }
}

/// The state of one tally in progress.
struct Count<'a> {
    ballot_count: u64,
    pairwise: &'a [Vec<u64>],
    totals: &'a [u64],
    five_stars: &'a [u64],
    lot_place: &'a [u64],
    seat: usize,
    tiebreaks: Vec<Tiebreak>,
}

impl Count<'_> {
    /// `(ballots scoring a above b, ballots scoring b above a)`.
    fn preference(&self, a: usize, b: usize) -> (u64, u64) {
        (self.pairwise[a][b], self.pairwise[b][a])
    }

    /// Fills one seat from `remaining` (option indices in ascending order, never empty).
    fn seat_round(&mut self, remaining: &[usize]) -> SeatRound {
        if let [only] = remaining {
            return SeatRound {
                seat: self.seat,
                winner: *only,
                runoff: None,
            };
        }
        let (x, y) = self.finalists(remaining);
        let runoff = self.runoff(x, y);
        SeatRound {
            seat: self.seat,
            winner: runoff.winner,
            runoff: Some(runoff),
        }
    }

    /// The scoring round: picks two finalists from at least two options.
    fn finalists(&mut self, remaining: &[usize]) -> (usize, usize) {
        let mut by_total = remaining.to_vec();
        // Highest total first; equal totals keep index order (only for a stable listing:
        // every tie below is decided by the protocol, never by position).
        by_total.sort_by(|&a, &b| self.totals[b].cmp(&self.totals[a]).then(a.cmp(&b)));
        let top = self.totals[by_total[0]];
        let tied_first: Vec<usize> = by_total
            .iter()
            .copied()
            .take_while(|&o| self.totals[o] == top)
            .collect();
        match tied_first.len() {
            2 => (tied_first[0], tied_first[1]),
            1 => {
                let first = tied_first[0];
                let second_total = self.totals[by_total[1]];
                let tied_second: Vec<usize> = by_total[1..]
                    .iter()
                    .copied()
                    .take_while(|&o| self.totals[o] == second_total)
                    .collect();
                let second = match tied_second.as_slice() {
                    [only] => *only,
                    [a, b] => match self.head_to_head(*a, *b) {
                        Some(winner) => winner,
                        None => self.five_star_fill(&tied_second, 1)[0],
                    },
                    _ => self.five_star_fill(&tied_second, 1)[0],
                };
                (first, second)
            }
            _ => {
                let picked = self.five_star_fill(&tied_first, 2);
                (picked[0], picked[1])
            }
        }
    }

    /// Head-to-head between two options tied for second; `None` if equally preferred.
    fn head_to_head(&mut self, a: usize, b: usize) -> Option<usize> {
        let (a_over_b, b_over_a) = self.preference(a, b);
        let winner = higher(a, a_over_b, b, b_over_a);
        self.record(
            Stage::Scoring,
            Rule::HeadToHead,
            vec![a, b],
            vec![a_over_b, b_over_a],
            winner.into_iter().collect(),
        );
        winner
    }

    /// Fills `slots` places from a tied `pool` by five-star count, then by lot for a group of
    /// equal five-star counts larger than the places left. Returns exactly `slots` options.
    fn five_star_fill(&mut self, pool: &[usize], slots: usize) -> Vec<usize> {
        let mut ranked = pool.to_vec();
        ranked.sort_by(|&a, &b| self.five_stars[b].cmp(&self.five_stars[a]).then(a.cmp(&b)));
        let mut chosen = Vec::with_capacity(slots);
        let mut draw = None;
        let mut i = 0;
        while chosen.len() < slots && i < ranked.len() {
            let level = self.five_stars[ranked[i]];
            let group: Vec<usize> = ranked[i..]
                .iter()
                .copied()
                .take_while(|&o| self.five_stars[o] == level)
                .collect();
            if chosen.len() + group.len() <= slots {
                chosen.extend_from_slice(&group);
                i += group.len();
            } else {
                draw = Some((group, slots - chosen.len()));
                break;
            }
        }
        let values = pool.iter().map(|&o| self.five_stars[o]).collect();
        self.record(
            Stage::Scoring,
            Rule::FiveStar,
            pool.to_vec(),
            values,
            chosen.clone(),
        );
        if let Some((group, picks)) = draw {
            let drawn = self.draw(Stage::Scoring, &group, picks);
            chosen.extend(drawn);
        }
        chosen
    }

    /// The automatic runoff between two finalists, with its tiebreaks.
    fn runoff(&mut self, x: usize, y: usize) -> Runoff {
        // `a` is the finalist with the higher total, or the lower index on equal totals.
        let (a, b) =
            if self.totals[y] > self.totals[x] || (self.totals[y] == self.totals[x] && y < x) {
                (y, x)
            } else {
                (x, y)
            };
        let (a_votes, b_votes) = self.preference(a, b);
        let no_preference = self
            .ballot_count
            .saturating_sub(a_votes)
            .saturating_sub(b_votes);
        let winner = if a_votes != b_votes {
            if a_votes > b_votes { a } else { b }
        } else {
            self.runoff_tie(a, b)
        };
        Runoff {
            a,
            b,
            a_votes,
            b_votes,
            no_preference,
            winner,
        }
    }

    /// A tied runoff: total score, then five-star count, then lot.
    fn runoff_tie(&mut self, a: usize, b: usize) -> usize {
        let rules: [(Rule, &[u64]); 2] = [
            (Rule::Score, self.totals),
            (Rule::FiveStar, self.five_stars),
        ];
        for (rule, figures) in rules {
            let winner = higher(a, figures[a], b, figures[b]);
            self.record(
                Stage::Runoff,
                rule,
                vec![a, b],
                vec![figures[a], figures[b]],
                winner.into_iter().collect(),
            );
            if let Some(winner) = winner {
                return winner;
            }
        }
        self.draw(Stage::Runoff, &[a, b], 1)[0]
    }

    /// Draws `picks` options from `group` by lot: the lowest lot places win.
    fn draw(&mut self, stage: Stage, group: &[usize], picks: usize) -> Vec<usize> {
        let mut by_lot = group.to_vec();
        by_lot.sort_by_key(|&o| self.lot_place[o]);
        by_lot.truncate(picks);
        let values = group.iter().map(|&o| self.lot_place[o]).collect();
        self.record(stage, Rule::Lot, group.to_vec(), values, by_lot.clone());
        by_lot
    }

    fn record(
        &mut self,
        stage: Stage,
        rule: Rule,
        between: Vec<usize>,
        values: Vec<u64>,
        result: Vec<usize>,
    ) {
        self.tiebreaks.push(Tiebreak {
            seat: self.seat,
            stage,
            rule,
            between,
            values,
            result,
        });
    }
}
