//! The ballot reader against an independent CSV parser (the `csv` crate) as an oracle, over
//! random files with quotes, padding, blanks, CRLF, blank lines and leading export columns,
//! delivered in random-sized reads, with names padded or decomposed and an optional byte order
//! mark.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;

use moot_star::Summary;
use moot_star::input::{ReadOptions, read_ballots, read_summary};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization as _;

/// A reader that hands out at most `step` bytes per read, to cross every buffer boundary.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(out.len()).min(self.bytes.len());
        out[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

fn score_field() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u8..=5).prop_map(|s| s.to_string()),
        (0u8..=5).prop_map(|s| format!(" {s} ")),
        (0u8..=5).prop_map(|s| format!("\"{s}\"")),
        (0u8..=5).prop_map(|s| format!("0{s}")),
        Just(String::new()),
    ]
}

fn leading_field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{1,6}",
        "[a-z ,]{0,6}".prop_map(|s| format!("\"{s}\"")),
        Just("\"line\nbreak\"".to_string()),
        Just("\"say \"\"hi\"\"\"".to_string()),
    ]
}

/// A well-formed ballot file: header, rows, line ends.
fn file() -> impl Strategy<Value = (String, usize)> {
    (
        1usize..5,
        any::<bool>(),
        0usize..30,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(options, star_vote, rows, crlf, final_newline, bom)| {
            let row = (
                proptest::collection::vec(leading_field(), 3),
                proptest::collection::vec(score_field(), options),
                0usize..8,
            );
            (
                proptest::collection::vec(row, rows),
                Just((options, star_vote, crlf, final_newline, bom)),
            )
                .prop_map(|(rows, (options, star_vote, crlf, final_newline, bom))| {
                    let end = if crlf { "\r\n" } else { "\n" };
                    let mut header: Vec<String> = Vec::new();
                    if star_vote {
                        header.extend(["voterID", "voteTime", "pollID"].map(String::from));
                    }
                    // Names as people type them: padded inside quotes, accents decomposed.
                    header.extend((0..options).map(|i| match i % 3 {
                        0 => format!("\"Opt {i}\""),
                        1 => format!("\" Opt {i}\u{3000}\""),
                        _ => format!("Cafe\u{301} {i}"),
                    }));
                    let mut text = if bom {
                        "\u{feff}".to_string()
                    } else {
                        String::new()
                    };
                    text.push_str(&header.join(","));
                    for (leading, scores, blank_line) in rows {
                        text.push_str(end);
                        if blank_line == 0 {
                            text.push_str(end);
                        }
                        let mut fields = if star_vote { leading } else { Vec::new() };
                        fields.extend(scores);
                        text.push_str(&fields.join(","));
                    }
                    if final_newline {
                        text.push_str(end);
                    }
                    (text, options)
                })
        })
}

/// The oracle: the csv crate, trimming, flexible, then the same score rules; a leading byte
/// order mark dropped and names NFC-normalised and trimmed (by `unicode-normalization` and
/// `str::trim` directly, not through `moot_text`).
fn oracle(text: &str, options: usize) -> (Vec<String>, Vec<Vec<u8>>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records().map(|r| r.unwrap());
    let header = records.next().unwrap();
    let skip = header.len() - options;
    let names = header
        .iter()
        .skip(skip)
        .map(|name| name.nfc().collect::<String>().trim().to_string())
        .collect();
    let rows = records
        .map(|r| {
            r.iter()
                .skip(skip)
                .map(|f| {
                    if f.is_empty() {
                        0
                    } else {
                        f.parse::<u8>().unwrap()
                    }
                })
                .collect()
        })
        .collect();
    (names, rows)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn reader_agrees_with_the_csv_crate((text, options) in file(), step in 1usize..64) {
        let (names, rows) = oracle(&text, options);
        for parsed in [
            read_ballots(text.as_bytes()).unwrap(),
            read_ballots(Trickle { bytes: text.as_bytes(), step }).unwrap(),
        ] {
            prop_assert_eq!(parsed.ballots.names(), names.as_slice());
            let got: Vec<Vec<u8>> = (0..parsed.ballots.len()).map(|i| parsed.ballots.row(i).unwrap()).collect();
            prop_assert_eq!(&got, &rows);
        }
        // Reading straight into counts agrees with counting the ballots read.
        let ballots = read_ballots(text.as_bytes()).unwrap().ballots;
        let summarised = read_summary(Trickle { bytes: text.as_bytes(), step }, &ReadOptions::default()).unwrap();
        prop_assert_eq!(summarised.summary, Summary::from_ballots(&ballots));
    }
}

#[test]
fn errors_carry_the_right_line_after_quoted_newlines_and_blank_lines() {
    let text = "voterID,voteTime,pollID,Ada\n\"a\nb\",t,p,1\n\n1,t,p,7\n";
    let error = read_ballots(Trickle {
        bytes: text.as_bytes(),
        step: 3,
    })
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 5: score 7 for \"Ada\" is outside 0-5"
    );
}

#[test]
fn unclosed_quote_and_stray_quote_are_malformed_not_lost() {
    let error = read_ballots("Ada,Ben\n1,\"2\n".as_bytes()).unwrap_err();
    assert_eq!(error.to_string(), "line 2: a quoted field is never closed");
    let error = read_ballots("Ada,Ben\n1,2\"\n".as_bytes()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 2: a quote inside an unquoted field"
    );
}

#[test]
fn a_record_without_end_is_refused_with_bounded_memory() {
    let mut text = b"Ada\n\"".to_vec();
    text.extend(std::iter::repeat_n(
        b'x',
        moot_star::input::MAX_RECORD_BYTES + 10,
    ));
    text.extend(b"\"\n");
    let error = read_ballots(text.as_slice()).unwrap_err().to_string();
    assert!(
        error.contains("longer than"),
        "{}",
        &error[..error.len().min(200)]
    );
    // A long bad score is reported with a short excerpt, not echoed whole.
    let mut text = b"Ada
"
    .to_vec();
    text.extend(std::iter::repeat_n(b'7', 5000));
    let error = read_ballots(text.as_slice()).unwrap_err().to_string();
    assert!(error.len() < 120, "{}", &error[..error.len().min(200)]);
}

#[test]
fn a_million_rows_parse_on_the_fast_path_and_a_late_bad_row_is_caught() {
    let mut text = b"Ada,Ben,Cara\n".to_vec();
    for i in 0..200_000u32 {
        let d = b'0' + (i % 6) as u8;
        text.extend([d, b',', b'5' - (i % 6) as u8, b',', d, b'\n']);
    }
    text.extend(b"1,2,9\n");
    let error = read_ballots(text.as_slice()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 200002: score 9 for \"Cara\" is outside 0-5"
    );
}
