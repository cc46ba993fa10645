//! The mutual-aid board as the replica derives it: offers and requests, their pledges, status
//! and passed-on chains.
//!
//! # Rules (each judged at the op's causal position, see `Replica`)
//! - Any member (not a guest) posts an offer or a request, in the lane they choose. Every op
//!   about an item goes in the item's lane and names the item (and the pledge it is about) in
//!   its dependencies.
//! - Only the item's author, or a member holding the coordinator (or steward) role, edits,
//!   fulfils, withdraws or expires it. Edits carry a revision: the highest stands (then the
//!   lower op id).
//! - Any other member pledges, with their contact sealed to the item's author; only the
//!   pledger withdraws their pledge; the item's author answers a pledge with their own contact
//!   sealed to the pledger. A sealed contact is readable by its one recipient only.
//! - **Status** (a pure function of the ops held, whatever order they came in): fulfilled if a
//!   fulfilment stands, else withdrawn, else expired, else pledged while a pledge is not
//!   withdrawn, else open. Concurrent fulfilment and withdrawal are flagged.
//! - **Pay it forward**: the recipient of a fulfilled gift (the pledger of a fulfilled offer,
//!   the author of a fulfilled request) may post an offer naming it; the chain is visible from
//!   both ends.

use moot_crypto::{Lane, OpId};

use crate::body::{AidDetails, AidKind, MemberId};

/// Where an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AidStatus {
    /// Waiting for a pledge.
    Open,
    /// Someone pledged.
    Pledged,
    /// Met.
    Fulfilled,
    /// Taken off the board by its author or a coordinator.
    Withdrawn,
    /// No longer current.
    Expired,
}

impl AidStatus {
    /// `open`, `pledged`, `fulfilled`, `withdrawn` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            AidStatus::Open => "open",
            AidStatus::Pledged => "pledged",
            AidStatus::Fulfilled => "fulfilled",
            AidStatus::Withdrawn => "withdrawn",
            AidStatus::Expired => "expired",
        }
    }

    /// Parses [`AidStatus::as_str`].
    pub fn parse(text: &str) -> Option<AidStatus> {
        [
            AidStatus::Open,
            AidStatus::Pledged,
            AidStatus::Fulfilled,
            AidStatus::Withdrawn,
            AidStatus::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// An offer or request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemInfo {
    /// Its id (the item op's).
    pub id: OpId,
    /// Offer or request.
    pub kind: AidKind,
    /// Who posted it.
    pub author: MemberId,
    /// Its lane.
    pub lane: Lane,
    /// Its standing details.
    pub details: AidDetails,
    /// Its status.
    pub status: AidStatus,
    /// Its pledges, withdrawn ones included, ascending by id.
    pub pledges: Vec<PledgeInfo>,
    /// The fulfilment that stands, if any.
    pub fulfilment: Option<OpId>,
    /// The pledge it fulfilled.
    pub fulfilled_by: Option<OpId>,
    /// The gift this one passes on.
    pub forwarded_from: Option<OpId>,
    /// Gifts passing this one on.
    pub forwarded_to: Vec<OpId>,
    /// Things a reader should know.
    pub flags: Vec<String>,
}

/// A pledge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PledgeInfo {
    /// Its op.
    pub id: OpId,
    /// The pledger.
    pub pledger: MemberId,
    /// How many.
    pub quantity: Option<u32>,
    /// The pledger's note.
    pub note: String,
    /// The pledger's contact, sealed to the item's author (empty: none).
    pub contact: Vec<u8>,
    /// The item author's answers: their contact sealed to the pledger.
    pub replies: Vec<Vec<u8>>,
    /// Withdrawn by the pledger.
    pub withdrawn: bool,
}
