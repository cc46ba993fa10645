//! Precinct summaries: what a branch computes alone, merges with others, and tallies as one.

use serde::{Deserialize, Serialize};

use crate::ballots::{check_names, check_row};
use crate::counts::{column_histogram, column_preference};
use crate::{BallotError, Ballots, Counts, Histogram, SCORE_LEVELS};

/// Why a summary could not be built, extended or merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SummaryError {
    /// The option list or a ballot was refused.
    #[error(transparent)]
    Ballot(#[from] BallotError),
    /// Two summaries of different option lists cannot be merged.
    #[error("summaries list different options ({ours:?} vs {theirs:?})")]
    OptionsDiffer {
        /// This summary's options.
        ours: Vec<String>,
        /// The other summary's options.
        theirs: Vec<String>,
    },
    /// A decoded summary is internally inconsistent (wrong sizes, counts that do not add up).
    #[error("inconsistent summary: {0}")]
    Inconsistent(&'static str),
    /// A count would overflow 64 bits.
    #[error("summary counts overflow")]
    Overflow,
}

/// A precinct summary: ballot count, per-option score histograms and the pairwise preference
/// matrix. It holds everything the official protocol can ask about (totals, five-star counts,
/// head-to-head and runoff preferences), so [`crate::tally`] on a summary equals the tally of
/// the ballots it summarises.
///
/// Merging is elementwise addition: associative and commutative, with [`Summary::new`] as the
/// identity. Its size depends on the number of options, never on the number of ballots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SummaryWire", into = "SummaryWire")]
pub struct Summary {
    names: Vec<String>,
    ballot_count: u64,
    histograms: Vec<Histogram>,
    /// Row-major `n × n`: `preferences[a * n + b]` ballots scored `a` above `b`.
    preferences: Vec<u64>,
}

/// The serialised form of a [`Summary`], checked on the way in.
#[derive(Serialize, Deserialize)]
struct SummaryWire {
    options: Vec<String>,
    ballots: u64,
    histograms: Vec<Histogram>,
    preferences: Vec<Vec<u64>>,
}

impl From<Summary> for SummaryWire {
    fn from(summary: Summary) -> Self {
        let n = summary.names.len();
        let preferences = summary
            .preferences
            .chunks(n.max(1))
            .map(<[u64]>::to_vec)
            .collect();
        SummaryWire {
            options: summary.names,
            ballots: summary.ballot_count,
            histograms: summary.histograms,
            preferences,
        }
    }
}

impl TryFrom<SummaryWire> for Summary {
    type Error = SummaryError;

    fn try_from(wire: SummaryWire) -> Result<Self, Self::Error> {
        check_names(&wire.options)?;
        let n = wire.options.len();
        if wire.histograms.len() != n || wire.preferences.len() != n {
            return Err(SummaryError::Inconsistent(
                "one histogram and one matrix row per option",
            ));
        }
        for histogram in &wire.histograms {
            let sum = histogram
                .iter()
                .try_fold(0u64, |acc, &c| acc.checked_add(c))
                .ok_or(SummaryError::Overflow)?;
            if sum != wire.ballots {
                return Err(SummaryError::Inconsistent(
                    "a histogram does not add up to the ballot count",
                ));
            }
        }
        let mut preferences = Vec::with_capacity(n * n);
        for row in &wire.preferences {
            if row.len() != n {
                return Err(SummaryError::Inconsistent(
                    "the preference matrix is not square",
                ));
            }
            preferences.extend_from_slice(row);
        }
        for a in 0..n {
            if preferences[a * n + a] != 0 {
                return Err(SummaryError::Inconsistent(
                    "an option preferred over itself",
                ));
            }
            for b in a + 1..n {
                let pair = preferences[a * n + b].checked_add(preferences[b * n + a]);
                if pair.is_none_or(|p| p > wire.ballots) {
                    return Err(SummaryError::Inconsistent("more preferences than ballots"));
                }
            }
        }
        Ok(Summary {
            names: wire.options,
            ballot_count: wire.ballots,
            histograms: wire.histograms,
            preferences,
        })
    }
}

impl Summary {
    /// An empty summary (no ballots) for these options: the identity for [`Summary::merge`].
    pub fn new(names: Vec<String>) -> Result<Self, SummaryError> {
        check_names(&names)?;
        let n = names.len();
        Ok(Summary {
            names,
            ballot_count: 0,
            histograms: vec![[0; SCORE_LEVELS]; n],
            preferences: vec![0; n * n],
        })
    }

    /// Summarises a set of ballots.
    pub fn from_ballots(ballots: &Ballots) -> Self {
        let n = ballots.names().len();
        let columns = ballots.columns();
        let mut preferences = vec![0; n * n];
        for a in 0..n {
            for b in a + 1..n {
                let (a_over_b, b_over_a) = column_preference(&columns[a], &columns[b]);
                preferences[a * n + b] = a_over_b;
                preferences[b * n + a] = b_over_a;
            }
        }
        Summary {
            names: ballots.names().to_vec(),
            ballot_count: ballots.len() as u64,
            histograms: columns.iter().map(|c| column_histogram(c)).collect(),
            preferences,
        }
    }

    /// Adds one ballot (a score 0–5 for every option, in option order).
    pub fn add(&mut self, scores: &[u8]) -> Result<(), SummaryError> {
        check_row(&self.names, scores)?;
        let n = self.names.len();
        self.ballot_count = self
            .ballot_count
            .checked_add(1)
            .ok_or(SummaryError::Overflow)?;
        for (histogram, &score) in self.histograms.iter_mut().zip(scores) {
            histogram[usize::from(score)] += 1;
        }
        for (a, &score_a) in scores.iter().enumerate() {
            for (b, &score_b) in scores.iter().enumerate() {
                if score_a > score_b {
                    self.preferences[a * n + b] += 1;
                }
            }
        }
        Ok(())
    }

    /// Adds a batch of ballots for the same options (the column scans of
    /// [`Summary::from_ballots`], added in place). On error `self` is unchanged.
    pub fn add_ballots(&mut self, ballots: &Ballots) -> Result<(), SummaryError> {
        if self.names != ballots.names() {
            return Err(SummaryError::OptionsDiffer {
                ours: self.names.clone(),
                theirs: ballots.names().to_vec(),
            });
        }
        let added = ballots.len() as u64;
        // Every count below is at most `ballot_count`, so one check covers them all.
        let ballot_count = self
            .ballot_count
            .checked_add(added)
            .ok_or(SummaryError::Overflow)?;
        self.ballot_count = ballot_count;
        let n = self.names.len();
        let columns = ballots.columns();
        for (histogram, column) in self.histograms.iter_mut().zip(columns) {
            for (total, count) in histogram.iter_mut().zip(column_histogram(column)) {
                *total += count;
            }
        }
        for a in 0..n {
            for b in a + 1..n {
                let (a_over_b, b_over_a) = column_preference(&columns[a], &columns[b]);
                self.preferences[a * n + b] += a_over_b;
                self.preferences[b * n + a] += b_over_a;
            }
        }
        Ok(())
    }

    /// Adds another precinct's summary into this one. Both must list the same options in the
    /// same order (a poll fixes its options when it opens).
    pub fn merge(&mut self, other: &Summary) -> Result<(), SummaryError> {
        if self.names != other.names {
            return Err(SummaryError::OptionsDiffer {
                ours: self.names.clone(),
                theirs: other.names.clone(),
            });
        }
        // Check every addition before changing anything, so a failed merge leaves `self` as it was.
        let ballot_count = self
            .ballot_count
            .checked_add(other.ballot_count)
            .ok_or(SummaryError::Overflow)?;
        let mut histograms = self.histograms.clone();
        for (mine, theirs) in histograms.iter_mut().zip(&other.histograms) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m = m.checked_add(*t).ok_or(SummaryError::Overflow)?;
            }
        }
        let mut preferences = self.preferences.clone();
        for (m, t) in preferences.iter_mut().zip(&other.preferences) {
            *m = m.checked_add(*t).ok_or(SummaryError::Overflow)?;
        }
        self.ballot_count = ballot_count;
        self.histograms = histograms;
        self.preferences = preferences;
        Ok(())
    }
}

/// Builds a [`Summary`] from ballots arriving one at a time, in memory bounded by the number of
/// options: ballots are buffered column by column in a chunk of at most
/// [`SummaryBuilder::CHUNK_BYTES`] scores, which is folded into the summary with the same
/// vectorised column scans as [`Summary::from_ballots`] whenever it fills. This is how
/// `moot tally` counts a file of any size in a few megabytes; the summary tallies exactly as the
/// ballots would.
#[derive(Debug, Clone)]
pub struct SummaryBuilder {
    chunk: Ballots,
    chunk_ballots: usize,
    summary: Summary,
}

impl SummaryBuilder {
    /// Scores buffered before they are folded in: small enough to stay in a core's cache, large
    /// enough that the per-chunk cost (one pass per option pair) is spread over many ballots.
    pub const CHUNK_BYTES: usize = 256 * 1024;

    /// An empty builder for these options.
    pub fn new(names: Vec<String>) -> Result<Self, SummaryError> {
        let chunk_ballots = (Self::CHUNK_BYTES / names.len().max(1)).max(1);
        Self::with_chunk_ballots(names, chunk_ballots)
    }

    /// An empty builder that folds in every `chunk_ballots` ballots (at least 1). For tests of
    /// chunk boundaries; [`SummaryBuilder::new`] picks the size.
    pub fn with_chunk_ballots(
        names: Vec<String>,
        chunk_ballots: usize,
    ) -> Result<Self, SummaryError> {
        let summary = Summary::new(names.clone())?;
        let chunk = Ballots::new(names)?;
        Ok(SummaryBuilder {
            chunk,
            chunk_ballots: chunk_ballots.max(1),
            summary,
        })
    }

    /// Option names, in column order.
    pub fn names(&self) -> &[String] {
        self.chunk.names()
    }

    /// Adds one ballot (a score 0–5 for every option, in option order).
    pub fn push(&mut self, scores: &[u8]) -> Result<(), SummaryError> {
        check_row(self.chunk.names(), scores)?;
        self.push_valid(scores)
    }

    /// Adds a ballot the caller has already checked (see [`Ballots::push`]).
    pub(crate) fn push_valid(&mut self, scores: &[u8]) -> Result<(), SummaryError> {
        self.chunk.push_valid(scores);
        if self.chunk.len() >= self.chunk_ballots {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SummaryError> {
        self.summary.add_ballots(&self.chunk)?;
        self.chunk.clear();
        Ok(())
    }

    /// The summary of every ballot pushed.
    pub fn finish(mut self) -> Result<Summary, SummaryError> {
        self.flush()?;
        Ok(self.summary)
    }
}

impl Counts for Summary {
    fn names(&self) -> &[String] {
        &self.names
    }
    fn ballot_count(&self) -> u64 {
        self.ballot_count
    }
    fn histogram(&self, option: usize) -> Histogram {
        self.histograms[option]
    }
    fn preference(&self, a: usize, b: usize) -> (u64, u64) {
        let n = self.names.len();
        (self.preferences[a * n + b], self.preferences[b * n + a])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["Ada", "Ben", "Cara"].map(String::from).to_vec()
    }

    #[test]
    fn constructors_refuse_more_options_than_the_limit() {
        // Before the n × n matrix is allocated: 80,000 options would ask for 51 GB.
        let many: Vec<String> = (0..80_000).map(|i| format!("o{i}")).collect();
        let too_many = BallotError::TooManyOptions { found: 80_000 };
        assert_eq!(
            Summary::new(many.clone()),
            Err(SummaryError::Ballot(too_many.clone()))
        );
        assert_eq!(Ballots::new(many.clone()).unwrap_err(), too_many);
        assert!(SummaryBuilder::new(many).is_err());
        assert_eq!(
            too_many.to_string(),
            "80000 options; the limit is 1000 options"
        );
        let limit: Vec<String> = (0..crate::MAX_OPTIONS).map(|i| format!("o{i}")).collect();
        assert!(Summary::new(limit).is_ok());
        // A decoded summary goes through the same check.
        let wire = serde_json::json!({
            "options": (0..1001).map(|i| format!("o{i}")).collect::<Vec<_>>(),
            "ballots": 0, "histograms": [], "preferences": []
        });
        let decoded: Result<Summary, _> = serde_json::from_value(wire);
        assert!(
            decoded
                .unwrap_err()
                .to_string()
                .contains("the limit is 1000")
        );
    }

    #[test]
    fn incremental_summary_equals_batch_summary() {
        let rows = [[5, 3, 0], [0, 4, 5], [4, 4, 1], [2, 2, 2]];
        let mut ballots = Ballots::new(names()).unwrap();
        let mut summary = Summary::new(names()).unwrap();
        for row in rows {
            ballots.push(&row).unwrap();
            summary.add(&row).unwrap();
        }
        assert_eq!(summary, Summary::from_ballots(&ballots));
        assert_eq!(summary.preference(0, 1), (1, 1));
        assert_eq!(summary.preference(1, 2), (2, 1));
    }

    #[test]
    fn builder_equals_batch_summary_across_chunk_boundaries() {
        let rows: Vec<[u8; 3]> = (0..1000u32)
            .map(|i| [(i % 6) as u8, (i * 7 % 6) as u8, (i * 5 / 3 % 6) as u8])
            .collect();
        let mut ballots = Ballots::new(names()).unwrap();
        for row in &rows {
            ballots.push(row).unwrap();
        }
        let batch = Summary::from_ballots(&ballots);
        for chunk in [1, 2, 7, 255, 256, 999, 1000, 5000] {
            let mut builder = SummaryBuilder::with_chunk_ballots(names(), chunk).unwrap();
            for row in &rows {
                builder.push(row).unwrap();
            }
            assert_eq!(builder.finish().unwrap(), batch, "chunk {chunk}");
        }
        let mut builder = SummaryBuilder::new(names()).unwrap();
        assert!(builder.push(&[1, 2]).is_err());
        assert!(builder.push(&[1, 2, 6]).is_err());
        assert_eq!(builder.finish().unwrap(), Summary::new(names()).unwrap());
    }

    #[test]
    fn merge_refuses_other_options_and_leaves_summary_unchanged() {
        let mut ours = Summary::new(names()).unwrap();
        ours.add(&[1, 2, 3]).unwrap();
        let before = ours.clone();
        let theirs = Summary::new(["Ada", "Cara", "Ben"].map(String::from).to_vec()).unwrap();
        assert!(matches!(
            ours.merge(&theirs),
            Err(SummaryError::OptionsDiffer { .. })
        ));
        assert_eq!(ours, before);
    }

    #[test]
    fn serde_round_trip_and_inconsistent_input_is_refused() {
        let mut summary = Summary::new(names()).unwrap();
        summary.add(&[5, 0, 3]).unwrap();
        let json = serde_json::to_string(&summary).unwrap();
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, summary);

        let tampered = json.replacen("\"ballots\":1", "\"ballots\":2", 1);
        let error = serde_json::from_str::<Summary>(&tampered).unwrap_err();
        assert!(error.to_string().contains("does not add up"), "{error}");
    }
}
