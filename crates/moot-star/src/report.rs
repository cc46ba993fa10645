//! Presenting a [`Tally`]: the stable JSON contract and a human-readable text report.
//!
//! [`Report`] is the wire type behind `moot tally --json` (and, later, `moot poll results`).
//! Scripts depend on its field names (see the CLI contract): add fields, never rename or
//! remove them. It is kept apart from the domain type [`Tally`] so that refactoring the tally
//! never silently changes the contract.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{Rule, Runoff, Stage, Tally};

/// The JSON form of a tally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Winner names in seat order.
    pub winners: Vec<String>,
    /// Ballots counted.
    pub ballots: u64,
    /// Seats filled.
    pub seats: usize,
    /// Per-option figures, in column order.
    pub options: Vec<OptionReport>,
    /// The first seat's runoff (`null` if a single option stood).
    pub runoff: Option<RunoffReport>,
    /// Every seat's round.
    pub rounds: Vec<RoundReport>,
    /// Every tiebreak step, in order.
    pub tiebreaks: Vec<TiebreakReport>,
    /// True if any tie was decided by lot.
    pub lot_used: bool,
    /// The lot seed, 64 hex digits.
    pub seed: String,
    /// Options in lot order: the first wins any draw (see the lot rule).
    pub lot_order: Vec<String>,
    /// The head-to-head ("runoff") matrix, rows and columns in the order of `options`:
    /// `pairwise[i][j]` ballots scored option `i` strictly above option `j`; the diagonal is 0.
    /// Like the histograms it adds up across precincts, and every runoff is read from it.
    /// (Empty when reading a report written before this field existed.)
    #[serde(default)]
    pub pairwise: Vec<Vec<u64>>,
}

/// One option's figures: enthusiasm, not only rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionReport {
    /// Name.
    pub name: String,
    /// Total score.
    pub total: u64,
    /// Average score over all ballots.
    pub average: f64,
    /// Ballots giving each score 0..=5.
    pub histogram: [u64; 6],
}

/// A runoff's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunoffReport {
    /// Finalist with the higher total.
    pub a: String,
    /// The other finalist.
    pub b: String,
    /// Ballots preferring `a`.
    pub a_votes: u64,
    /// Ballots preferring `b`.
    pub b_votes: u64,
    /// Ballots scoring both equally.
    pub no_preference: u64,
    /// The runoff's winner.
    pub winner: String,
}

/// One seat's round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundReport {
    /// Seat number, from 1.
    pub seat: usize,
    /// Who won it.
    pub winner: String,
    /// Its runoff, `null` if one option remained.
    pub runoff: Option<RunoffReport>,
}

/// One tiebreak step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TiebreakReport {
    /// The seat (round) it happened in, from 1.
    pub round: usize,
    /// `scoring` or `runoff`.
    pub stage: String,
    /// `head_to_head`, `five_star`, `score` or `lot`.
    pub rule: String,
    /// The tied options.
    pub between: Vec<String>,
    /// What the rule compared, aligned with `between` (preference counts, five-star counts,
    /// totals, or places in the lot order).
    pub values: Vec<u64>,
    /// The options this step chose; empty if it could not separate them.
    pub result: Vec<String>,
}

impl Report {
    /// Builds the report of a tally.
    pub fn new(tally: &Tally) -> Self {
        let name = |i: usize| tally.names[i].clone();
        let names = |list: &[usize]| list.iter().map(|&i| name(i)).collect::<Vec<_>>();
        let runoff = |r: &Runoff| RunoffReport {
            a: name(r.a),
            b: name(r.b),
            a_votes: r.a_votes,
            b_votes: r.b_votes,
            no_preference: r.no_preference,
            winner: name(r.winner),
        };
        Report {
            winners: names(&tally.winners),
            ballots: tally.ballot_count,
            seats: tally.rounds.len(),
            options: (0..tally.names.len())
                .map(|o| OptionReport {
                    name: name(o),
                    total: tally.totals[o],
                    average: tally.average(o),
                    histogram: tally.histograms[o],
                })
                .collect(),
            runoff: tally
                .rounds
                .first()
                .and_then(|r| r.runoff.as_ref())
                .map(runoff),
            rounds: tally
                .rounds
                .iter()
                .map(|r| RoundReport {
                    seat: r.seat,
                    winner: name(r.winner),
                    runoff: r.runoff.as_ref().map(runoff),
                })
                .collect(),
            tiebreaks: tally
                .tiebreaks
                .iter()
                .map(|t| TiebreakReport {
                    round: t.seat,
                    stage: t.stage.as_str().to_string(),
                    rule: t.rule.as_str().to_string(),
                    between: names(&t.between),
                    values: t.values.clone(),
                    result: names(&t.result),
                })
                .collect(),
            lot_used: tally.lot_used(),
            seed: tally.seed.to_string(),
            lot_order: names(&tally.lot_order),
            pairwise: tally.pairwise.clone(),
        }
    }
}

const BAR_WIDTH: u64 = 20;

/// The most options whose head-to-head matrix the text report prints; beyond this it points to
/// the `--json` output instead.
const MATRIX_MAX_OPTIONS: usize = 20;

/// The "Head-to-head" section: a legend numbering the options, then the matrix with rows and
/// columns labelled by those numbers (`-` on the diagonal), between blank lines. Nothing for a
/// single option; only a pointer to `--json` for more than [`MATRIX_MAX_OPTIONS`].
fn write_matrix(out: &mut String, shown: &[String], pairwise: &[Vec<u64>]) -> std::fmt::Result {
    let n = shown.len();
    if n < 2 {
        return Ok(());
    }
    writeln!(out)?;
    if n > MATRIX_MAX_OPTIONS {
        writeln!(
            out,
            "Head-to-head: {n} options are too many to show here; the full matrix (ballots \
             scoring each option above each other) is the \"pairwise\" field of the --json output"
        )?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "Head-to-head (ballots scoring the row's option above the column's):"
    )?;
    let label = n.to_string().len();
    for (i, name) in shown.iter().enumerate() {
        writeln!(out, "  {:>label$} = {name}", i + 1)?;
    }
    writeln!(out)?;
    let peak = pairwise.iter().flatten().copied().max().unwrap_or(0);
    let cell = peak.to_string().len().max(label);
    write!(out, "  {:>label$}", "")?;
    for j in 1..=n {
        write!(out, "  {j:>cell$}")?;
    }
    writeln!(out)?;
    for (i, row) in pairwise.iter().enumerate() {
        write!(out, "  {:>label$}", i + 1)?;
        for (j, votes) in row.iter().enumerate() {
            if i == j {
                write!(out, "  {:>cell$}", "-")?;
            } else {
                write!(out, "  {votes:>cell$}")?;
            }
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    Ok(())
}

/// `1 ballot`, `2 ballots`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `A`, `A and B`, `A, B and C`.
fn and_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A readable text report for people (a branch secretary reading it aloud): winners, a table of
/// totals and averages, a bar chart of each option's score histogram, the runoff(s), every
/// tiebreak step with what its numbers are, and the draw by lot when one was needed.
///
/// Option names come from ballot files and are shown through [`moot_text::escape`]: a name can
/// never move the cursor, erase a line or reorder text on the reader's terminal. (The JSON
/// [`Report`] carries them exactly.)
pub fn render_text(tally: &Tally) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; `let _ =` keeps that explicit without unwrap.
    let _ = write_text(&mut out, tally);
    out
}

fn write_text(out: &mut String, tally: &Tally) -> std::fmt::Result {
    let report = Report::new(tally);
    let shown: Vec<String> = tally
        .names
        .iter()
        .map(|name| moot_text::escape(name).into_owned())
        .collect();
    let names = |list: &[usize]| list.iter().map(|&i| shown[i].clone()).collect::<Vec<_>>();
    let seats = report.seats;
    let method = if seats == 1 {
        "STAR".to_string()
    } else {
        format!("Bloc STAR, {seats} seats")
    };
    writeln!(
        out,
        "{method}: {}, {}",
        count(report.ballots, "ballot"),
        count(report.options.len() as u64, "option")
    )?;
    let label = if seats == 1 { "Winner" } else { "Winners" };
    writeln!(out, "{label}: {}", names(&tally.winners).join(", "))?;
    writeln!(out)?;

    let width = shown
        .iter()
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    writeln!(
        out,
        "{:<width$}  {:>9}  {:>7}  {:>9}",
        "Option", "Total", "Average", "Five-star"
    )?;
    let mut order: Vec<usize> = (0..report.options.len()).collect();
    order.sort_by(|&a, &b| {
        report.options[b]
            .total
            .cmp(&report.options[a].total)
            .then(a.cmp(&b))
    });
    for &o in &order {
        let option = &report.options[o];
        writeln!(
            out,
            "{:<width$}  {:>9}  {:>7.2}  {:>9}",
            shown[o], option.total, option.average, option.histogram[5]
        )?;
    }
    writeln!(out)?;

    writeln!(out, "Score distribution (ballots giving each score):")?;
    let peak = report
        .options
        .iter()
        .flat_map(|o| o.histogram)
        .max()
        .unwrap_or(0)
        .max(1);
    for &o in &order {
        let option = &report.options[o];
        writeln!(out, "  {}", shown[o])?;
        for score in (0..6).rev() {
            let n = option.histogram[score];
            let bar = "#".repeat(usize::try_from(n * BAR_WIDTH / peak).unwrap_or(0));
            writeln!(out, "    {score} {bar:<w$} {n}", w = BAR_WIDTH as usize)?;
        }
    }
    writeln!(out)?;

    for round in &tally.rounds {
        let prefix = if seats == 1 {
            String::new()
        } else {
            format!("Seat {}: ", round.seat)
        };
        match &round.runoff {
            Some(r) => writeln!(
                out,
                "{prefix}Runoff {a} vs {b}: {a} preferred on {}, {b} on {}, no preference on {} \
                 -> {} wins{}",
                count(r.a_votes, "ballot"),
                r.b_votes,
                r.no_preference,
                shown[r.winner],
                if r.a_votes == r.b_votes {
                    " (a tied runoff: see the tiebreaks)"
                } else {
                    ""
                },
                a = shown[r.a],
                b = shown[r.b],
            )?,
            None => writeln!(
                out,
                "{prefix}{} is the only option left and wins",
                shown[round.winner]
            )?,
        }
    }
    write_matrix(out, &shown, &tally.pairwise)?;

    if tally.tiebreaks.is_empty() {
        writeln!(out, "Tiebreaks: none needed")?;
    } else {
        writeln!(out, "Tiebreaks, in the order applied:")?;
        for t in &tally.tiebreaks {
            let figures: Vec<String> = t
                .between
                .iter()
                .zip(&t.values)
                .map(|(&o, value)| format!("{} {value}", shown[o]))
                .collect();
            let result = names(&t.result);
            let outcome = match (t.stage, result.len()) {
                (_, 0) => "still tied".to_string(),
                (Stage::Scoring, 1) => format!("{} goes to the runoff", result[0]),
                (Stage::Scoring, _) => format!("{} go to the runoff", and_list(&result)),
                (Stage::Runoff, _) => format!("{} wins", and_list(&result)),
            };
            let stage = match (seats, t.stage) {
                (1, Stage::Scoring) => "Scoring round".to_string(),
                (1, Stage::Runoff) => "Runoff".to_string(),
                (_, Stage::Scoring) => format!("Seat {}, scoring round", t.seat),
                (_, Stage::Runoff) => format!("Seat {}, runoff", t.seat),
            };
            let rule = match t.rule {
                Rule::HeadToHead => "head-to-head (ballots preferring each)",
                Rule::FiveStar => "five-star ratings (ballots giving each a 5)",
                Rule::Score => "total scores",
                Rule::Lot => "draw by lot (place in the draw order; earlier wins)",
            };
            writeln!(
                out,
                "  {stage}, {rule}: {} -> {outcome}",
                figures.join(", ")
            )?;
        }
    }
    if tally.lot_used() {
        writeln!(
            out,
            "Draw order (fixed by the seed; in a draw the earlier option wins): {}",
            names(&tally.lot_order).join(", ")
        )?;
        writeln!(out, "Seed: {}", report.seed)?;
    } else {
        writeln!(out, "Draw by lot: not needed")?;
    }
    Ok(())
}
