//! Proposals as the replica derives them: comments, stances, amendments and the outcome.
//!
//! # Rules (each judged at the op's causal position, see `Replica`)
//! - A proposal lives in its assembly's lane; every op about it goes in that lane and names the
//!   proposal in its dependencies (and a reply names the comment it answers, a resolution the
//!   amendment, a decision sent to a vote the poll).
//! - Any member (not a guest) may comment, take a stance, or propose an amendment. A
//!   member's stance is their highest revision (then the lower op id); two different stances
//!   of one member with the same revision are flagged.
//! - The proposer or a convener of the assembly (the hub's stewards and conveners convene
//!   every assembly) accepts or rejects amendments and decides the outcome. An accepted
//!   amendment is applied as an ordinary document change by the one who accepted it.
//! - **Adopted by consensus** is refused while, in the decision's causal past, some member's
//!   standing stance is an objection or a block (of the stances that count there: one a
//!   removed member wrote beyond the removal's cut blocks nothing). **Sent to a vote** names a
//!   poll of the same assembly. One decision per proposal: a second in the causal past of
//!   another is refused (unless the first does not count there); concurrent ones are all
//!   kept, the lower op id stands, and they are flagged. The same holds for resolutions of one
//!   amendment.

use moot_crypto::{Lane, OpId};

use crate::body::{AssemblyRef, MemberId, Outcome, StanceKind};

/// A proposal and everything said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalInfo {
    /// Its id (the creator op's, which is also its document's id).
    pub id: OpId,
    /// Its assembly.
    pub assembly: AssemblyRef,
    /// Its title.
    pub title: String,
    /// Its lane (the assembly's).
    pub lane: Lane,
    /// Who proposed it.
    pub proposer: MemberId,
    /// Comments, in a causal order (a reply after what it answers, ties by the lower op id:
    /// the same on every replica), each with its parent.
    pub comments: Vec<CommentInfo>,
    /// Each member's standing stance, by member id.
    pub stances: Vec<StanceInfo>,
    /// Amendments, with their resolution.
    pub amendments: Vec<AmendmentInfo>,
    /// The standing decision, if any.
    pub outcome: Option<DecisionInfo>,
    /// Things a reader should know (concurrent decisions, equivocal stances…).
    pub flags: Vec<String>,
    /// The document's changes: the creator op first, then its change ops in a causal order
    /// (as [`Replica::doc_changes`](crate::Replica::doc_changes): the same on every replica).
    pub changes: Vec<OpId>,
}

impl ProposalInfo {
    /// True if an objection or block stands.
    pub fn objections(&self) -> usize {
        self.stances
            .iter()
            .filter(|s| s.stance.stops_consensus())
            .count()
    }
}

/// A comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentInfo {
    /// Its op.
    pub id: OpId,
    /// The comment it answers.
    pub parent: Option<OpId>,
    /// Who wrote it.
    pub author: MemberId,
    /// What it says.
    pub text: String,
}

/// A member's standing stance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanceInfo {
    /// Its op.
    pub id: OpId,
    /// Whose.
    pub member: MemberId,
    /// The stance.
    pub stance: StanceKind,
    /// Its revision.
    pub revision: u32,
    /// Why.
    pub reason: String,
}

/// Where an amendment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmendmentStatus {
    /// Not yet accepted or rejected.
    Open,
    /// Accepted (and applied by a document change).
    Accepted,
    /// Rejected.
    Rejected,
}

impl AmendmentStatus {
    /// `open`, `accepted` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            AmendmentStatus::Open => "open",
            AmendmentStatus::Accepted => "accepted",
            AmendmentStatus::Rejected => "rejected",
        }
    }
}

/// An amendment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmendmentInfo {
    /// Its op.
    pub id: OpId,
    /// Who proposed it.
    pub author: MemberId,
    /// Cursor at the start of the range.
    pub from: String,
    /// Cursor at the end of the range.
    pub to: String,
    /// The text the range held.
    pub original: String,
    /// The replacement.
    pub replacement: String,
    /// Its status.
    pub status: AmendmentStatus,
    /// The standing resolution op, if any.
    pub resolution: Option<OpId>,
}

/// A proposal's standing decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionInfo {
    /// The decide op.
    pub id: OpId,
    /// Who decided.
    pub by: MemberId,
    /// The outcome.
    pub outcome: Outcome,
}

/// One of a document's changes, for the node that materialises the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRef {
    /// The op carrying the change (the creator op for the first).
    pub op: OpId,
    /// The document's changes this one names in its op dependencies (its automerge
    /// dependencies and the same device's previous change): if one of them is excluded from
    /// the document, so is this one.
    pub parents: Vec<OpId>,
}
