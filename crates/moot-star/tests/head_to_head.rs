//! The text report's head-to-head section: the legend and the matrix as people read them
//! (snapshots; `UPDATE_EXPECT=1 cargo test` rewrites them, review the diff), escaped names, and
//! the pointer to `--json` when there are too many options for a table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use expect_test::{Expect, expect};
use moot_star::report::render_text;
use moot_star::{Ballots, Config, Seed, tally};

/// The text report of `rows` over options `names`.
fn report(names: Vec<String>, rows: &[Vec<u8>]) -> String {
    let mut ballots = Ballots::new(names).unwrap();
    for row in rows {
        ballots.push(row).unwrap();
    }
    render_text(&tally(&ballots.counts(), &Config::single_winner(Seed([0; 32]))).unwrap())
}

/// The head-to-head section alone: from its heading to the blank line that ends it.
fn section(text: &str) -> &str {
    let start = text.find("Head-to-head").unwrap();
    let rest = &text[start..];
    // The legend is followed by a blank line, then the table, then a blank line.
    let legend_end = rest.find("\n\n").unwrap() + 2;
    let table_end = rest[legend_end..]
        .find("\n\n")
        .map_or(rest.len(), |i| legend_end + i + 1);
    &rest[..table_end]
}

fn check(names: &[&str], rows: &[Vec<u8>], expect: Expect) {
    let text = report(names.iter().map(|s| s.to_string()).collect(), rows);
    expect.assert_eq(section(&text));
}

#[test]
fn names_are_escaped_in_the_legend() {
    check(
        &["Ada\u{1b}[2K", "Ben\u{202e}", "Cy"],
        &[vec![5, 3, 0], vec![0, 4, 5], vec![4, 5, 1]],
        expect![[r#"
            Head-to-head (ballots scoring the row's option above the column's):
              1 = Ada\u{1b}[2K
              2 = Ben\u{202e}
              3 = Cy

                 1  2  3
              1  -  1  2
              2  2  -  2
              3  1  1  -
        "#]],
    );
}

#[test]
fn two_digit_labels_and_wide_counts_stay_aligned() {
    // Twelve options; 3,000 pseudo-random ballots, so counts run to four digits.
    let names: Vec<String> = (1..=12).map(|i| format!("Option {i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut state = 1u64;
    let mut score = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % 6) as u8
    };
    let rows: Vec<Vec<u8>> = (0..3000)
        .map(|_| (0..12).map(|_| score()).collect())
        .collect();
    check(
        &names,
        &rows,
        expect![[r#"
            Head-to-head (ballots scoring the row's option above the column's):
               1 = Option 1
               2 = Option 2
               3 = Option 3
               4 = Option 4
               5 = Option 5
               6 = Option 6
               7 = Option 7
               8 = Option 8
               9 = Option 9
              10 = Option 10
              11 = Option 11
              12 = Option 12

                     1     2     3     4     5     6     7     8     9    10    11    12
               1     -  1260  1255  1215  1257  1230  1232  1216  1220  1221  1239  1251
               2  1244     -  1255  1222  1200  1234  1242  1226  1226  1227  1269  1286
               3  1245  1236     -  1216  1178  1247  1237  1206  1228  1192  1223  1246
               4  1290  1272  1308     -  1256  1256  1290  1270  1264  1236  1285  1267
               5  1270  1251  1299  1267     -  1244  1287  1227  1245  1227  1264  1276
               6  1263  1231  1286  1269  1241     -  1248  1248  1226  1223  1274  1258
               7  1260  1257  1266  1203  1223  1235     -  1233  1230  1218  1268  1263
               8  1273  1278  1252  1244  1285  1238  1254     -  1224  1253  1282  1274
               9  1285  1270  1332  1229  1275  1269  1274  1283     -  1257  1296  1279
              10  1274  1308  1299  1282  1252  1262  1271  1279  1252     -  1282  1275
              11  1258  1256  1258  1207  1236  1245  1203  1241  1193  1204     -  1223
              12  1266  1244  1242  1234  1232  1198  1246  1247  1247  1213  1285     -
        "#]],
    );
}

#[test]
fn twenty_options_get_a_table_more_get_a_pointer_to_json() {
    let rows_for = |n: usize| -> Vec<Vec<u8>> {
        (0..3usize)
            .map(|b| (0..n).map(|o| ((o + b) % 6) as u8).collect())
            .collect()
    };
    let names_for = |n: usize| -> Vec<String> { (1..=n).map(|i| format!("O{i}")).collect() };

    let twenty = report(names_for(20), &rows_for(20));
    let table = section(&twenty);
    assert!(table.contains("  20 = O20\n"), "{table}");
    assert!(table.contains("\n  20  "), "{table}");
    assert!(!twenty.contains("--json"), "{twenty}");

    let many = report(names_for(21), &rows_for(21));
    let note = "Head-to-head: 21 options are too many to show here; the full matrix (ballots \
                scoring each option above each other) is the \"pairwise\" field of the --json \
                output\n";
    assert!(many.contains(note), "{many}");
    assert!(!many.contains(" = O1\n"), "no legend expected:\n{many}");
    // The sections around it are still separated by blank lines.
    assert!(many.contains(&format!("\n\n{note}\nTiebreaks")), "{many}");
}

#[test]
fn a_single_option_has_no_head_to_head_section() {
    let text = report(vec!["Ada".into()], &[vec![3], vec![5]]);
    assert!(!text.contains("Head-to-head"), "{text}");
}
