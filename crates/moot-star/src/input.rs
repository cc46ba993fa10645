//! Reading ballot files: CSV with a header row of option names and one row of scores per ballot.
//!
//! Three layouts are recognised from the header:
//! - **plain**: every column is an option;
//! - **star.vote** export: leading `voterID,voteTime,pollID` columns, skipped;
//! - **BetterVoting** export: leading `ballot_id,precinct` columns, skipped; option columns
//!   named `race!!option` lose their race prefix. A file holding several races is counted one
//!   race at a time ([`ReadOptions::race`]); the other races' columns are not read.
//!
//! A UTF-8 byte order mark at the start is skipped. Option names are NFC-normalised and trimmed
//! ([`moot_text::normalize`]); two names that differ only in case, Unicode form or surrounding
//! spaces ([`moot_text::fold`]) are refused as duplicates, naming both as the file writes them.
//!
//! A blank score is 0. Fields may be padded with spaces. Anything else that is not a whole
//! number from 0 to 5 is an error naming the line, the option and the text found: a ballot file
//! is never tallied "mostly".
//!
//! The reader streams: it keeps a 256 KiB buffer and one byte per score, never whole rows as
//! strings. [`read_summary`] goes further and keeps no ballots at all: they are folded into a
//! [`Summary`] in cache-sized chunks ([`SummaryBuilder`]), so memory stays flat however many
//! ballots the file holds ([`read_ballots`] keeps them, one byte per score). Rows of single digits (almost every
//! real ballot file) take a fast path that checks and stores them without splitting fields; any
//! other row goes through a full RFC 4180 record parser (quotes, blanks, padding), which is also
//! where every error is reported. A record may not exceed [`MAX_RECORD_BYTES`].

use std::io::Read;

use crate::ballots::{find_duplicate, plural};
use crate::{BallotError, Ballots, MAX_OPTIONS, MAX_SCORE, Summary, SummaryBuilder, SummaryError};

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

    /// Leading (non-option) columns of this layout: at most [`MAX_LEADING_COLUMNS`].
    fn leading_columns(self) -> usize {
        match self {
            Layout::Plain => 0,
            Layout::StarVote => 3,
            Layout::BetterVoting => 2,
        }
    }
}

/// The most leading (non-option) columns of any layout.
const MAX_LEADING_COLUMNS: usize = 3;

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
    /// A BetterVoting export holding several races, and no race chosen.
    #[error(
        "line 1 (header): the file holds {} races ({}); choose the one to count with --race NAME",
        races.len(),
        list(races)
    )]
    SeveralRaces {
        /// The race names found, in header order.
        races: Vec<String>,
    },
    /// The race asked for is not in the file.
    #[error(
        "line 1 (header): no race named {race:?}; the file's races are {}",
        list(races)
    )]
    UnknownRace {
        /// The race asked for (normalised).
        race: String,
        /// The race names found, in header order.
        races: Vec<String>,
    },
    /// A race was asked for, but the file has no `race!!option` columns.
    #[error(
        "--race {race:?}: the file has no races (a BetterVoting export with race!!option columns)"
    )]
    NoRaces {
        /// The race asked for.
        race: String,
    },
    /// A row with too many or too few fields.
    #[error("line {line}: {}, but the header has {expected}", plural(*found, "field", "fields"))]
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
    /// A line holds bytes that are not UTF-8 (a file saved in another encoding): refused rather
    /// than read with replacement characters, which would quietly change option names.
    #[error(
        "line {line}: not UTF-8 text (is the file saved in another encoding? save it as UTF-8)"
    )]
    NotUtf8 {
        /// The line.
        line: u64,
    },
    /// Reading failed.
    #[error("reading ballots: {0}")]
    Io(#[from] std::io::Error),
}

fn list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("{name:?}")).collect();
    quoted.join(", ")
}

/// The longest record accepted, in bytes. Bounds memory on hostile input (a file that never
/// ends a line); real ballot rows are a few dozen bytes.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

const CHUNK_BYTES: usize = 256 * 1024;
/// Bytes kept buffered ahead of the parse position, so the fast path always sees whole rows.
const LOOKAHEAD_BYTES: usize = 16 * 1024;

/// How to read a ballot file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadOptions {
    /// For a BetterVoting export holding several races (`race!!option` columns): the race to
    /// count. Matched after [`moot_text::normalize`]; the other races' columns are not read.
    pub race: Option<String>,
}

impl ReadOptions {
    /// Count only this race of a multi-race BetterVoting export.
    pub fn race(race: impl Into<String>) -> Self {
        ReadOptions {
            race: Some(race.into()),
        }
    }
}

/// Ballots read from a file, with the layout that was recognised.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The ballots.
    pub ballots: Ballots,
    /// The recognised layout.
    pub layout: Layout,
    /// The race counted, for a BetterVoting export with `race!!option` columns.
    pub race: Option<String>,
}

/// A ballot file summarised as it was read (see [`read_summary`]).
#[derive(Debug, Clone)]
pub struct Summarised {
    /// Counts of every ballot in the file.
    pub summary: Summary,
    /// The recognised layout.
    pub layout: Layout,
    /// The race counted, for a BetterVoting export with `race!!option` columns.
    pub race: Option<String>,
}

/// Where the reader puts checked ballots: every ballot kept ([`Ballots`]) or only their counts
/// ([`SummaryBuilder`]).
trait Sink: Sized {
    fn create(names: Vec<String>) -> Result<Self, BallotError>;
    fn names(&self) -> &[String];
    /// Adds a ballot the reader has checked: one score per option, each at most 5.
    fn add(&mut self, scores: &[u8]) -> Result<(), SummaryError>;
}

impl Sink for Ballots {
    fn create(names: Vec<String>) -> Result<Self, BallotError> {
        Ballots::new(names)
    }
    fn names(&self) -> &[String] {
        Ballots::names(self)
    }
    fn add(&mut self, scores: &[u8]) -> Result<(), SummaryError> {
        self.push_valid(scores);
        Ok(())
    }
}

impl Sink for SummaryBuilder {
    fn create(names: Vec<String>) -> Result<Self, BallotError> {
        SummaryBuilder::new(names).map_err(|error| match error {
            SummaryError::Ballot(error) => error,
            // `new` checks only the names; any other error cannot happen there.
            _ => BallotError::NoOptions,
        })
    }
    fn names(&self) -> &[String] {
        SummaryBuilder::names(self)
    }
    fn add(&mut self, scores: &[u8]) -> Result<(), SummaryError> {
        self.push_valid(scores)
    }
}

/// Reads a ballot CSV from any reader (a file, standard input, a byte slice), keeping every
/// ballot.
pub fn read_ballots<R: Read>(reader: R) -> Result<Parsed, InputError> {
    read_ballots_with(reader, &ReadOptions::default())
}

/// [`read_ballots`] with options (a race to count).
pub fn read_ballots_with<R: Read>(reader: R, options: &ReadOptions) -> Result<Parsed, InputError> {
    let (ballots, header) = read::<Ballots, R>(reader, options)?;
    Ok(Parsed {
        ballots,
        layout: header.layout,
        race: header.race,
    })
}

/// Reads a ballot CSV straight into a [`Summary`]: memory depends on the number of options, never
/// on the number of ballots, and the summary tallies exactly as the ballots would.
pub fn read_summary<R: Read>(reader: R, options: &ReadOptions) -> Result<Summarised, InputError> {
    let (builder, header) = read::<SummaryBuilder, R>(reader, options)?;
    let summary = builder.finish().map_err(|e| overflow(e, 0))?;
    Ok(Summarised {
        summary,
        layout: header.layout,
        race: header.race,
    })
}

fn overflow(error: SummaryError, line: u64) -> InputError {
    InputError::Malformed {
        line,
        message: error.to_string(),
    }
}

/// What the header row says about the rest of the file.
struct Header {
    layout: Layout,
    race: Option<String>,
    /// Fields per row.
    fields: usize,
    /// Leading (non-option) columns.
    skip: usize,
    /// The option columns counted, as indices among the option columns; `None` for all of them.
    selected: Option<Vec<usize>>,
    /// The counted options' names, normalised.
    names: Vec<String>,
}

fn read<S: Sink, R: Read>(reader: R, options: &ReadOptions) -> Result<(S, Header), InputError> {
    let mut scanner = Scanner::new(reader);
    scanner.skip_bom()?;
    let mut fields: Vec<Vec<u8>> = Vec::new();

    let Some(header_line) = scanner.general_record(&mut fields)? else {
        return Err(InputError::Empty);
    };
    let header = read_header(&fields, options, header_line)?;
    let mut sink = S::create(header.names.clone()).map_err(InputError::Header)?;
    let skip = header.skip;
    // Scores of every option column of a row, then (for a race) the counted ones.
    let mut row = vec![0u8; header.fields - skip];
    let mut picked = vec![0u8; header.names.len()];

    loop {
        scanner.fill(LOOKAHEAD_BYTES)?;
        // As many common rows as the buffer holds, in one tight loop.
        let mut taken = 0;
        let mut rows = 0;
        while let Some(length) = fast_row(&scanner.pending()[taken..], skip, &mut row) {
            let scores = match &header.selected {
                None => row.as_slice(),
                Some(selected) => {
                    for (slot, &column) in picked.iter_mut().zip(selected) {
                        *slot = row[column];
                    }
                    picked.as_slice()
                }
            };
            taken += length;
            rows += 1;
            if let Err(error) = sink.add(scores) {
                return Err(overflow(error, scanner.line + rows));
            }
        }
        if rows > 0 {
            scanner.consume(taken, rows);
            continue;
        }
        let Some(line) = scanner.general_record(&mut fields)? else {
            break;
        };
        if fields.len() != header.fields {
            return Err(InputError::FieldCount {
                line,
                expected: header.fields,
                found: fields.len(),
            });
        }
        // Every field, the skipped ones included: a file in another encoding is refused, never
        // read "mostly". (The fast path leaves any row with a non-ASCII byte to this one.)
        if fields
            .iter()
            .any(|field| std::str::from_utf8(field).is_err())
        {
            return Err(InputError::NotUtf8 { line });
        }
        let options = &fields[skip..];
        for (i, slot) in picked.iter_mut().enumerate() {
            let column = header.selected.as_ref().map_or(i, |selected| selected[i]);
            let field = &options[column];
            *slot = parse_score(field).map_err(|problem| {
                let option = sink.names()[i].clone();
                let text = excerpt(field);
                match problem {
                    ScoreProblem::NotANumber => InputError::NotANumber { line, option, text },
                    ScoreProblem::OutOfRange => InputError::OutOfRange { line, option, text },
                }
            })?;
        }
        sink.add(&picked).map_err(|error| overflow(error, line))?;
    }
    Ok((sink, header))
}

/// Reads the header row: the layout, the race and option columns to count, and the option
/// names, normalised (NFC, trimmed) once they are known to be distinct.
fn read_header(fields: &[Vec<u8>], options: &ReadOptions, line: u64) -> Result<Header, InputError> {
    // Bounded before anything is built per column: the pairwise matrix a count keeps grows with
    // the square of the options (`Summary::new` checks again, for callers other than this reader).
    if fields.len() > MAX_OPTIONS + MAX_LEADING_COLUMNS {
        return Err(InputError::Header(BallotError::TooManyOptions {
            found: fields.len(),
        }));
    }
    let header: Vec<String> = fields
        .iter()
        .map(|field| String::from_utf8(field.clone()).map_err(|_| InputError::NotUtf8 { line }))
        .collect::<Result<_, _>>()?;
    let layout = detect_layout(&header);
    let skip = layout.leading_columns().min(header.len());
    let columns = &header[skip..];
    let (race, selected, raw_names) = select_race(columns, layout, options)?;
    if raw_names.len() > MAX_OPTIONS {
        return Err(InputError::Header(BallotError::TooManyOptions {
            found: raw_names.len(),
        }));
    }
    // Duplicates are judged on the names as written, so the error shows what the file says.
    if let Some(duplicate) = find_duplicate(&raw_names) {
        return Err(InputError::Header(duplicate));
    }
    let names = raw_names
        .iter()
        .map(|name| moot_text::normalize(name))
        .collect();
    Ok(Header {
        layout,
        race,
        fields: header.len(),
        skip,
        selected,
        names,
    })
}

/// For a BetterVoting export whose option columns are all `race!!option`: the race counted (the
/// only one, or the one asked for), its columns and its option names without the prefix.
/// Otherwise every column is an option, named in full.
#[allow(clippy::type_complexity)]
fn select_race(
    columns: &[String],
    layout: Layout,
    options: &ReadOptions,
) -> Result<(Option<String>, Option<Vec<usize>>, Vec<String>), InputError> {
    let split: Option<Vec<(String, &str)>> =
        if layout == Layout::BetterVoting && !columns.is_empty() {
            columns
                .iter()
                .map(|c| {
                    c.split_once("!!")
                        .map(|(race, name)| (moot_text::normalize(race), name))
                })
                .collect()
        } else {
            None
        };
    let Some(split) = split else {
        if let Some(race) = &options.race {
            return Err(InputError::NoRaces { race: race.clone() });
        }
        return Ok((None, None, columns.to_vec()));
    };
    let mut races: Vec<String> = Vec::new();
    for (race, _) in &split {
        if !races.contains(race) {
            races.push(race.clone());
        }
    }
    let race = match &options.race {
        Some(wanted) => {
            let wanted = moot_text::normalize(wanted);
            if !races.contains(&wanted) {
                return Err(InputError::UnknownRace {
                    race: wanted,
                    races,
                });
            }
            wanted
        }
        None => match races.as_slice() {
            [only] => only.clone(),
            _ => return Err(InputError::SeveralRaces { races }),
        },
    };
    let selected: Vec<usize> = (0..split.len()).filter(|&i| split[i].0 == race).collect();
    let names = selected.iter().map(|&i| split[i].1.to_string()).collect();
    let selected = (selected.len() < split.len()).then_some(selected);
    Ok((Some(race), selected, names))
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
        if bytes[p + comma] != b',' || !bytes[p..p + comma].is_ascii() {
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

    /// Skips a UTF-8 byte order mark at the very start of the input (spreadsheet programs
    /// write one): it is not part of the first option's name.
    fn skip_bom(&mut self) -> Result<(), InputError> {
        self.fill(3)?;
        if self.pending().starts_with(b"\xEF\xBB\xBF") {
            self.start += 3;
        }
        Ok(())
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
            "line 2: 1 field, but the header has 2"
        );
    }

    #[test]
    fn refuses_more_options_than_the_limit_before_counting() {
        // 80,000 options made a count ask for a 51 GB pairwise matrix; a wide header is now
        // refused (by both readers) before anything per option pair is allocated.
        let wide = |n: usize| {
            let header: Vec<String> = (0..n).map(|i| format!("o{i}")).collect();
            let row = vec!["1"; n].join(",");
            format!("{}\n{row}\n", header.join(","))
        };
        let expected = "line 1 (header): 80000 options; the limit is 1000 options";
        assert_eq!(error(&wide(80_000)), expected);
        let summary = read_summary(wide(80_000).as_bytes(), &ReadOptions::default());
        assert_eq!(summary.unwrap_err().to_string(), expected);
        assert_eq!(
            error(&wide(MAX_OPTIONS + 1)),
            "line 1 (header): 1001 options; the limit is 1000 options"
        );
        // The limit itself is allowed, in both readers.
        assert_eq!(read(&wide(MAX_OPTIONS)).unwrap().ballots.len(), 1);
        let summary = read_summary(wide(MAX_OPTIONS).as_bytes(), &ReadOptions::default());
        assert_eq!(crate::Counts::ballot_count(&summary.unwrap().summary), 1);
        // Leading columns do not count: a star.vote export with the limit's options reads.
        let header: Vec<String> = (0..MAX_OPTIONS).map(|i| format!("o{i}")).collect();
        let star = format!(
            "voterID,voteTime,pollID,{}\nv,t,p,{}\n",
            header.join(","),
            vec!["2"; MAX_OPTIONS].join(",")
        );
        assert_eq!(read(&star).unwrap().ballots.len(), 1);
    }

    #[test]
    fn refuses_text_that_is_not_utf8_naming_the_line() {
        let read_bytes = |bytes: &[u8]| read_ballots(bytes).unwrap_err().to_string();
        // Latin-1 "Zoë" in the header: once read as "Zo\u{fffd}" without a word.
        assert_eq!(
            read_bytes(b"Zo\xeb,Ben\n1,2\n"),
            "line 1: not UTF-8 text (is the file saved in another encoding? save it as UTF-8)"
        );
        // In a skipped column of a later row (the fast path must not wave it through), and in a
        // score.
        let star = b"voterID,voteTime,pollID,Ada,Ben\nv1,t,p,1,2\nv\xff,t,p,1,2\n";
        assert!(
            read_bytes(star).starts_with("line 3: not UTF-8"),
            "{}",
            read_bytes(star)
        );
        assert!(read_bytes(b"Ada,Ben\n1,2\n\n1,\xc3\n").starts_with("line 4: not UTF-8"));
        // UTF-8 that is not ASCII in a skipped column is fine.
        let ok = "voterID,voteTime,pollID,Ada,Ben\nZoë,t,p,1,2\n";
        assert_eq!(read(ok).unwrap().ballots.len(), 1);
    }

    #[test]
    fn refuses_bad_headers() {
        assert_eq!(
            error(""),
            "the file is empty: expected a header row of option names"
        );
        assert_eq!(
            error("Ada,Ben,Ada\n1,2,3\n"),
            "line 1 (header): option name \"Ada\" appears more than once (options 1 and 3)"
        );
        assert_eq!(
            error("Ada,,Ben\n"),
            "line 1 (header): option 2 has an empty name (nothing visible)"
        );
        assert_eq!(
            error("Ada,\"\u{200b}\u{2060}\",Ben\n"),
            "line 1 (header): option 2 has an empty name (nothing visible)"
        );
        assert_eq!(
            error("voterID,voteTime,pollID\n"),
            "line 1 (header): no options: the first row must name at least one option"
        );
        assert_eq!(
            error("ballot_id,precinct,A!!x,B!!y\n"),
            "line 1 (header): the file holds 2 races (\"A\", \"B\"); choose the one to count \
             with --race NAME"
        );
    }

    #[test]
    fn skips_a_byte_order_mark_and_normalises_names() {
        let parsed = read("\u{feff}Ada,\"  Be\u{301}n \"\n1,2\n").unwrap();
        assert_eq!(parsed.ballots.names(), ["Ada", "B\u{e9}n"]);
        // The BOM no longer hides a star.vote header.
        let star = read("\u{feff}voterID,voteTime,pollID,Ada\nv,t,p,4\n").unwrap();
        assert_eq!(star.layout, Layout::StarVote);
        assert_eq!(star.ballots.names(), ["Ada"]);
        // Only at the very start: elsewhere it is an ordinary (if odd) character.
        let parsed = read("Ada,\u{feff}Ben\n1,2\n").unwrap();
        assert_eq!(parsed.ballots.names()[1], "\u{feff}Ben");
    }

    #[test]
    fn names_that_differ_only_in_case_form_or_spaces_are_duplicates() {
        assert_eq!(
            error("Ada,Ben,\"ADA \"\n1,2,3\n"),
            "line 1 (header): options 1 (\"Ada\") and 3 (\"ADA \") are the same name: names \
             must differ by more than case, Unicode form or surrounding spaces"
        );
        let decomposed = error("\u{c1}da,A\u{301}da\n1,2\n");
        // Debug formatting shows the combining accent, so the two names look different.
        assert!(
            decomposed.contains("options 1 (\"\u{c1}da\") and 2 (\"A\\u{301}da\")"),
            "{decomposed}"
        );
        assert!(read("Ada,Adam\n1,2\n").is_ok());
    }

    #[test]
    fn counts_one_race_of_a_multi_race_export() {
        let text = "ballot_id,precinct,Chair!!Ada,Chair!!Ben,Treasurer!!Cy,Treasurer!!Di,Chair!!Eve\n\
                    b1,N,5,0,,3,1\n\
                    b2,S,\"2\",4,x,,0\n";
        let chair = read_ballots_with(text.as_bytes(), &ReadOptions::race("Chair")).unwrap();
        assert_eq!(chair.race.as_deref(), Some("Chair"));
        assert_eq!(chair.ballots.names(), ["Ada", "Ben", "Eve"]);
        assert_eq!(chair.ballots.row(0), Some(vec![5, 0, 1]));
        assert_eq!(chair.ballots.row(1), Some(vec![2, 4, 0]));
        // The other race's bad field ("x") is not read when counting the chair.
        let error = read_ballots_with(text.as_bytes(), &ReadOptions::race(" Treasurer "))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "line 3: score for \"Cy\" is \"x\", not a whole number from 0 to 5"
        );
        let unknown = read_ballots_with(text.as_bytes(), &ReadOptions::race("Mayor"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            unknown,
            "line 1 (header): no race named \"Mayor\"; the file's races are \"Chair\", \"Treasurer\""
        );
        let plain = read_ballots_with("Ada,Ben\n1,2\n".as_bytes(), &ReadOptions::race("Chair"))
            .unwrap_err()
            .to_string();
        assert!(plain.contains("the file has no races"), "{plain}");
    }

    #[test]
    fn summary_reading_equals_ballot_reading() {
        let mut text = "ballot_id,precinct,R!!Ada,R!!Ben,S!!Cy\n".to_string();
        for i in 0..50_000u32 {
            let fields = [i % 6, (i / 6) % 6, (i / 36) % 6];
            if i % 1000 == 7 {
                text.push_str(&format!("b{i},\"p\", {} ,,{}\r\n", fields[0], fields[2]));
            } else {
                text.push_str(&format!(
                    "b{i},p,{},{},{}\n",
                    fields[0], fields[1], fields[2]
                ));
            }
        }
        for options in [ReadOptions::race("R"), ReadOptions::race("S")] {
            let ballots = read_ballots_with(text.as_bytes(), &options).unwrap();
            let summarised = read_summary(text.as_bytes(), &options).unwrap();
            assert_eq!(summarised.summary, Summary::from_ballots(&ballots.ballots));
            assert_eq!(summarised.layout, Layout::BetterVoting);
            assert_eq!(summarised.race, ballots.race);
        }
    }

    #[test]
    fn quoted_names_are_read_and_bad_utf8_names_are_refused() {
        let parsed = read("\"Ada\",\"B,en\"\n1,2\n").unwrap();
        assert_eq!(parsed.ballots.names(), ["Ada", "B,en"]);
        // Once read as "Ad\u{fffd}a" without a word; now refused, naming the line.
        let bytes: &[u8] = b"Ad\xffa,Ben\n1,2\n";
        let error = read_ballots(bytes).unwrap_err();
        assert!(matches!(error, InputError::NotUtf8 { line: 1 }), "{error}");
    }
}
