//! Validation of signed ops at their causal position, and the state derived from the valid op
//! set: today the hub's membership roll. Pure: no IO, no clock, no randomness.
//!
//! - [`body`]: the typed bodies (postcard-encoded, one op kind each; unknown kinds are kept).
//! - [`roll`]: the roll and its rules: who may admit, remove, grant, certify, revoke, and set
//!   personal data.
//! - [`replica`]: [`Replica`], which takes ops in any order, validates each, buffers ops with
//!   missing dependencies (bounded), flags equivocations, and resolves concurrent roll changes
//!   deterministically.

pub mod aid;
pub mod body;
pub mod deliberation;
mod index;
pub mod poll;
pub mod precheck;
pub mod replica;
pub mod roll;
pub mod sample;

pub use body::{Body, DeviceId, MemberId, Role, Standing};
pub use moot_crypto::Lane;
pub use replica::{
    DevicePoints, DraftError, Equivocation, Insertion, Limits, Outcome, Reason, Rejection, Replica,
    Retain, Source, Verdict,
};
pub use roll::{Denied, DocDenied, Facts, MemberRecord, Roll, Status};
