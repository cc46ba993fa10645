//! Raw score ballots, stored column by column: one byte per score, validated on the way in.

use std::collections::BTreeMap;

use crate::{BallotCounts, MAX_SCORE};

/// Why a set of options or a ballot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BallotError {
    /// An election needs at least one option.
    #[error("no options: the first row must name at least one option")]
    NoOptions,
    /// More options than [`MAX_OPTIONS`]: a count keeps an `n × n` pairwise matrix, so the
    /// number of options is bounded before anything of that size is allocated.
    #[error("{found} options; the limit is {limit} options", limit = MAX_OPTIONS)]
    TooManyOptions {
        /// The number of options given.
        found: usize,
    },
    /// An option name was empty, or only spaces and invisible characters
    /// ([`moot_text::is_blank`]): it could not be told apart from an empty one.
    #[error("option {position} has an empty name (nothing visible)")]
    EmptyOptionName {
        /// 1-based position among the options.
        position: usize,
    },
    /// Two options share a name, or have names that differ only in case, Unicode normalisation
    /// or surrounding spaces (the same [`moot_text::fold`] key). Results are reported by name,
    /// and people read "Ada" and "ada " as one candidate, so names must be distinct.
    #[error("{}", duplicate_message(*positions, name, other))]
    DuplicateOption {
        /// 1-based positions of the two options among the options.
        positions: (usize, usize),
        /// The first option's name.
        name: String,
        /// The second option's name (equal to `name` for an exact repeat).
        other: String,
    },
    /// A ballot scored a different number of options than the election has.
    #[error(
        "ballot has {} but there {}",
        plural(*found, "score", "scores"),
        if *expected == 1 { "is 1 option".to_string() } else { format!("are {expected} options") }
    )]
    WrongLength {
        /// Number of options.
        expected: usize,
        /// Number of scores given.
        found: usize,
    },
    /// A score outside 0–5.
    #[error("score {score} for {option:?} is outside 0-5")]
    ScoreOutOfRange {
        /// The option scored.
        option: String,
        /// The score given.
        score: u8,
    },
}

/// `n` and the noun, singular for 1 ("1 field", "2 fields").
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn duplicate_message(positions: (usize, usize), name: &str, other: &str) -> String {
    let (a, b) = positions;
    if name == other {
        format!("option name {name:?} appears more than once (options {a} and {b})")
    } else {
        format!(
            "options {a} ({name:?}) and {b} ({other:?}) are the same name: names must differ by \
             more than case, Unicode form or surrounding spaces"
        )
    }
}

/// The first pair of names that are duplicates under [`moot_text::fold`], as a
/// [`BallotError::DuplicateOption`].
pub(crate) fn find_duplicate(names: &[String]) -> Option<BallotError> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let key = moot_text::fold(name);
        if let Some(&first) = seen.get(&key) {
            return Some(BallotError::DuplicateOption {
                positions: (first + 1, i + 1),
                name: names[first].clone(),
                other: name.clone(),
            });
        }
        seen.insert(key, i);
    }
    None
}

/// The most options an election may have. Counting keeps a pairwise preference matrix of
/// `n × n` 64-bit counts (8 MB at this limit; 80,000 options would ask for 51 GB), and no real
/// ballot lists anywhere near a thousand options.
pub const MAX_OPTIONS: usize = 1000;

/// Checks a list of option names: at least one, at most [`MAX_OPTIONS`], none empty, no
/// duplicates (by [`moot_text::fold`]).
pub(crate) fn check_names(names: &[String]) -> Result<(), BallotError> {
    if names.is_empty() {
        return Err(BallotError::NoOptions);
    }
    // Checked first: every constructor calls this before allocating anything per option pair.
    if names.len() > MAX_OPTIONS {
        return Err(BallotError::TooManyOptions { found: names.len() });
    }
    if let Some(i) = names.iter().position(|name| moot_text::is_blank(name)) {
        return Err(BallotError::EmptyOptionName { position: i + 1 });
    }
    match find_duplicate(names) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Checks one ballot against a list of options: a score 0–5 for every option.
pub(crate) fn check_row(names: &[String], scores: &[u8]) -> Result<(), BallotError> {
    if scores.len() != names.len() {
        return Err(BallotError::WrongLength {
            expected: names.len(),
            found: scores.len(),
        });
    }
    match scores.iter().position(|&s| s > MAX_SCORE) {
        Some(i) => Err(BallotError::ScoreOutOfRange {
            option: names[i].clone(),
            score: scores[i],
        }),
        None => Ok(()),
    }
}

/// Score ballots for a fixed list of options.
///
/// Column storage keeps a million ballots of five options in five megabytes and lets the tally
/// scan one or two options at a time with vectorised loops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ballots {
    names: Vec<String>,
    columns: Vec<Vec<u8>>,
    len: usize,
}

impl Ballots {
    /// An empty ballot set for these options.
    pub fn new(names: Vec<String>) -> Result<Self, BallotError> {
        check_names(&names)?;
        let columns = vec![Vec::new(); names.len()];
        Ok(Ballots {
            names,
            columns,
            len: 0,
        })
    }

    /// Adds one ballot: a score 0–5 for every option, in option order.
    pub fn push(&mut self, scores: &[u8]) -> Result<(), BallotError> {
        check_row(&self.names, scores)?;
        for (column, &score) in self.columns.iter_mut().zip(scores) {
            column.push(score);
        }
        self.len += 1;
        Ok(())
    }

    /// Adds a ballot the caller has already checked (right length, every score `<= 5`): the
    /// reader's fast path, which validates while it parses.
    pub(crate) fn push_valid(&mut self, scores: &[u8]) {
        debug_assert!(scores.len() == self.names.len() && scores.iter().all(|&s| s <= MAX_SCORE));
        for (column, &score) in self.columns.iter_mut().zip(scores) {
            column.push(score);
        }
        self.len += 1;
    }

    /// Removes every ballot, keeping the options and the columns' capacity.
    pub(crate) fn clear(&mut self) {
        for column in &mut self.columns {
            column.clear();
        }
        self.len = 0;
    }

    /// Option names, in column order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of ballots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no ballot has been added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One column of scores per option; `columns()[o][b]` is ballot `b`'s score for option `o`.
    pub fn columns(&self) -> &[Vec<u8>] {
        &self.columns
    }

    /// Ballot `index` as a row of scores, or `None` past the end.
    pub fn row(&self, index: usize) -> Option<Vec<u8>> {
        (index < self.len).then(|| self.columns.iter().map(|c| c[index]).collect())
    }

    /// The counts a tally reads, computed in one pass over the scores.
    pub fn counts(&self) -> BallotCounts<'_> {
        BallotCounts::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn refuses_bad_option_lists() {
        assert_eq!(Ballots::new(vec![]), Err(BallotError::NoOptions));
        assert_eq!(
            Ballots::new(names(&["Ada", " "])),
            Err(BallotError::EmptyOptionName { position: 2 })
        );
        assert_eq!(
            Ballots::new(names(&["Ada", "Ben", "Ada"])),
            Err(BallotError::DuplicateOption {
                positions: (1, 3),
                name: "Ada".into(),
                other: "Ada".into()
            })
        );
    }

    #[test]
    fn names_differing_only_in_case_form_or_spaces_are_duplicates() {
        for (first, second) in [("Ada", "ADA"), ("Ada", " ada "), ("A\u{301}da", "\u{c1}DA")] {
            let error = Ballots::new(names(&["Ben", first, second])).unwrap_err();
            assert_eq!(
                error,
                BallotError::DuplicateOption {
                    positions: (2, 3),
                    name: first.into(),
                    other: second.into()
                }
            );
            assert!(error.to_string().contains("options 2 ("), "{error}");
        }
        assert!(Ballots::new(names(&["Ada", "Adam", "Äda"])).is_ok());
    }

    #[test]
    fn refuses_bad_ballots_and_keeps_the_good_ones() {
        let mut ballots = Ballots::new(names(&["Ada", "Ben"])).unwrap();
        ballots.push(&[5, 0]).unwrap();
        assert_eq!(
            ballots.push(&[1]),
            Err(BallotError::WrongLength {
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            ballots.push(&[1, 6]),
            Err(BallotError::ScoreOutOfRange {
                option: "Ben".into(),
                score: 6
            })
        );
        assert_eq!(ballots.len(), 1);
        assert_eq!(ballots.row(0), Some(vec![5, 0]));
        assert_eq!(ballots.row(1), None);
    }
}
