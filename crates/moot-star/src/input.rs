//! Reading ballot files: CSV with a header row of option names and one row of scores per ballot.
//!
//! Three layouts are recognised from the header:
//! - **plain**: every column is an option;
//! - **star.vote** export: leading `voterID,voteTime,pollID` columns, skipped;
//! - **BetterVoting** export: leading `ballot_id,precinct` columns, skipped; option columns
//!   named `race!!option` lose their race prefix when the file holds a single race.
//!
//! A blank score is 0. Fields may be padded with spaces. Anything else that is not a whole
//! number from 0 to 5 is an error naming the line, the option and the text found: a ballot file
//! is never tallied "mostly".
//!
//! The reader streams: it keeps one record buffer and one byte per score, never whole rows as
//! strings, so a million-ballot file needs a few megabytes.

use std::io::Read;

use crate::{BallotError, Ballots, MAX_SCORE};

/// The layout a file was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Every column is an option.
    Plain,
    /// star.vote export (`voterID,voteTime,pollID`, then options).
    StarVote,
    /// BetterVoting export (`ballot_id,precinct`, then options).
    BetterVoting,
}

impl Layout {
    /// Short human name.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Plain => "plain CSV",
            Layout::StarVote => "star.vote export",
            Layout::BetterVoting => "BetterVoting export",
        }
    }

    fn leading_columns(self) -> usize {
        match self {
            Layout::Plain => 0,
            Layout::StarVote => 3,
            Layout::BetterVoting => 2,
        }
    }
}

/// Why a ballot file was refused. Lines are 1-based and count the header as line 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The input was empty: no header row.
    #[error("the file is empty: expected a header row of option names")]
    Empty,
    /// The header row named no options, an empty one, or one twice.
    #[error("line 1 (header): {0}")]
    Header(BallotError),
    /// A BetterVoting export holding several races.
    #[error("line 1 (header): the file holds several races ({races:?}); export one race per file")]
    SeveralRaces {
        /// The race names found.
        races: Vec<String>,
    },
    /// A row with too many or too few fields.
    #[error("line {line}: {found} fields, but the header has {expected}")]
    FieldCount {
        /// The line.
        line: u64,
        /// Fields in the header.
        expected: usize,
        /// Fields in this row.
        found: usize,
    },
    /// A score that is not a whole number.
    #[error("line {line}: score for {option:?} is {text:?}, not a whole number from 0 to 5")]
    NotANumber {
        /// The line.
        line: u64,
        /// The option's name.
        option: String,
        /// The text found.
        text: String,
    },
    /// A whole number outside 0–5.
    #[error("line {line}: score {text} for {option:?} is outside 0-5")]
    OutOfRange {
        /// The line.
        line: u64,
        /// The option's name.
        option: String,
        /// The number found.
        text: String,
    },
    /// The file could not be read or is not valid CSV (for example an unclosed quote).
    #[error("line {line}: {message}")]
    Malformed {
        /// The line where reading stopped.
        line: u64,
        /// What went wrong.
        message: String,
    },
    /// Reading failed.
    #[error("reading ballots: {0}")]
    Io(#[from] std::io::Error),
}

/// Ballots read from a file, with the layout that was recognised.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The ballots.
    pub ballots: Ballots,
    /// The recognised layout.
    pub layout: Layout,
}

/// Reads a ballot CSV from any reader (a file, standard input, a byte slice).
pub fn read_ballots<R: Read>(reader: R) -> Result<Parsed, InputError> {
    let mut csv = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .buffer_capacity(1 << 16)
        .from_reader(reader);
    let mut record = ::csv::ByteRecord::new();

    if !read_record(&mut csv, &mut record)? {
        return Err(InputError::Empty);
    }
    let header: Vec<String> = record
        .iter()
        .map(|field| String::from_utf8_lossy(field).into_owned())
        .collect();
    let layout = detect_layout(&header);
    let skip = layout.leading_columns();
    let names = option_names(&header[skip..], layout)?;
    let expected = header.len();
    let mut ballots = Ballots::new(names).map_err(InputError::Header)?;
    let mut scores = vec![0u8; expected - skip];

    while read_record(&mut csv, &mut record)? {
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != expected {
            return Err(InputError::FieldCount {
                line,
                expected,
                found: record.len(),
            });
        }
        for (i, (slot, field)) in scores.iter_mut().zip(record.iter().skip(skip)).enumerate() {
            *slot = parse_score(field).map_err(|problem| {
                let option = ballots.names()[i].clone();
                let text = String::from_utf8_lossy(field).into_owned();
                match problem {
                    ScoreProblem::NotANumber => InputError::NotANumber { line, option, text },
                    ScoreProblem::OutOfRange => InputError::OutOfRange { line, option, text },
                }
            })?;
        }
        // Lengths and ranges were checked above, so this cannot fail; map it anyway rather
        // than assume.
        ballots.push(&scores).map_err(|e| InputError::Malformed {
            line,
            message: e.to_string(),
        })?;
    }
    Ok(Parsed { ballots, layout })
}

/// Reads the next record; `false` at the end of input.
fn read_record<R: Read>(
    csv: &mut ::csv::Reader<R>,
    record: &mut ::csv::ByteRecord,
) -> Result<bool, InputError> {
    csv.read_byte_record(record).map_err(|error| {
        let line = error.position().map_or(0, |p| p.line());
        match error.into_kind() {
            ::csv::ErrorKind::Io(io) => InputError::Io(io),
            other => InputError::Malformed {
                line,
                message: format!("{other:?}"),
            },
        }
    })
}

fn detect_layout(header: &[String]) -> Layout {
    let lower: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    let starts_with = |prefix: &[&str]| {
        lower.len() >= prefix.len() && lower.iter().zip(prefix).all(|(h, p)| h == p)
    };
    if starts_with(&["voterid", "votetime", "pollid"]) {
        Layout::StarVote
    } else if starts_with(&["ballot_id", "precinct"]) {
        Layout::BetterVoting
    } else {
        Layout::Plain
    }
}

/// Option names from the header's option columns; strips a single BetterVoting race prefix.
fn option_names(columns: &[String], layout: Layout) -> Result<Vec<String>, InputError> {
    if layout == Layout::BetterVoting
        && !columns.is_empty()
        && columns.iter().all(|c| c.contains("!!"))
    {
        let mut races: Vec<String> = columns
            .iter()
            .filter_map(|c| c.split_once("!!").map(|(race, _)| race.to_string()))
            .collect();
        races.dedup();
        if races.len() > 1 {
            races.sort();
            races.dedup();
            return Err(InputError::SeveralRaces { races });
        }
        return Ok(columns
            .iter()
            .map(|c| {
                c.split_once("!!")
                    .map_or(c.as_str(), |(_, name)| name)
                    .to_string()
            })
            .collect());
    }
    Ok(columns.to_vec())
}

enum ScoreProblem {
    NotANumber,
    OutOfRange,
}

/// Parses one trimmed score field: blank is 0; otherwise ASCII digits with an optional sign
/// (read so that `-1` is reported as out of range rather than as "not a number").
fn parse_score(field: &[u8]) -> Result<u8, ScoreProblem> {
    let (negative, digits) = match field {
        [] => return Ok(0),
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, field),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ScoreProblem::NotANumber);
    }
    let significant: &[u8] = match digits.iter().position(|&d| d != b'0') {
        None => return Ok(0),
        Some(first) => &digits[first..],
    };
    match significant {
        [digit] if !negative && digit - b'0' <= MAX_SCORE => Ok(digit - b'0'),
        _ => Err(ScoreProblem::OutOfRange),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Parsed, InputError> {
        read_ballots(text.as_bytes())
    }

    fn error(text: &str) -> String {
        read(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_plain_csv_with_blanks_spaces_and_blank_lines() {
        let parsed = read("Ada, Ben ,Cara\n5,,3\n\n 0 ,4,5\r\n+2,05,0\n").unwrap();
        assert_eq!(parsed.layout, Layout::Plain);
        assert_eq!(parsed.ballots.names(), ["Ada", "Ben", "Cara"]);
        assert_eq!(parsed.ballots.len(), 3);
        assert_eq!(parsed.ballots.row(0), Some(vec![5, 0, 3]));
        assert_eq!(parsed.ballots.row(2), Some(vec![2, 5, 0]));
    }

    #[test]
    fn reads_star_vote_and_bettervoting_exports() {
        let star = read("voterID,voteTime,pollID,Ada,Ben\nv1,2024-01-01,p,5,1\n").unwrap();
        assert_eq!(star.layout, Layout::StarVote);
        assert_eq!(star.ballots.names(), ["Ada", "Ben"]);
        assert_eq!(star.ballots.row(0), Some(vec![5, 1]));

        let bv = read("ballot_id,precinct,Chair!!Ada,Chair!!Ben\nb1,North,,4\n").unwrap();
        assert_eq!(bv.layout, Layout::BetterVoting);
        assert_eq!(bv.ballots.names(), ["Ada", "Ben"]);
        assert_eq!(bv.ballots.row(0), Some(vec![0, 4]));
    }

    #[test]
    fn names_line_option_and_problem_for_bad_scores() {
        assert_eq!(
            error("Ada,Ben\n5,0\n1,6\n"),
            "line 3: score 6 for \"Ben\" is outside 0-5"
        );
        assert_eq!(
            error("Ada,Ben\n-1,0\n"),
            "line 2: score -1 for \"Ada\" is outside 0-5"
        );
        assert_eq!(
            error("Ada,Ben\n99999999999999999999999,0\n"),
            "line 2: score 99999999999999999999999 for \"Ada\" is outside 0-5"
        );
        assert_eq!(
            error("Ada,Ben\n3.5,0\n"),
            "line 2: score for \"Ada\" is \"3.5\", not a whole number from 0 to 5"
        );
        assert_eq!(
            error("Ada,Ben\n1,five\n"),
            "line 2: score for \"Ben\" is \"five\", not a whole number from 0 to 5"
        );
    }

    #[test]
    fn names_line_for_wrong_field_counts() {
        assert_eq!(
            error("Ada,Ben\n1,2\n1,2,3\n"),
            "line 3: 3 fields, but the header has 2"
        );
        assert_eq!(
            error("Ada,Ben\n1\n"),
            "line 2: 1 fields, but the header has 2"
        );
    }

    #[test]
    fn refuses_bad_headers() {
        assert_eq!(
            error(""),
            "the file is empty: expected a header row of option names"
        );
        assert_eq!(
            error("Ada,Ben,Ada\n1,2,3\n"),
            "line 1 (header): option name \"Ada\" appears more than once"
        );
        assert_eq!(
            error("Ada,,Ben\n"),
            "line 1 (header): option 2 has an empty name"
        );
        assert_eq!(
            error("voterID,voteTime,pollID\n"),
            "line 1 (header): no options: the first row must name at least one option"
        );
        assert!(error("ballot_id,precinct,A!!x,B!!y\n").contains("several races"));
    }

    #[test]
    fn refuses_unclosed_quotes_and_bad_utf8_names_are_kept_readable() {
        let parsed = read("\"Ada\",\"B,en\"\n1,2\n").unwrap();
        assert_eq!(parsed.ballots.names(), ["Ada", "B,en"]);
        let bytes: &[u8] = b"Ad\xffa,Ben\n1,2\n";
        let parsed = read_ballots(bytes).unwrap();
        assert_eq!(parsed.ballots.names()[0], "Ad\u{fffd}a");
    }
}
