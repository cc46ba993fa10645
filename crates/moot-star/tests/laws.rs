//! Property tests: the laws every tally must obey, over random elections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use moot_star::report::Report;
use moot_star::{Ballots, Config, Seed, Summary, default_seed, tally};
use proptest::prelude::*;

const NAMES: [&str; 8] = ["Ada", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana"];

/// A random election: 1..=8 options, 1..=40 ballots. Scores are drawn from a narrow range
/// often, so exact ties (and so every tiebreak path, the lot included) come up regularly.
fn election() -> impl Strategy<Value = (usize, Vec<Vec<u8>>)> {
    (1usize..=8).prop_flat_map(|options| {
        let score = prop_oneof![0u8..=5, 4u8..=5, Just(5u8), 0u8..=1];
        let row = proptest::collection::vec(score, options);
        (Just(options), proptest::collection::vec(row, 1..40))
    })
}

fn ballots(options: usize, rows: &[Vec<u8>]) -> Ballots {
    let mut ballots =
        Ballots::new(NAMES[..options].iter().map(|s| s.to_string()).collect()).unwrap();
    for row in rows {
        ballots.push(row).unwrap();
    }
    ballots
}

fn seats_for(options: usize, pick: usize) -> usize {
    1 + pick % options
}

/// A result with option identities replaced by names, so that it can be compared across
/// different option orders.
#[derive(Debug, PartialEq)]
struct Named {
    winners: Vec<String>,
    options: BTreeMap<String, (u64, [u64; 6])>,
    runoffs: Vec<Option<BTreeMap<String, u64>>>,
    steps: Vec<(usize, String, String, Vec<String>)>,
    pairwise: BTreeMap<(String, String), u64>,
}

fn named(report: &Report) -> Named {
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    Named {
        winners: report.winners.clone(),
        options: report
            .options
            .iter()
            .map(|o| (o.name.clone(), (o.total, o.histogram)))
            .collect(),
        runoffs: report
            .rounds
            .iter()
            .map(|r| {
                r.runoff.as_ref().map(|r| {
                    BTreeMap::from([
                        (r.a.clone(), r.a_votes),
                        (r.b.clone(), r.b_votes),
                        ("(none)".to_string(), r.no_preference),
                    ])
                })
            })
            .collect(),
        steps: report
            .tiebreaks
            .iter()
            .map(|t| {
                (
                    t.round,
                    t.stage.clone(),
                    t.rule.clone(),
                    sorted(t.result.clone()),
                )
            })
            .collect(),
        pairwise: report
            .pairwise
            .iter()
            .enumerate()
            .flat_map(|(i, row)| {
                row.iter().enumerate().map(move |(j, &votes)| {
                    let name = |o: usize| report.options[o].name.clone();
                    ((name(i), name(j)), votes)
                })
            })
            .collect(),
    }
}

/// The head-to-head matrix straight from the rows: `m[i][j]` rows score `i` above `j`.
fn matrix_of(options: usize, rows: &[Vec<u8>]) -> Vec<Vec<u64>> {
    let mut matrix = vec![vec![0u64; options]; options];
    for row in rows {
        for i in 0..options {
            for j in 0..options {
                matrix[i][j] += u64::from(row[i] > row[j]);
            }
        }
    }
    matrix
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Permuting ballots never changes the result: not the winners, not the figures, not the
    /// default seed, not the draw.
    #[test]
    fn permuting_ballots_never_changes_the_result(
        (options, rows) in election(),
        pick in 0usize..8,
        shuffle in any::<proptest::sample::Index>(),
    ) {
        let seats = seats_for(options, pick);
        let mut permuted = rows.clone();
        // A rotation plus a reversal reaches plenty of orders deterministically.
        let len = permuted.len();
        permuted.rotate_left(shuffle.index(len));
        permuted.reverse();
        let a = ballots(options, &rows);
        let b = ballots(options, &permuted);
        let (ca, cb) = (a.counts(), b.counts());
        prop_assert_eq!(default_seed(&ca), default_seed(&cb));
        let ta = tally(&ca, &Config { seats, seed: default_seed(&ca) }).unwrap();
        let tb = tally(&cb, &Config { seats, seed: default_seed(&cb) }).unwrap();
        prop_assert_eq!(ta, tb);
    }

    /// Permuting options only renames the result.
    #[test]
    fn permuting_options_only_renames_the_result(
        (options, rows) in election(),
        pick in 0usize..8,
        rotate in 0usize..8,
        seed in any::<[u8; 32]>(),
    ) {
        let seats = seats_for(options, pick);
        let mut order: Vec<usize> = (0..options).collect();
        order.rotate_left(rotate % options);
        order.reverse();
        let names: Vec<String> = order.iter().map(|&o| NAMES[o].to_string()).collect();
        let mut permuted = Ballots::new(names).unwrap();
        for row in &rows {
            let moved: Vec<u8> = order.iter().map(|&o| row[o]).collect();
            permuted.push(&moved).unwrap();
        }
        let original = ballots(options, &rows);
        let config = Config { seats, seed: Seed(seed) };
        let ta = tally(&original.counts(), &config).unwrap();
        let tb = tally(&permuted.counts(), &config).unwrap();
        prop_assert_eq!(named(&Report::new(&ta)), named(&Report::new(&tb)));
        prop_assert_eq!(default_seed(&original.counts()), default_seed(&permuted.counts()));
    }

    /// Precinct summaries merged in any grouping and order equal the summary of all ballots,
    /// and tally to exactly the same result as the ballots themselves.
    #[test]
    fn merged_summaries_equal_the_whole(
        (options, rows) in election(),
        pick in 0usize..8,
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
    ) {
        let seats = seats_for(options, pick);
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(rows.len() + 1)).collect();
        bounds.extend([0, rows.len()]);
        bounds.sort();
        let precincts: Vec<Summary> = bounds
            .windows(2)
            .map(|w| Summary::from_ballots(&ballots(options, &rows[w[0]..w[1]])))
            .collect();
        let names: Vec<String> = NAMES[..options].iter().map(|s| s.to_string()).collect();
        // Left to right, and right to left: associativity and commutativity.
        let mut forward = Summary::new(names.clone()).unwrap();
        for p in &precincts {
            forward.merge(p).unwrap();
        }
        let mut backward = Summary::new(names).unwrap();
        for p in precincts.iter().rev() {
            backward.merge(p).unwrap();
        }
        let all = ballots(options, &rows);
        let whole = Summary::from_ballots(&all);
        prop_assert_eq!(&forward, &whole);
        prop_assert_eq!(&backward, &whole);
        let counts = all.counts();
        let config = Config { seats, seed: default_seed(&counts) };
        prop_assert_eq!(default_seed(&forward), config.seed);
        prop_assert_eq!(tally(&forward, &config).unwrap(), tally(&counts, &config).unwrap());
    }

    /// Adding a ballot that scores every option the same never changes a winner.
    #[test]
    fn an_all_equal_ballot_never_changes_a_winner(
        (options, rows) in election(),
        pick in 0usize..8,
        level in 0u8..=5,
        copies in 1usize..4,
        seed in any::<[u8; 32]>(),
    ) {
        let seats = seats_for(options, pick);
        let config = Config { seats, seed: Seed(seed) };
        let before = tally(&ballots(options, &rows).counts(), &config).unwrap();
        let mut more = rows.clone();
        more.extend(std::iter::repeat_n(vec![level; options], copies));
        let after = tally(&ballots(options, &more).counts(), &config).unwrap();
        prop_assert_eq!(before.winners, after.winners);
    }

    /// Internal consistency of every report: runoff counts add up to the ballots, histograms
    /// add up to the ballots, totals match histograms, winners are distinct.
    #[test]
    fn reports_are_consistent((options, rows) in election(), pick in 0usize..8) {
        let seats = seats_for(options, pick);
        let b = ballots(options, &rows);
        let counts = b.counts();
        let report = Report::new(&tally(&counts, &Config { seats, seed: default_seed(&counts) }).unwrap());
        prop_assert_eq!(report.winners.len(), seats);
        let mut distinct = report.winners.clone();
        distinct.sort();
        distinct.dedup();
        prop_assert_eq!(distinct.len(), seats);
        for o in &report.options {
            prop_assert_eq!(o.histogram.iter().sum::<u64>(), report.ballots);
            let total: u64 = o.histogram.iter().enumerate().map(|(s, c)| s as u64 * c).sum();
            prop_assert_eq!(o.total, total);
        }
        for r in report.rounds.iter().filter_map(|r| r.runoff.as_ref()) {
            prop_assert_eq!(r.a_votes + r.b_votes + r.no_preference, report.ballots);
        }
    }

    /// The reported head-to-head matrix is the rows' own, whether counted from raw ballots or
    /// from their summary; the first runoff is read from it, and its counts add up to the ballots.
    #[test]
    fn pairwise_matrix_is_the_ballots_and_holds_the_runoff(
        (options, rows) in election(),
        pick in 0usize..8,
    ) {
        let seats = seats_for(options, pick);
        let all = ballots(options, &rows);
        let counts = all.counts();
        let config = Config { seats, seed: default_seed(&counts) };
        let raw = Report::new(&tally(&counts, &config).unwrap());
        let summarised = Report::new(&tally(&Summary::from_ballots(&all), &config).unwrap());
        prop_assert_eq!(&raw.pairwise, &matrix_of(options, &rows));
        prop_assert_eq!(&summarised.pairwise, &raw.pairwise);
        for (i, row) in raw.pairwise.iter().enumerate() {
            prop_assert_eq!(row.len(), options);
            prop_assert_eq!(row[i], 0);
            for (j, &votes) in row.iter().enumerate() {
                prop_assert!(votes + raw.pairwise[j][i] <= raw.ballots);
            }
        }
        let index = |name: &str| raw.options.iter().position(|o| o.name == name).unwrap();
        prop_assert_eq!(raw.runoff.is_none(), options == 1);
        // The first seat's runoff (`runoff`) and every later seat's.
        for r in raw.runoff.iter().chain(raw.rounds.iter().filter_map(|r| r.runoff.as_ref())) {
            let (a, b) = (index(&r.a), index(&r.b));
            prop_assert_eq!(raw.pairwise[a][b], r.a_votes);
            prop_assert_eq!(raw.pairwise[b][a], r.b_votes);
            prop_assert_eq!(raw.ballots - r.a_votes - r.b_votes, r.no_preference);
        }
    }

    /// Precinct matrices add up to the whole's: merging summaries adds their matrices.
    #[test]
    fn merged_summaries_add_matrices(
        (options, rows) in election(),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
    ) {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(rows.len() + 1)).collect();
        bounds.extend([0, rows.len()]);
        bounds.sort();
        let names: Vec<String> = NAMES[..options].iter().map(|s| s.to_string()).collect();
        let mut merged = Summary::new(names).unwrap();
        let mut sum = vec![vec![0u64; options]; options];
        for w in bounds.windows(2) {
            let precinct = Summary::from_ballots(&ballots(options, &rows[w[0]..w[1]]));
            merged.merge(&precinct).unwrap();
            if w[0] == w[1] {
                continue; // no ballots: nothing to tally, and a zero matrix to add
            }
            let matrix = tally(&precinct, &Config::single_winner(Seed([0; 32]))).unwrap().pairwise;
            for (total, row) in sum.iter_mut().zip(&matrix) {
                for (t, votes) in total.iter_mut().zip(row) {
                    *t += votes;
                }
            }
        }
        let whole = tally(&merged, &Config::single_winner(Seed([0; 32]))).unwrap();
        prop_assert_eq!(&whole.pairwise, &sum);
        prop_assert_eq!(&whole.pairwise, &matrix_of(options, &rows));
    }
}
