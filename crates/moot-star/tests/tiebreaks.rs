//! One test per path through the official tie-breaker protocol, as expect-test snapshots of the
//! winners, the runoffs and every tiebreak step, followed by the same count as the text report
//! says it to people. `UPDATE_EXPECT=1 cargo test` rewrites them; review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write;

use expect_test::{Expect, expect};
use moot_star::report::render_text;
use moot_star::{Ballots, Config, Seed, tally};

/// Tallies `rows` of scores for options named by `header` (`"A,B,C"`) and checks the summary.
fn check(header: &str, rows: &[&[u8]], seats: usize, expect: Expect) {
    let names = header.split(',').map(String::from).collect();
    let mut ballots = Ballots::new(names).unwrap();
    for row in rows {
        ballots.push(row).unwrap();
    }
    let result = tally(
        &ballots.counts(),
        &Config {
            seats,
            seed: Seed([0; 32]),
        },
    )
    .unwrap();
    let name = |i: usize| result.names[i].as_str();
    let names = |list: &[usize]| list.iter().map(|&i| name(i)).collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    writeln!(out, "winners: {}", names(&result.winners)).unwrap();
    for round in &result.rounds {
        match &round.runoff {
            Some(r) => writeln!(
                out,
                "seat {} runoff {} vs {}: {}-{}, no preference {} -> {}",
                round.seat,
                name(r.a),
                name(r.b),
                r.a_votes,
                r.b_votes,
                r.no_preference,
                name(r.winner)
            )
            .unwrap(),
            None => writeln!(out, "seat {} unopposed: {}", round.seat, name(round.winner)).unwrap(),
        }
    }
    for t in &result.tiebreaks {
        let figures: Vec<String> = t
            .between
            .iter()
            .zip(&t.values)
            .map(|(&o, v)| format!("{} {v}", name(o)))
            .collect();
        writeln!(
            out,
            "seat {} {} {}: {} -> [{}]",
            t.seat,
            t.stage.as_str(),
            t.rule.as_str(),
            figures.join(", "),
            names(&t.result)
        )
        .unwrap();
    }
    // What a person reads: the text report from the runoffs on (runoffs, head-to-head matrix,
    // tiebreaks, the draw), i.e. everything after the score distribution.
    writeln!(out, "--- report").unwrap();
    let report = render_text(&result);
    let distribution = report.find("Score distribution").unwrap();
    let closing = report[distribution..].split_once("\n\n").unwrap().1;
    writeln!(out, "{}", closing.trim_end()).unwrap();
    expect.assert_eq(&out);
}

#[test]
fn no_tie() {
    check(
        "A,B,C",
        &[&[5, 3, 0], &[4, 5, 1], &[5, 1, 2]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs B: 2-1, no preference 0 -> A
            --- report
            Runoff A vs B: A preferred on 2 ballots, B on 1, no preference on 0 -> A wins

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B
              3 = C

                 1  2  3
              1  -  2  3
              2  1  -  2
              3  0  1  -

            Tiebreaks: none needed
            Draw by lot: not needed
        "#]],
    );
}

#[test]
fn single_option_wins_unopposed() {
    check(
        "A",
        &[&[3], &[0]],
        1,
        expect![[r#"
            winners: A
            seat 1 unopposed: A
            --- report
            A is the only option left and wins
            Tiebreaks: none needed
            Draw by lot: not needed
        "#]],
    );
}

#[test]
fn two_tied_for_first_both_advance_without_tiebreak() {
    check(
        "A,B,C",
        &[&[5, 0, 0], &[1, 2, 0], &[1, 2, 0], &[1, 4, 0]],
        1,
        expect![[r#"
            winners: B
            seat 1 runoff A vs B: 1-3, no preference 0 -> B
            --- report
            Runoff A vs B: A preferred on 1 ballot, B on 3, no preference on 0 -> B wins

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B
              3 = C

                 1  2  3
              1  -  1  4
              2  3  -  3
              3  0  0  -

            Tiebreaks: none needed
            Draw by lot: not needed
        "#]],
    );
}

#[test]
fn two_tied_for_second_broken_head_to_head() {
    check(
        "A,B,C",
        &[&[5, 3, 0], &[5, 0, 4], &[5, 2, 1]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs B: 3-0, no preference 0 -> A
            seat 1 scoring head_to_head: B 2, C 1 -> [B]
            --- report
            Runoff A vs B: A preferred on 3 ballots, B on 0, no preference on 0 -> A wins

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B
              3 = C

                 1  2  3
              1  -  3  3
              2  0  -  2
              3  0  1  -

            Tiebreaks, in the order applied:
              Scoring round, head-to-head (ballots preferring each): B 2, C 1 -> B goes to the runoff
            Draw by lot: not needed
        "#]],
    );
}

#[test]
fn two_tied_for_second_head_to_head_tied_then_five_star() {
    check(
        "A,B,C",
        &[&[5, 5, 1], &[5, 0, 4]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs B: 1-0, no preference 1 -> A
            seat 1 scoring head_to_head: B 1, C 1 -> []
            seat 1 scoring five_star: B 1, C 0 -> [B]
            --- report
            Runoff A vs B: A preferred on 1 ballot, B on 0, no preference on 1 -> A wins

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B
              3 = C

                 1  2  3
              1  -  1  2
              2  0  -  1
              3  0  1  -

            Tiebreaks, in the order applied:
              Scoring round, head-to-head (ballots preferring each): B 1, C 1 -> still tied
              Scoring round, five-star ratings (ballots giving each a 5): B 1, C 0 -> B goes to the runoff
            Draw by lot: not needed
        "#]],
    );
}

#[test]
fn two_tied_for_second_head_to_head_and_five_star_tied_then_lot() {
    check(
        "A,B,C",
        &[&[5, 5, 0], &[5, 0, 5]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs C: 1-0, no preference 1 -> A
            seat 1 scoring head_to_head: B 1, C 1 -> []
            seat 1 scoring five_star: B 1, C 1 -> []
            seat 1 scoring lot: B 3, C 2 -> [C]
            --- report
            Runoff A vs C: A preferred on 1 ballot, C on 0, no preference on 1 -> A wins

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B
              3 = C

                 1  2  3
              1  -  1  1
              2  0  -  1
              3  0  1  -

            Tiebreaks, in the order applied:
              Scoring round, head-to-head (ballots preferring each): B 1, C 1 -> still tied
              Scoring round, five-star ratings (ballots giving each a 5): B 1, C 1 -> still tied
              Scoring round, draw by lot (place in the draw order; earlier wins): B 3, C 2 -> C goes to the runoff
            Draw order (fixed by the seed; in a draw the earlier option wins): A, C, B
            Seed: 0000000000000000000000000000000000000000000000000000000000000000
        "#]],
    );
}

#[test]
fn three_tied_for_first_five_star_picks_both_finalists() {
    check(
        "A,B,C",
        &[&[5, 5, 4], &[5, 3, 3], &[0, 2, 3]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs B: 1-1, no preference 1 -> A
            seat 1 scoring five_star: A 2, B 1, C 0 -> [A B]
            seat 1 runoff score: A 10, B 10 -> []
            seat 1 runoff five_star: A 2, B 1 -> [A]
            --- report
            Runoff A vs B: A preferred on 1 ballot, B on 1, no preference on 1 -> A wins (a tied runoff: see the tiebreaks)

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B
              3 = C

                 1  2  3
              1  -  1  2
              2  1  -  1
              3  1  1  -

            Tiebreaks, in the order applied:
              Scoring round, five-star ratings (ballots giving each a 5): A 2, B 1, C 0 -> A and B go to the runoff
              Runoff, total scores: A 10, B 10 -> still tied
              Runoff, five-star ratings (ballots giving each a 5): A 2, B 1 -> A wins
            Draw by lot: not needed
        "#]],
    );
}

#[test]
fn three_tied_for_first_equal_five_star_pair_fills_both_slots() {
    check(
        "A,B,C",
        &[&[5, 5, 4], &[0, 0, 1]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs B: 0-0, no preference 2 -> A
            seat 1 scoring five_star: A 1, B 1, C 0 -> [A B]
            seat 1 runoff score: A 5, B 5 -> []
            seat 1 runoff five_star: A 1, B 1 -> []
            seat 1 runoff lot: A 1, B 3 -> [A]
            --- report
            Runoff A vs B: A preferred on 0 ballots, B on 0, no preference on 2 -> A wins (a tied runoff: see the tiebreaks)

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B
              3 = C

                 1  2  3
              1  -  0  1
              2  0  -  1
              3  1  1  -

            Tiebreaks, in the order applied:
              Scoring round, five-star ratings (ballots giving each a 5): A 1, B 1, C 0 -> A and B go to the runoff
              Runoff, total scores: A 5, B 5 -> still tied
              Runoff, five-star ratings (ballots giving each a 5): A 1, B 1 -> still tied
              Runoff, draw by lot (place in the draw order; earlier wins): A 1, B 3 -> A wins
            Draw order (fixed by the seed; in a draw the earlier option wins): A, C, B
            Seed: 0000000000000000000000000000000000000000000000000000000000000000
        "#]],
    );
}

#[test]
fn three_tied_for_first_five_star_then_lot_for_the_second_slot() {
    check(
        "A,B,C",
        &[&[5, 4, 3], &[0, 1, 2]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs C: 1-1, no preference 0 -> A
            seat 1 scoring five_star: A 1, B 0, C 0 -> [A]
            seat 1 scoring lot: B 3, C 2 -> [C]
            seat 1 runoff score: A 5, C 5 -> []
            seat 1 runoff five_star: A 1, C 0 -> [A]
            --- report
            Runoff A vs C: A preferred on 1 ballot, C on 1, no preference on 0 -> A wins (a tied runoff: see the tiebreaks)

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B
              3 = C

                 1  2  3
              1  -  1  1
              2  1  -  1
              3  1  1  -

            Tiebreaks, in the order applied:
              Scoring round, five-star ratings (ballots giving each a 5): A 1, B 0, C 0 -> A goes to the runoff
              Scoring round, draw by lot (place in the draw order; earlier wins): B 3, C 2 -> C goes to the runoff
              Runoff, total scores: A 5, C 5 -> still tied
              Runoff, five-star ratings (ballots giving each a 5): A 1, C 0 -> A wins
            Draw order (fixed by the seed; in a draw the earlier option wins): A, C, B
            Seed: 0000000000000000000000000000000000000000000000000000000000000000
        "#]],
    );
}

#[test]
fn three_tied_for_second_broken_by_five_star() {
    check(
        "A,B,C,D",
        &[&[5, 5, 4, 3], &[5, 0, 1, 2], &[5, 0, 0, 0]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs B: 2-0, no preference 1 -> A
            seat 1 scoring five_star: B 1, C 0, D 0 -> [B]
            --- report
            Runoff A vs B: A preferred on 2 ballots, B on 0, no preference on 1 -> A wins

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B
              3 = C
              4 = D

                 1  2  3  4
              1  -  2  3  3
              2  0  -  1  1
              3  0  1  -  1
              4  0  1  1  -

            Tiebreaks, in the order applied:
              Scoring round, five-star ratings (ballots giving each a 5): B 1, C 0, D 0 -> B goes to the runoff
            Draw by lot: not needed
        "#]],
    );
}

#[test]
fn three_tied_for_second_five_star_tied_then_lot() {
    check(
        "A,B,C,D",
        &[&[5, 4, 3, 2], &[5, 1, 2, 2], &[5, 0, 0, 1]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs C: 3-0, no preference 0 -> A
            seat 1 scoring five_star: B 0, C 0, D 0 -> []
            seat 1 scoring lot: B 4, C 2, D 3 -> [C]
            --- report
            Runoff A vs C: A preferred on 3 ballots, C on 0, no preference on 0 -> A wins

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B
              3 = C
              4 = D

                 1  2  3  4
              1  -  3  3  3
              2  0  -  1  1
              3  0  1  -  1
              4  0  2  1  -

            Tiebreaks, in the order applied:
              Scoring round, five-star ratings (ballots giving each a 5): B 0, C 0, D 0 -> still tied
              Scoring round, draw by lot (place in the draw order; earlier wins): B 4, C 2, D 3 -> C goes to the runoff
            Draw order (fixed by the seed; in a draw the earlier option wins): A, C, D, B
            Seed: 0000000000000000000000000000000000000000000000000000000000000000
        "#]],
    );
}

#[test]
fn runoff_tie_broken_by_total_score() {
    check(
        "A,B",
        &[&[5, 0], &[0, 1], &[3, 3]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs B: 1-1, no preference 1 -> A
            seat 1 runoff score: A 8, B 4 -> [A]
            --- report
            Runoff A vs B: A preferred on 1 ballot, B on 1, no preference on 1 -> A wins (a tied runoff: see the tiebreaks)

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B

                 1  2
              1  -  1
              2  1  -

            Tiebreaks, in the order applied:
              Runoff, total scores: A 8, B 4 -> A wins
            Draw by lot: not needed
        "#]],
    );
}

#[test]
fn runoff_tie_broken_by_five_star() {
    check(
        "A,B",
        &[&[5, 4], &[0, 1]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs B: 1-1, no preference 0 -> A
            seat 1 runoff score: A 5, B 5 -> []
            seat 1 runoff five_star: A 1, B 0 -> [A]
            --- report
            Runoff A vs B: A preferred on 1 ballot, B on 1, no preference on 0 -> A wins (a tied runoff: see the tiebreaks)

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B

                 1  2
              1  -  1
              2  1  -

            Tiebreaks, in the order applied:
              Runoff, total scores: A 5, B 5 -> still tied
              Runoff, five-star ratings (ballots giving each a 5): A 1, B 0 -> A wins
            Draw by lot: not needed
        "#]],
    );
}

#[test]
fn runoff_tie_decided_by_lot() {
    check(
        "A,B",
        &[&[3, 3], &[1, 1]],
        1,
        expect![[r#"
            winners: A
            seat 1 runoff A vs B: 0-0, no preference 2 -> A
            seat 1 runoff score: A 4, B 4 -> []
            seat 1 runoff five_star: A 0, B 0 -> []
            seat 1 runoff lot: A 1, B 2 -> [A]
            --- report
            Runoff A vs B: A preferred on 0 ballots, B on 0, no preference on 2 -> A wins (a tied runoff: see the tiebreaks)

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B

                 1  2
              1  -  0
              2  0  -

            Tiebreaks, in the order applied:
              Runoff, total scores: A 4, B 4 -> still tied
              Runoff, five-star ratings (ballots giving each a 5): A 0, B 0 -> still tied
              Runoff, draw by lot (place in the draw order; earlier wins): A 1, B 2 -> A wins
            Draw order (fixed by the seed; in a draw the earlier option wins): A, B
            Seed: 0000000000000000000000000000000000000000000000000000000000000000
        "#]],
    );
}

#[test]
fn bloc_star_repeats_on_the_remaining_options() {
    check(
        "A,B,C,D",
        &[&[5, 4, 1, 0], &[5, 3, 4, 0], &[1, 5, 2, 0]],
        3,
        expect![[r#"
            winners: A B C
            seat 1 runoff B vs A: 1-2, no preference 0 -> A
            seat 2 runoff B vs C: 2-1, no preference 0 -> B
            seat 3 runoff C vs D: 3-0, no preference 0 -> C
            --- report
            Seat 1: Runoff B vs A: B preferred on 1 ballot, A on 2, no preference on 0 -> A wins
            Seat 2: Runoff B vs C: B preferred on 2 ballots, C on 1, no preference on 0 -> B wins
            Seat 3: Runoff C vs D: C preferred on 3 ballots, D on 0, no preference on 0 -> C wins

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B
              3 = C
              4 = D

                 1  2  3  4
              1  -  2  2  3
              2  1  -  2  3
              3  1  1  -  3
              4  0  0  0  -

            Tiebreaks: none needed
            Draw by lot: not needed
        "#]],
    );
}

#[test]
fn bloc_star_with_as_many_seats_as_options_elects_everyone() {
    check(
        "A,B",
        &[&[5, 1], &[2, 4]],
        2,
        expect![[r#"
            winners: A B
            seat 1 runoff A vs B: 1-1, no preference 0 -> A
            seat 2 unopposed: B
            seat 1 runoff score: A 7, B 5 -> [A]
            --- report
            Seat 1: Runoff A vs B: A preferred on 1 ballot, B on 1, no preference on 0 -> A wins (a tied runoff: see the tiebreaks)
            Seat 2: B is the only option left and wins

            Head-to-head (ballots scoring the row's option above the column's):
              1 = A
              2 = B

                 1  2
              1  -  1
              2  1  -

            Tiebreaks, in the order applied:
              Seat 1, runoff, total scores: A 7, B 5 -> A wins
            Draw by lot: not needed
        "#]],
    );
}
