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
//! The reader streams: it keeps a 256 KiB buffer and one byte per score, never whole rows as
//! strings, so a million-ballot file needs a few megabytes. Rows of single digits (almost every
//! real ballot file) take a fast path that checks and stores them without splitting fields; any
//! other row goes through a full RFC 4180 record parser (quotes, blanks, padding), which is also
//! where every error is reported. A record may not exceed [`MAX_RECORD_BYTES`].

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

/// The longest record accepted, in bytes. Bounds memory on hostile input (a file that never
/// ends a line); real ballot rows are a few dozen bytes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

const CHUNK_BYTES: usize = 256 * 1024;
/// Bytes kept buffered ahead of the parse position, so the fast path always sees whole rows.
const LOOKAHEAD_BYTES: usize = 16 * 1024;

/// Reads a ballot CSV from any reader (a file, standard input, a byte slice).
pub fn read_ballots<R: Read>(reader: R) -> Result<Parsed, InputError> {
    let mut scanner = Scanner::new(reader);
    let mut fields: Vec<Vec<u8>> = Vec::new();

    if scanner.general_record(&mut fields)?.is_none() {
        return Err(InputError::Empty);
    }
    let header: Vec<String> = fields
        .iter()
        .map(|field| String::from_utf8_lossy(field).into_owned())
        .collect();
    let layout = detect_layout(&header);
    let skip = layout.leading_columns();
    let names = option_names(&header[skip.min(header.len())..], layout)?;
    let expected = header.len();
    let mut ballots = Ballots::new(names).map_err(InputError::Header)?;
    let mut scores = vec![0u8; expected - skip];

    loop {
        scanner.fill(LOOKAHEAD_BYTES)?;
        // As many common rows as the buffer holds, in one tight loop.
        let mut taken = 0;
        let mut rows = 0;
        while let Some(length) = fast_row(&scanner.pending()[taken..], skip, &mut scores) {
            ballots.push_valid(&scores);
            taken += length;
            rows += 1;
        }
        if rows > 0 {
            scanner.consume(taken, rows);
            continue;
        }
        let Some(line) = scanner.general_record(&mut fields)? else {
            break;
        };
        if fields.len() != expected {
            return Err(InputError::FieldCount {
                line,
                expected,
                found: fields.len(),
            });
        }
        for (i, (slot, field)) in scores.iter_mut().zip(fields.iter().skip(skip)).enumerate() {
            *slot = parse_score(field).map_err(|problem| {
                let option = ballots.names()[i].clone();
                let text = excerpt(field);
                match problem {
                    ScoreProblem::NotANumber => InputError::NotANumber { line, option, text },
                    ScoreProblem::OutOfRange => InputError::OutOfRange { line, option, text },
                }
            })?;
        }
        push(&mut ballots, &scores, line)?;
    }
    Ok(Parsed { ballots, layout })
}

fn push(ballots: &mut Ballots, scores: &[u8], line: u64) -> Result<(), InputError> {
    // Lengths and ranges were checked by the parser, so this cannot fail; map it anyway rather
    // than assume.
    ballots.push(scores).map_err(|e| InputError::Malformed {
        line,
        message: e.to_string(),
    })
}

/// The fast path for the common row: leading columns without quotes, then one digit 0–5 per
/// option separated by commas, ending in `\n` or `\r\n`. Returns the bytes the row takes, or
/// `None` for anything else (which the general parser then handles, errors included).
fn fast_row(bytes: &[u8], skip: usize, scores: &mut [u8]) -> Option<usize> {
    let mut p = 0;
    for _ in 0..skip {
        let comma = bytes[p..]
            .iter()
            .position(|&b| matches!(b, b',' | b'\n' | b'"'))?;
        if bytes[p + comma] != b',' {
            return None;
        }
        p += comma + 1;
    }
    // One digit and one separator per option: check the length once, then walk pairs.
    let row = bytes.get(p..p + 2 * scores.len())?;
    let (last, rest) = scores.split_last_mut()?;
    let mut pairs = row.chunks_exact(2);
    for (slot, pair) in rest.iter_mut().zip(pairs.by_ref()) {
        let digit = pair[0].wrapping_sub(b'0');
        if digit > MAX_SCORE || pair[1] != b',' {
            return None;
        }
        *slot = digit;
    }
    let final_pair = pairs.next()?;
    let digit = final_pair[0].wrapping_sub(b'0');
    if digit > MAX_SCORE {
        return None;
    }
    *last = digit;
    let row_end = p + row.len();
    match (final_pair[1], bytes.get(row_end)) {
        (b'\n', _) => Some(row_end),
        (b'\r', Some(b'\n')) => Some(row_end + 1),
        _ => None,
    }
}

/// A buffered reader of CSV records (RFC 4180: `,` separators, `"` quoting with `""` as an
/// escaped quote, `\n` or `\r\n` line ends). Spaces and tabs around fields are trimmed; empty
/// lines are skipped.
struct Scanner<R> {
    reader: R,
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// The 1-based line number of the byte at `start`.
    line: u64,
}

enum Parse {
    /// A complete record taking `length` bytes and `lines` line ends.
    Record { length: usize, lines: u64 },
    /// An empty line taking `length` bytes.
    Blank { length: usize },
    /// The buffer ends before the record does.
    Incomplete,
}

impl<R: Read> Scanner<R> {
    fn new(reader: R) -> Self {
        Scanner {
            reader,
            buffer: vec![0; CHUNK_BYTES],
            start: 0,
            end: 0,
            eof: false,
            line: 1,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buffer[self.start..self.end]
    }

    fn consume(&mut self, length: usize, lines: u64) {
        self.start += length;
        self.line += lines;
    }

    /// Reads until at least `want` bytes are pending or the input ends. The buffer grows only
    /// as far as one maximum record plus the lookahead.
    fn fill(&mut self, want: usize) -> Result<(), InputError> {
        while !self.eof && self.end - self.start < want {
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buffer.len() {
                let grown = (self.buffer.len() * 2).min(MAX_RECORD_BYTES + LOOKAHEAD_BYTES);
                if grown <= self.buffer.len() {
                    return Ok(());
                }
                self.buffer.resize(grown, 0);
            }
            match self.reader.read(&mut self.buffer[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(InputError::Io(e)),
            }
        }
        Ok(())
    }

    /// Parses the next non-empty record into `fields`; returns its first line, or `None` at the
    /// end of input.
    fn general_record(&mut self, fields: &mut Vec<Vec<u8>>) -> Result<Option<u64>, InputError> {
        loop {
            self.fill(LOOKAHEAD_BYTES)?;
            if self.start == self.end && self.eof {
                return Ok(None);
            }
            let line = self.line;
            match parse_record(self.pending(), self.eof, fields, line)? {
                Parse::Record { length, lines } => {
                    if length > MAX_RECORD_BYTES {
                        return Err(too_long(line));
                    }
                    self.consume(length, lines);
                    return Ok(Some(line));
                }
                Parse::Blank { length } => self.consume(length, 1),
                Parse::Incomplete => {
                    let pending = self.end - self.start;
                    if pending > MAX_RECORD_BYTES {
                        return Err(too_long(line));
                    }
                    self.fill(pending + 1)?;
                }
            }
        }
    }
}

fn too_long(line: u64) -> InputError {
    InputError::Malformed {
        line,
        message: format!("a record longer than {MAX_RECORD_BYTES} bytes"),
    }
}

/// A field's text for an error message: at most 40 characters, marked when cut.
fn excerpt(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    if text.chars().count() <= 40 {
        text.into_owned()
    } else {
        let cut: String = text.chars().take(40).collect();
        format!("{cut}...")
    }
}

fn is_blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

fn malformed(line: u64, message: &str) -> InputError {
    InputError::Malformed {
        line,
        message: message.to_string(),
    }
}

/// Parses one record at the start of `bytes`. `eof` says whether more bytes may follow.
fn parse_record(
    bytes: &[u8],
    eof: bool,
    fields: &mut Vec<Vec<u8>>,
    line: u64,
) -> Result<Parse, InputError> {
    match bytes {
        [b'\n', ..] => return Ok(Parse::Blank { length: 1 }),
        [b'\r', b'\n', ..] => return Ok(Parse::Blank { length: 2 }),
        [b'\r'] if !eof => return Ok(Parse::Incomplete),
        _ => {}
    }
    fields.clear();
    let mut lines = 0u64;
    let mut p = 0;
    loop {
        // One field.
        while p < bytes.len() && is_blank(bytes[p]) {
            p += 1;
        }
        let mut field = Vec::new();
        if bytes.get(p) == Some(&b'"') {
            p += 1;
            loop {
                match bytes.get(p) {
                    None if eof => return Err(malformed(line, "a quoted field is never closed")),
                    None => return Ok(Parse::Incomplete),
                    Some(b'"') => match bytes.get(p + 1) {
                        Some(b'"') => {
                            field.push(b'"');
                            p += 2;
                        }
                        None if !eof => return Ok(Parse::Incomplete),
                        _ => {
                            p += 1;
                            break;
                        }
                    },
                    Some(&byte) => {
                        if byte == b'\n' {
                            lines += 1;
                        }
                        field.push(byte);
                        p += 1;
                    }
                }
            }
            while p < bytes.len() && is_blank(bytes[p]) {
                p += 1;
            }
            if !matches!(bytes.get(p), None | Some(b',' | b'\n' | b'\r')) {
                return Err(malformed(
                    line + lines,
                    "unexpected text after a closing quote",
                ));
            }
        } else {
            let from = p;
            while p < bytes.len() && !matches!(bytes[p], b',' | b'\n' | b'\r') {
                if bytes[p] == b'"' {
                    return Err(malformed(line + lines, "a quote inside an unquoted field"));
                }
                p += 1;
            }
            let mut to = p;
            while to > from && is_blank(bytes[to - 1]) {
                to -= 1;
            }
            field.extend_from_slice(&bytes[from..to]);
        }
        fields.push(field);
        // The separator after it.
        match bytes.get(p) {
            Some(b',') => p += 1,
            Some(b'\n') => {
                return Ok(Parse::Record {
                    length: p + 1,
                    lines: lines + 1,
                });
            }
            Some(b'\r') => match bytes.get(p + 1) {
                Some(b'\n') => {
                    return Ok(Parse::Record {
                        length: p + 2,
                        lines: lines + 1,
                    });
                }
                None if !eof => return Ok(Parse::Incomplete),
                _ => {
                    return Err(malformed(
                        line + lines,
                        "a carriage return not followed by a line feed",
                    ));
                }
            },
            None if eof => {
                return Ok(Parse::Record {
                    length: p,
                    lines: lines + 1,
                });
            }
            _ => return Ok(Parse::Incomplete),
        }
    }
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
