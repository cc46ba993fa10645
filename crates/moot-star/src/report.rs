//! Presenting a [`Tally`]: the stable JSON contract and a human-readable text report.
//!
//! [`Report`] is the wire type behind `moot tally --json` (and, later, `moot poll results`).
//! Scripts depend on its field names (see the CLI contract): add fields, never rename or
//! remove them. It is kept apart from the domain type [`Tally`] so that refactoring the tally
//! never silently changes the contract.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{Runoff, Tally};

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
        }
    }
}

const BAR_WIDTH: u64 = 20;

/// A readable text report: winners, a table of totals and averages, a bar chart of each
/// option's score histogram, the runoff(s) and every tiebreak step.
pub fn render_text(tally: &Tally) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; `let _ =` keeps that explicit without unwrap.
    let _ = write_text(&mut out, tally);
    out
}

fn write_text(out: &mut String, tally: &Tally) -> std::fmt::Result {
    let report = Report::new(tally);
    let seats = report.seats;
    let method = if seats == 1 {
        "STAR".to_string()
    } else {
        format!("Bloc STAR, {seats} seats")
    };
    writeln!(
        out,
        "{method}: {} ballots, {} options",
        report.ballots,
        report.options.len()
    )?;
    let label = if seats == 1 { "Winner" } else { "Winners" };
    writeln!(out, "{label}: {}", report.winners.join(", "))?;
    writeln!(out)?;

    let width = report
        .options
        .iter()
        .map(|o| o.name.chars().count())
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
            option.name, option.total, option.average, option.histogram[5]
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
        writeln!(out, "  {}", option.name)?;
        for score in (0..6).rev() {
            let count = option.histogram[score];
            let bar = "#".repeat(usize::try_from(count * BAR_WIDTH / peak).unwrap_or(0));
            writeln!(out, "    {score} {bar:<w$} {count}", w = BAR_WIDTH as usize)?;
        }
    }
    writeln!(out)?;

    for round in &report.rounds {
        let prefix = if seats == 1 {
            String::new()
        } else {
            format!("Seat {}: ", round.seat)
        };
        match &round.runoff {
            Some(r) => writeln!(
                out,
                "{prefix}Runoff {} vs {}: {} preferred by {}, {} by {}, no preference {} -> {}",
                r.a, r.b, r.a, r.a_votes, r.b, r.b_votes, r.no_preference, r.winner
            )?,
            None => writeln!(out, "{prefix}{} is the only option left", round.winner)?,
        }
    }

    if report.tiebreaks.is_empty() {
        writeln!(out, "Tiebreaks: none")?;
    } else {
        writeln!(out, "Tiebreaks:")?;
        for t in &report.tiebreaks {
            let figures: Vec<String> = t
                .between
                .iter()
                .zip(&t.values)
                .map(|(name, value)| format!("{name} {value}"))
                .collect();
            let outcome = if t.result.is_empty() {
                "still tied".to_string()
            } else {
                t.result.join(", ")
            };
            let round = if seats == 1 {
                String::new()
            } else {
                format!("seat {}, ", t.round)
            };
            writeln!(
                out,
                "  {round}{} {}: {} -> {outcome}",
                t.stage,
                t.rule.replace('_', "-"),
                figures.join(", ")
            )?;
        }
    }
    let lot = if report.lot_used {
        "used"
    } else {
        "not needed"
    };
    writeln!(out, "Lot: {lot}; seed {}", report.seed)?;
    writeln!(
        out,
        "Lot order (first wins any draw): {}",
        report.lot_order.join(", ")
    )?;
    Ok(())
}
