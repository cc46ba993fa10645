//! The counts a STAR tally needs, behind one trait, and their fast computation from raw ballots.

use crate::Ballots;

/// The highest score a ballot may give an option.
pub const MAX_SCORE: u8 = 5;
/// The number of distinct scores, 0 through [`MAX_SCORE`].
pub const SCORE_LEVELS: usize = MAX_SCORE as usize + 1;

/// How many ballots gave an option each score: `histogram[s]` ballots scored it `s`.
pub type Histogram = [u64; SCORE_LEVELS];

/// Everything a STAR or Bloc STAR tally reads. Implemented by raw ballots ([`BallotCounts`]) and
/// by merged precinct summaries ([`crate::Summary`]); [`crate::tally`] is generic over it, so the
/// same decision logic runs on both.
///
/// Implementations must be consistent: every histogram sums to [`Counts::ballot_count`], and
/// `preference(a, b) = (x, y)` implies `preference(b, a) = (y, x)` and `x + y <= ballot_count`.
pub trait Counts {
    /// Option names, in column order. Unique and non-empty.
    fn names(&self) -> &[String];
    /// Number of ballots counted.
    fn ballot_count(&self) -> u64;
    /// Score histogram of one option.
    fn histogram(&self, option: usize) -> Histogram;
    /// `(ballots scoring a above b, ballots scoring b above a)`.
    fn preference(&self, a: usize, b: usize) -> (u64, u64);

    /// Number of options.
    fn option_count(&self) -> usize {
        self.names().len()
    }
}

/// Sum of scores in a histogram.
pub(crate) fn histogram_total(histogram: &Histogram) -> u64 {
    histogram
        .iter()
        .enumerate()
        .map(|(score, &count)| score as u64 * count)
        .sum()
}

/// [`Counts`] over raw [`Ballots`]: histograms are computed once when this is built; pairwise
/// preferences are counted on demand, one two-column pass per pair asked for. ([`crate::tally`]
/// asks for every pair once, for the head-to-head matrix it reports: the same passes as
/// [`crate::Summary::from_ballots`].)
#[derive(Debug, Clone)]
pub struct BallotCounts<'a> {
    ballots: &'a Ballots,
    histograms: Vec<Histogram>,
}

impl<'a> BallotCounts<'a> {
    pub(crate) fn new(ballots: &'a Ballots) -> Self {
        let histograms = ballots
            .columns()
            .iter()
            .map(|c| column_histogram(c))
            .collect();
        BallotCounts {
            ballots,
            histograms,
        }
    }
}

impl Counts for BallotCounts<'_> {
    fn names(&self) -> &[String] {
        self.ballots.names()
    }
    fn ballot_count(&self) -> u64 {
        self.ballots.len() as u64
    }
    fn histogram(&self, option: usize) -> Histogram {
        self.histograms[option]
    }
    fn preference(&self, a: usize, b: usize) -> (u64, u64) {
        let columns = self.ballots.columns();
        column_preference(&columns[a], &columns[b])
    }
}

/// Histogram of one column of scores (every byte already checked to be `<= MAX_SCORE`).
///
/// Counts in blocks of at most 255 ballots with `u8` lanes so the compiler can vectorise the
/// comparisons; the block sums are widened to `u64` once per block.
pub(crate) fn column_histogram(column: &[u8]) -> Histogram {
    let mut histogram = [0u64; SCORE_LEVELS];
    for block in column.chunks(255) {
        let mut lanes = [0u8; SCORE_LEVELS];
        for &score in block {
            for (level, lane) in lanes.iter_mut().enumerate() {
                *lane += u8::from(score == level as u8);
            }
        }
        for (total, lane) in histogram.iter_mut().zip(lanes) {
            *total += u64::from(lane);
        }
    }
    histogram
}

/// `(count of a[i] > b[i], count of b[i] > a[i])` over two equal-length score columns.
pub(crate) fn column_preference(a: &[u8], b: &[u8]) -> (u64, u64) {
    let mut a_over_b = 0u64;
    let mut b_over_a = 0u64;
    for (block_a, block_b) in a.chunks(255).zip(b.chunks(255)) {
        let mut above = 0u8;
        let mut below = 0u8;
        for (&x, &y) in block_a.iter().zip(block_b) {
            above += u8::from(x > y);
            below += u8::from(y > x);
        }
        a_over_b += u64::from(above);
        b_over_a += u64::from(below);
    }
    (a_over_b, b_over_a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_every_level_across_block_boundaries() {
        let column: Vec<u8> = (0..1000u32).map(|i| (i % 6) as u8).collect();
        let histogram = column_histogram(&column);
        assert_eq!(histogram, [167, 167, 167, 167, 166, 166]);
        assert_eq!(histogram.iter().sum::<u64>(), 1000);
    }

    #[test]
    fn preference_counts_strict_preferences_only() {
        let a: Vec<u8> = [5, 3, 2, 0].repeat(300);
        let b: Vec<u8> = [0, 3, 4, 0].repeat(300);
        assert_eq!(column_preference(&a, &b), (300, 300));
        assert_eq!(column_preference(&b, &a), (300, 300));
        assert_eq!(column_preference(&a[..4], &b[..4]), (1, 1));
    }
}
