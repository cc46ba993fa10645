//! `moot tally`: the JSON contract, the text report, input layouts, and bad input.

use crate::{json, moot, root};

fn example() -> String {
    root().join("examples/ballots.csv").display().to_string()
}

#[test]
fn json_has_every_contract_field() {
    let out = json(&moot(&["tally", &example(), "--json"], None));
    assert_eq!(out["winners"], serde_json::json!(["Ben"]));
    assert_eq!(out["ballots"], 10);
    let ada = &out["options"][0];
    assert_eq!(ada["name"], "Ada");
    assert_eq!(ada["total"], 29);
    assert_eq!(ada["average"], 2.9);
    assert_eq!(ada["histogram"], serde_json::json!([2, 1, 1, 1, 2, 3]));
    let runoff = &out["runoff"];
    assert_eq!(
        (
            &runoff["a"],
            &runoff["b"],
            &runoff["a_votes"],
            &runoff["b_votes"],
            &runoff["no_preference"]
        ),
        (
            &"Ben".into(),
            &"Ada".into(),
            &5.into(),
            &4.into(),
            &1.into()
        )
    );
    assert_eq!(out["rounds"][0]["winner"], "Ben");
    assert_eq!(out["rounds"][0]["runoff"], out["runoff"]);
    assert_eq!(out["tiebreaks"], serde_json::json!([]));
    assert_eq!(out["seed"].as_str().unwrap().len(), 64);
    // Options Ada, Ben, Cara, Dev: row i, column j = ballots scoring i above j.
    assert_eq!(
        out["pairwise"],
        serde_json::json!([[0, 4, 5, 6], [5, 0, 6, 6], [5, 3, 0, 6], [4, 4, 4, 0]])
    );
}

#[test]
fn json_pairwise_matrix_counts_strict_preferences_in_option_order() {
    // The last ballot scores everyone equally: it prefers no one over anyone.
    let csv = b"Ada,Ben,Cy\n5,3,0\n0,4,5\n4,5,1\n3,3,3\n";
    let out = json(&moot(&["tally", "-", "--json"], Some(csv)));
    let names: Vec<&str> = out["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada", "Ben", "Cy"]);
    assert_eq!(
        out["pairwise"],
        serde_json::json!([[0, 1, 2], [2, 0, 2], [1, 1, 0]])
    );
    // The runoff (Ben vs Ada) is read from the matrix; the rest had no preference.
    let runoff = &out["runoff"];
    assert_eq!((&runoff["a"], &runoff["b"]), (&"Ben".into(), &"Ada".into()));
    assert_eq!(runoff["a_votes"], out["pairwise"][1][0]);
    assert_eq!(runoff["b_votes"], out["pairwise"][0][1]);
    assert_eq!(runoff["no_preference"], 1);
}

#[test]
fn global_json_flag_works_before_the_command_and_stdin_is_read_with_dash() {
    let csv = std::fs::read(root().join("examples/ballots.csv")).unwrap();
    let from_stdin = json(&moot(&["--json", "tally", "-"], Some(&csv)));
    let from_file = json(&moot(&["tally", &example(), "--json"], None));
    assert_eq!(from_stdin, from_file);
}

#[test]
fn text_report_shows_winner_table_histograms_runoff_and_lot() {
    let out = moot(&["tally", &example()], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "STAR: 10 ballots, 4 options",
        "Winner: Ben",
        "Ben            32     3.20          3",
        "Score distribution",
        "Runoff Ben vs Ada: Ben preferred on 5 ballots, Ada on 4, no preference on 1 -> Ben wins",
        "Head-to-head (ballots scoring the row's option above the column's):\n  1 = Ada\n  \
         2 = Ben\n  3 = Cara\n  4 = Dev\n\n     1  2  3  4\n  1  -  4  5  6\n  2  5  -  6  6\n  \
         3  5  3  -  6\n  4  4  4  4  -\n",
        "Tiebreaks: none needed",
        "Draw by lot: not needed",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The draw order is shown only when a draw decided something.
    assert!(!text.contains("Draw order"), "{text}");
}

#[test]
fn text_report_says_one_ballot_and_explains_a_draw() {
    let out = moot(
        &["tally", "-", "--seed", &"11".repeat(32)],
        Some(b"Ada,Ben\n3,3\n"),
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "STAR: 1 ballot, 2 options",
        "preferred on 0 ballots",
        "no preference on 1 -> ",
        "Runoff, total scores: Ada 3, Ben 3 -> still tied",
        "Runoff, five-star ratings (ballots giving each a 5): Ada 0, Ben 0 -> still tied",
        "Runoff, draw by lot (place in the draw order; earlier wins): ",
        "Draw order (fixed by the seed; in a draw the earlier option wins): ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("1 ballots"), "{text}");
}

/// An option name that tries to drive the terminal: erase the line, return the cursor, and
/// print another name over it; and one with a right-to-left override.
const HOSTILE: &[u8] = b"\"Ben\x1b[2K\rAda\",\"Cy\xe2\x80\xaeevil\"\n5,1\n4,2\n";

#[test]
fn hostile_option_names_never_reach_the_terminal_raw() {
    let out = moot(&["tally", "-"], Some(HOSTILE));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        crate::raw_dangerous(&text),
        None,
        "a control or bidi character reached the terminal:\n{text:?}"
    );
    assert!(text.contains("Winner: Ben\\u{1b}[2K\\rAda"), "{text}");
    assert!(text.contains("Cy\\u{202e}evil"), "{text}");
    // The head-to-head legend names them the same way.
    assert!(text.contains("  1 = Ben\\u{1b}[2K\\rAda\n"), "{text}");
    assert!(text.contains("  2 = Cy\\u{202e}evil\n"), "{text}");
    // JSON carries the names exactly.
    let json = json(&moot(&["tally", "-", "--json"], Some(HOSTILE)));
    assert_eq!(json["winners"][0], "Ben\u{1b}[2K\rAda");
    assert_eq!(json["options"][1]["name"], "Cy\u{202e}evil");
}

#[test]
fn invisible_characters_in_option_names_are_escaped_ignored_for_duplicates_or_refused() {
    // Shown: a zero-width space, a soft hyphen and tag characters are made visible; a joiner
    // inside an emoji is left alone.
    let csv = "\"Ada\u{200b}\",Be\u{ad}n,Cy\u{e0041},\"\u{1f469}\u{200d}\u{1f4bb}\"\n5,1,0,0\n"
        .as_bytes();
    let out = moot(&["tally", "-"], Some(csv));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(crate::raw_dangerous(&text), None, "{text:?}");
    assert!(text.contains("Winner: Ada\\u{200b}"), "{text}");
    assert!(
        text.contains("Be\\u{ad}n") && text.contains("Cy\\u{e0041}"),
        "{text}"
    );
    assert!(text.contains("\u{1f469}\u{200d}\u{1f4bb}"), "{text}");
    // Duplicates whatever is hidden in them, joiners included, and with full case folding.
    for header in [
        "Ada,\"A\u{200b}da\"",
        "Ada,\"Ada\u{2060}\"",
        "Ada,\"A\u{200d}da\"",
        "Ada,\"\u{feff}Ada\"",
        "Straße,STRASSE",
    ] {
        refused(
            format!("{header}\n1,2\n").as_bytes(),
            &[],
            "are the same name",
        );
    }
    // A name of nothing visible is an empty name.
    for blank in ["\u{200b}", "\u{3164}", "\u{ad}\u{2060}"] {
        refused(
            format!("Ada,\"{blank}\"\n1,2\n").as_bytes(),
            &[],
            "option 2 has an empty name",
        );
    }
}

#[test]
fn names_are_normalised_a_bom_is_skipped_and_near_duplicates_refused() {
    // A spreadsheet's byte order mark before a star.vote header, and a decomposed accent.
    let csv = "\u{feff}voterID,voteTime,pollID,Ada, Zoe\u{308} \n1,t,p,5,0\n".as_bytes();
    let out = json(&moot(&["tally", "-", "--json"], Some(csv)));
    assert_eq!(out["options"][0]["name"], "Ada");
    assert_eq!(out["options"][1]["name"], "Zo\u{eb}");
    let text = String::from_utf8(moot(&["tally", "-"], Some(csv)).stdout).unwrap();
    assert!(text.contains("(read as a star.vote export)"), "{text}");

    refused(
        b"Ada,Ben,\" ADA\"\n1,2,3\n",
        &[],
        "line 1 (header): options 1 (\"Ada\") and 3 (\" ADA\") are the same name",
    );
    refused(
        "Zo\u{eb},Zoe\u{308}\n1,2\n".as_bytes(),
        &[],
        "line 1 (header): options 1 (\"Zo\u{eb}\") and 2 (\"Zoe\\u{308}\") are the same name",
    );
}

const RACES: &[u8] = b"ballot_id,precinct,Chair!!Ada,Chair!!Ben,Treasurer!!Cy,Treasurer!!Di\n\
b1,North,5,1,0,4\n\
b2,South,4,2,,5\n\
b3,North,0,5,3,3\n";

#[test]
fn race_picks_one_race_of_a_bettervoting_export() {
    let chair = json(&moot(
        &["tally", "-", "--race", "Chair", "--json"],
        Some(RACES),
    ));
    assert_eq!(chair["options"].as_array().unwrap().len(), 2);
    assert_eq!(chair["options"][0]["name"], "Ada");
    assert_eq!(chair["options"][0]["total"], 9);
    assert_eq!(chair["winners"][0], "Ada");
    let treasurer = json(&moot(
        &["tally", "-", "--race", "Treasurer", "--json"],
        Some(RACES),
    ));
    assert_eq!(treasurer["winners"][0], "Di");
    assert_eq!(
        treasurer["options"][0]["histogram"],
        serde_json::json!([2, 0, 0, 1, 0, 0])
    );
    let text =
        String::from_utf8(moot(&["tally", "-", "--race", "Chair"], Some(RACES)).stdout).unwrap();
    assert!(
        text.contains("(read as a BetterVoting export, race \"Chair\")"),
        "{text}"
    );

    refused(
        RACES,
        &[],
        "the file holds 2 races (\"Chair\", \"Treasurer\"); choose the one to count with --race NAME",
    );
    refused(
        RACES,
        &["--race", "Mayor"],
        "no race named \"Mayor\"; the file's races are",
    );
    refused(
        b"Ada,Ben\n1,2\n",
        &["--race", "Chair"],
        "the file has no races",
    );
}

#[test]
fn a_large_file_is_counted_as_the_small_one_would_be() {
    // 300,000 ballots: many reader buffers and summary chunks; the counts must add up exactly.
    let mut csv = b"Ada,Ben,Cara\n".to_vec();
    for i in 0..300_000u32 {
        csv.extend([
            b'0' + (i % 6) as u8,
            b',',
            b'0' + (i / 6 % 6) as u8,
            b',',
            b'5',
            b'\n',
        ]);
    }
    let out = json(&moot(&["tally", "-", "--json"], Some(&csv)));
    assert_eq!(out["ballots"], 300_000);
    assert_eq!(
        out["options"][0]["histogram"],
        serde_json::json!([50_000, 50_000, 50_000, 50_000, 50_000, 50_000])
    );
    assert_eq!(
        out["options"][2]["histogram"],
        serde_json::json!([0, 0, 0, 0, 0, 300_000])
    );
    assert_eq!(out["winners"][0], "Cara");
}

#[test]
fn bloc_star_fills_every_seat_in_order() {
    let out = json(&moot(
        &["tally", &example(), "--seats", "3", "--json"],
        None,
    ));
    let winners = out["winners"].as_array().unwrap();
    assert_eq!(winners.len(), 3);
    assert_eq!(out["rounds"].as_array().unwrap().len(), 3);
    assert_eq!(out["winners"][0], "Ben");
    for (i, round) in out["rounds"].as_array().unwrap().iter().enumerate() {
        assert_eq!(round["seat"], i + 1);
        assert_eq!(round["winner"], winners[i]);
    }
}

#[test]
fn the_seed_fixes_the_draw_and_is_reported() {
    // Everyone scores both options equally: only the lot can decide.
    let csv = b"Ada,Ben\n3,3\n5,5\n";
    let seed = "11".repeat(32);
    let first = json(&moot(&["tally", "-", "--seed", &seed, "--json"], Some(csv)));
    let again = json(&moot(&["tally", "-", "--seed", &seed, "--json"], Some(csv)));
    assert_eq!(first, again);
    assert_eq!(first["seed"], seed.as_str());
    assert_eq!(first["lot_used"], true);
    let steps: Vec<&str> = first["tiebreaks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rule"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["score", "five_star", "lot"]);
    assert_eq!(first["winners"][0], first["lot_order"][0]);
}

#[test]
fn star_vote_export_is_read() {
    let csv = b"voterID,voteTime,pollID,Ada,Ben\n1,t,p,5,0\n2,t,p,4,1\n";
    let out = json(&moot(&["tally", "-", "--json"], Some(csv)));
    assert_eq!(out["winners"][0], "Ada");
    assert_eq!(out["options"].as_array().unwrap().len(), 2);
}

/// Bad input exits 2 with a message naming the line and the problem.
fn refused(stdin: &[u8], args: &[&str], needle: &str) {
    let mut all = vec!["tally", "-"];
    all.extend_from_slice(args);
    let out = moot(&all, Some(stdin));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    assert!(out.stdout.is_empty(), "nothing is tallied on bad input");
}

#[test]
fn bad_input_exits_2_and_names_the_problem() {
    refused(
        b"Ada,Ben\n5,0\n1,6\n",
        &[],
        "line 3: score 6 for \"Ben\" is outside 0-5",
    );
    refused(
        b"Ada,Ben\n5,0,1\n",
        &[],
        "line 2: 3 fields, but the header has 2",
    );
    refused(
        b"Ada,Ben\nx,1\n",
        &[],
        "line 2: score for \"Ada\" is \"x\", not a whole number",
    );
    refused(
        b"Ada,Ada\n1,1\n",
        &[],
        "option name \"Ada\" appears more than once (options 1 and 2)",
    );
    refused(b"", &[], "the file is empty");
    refused(b"Ada,Ben\n", &[], "no ballots to count");
    refused(
        b"Ada,Ben\n1,2\n",
        &["--seats", "3"],
        "cannot fill 3 seats from 2 options",
    );
    refused(
        b"Ada,Ben\n1,2\n",
        &["--seed", "abc"],
        "a seed is 64 hexadecimal digits",
    );
    refused(b"Ada,Ben\n1,2\n", &["--seats", "0"], "--seats");
    // Plurals: one of a thing is not "1 fields".
    refused(
        b"Ada,Ben\n5\n",
        &[],
        "line 2: 1 field, but the header has 2",
    );
    refused(
        b"Ada\n1\n",
        &["--seats", "2"],
        "cannot fill 2 seats from 1 option",
    );
}

#[test]
fn text_that_is_not_utf8_is_refused_naming_the_line() {
    // Latin-1 "Zoë": once silently read as "Zo\u{fffd}".
    refused(b"Zo\xeb,Ben\n1,2\n", &[], "line 1: not UTF-8 text");
    refused(b"Ada,Ben\n1,2\n\xff,1\n", &[], "line 3: not UTF-8 text");
    refused(
        b"voterID,voteTime,pollID,Ada,Ben\n1,t,p,5,0\n\xfe,t,p,4,1\n",
        &["--json"],
        "line 3: not UTF-8 text",
    );
}

#[test]
fn a_wide_header_is_refused_naming_the_option_limit() {
    // 80,000 options (a 709 KB file) once made `moot tally` ask for a 51 GB pairwise matrix
    // and abort. Now: exit 2, naming the limit, before any per-pair allocation.
    let names: Vec<String> = (0..80_000).map(|i| format!("o{i}")).collect();
    let csv = format!("{}\n{}\n", names.join(","), vec!["1"; 80_000].join(","));
    refused(
        csv.as_bytes(),
        &[],
        "line 1 (header): 80000 options; the limit is 1000 options",
    );
    // The limit itself counts.
    let names: Vec<String> = (0..1000).map(|i| format!("o{i}")).collect();
    let csv = format!("{}\n{}\n", names.join(","), vec!["1"; 1000].join(","));
    let out = json(&moot(&["tally", "-", "--json"], Some(csv.as_bytes())));
    assert_eq!(out["options"].as_array().unwrap().len(), 1000);
}

#[test]
fn missing_file_is_a_failure_not_bad_usage() {
    let out = moot(&["tally", "/nonexistent/ballots.csv"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/ballots.csv"));
}
