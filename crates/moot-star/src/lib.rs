//! STAR ("Score Then Automatic Runoff") and Bloc STAR tallies: pure, deterministic, mergeable.
//!
//! This crate is the vote-counting heart of Moot. It does no IO of its own (no files, sockets,
//! clocks or OS randomness): ballots and the lot seed come in as arguments, and the same inputs
//! always give the same [`Tally`], bit for bit, on every machine.
//!
//! # A tour
//! - [`Ballots`] holds raw score ballots column by column (one byte per score).
//! - [`Summary`] is a *precinct summary*: ballot count, per-option score histograms and the
//!   pairwise preference matrix. Summaries merge associatively and commutatively, and tally to
//!   exactly the result of tallying all their ballots together. This is how branches that met
//!   offline combine their results.
//! - Both implement [`Counts`], the only thing [`tally`] looks at, so one piece of decision logic
//!   serves raw ballots and merged summaries alike.
//! - [`tally`] runs single-winner STAR or Bloc STAR ([`Config::seats`]) with the current official
//!   tie-breaker protocol (see `docs/STAR-RULES.md` §2–3, §5), recording every tiebreak step.
//! - [`Seed`] drives the lot, the last-resort tiebreak: a seed fixes a published order of the
//!   options (their "lot numbers"), see [`lot`].
//! - [`input`] reads ballot files (plain, star.vote and BetterVoting exports) with errors that name
//!   the line and the problem; [`report`] turns a [`Tally`] into the stable JSON contract and a
//!   human-readable text report.
//!
//! ```
//! use moot_star::{Ballots, Config, tally};
//!
//! let mut ballots = Ballots::new(vec!["Ada".into(), "Ben".into(), "Cara".into()])?;
//! ballots.push(&[5, 3, 0])?;
//! ballots.push(&[0, 4, 5])?;
//! ballots.push(&[4, 5, 1])?;
//! let counts = ballots.counts();
//! let result = tally(&counts, &Config::single_winner(moot_star::default_seed(&counts)))?;
//! assert_eq!(result.winner_names(), vec!["Ben"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ballots;
mod counts;
pub mod input;
pub mod lot;
pub mod report;
mod summary;
mod tally;

pub use ballots::{BallotError, Ballots, MAX_OPTIONS};
pub use counts::{BallotCounts, Counts, Histogram, MAX_SCORE, SCORE_LEVELS};
pub use lot::{Seed, SeedError, default_seed};
pub use summary::{Summary, SummaryBuilder, SummaryError};
pub use tally::{Config, Rule, Runoff, SeatRound, Stage, Tally, TallyError, Tiebreak, tally};
