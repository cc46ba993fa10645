//! The STAR test vectors (`tests/data/cases`, copied from the shared data set), judged by the
//! rules of `docs/STAR-RULES.md` §8, plus checks on the tiebreak steps each case expects.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use moot_star::input::{ReadOptions, read_ballots, read_summary};
use moot_star::report::Report;
use moot_star::{Config, Seed, Summary, default_seed, tally};
use serde_json::Value;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cases");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

fn names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn set(list: &[String]) -> BTreeSet<String> {
    list.iter().cloned().collect()
}

/// Judges one report against a case's `expected` block. Returns a description of the first
/// mismatch.
fn judge(case: &Value, report: &Report) -> Result<(), String> {
    let expected = &case["expected"];
    let seats = case["seats"].as_u64().unwrap() as usize;
    let totals: Vec<u64> = report.options.iter().map(|o| o.total).collect();
    let want_totals: Vec<u64> = serde_json::from_value(expected["score_totals"].clone()).unwrap();
    if totals != want_totals {
        return Err(format!("score totals {totals:?}, expected {want_totals:?}"));
    }
    let five: Vec<u64> = report.options.iter().map(|o| o.histogram[5]).collect();
    let want_five: Vec<u64> = serde_json::from_value(expected["five_star_counts"].clone()).unwrap();
    if five != want_five {
        return Err(format!("five-star counts {five:?}, expected {want_five:?}"));
    }
    if report.ballots != expected["num_ballots"].as_u64().unwrap() {
        return Err(format!("{} ballots counted", report.ballots));
    }
    // The head-to-head matrix, recounted from the case's own ballot list.
    let ballots: Vec<Vec<u64>> = serde_json::from_value(case["ballots"].clone()).unwrap();
    let n = report.options.len();
    let mut want_pairwise = vec![vec![0u64; n]; n];
    for ballot in &ballots {
        for (i, row) in want_pairwise.iter_mut().enumerate() {
            for (j, votes) in row.iter_mut().enumerate() {
                *votes += u64::from(ballot[i] > ballot[j]);
            }
        }
    }
    if report.pairwise != want_pairwise {
        return Err(format!(
            "pairwise {:?}, expected {want_pairwise:?}",
            report.pairwise
        ));
    }
    if !expected["runoff"].is_null() {
        let want = &expected["runoff"];
        let got = report.runoff.as_ref().ok_or("no runoff reported")?;
        let pair = |a: &str, av: u64, b: &str, bv: u64| {
            let mut p = vec![(a.to_string(), av), (b.to_string(), bv)];
            p.sort();
            p
        };
        let got_pair = pair(&got.a, got.a_votes, &got.b, got.b_votes);
        let want_pair = pair(
            want["a"].as_str().unwrap(),
            want["a_votes"].as_u64().unwrap(),
            want["b"].as_str().unwrap(),
            want["b_votes"].as_u64().unwrap(),
        );
        if got_pair != want_pair || got.no_preference != want["equal_preference"].as_u64().unwrap()
        {
            return Err(format!("runoff {got:?}, expected {want}"));
        }
    }
    let needs_lot = expected["needs_lot"].as_bool().unwrap();
    if !needs_lot {
        let want = names(&expected["winners"]);
        let ok = if seats == 1 {
            report.winners == want
        } else {
            set(&report.winners) == set(&want)
        };
        if !ok {
            return Err(format!("winners {:?}, expected {want:?}", report.winners));
        }
    } else {
        if !report.lot_used {
            return Err("a lot was needed but none reported".into());
        }
        let ok = if seats == 1 {
            names(&expected["possible_winners"]).contains(&report.winners[0])
        } else {
            expected["possible_winner_sets"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| set(&names(s)) == set(&report.winners))
        };
        if !ok {
            return Err(format!(
                "winners {:?} not among the possible ones",
                report.winners
            ));
        }
    }
    if seats == 1 {
        // Beyond §8: the tiebreak steps taken, in order, match the case's.
        let steps: Vec<String> = report
            .tiebreaks
            .iter()
            .map(|t| format!("{}:{}", t.stage, t.rule))
            .collect();
        let want = names(&expected["tiebreaks"]);
        // After a lot in the scoring round, which finalists meet (and so any runoff tiebreak)
        // depends on the draw: the case lists only the steps every draw shares.
        let lot_in_scoring = expected["lot_stage"].as_str() == Some("scoring");
        let matches = if lot_in_scoring {
            steps.starts_with(&want)
        } else {
            steps == want
        };
        if !matches {
            return Err(format!("tiebreak steps {steps:?}, expected {want:?}"));
        }
    } else if let Some(rounds) = expected["rounds"].as_array() {
        for want in rounds {
            let seat = want["seat"].as_u64().unwrap() as usize;
            let got = &report.rounds[seat - 1];
            if !want["needs_lot"].as_bool().unwrap_or(true)
                && got.winner != want["winner"].as_str().unwrap()
            {
                return Err(format!(
                    "seat {seat} won by {}, expected {}",
                    got.winner, want["winner"]
                ));
            }
        }
    }
    if report.lot_used != needs_lot {
        return Err(format!(
            "lot used: {}, expected {needs_lot}",
            report.lot_used
        ));
    }
    Ok(())
}

#[test]
fn every_case_matches_the_current_official_protocol() {
    let paths = cases();
    assert_eq!(paths.len(), 110, "all 110 cases are present");
    let mut failures = Vec::new();
    let mut lot_cases = 0;
    for path in &paths {
        let case: Value = serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        let csv = fs::read(path.with_extension("csv")).unwrap();
        let parsed = read_ballots(csv.as_slice()).unwrap();
        let counts = parsed.ballots.counts();
        // What `moot tally` counts: the file read straight into a summary.
        let streamed = read_summary(csv.as_slice(), &ReadOptions::default()).unwrap();
        assert_eq!(streamed.summary, Summary::from_ballots(&parsed.ballots));
        let seats = case["seats"].as_u64().unwrap() as usize;
        if case["expected"]["needs_lot"].as_bool().unwrap() {
            lot_cases += 1;
        }
        // The default seed and two fixed ones: whatever the draw, the result must be lawful.
        let seeds = [default_seed(&counts), Seed([0; 32]), Seed([0xa5; 32])];
        for seed in seeds {
            let result = tally(&counts, &Config { seats, seed }).unwrap();
            if let Err(why) = judge(&case, &Report::new(&result)) {
                failures.push(format!("{} (seed {seed}): {why}", path.display()));
            }
            // A summary of the same ballots gives the identical tally.
            let summary = Summary::from_ballots(&parsed.ballots);
            assert_eq!(tally(&summary, &Config { seats, seed }).unwrap(), result);
        }
    }
    assert!(
        lot_cases > 20,
        "the set exercises the lot ({lot_cases} cases)"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn lot_cases_reach_every_possible_winner_over_many_seeds() {
    // The lot is not biased towards one answer: across seeds, a lot-dependent case produces
    // each of its possible winners (p185: a runoff tie between Ada and Eli).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cases");
    let csv = fs::read(dir.join("p185.csv")).unwrap();
    let parsed = read_ballots(csv.as_slice()).unwrap();
    let counts = parsed.ballots.counts();
    let mut seen = BTreeSet::new();
    for byte in 0..=255u8 {
        let result = tally(&counts, &Config::single_winner(Seed([byte; 32]))).unwrap();
        seen.insert(result.winner_names()[0].to_string());
    }
    assert_eq!(seen, set(&["Ada".to_string(), "Eli".to_string()]));
}
