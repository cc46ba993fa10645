//! Assemblies and polls as the replica derives them, and the count of a poll: which ballots
//! count, which do not and why, each polling station's share, quorum and flags.
//!
//! # The count (a pure function of the ops held)
//! - The poll's **open** is its accepted open op; should two be concurrent (neither in the
//!   other's past), the lower op id among those a counting close closed is the poll's (an
//!   open written after a close cannot undo it), else the lower op id; ballots cast under the
//!   other are excluded (`OtherOpen`); both are flagged.
//! - The **close** is the accepted close op of that open. Should two returning officers close
//!   concurrently, the close whose causal past holds more of the poll's ballots stands (then
//!   the lower op id), and both are flagged. Without a close the count is provisional: every
//!   ballot held counts as if the poll closed now.
//! - A ballot is a candidate when it counts by the validity rule (its author's admission and
//!   device stand, it is not beyond a removal cut), was cast under the poll's open, and is in
//!   the close's causal past. Each member's candidate with the highest revision counts; the
//!   others are `Superseded`. Two different ballots of one member with the same highest
//!   revision are an equivocation: the lower ballot id counts, the other is excluded, and the
//!   member is flagged.
//! - **Stations**: each counted ballot belongs to the first station close (ordered causally,
//!   then by op id) whose causal past holds it; the rest were cast elsewhere. The stations'
//!   summaries and the rest add up to the total.

use moot_crypto::{Lane, OpId};
use moot_star::Summary;

use crate::body::{AssemblyKind, AssemblyRef, MemberId};
use crate::roll::Denied;

/// An assembly as derived from the ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssemblyInfo {
    /// Which assembly.
    pub assembly: AssemblyRef,
    /// Its name.
    pub name: String,
    /// What it is (automatic societies are societies).
    pub kind: AssemblyKind,
    /// Public (guests read it) or members-only.
    pub lane: Lane,
    /// True for the automatic societies.
    pub automatic: bool,
    /// Its members now (sorted), who would be the electorate of a poll opened now.
    pub members: Vec<MemberId>,
    /// Its conveners appointed in it (sorted; the hub's stewards and conveners convene every
    /// assembly too).
    pub conveners: Vec<MemberId>,
}

/// Where a poll stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStage {
    /// Created, not yet open.
    Created,
    /// Open: ballots may be cast.
    Open,
    /// Closed by a returning officer.
    Closed,
}

impl PollStage {
    /// `created`, `open` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            PollStage::Created => "created",
            PollStage::Open => "open",
            PollStage::Closed => "closed",
        }
    }
}

/// A poll as derived from the ops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollInfo {
    /// The poll's id: its create op.
    pub poll: OpId,
    /// Its assembly.
    pub assembly: AssemblyRef,
    /// Its lane (the assembly's).
    pub lane: Lane,
    /// The question.
    pub question: String,
    /// The options, in ballot order.
    pub options: Vec<String>,
    /// Seats: 1 for STAR, more for Bloc STAR.
    pub seats: u16,
    /// Returning officers (who may close it).
    pub officers: Vec<MemberId>,
    /// Station officers.
    pub stations: Vec<MemberId>,
    /// Ballots needed, if any.
    pub quorum: Option<u32>,
    /// Advisory times (seconds since the Unix epoch).
    pub opens_at: Option<u64>,
    /// Advisory closing time.
    pub closes_at: Option<u64>,
    /// Who created it.
    pub created_by: MemberId,
    /// The open op that stands, if open; its id is the tiebreak seed.
    pub open: Option<OpId>,
    /// The electorate's size fixed by the open.
    pub electorate: Option<u32>,
    /// The close that stands, if closed.
    pub close: Option<OpId>,
    /// Created, open or closed.
    pub stage: PollStage,
}

/// Why a ballot held does not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    /// The ballot does not count by the validity rule (e.g. its author was removed by a
    /// senior steward concurrently, or it is beyond a removal cut).
    NotValid(Denied),
    /// Cast under a competing open of the poll that does not stand.
    OtherOpen,
    /// Not in the causal past of the close: cast after it, or not seen by the returning
    /// officer.
    OutsideClose,
    /// The member cast a later revision.
    Superseded,
    /// Another ballot of the member with the same revision counts instead (lower id).
    Equivocation,
}

impl Exclusion {
    /// A stable name for the reason (the JSON contract).
    pub fn as_str(&self) -> &'static str {
        match self {
            Exclusion::NotValid(_) => "not_valid",
            Exclusion::OtherOpen => "other_open",
            Exclusion::OutsideClose => "outside_close",
            Exclusion::Superseded => "superseded_revision",
            Exclusion::Equivocation => "equivocation",
        }
    }
}

/// A ballot that does not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// The ballot op.
    pub ballot: OpId,
    /// Its voter.
    pub member: MemberId,
    /// Its revision.
    pub revision: u32,
    /// Why.
    pub reason: Exclusion,
}

/// Something an auditor should look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flag {
    /// No returning officer has closed the poll: the count is as of now.
    Provisional,
    /// Concurrent opens; the first named stands.
    CompetingOpens(Vec<OpId>),
    /// Concurrent closes; the first named stands.
    CompetingCloses(Vec<OpId>),
    /// A member cast two different ballots with the same revision.
    Equivocation {
        /// The voter.
        member: MemberId,
        /// The ballots, the counted one first.
        ballots: Vec<OpId>,
    },
    /// Fewer ballots counted than the quorum.
    QuorumNotMet {
        /// Ballots needed.
        quorum: u32,
        /// Ballots counted.
        counted: u32,
    },
}

/// One polling station's share of the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationCount {
    /// The station close op.
    pub close: OpId,
    /// The station officer who closed it.
    pub officer: MemberId,
    /// The counted ballots that belong to it.
    pub summary: Summary,
}

/// The count of a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollCount {
    /// The poll.
    pub info: PollInfo,
    /// The tiebreak seed: the open op's id.
    pub seed: [u8; 32],
    /// The ballots that count (one per voter), ascending by id.
    pub counted: Vec<OpId>,
    /// The ballots held that do not count, ascending by id.
    pub excluded: Vec<Excluded>,
    /// Each station's share, in station order.
    pub stations: Vec<StationCount>,
    /// The counted ballots cast at no station.
    pub rest: Summary,
    /// All counted ballots.
    pub total: Summary,
    /// Whether the quorum is met (`None`: no quorum set).
    pub quorum_met: Option<bool>,
    /// Flags for audit.
    pub flags: Vec<Flag>,
}

/// A ballot as the count sees it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate<'a> {
    pub id: OpId,
    pub member: [u8; 32],
    pub revision: u32,
    pub scores: &'a [u8],
}

/// What [`pick_latest`] decided.
pub(crate) struct Picked<'a> {
    /// The counted ballots, ascending by id.
    pub counted: Vec<Candidate<'a>>,
    /// The others, with `Superseded` or `Equivocation`.
    pub excluded: Vec<(Candidate<'a>, Exclusion)>,
    /// Members with different ballots of the same highest revision: the ballots, the counted
    /// one first.
    pub equivocations: Vec<([u8; 32], Vec<OpId>)>,
}

/// Picks each member's counted ballot among `candidates`: the highest revision, then the lower
/// id. Deterministic whatever the order of `candidates`.
pub(crate) fn pick_latest(mut candidates: Vec<Candidate<'_>>) -> Picked<'_> {
    // By member, then revision descending, then id ascending: each member's first is counted.
    candidates.sort_by(|a, b| {
        a.member
            .cmp(&b.member)
            .then(b.revision.cmp(&a.revision))
            .then(a.id.cmp(&b.id))
    });
    let mut picked = Picked {
        counted: Vec::new(),
        excluded: Vec::new(),
        equivocations: Vec::new(),
    };
    let mut current: Option<Candidate<'_>> = None;
    let mut equivocal: Vec<OpId> = Vec::new();
    let flush = |equivocal: &mut Vec<OpId>, member: Option<[u8; 32]>, picked: &mut Picked<'_>| {
        if let Some(member) = member
            && equivocal.len() > 1
        {
            picked
                .equivocations
                .push((member, std::mem::take(equivocal)));
        }
        equivocal.clear();
    };
    for candidate in candidates {
        match &current {
            Some(first) if first.member == candidate.member => {
                let reason =
                    if candidate.revision == first.revision && candidate.scores != first.scores {
                        equivocal.push(candidate.id);
                        Exclusion::Equivocation
                    } else {
                        Exclusion::Superseded
                    };
                picked.excluded.push((candidate, reason));
            }
            _ => {
                flush(
                    &mut equivocal,
                    current.as_ref().map(|c| c.member),
                    &mut picked,
                );
                equivocal.push(candidate.id);
                picked.counted.push(candidate.clone());
                current = Some(candidate);
            }
        }
    }
    flush(
        &mut equivocal,
        current.as_ref().map(|c| c.member),
        &mut picked,
    );
    picked.counted.sort_by_key(|c| c.id);
    picked
}
