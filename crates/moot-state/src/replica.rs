//! A hub replica: takes signed ops in any order, validates each at its causal position, and
//! derives the roll from the valid op set.
//!
//! # Validity
//! An op is accepted into the replica when it decodes, its signature verifies for the hub, its
//! body decodes, a known kind is in its kind's lane, its dependencies are present (otherwise
//! it waits, bounded per source) and none was rejected, a public op depends only on public
//! ops, it continues its author's chain in its lane (`prev` is the author's op in the same lane
//! with `seq - 1`), and its author was allowed to write it in the **roll state of its causal
//! past**: the resolution of the roll ops it causally follows. That check is made once, since
//! an op's past never changes.
//!
//! Whether an accepted op *counts* can still depend on concurrent ops:
//! - **Roll ops** (the explicit list `body::kind::ROLL_KINDS`) are resolved in one
//!   deterministic order: each op after its causal ancestors; among concurrent ones, the author
//!   with the higher seniority first (the founder, then stewards in the order they became
//!   stewards, then everyone else), then the lower op id. Each must be authorized by the roll as
//!   resolved so far, so a removal processed first disables the removed member's concurrent
//!   roll ops.
//! - **Other ops** count only if every roll fact their authorization used (the author's
//!   admission, their device's certification, any role) comes from a roll op that the resolved
//!   roll accepts, and they are not beyond a removal or revocation cut they do not follow.
//!
//! # Kinds this node does not know
//! An op of an unknown kind is `Unsupported`: kept, relayed, its author's standing and lane
//! checked, never applied. A known op that names an unsupported (or held) op among its
//! dependencies, or any op whose causal past holds an unsupported op of the roll family (whose
//! effect on the roll this node cannot know), is held as `NeedsUpgrade`: kept, not judged, and
//! judged when a newer node loads it.
//!
//! Everything is a pure function of the set of ops: two replicas holding the same ops agree on
//! every result, whatever the order of arrival (a property test checks it).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Hash maps keyed by op ids and keys: a fast, randomly seeded hasher. Iteration order of these
/// maps never reaches a result (ordered maps are used wherever it could).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

use moot_crypto::{Authentic, DecodeError, Draft, HubId, Lane, OpId, SecretKey, SignedOp};

use crate::body::{Body, BodyError, Checkpoint, DeviceId, LaneCut, MemberId, kind};
pub use crate::index::Verdict;
use crate::index::{Index, Meta, NONE, ONE_OP, OpSet, OpSets, shrink, spare_bytes};
use crate::roll::{Denied, Roll, Status};

mod aid;
mod deliberation;
mod docs;
mod polls;

/// Bounds on what a replica buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Ops waiting for missing dependencies, at most, per source.
    pub max_pending: usize,
    /// Bytes of ops waiting for missing dependencies, at most, per source.
    pub max_pending_bytes: usize,
    /// Rejections remembered (so a replayed bad op is a quiet duplicate), at most. Forgetting
    /// one only means judging it again, with the same result.
    pub max_remembered_rejections: usize,
    /// Cached roll resolutions (performance only: results never depend on it).
    pub max_cached_rolls: usize,
    /// Estimated bytes of cached roll resolutions, at most (an extension of a cached roll by
    /// one op shares all but the paths it changed; a roll resolved afresh shares nothing).
    pub max_cached_roll_bytes: usize,
    /// Whether the replica keeps the bytes of the ops it holds.
    pub retain: Retain,
}

/// What a replica keeps of the ops it holds, beyond its compact index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retain {
    /// Every op's bytes, in memory (tools, tests, short-lived replicas).
    Everything,
    /// Only the index (about 60 bytes per op) and what resolving the roll reads of roll ops (no
    /// op bytes): op bytes live in the store, and the caller persists what
    /// [`Insertion::kept`] hands it. What a long-running node uses.
    IndexOnly,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pending: 10_000,
            max_pending_bytes: 4 * 1024 * 1024,
            max_remembered_rejections: 65_536,
            max_cached_rolls: 4_096,
            max_cached_roll_bytes: 32 * 1024 * 1024,
            retain: Retain::Everything,
        }
    }
}

/// Where ops came from (a peer, a bundle): waiting ops are held and bounded per source, and
/// dropped with it. The caller numbers its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source(pub u64);

impl Source {
    /// The source of [`Replica::insert`] and [`Replica::insert_batch`].
    pub const DEFAULT: Source = Source(0);
}

/// Why an op was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The bytes are not an op.
    #[error("malformed op: {0}")]
    Malformed(DecodeError),
    /// The signature does not verify for this hub and author.
    #[error("signature does not verify")]
    BadSignature,
    /// The body does not decode for its kind.
    #[error("malformed body: {0}")]
    MalformedBody(BodyError),
    /// `prev` is not the author's previous op.
    #[error("prev is not the author's op with the previous sequence number")]
    BrokenChain,
    /// A dependency was itself rejected.
    #[error("depends on rejected op {0}")]
    InvalidDependency(OpId),
    /// The author was not allowed to write this op at its causal position.
    #[error("not allowed: {0}")]
    Unauthorized(Denied),
    /// Too many ops (or bytes) already wait for dependencies from this source; send it again
    /// later. Not remembered.
    #[error("too many ops waiting for dependencies")]
    PendingFull,
    /// The op's dependencies are missing and its author is not certified in the current roll
    /// (nor a device presenting its own certificate for a member on the roll): it is not held
    /// while it waits. Send its dependencies first. Not remembered.
    #[error("dependencies missing, and the author is not on the roll: not held")]
    NotHeld,
    /// A known kind written in the other lane.
    #[error("kind {kind} belongs in the {} lane", expected.as_str())]
    WrongLane {
        /// The kind.
        kind: u16,
        /// Its lane.
        expected: Lane,
    },
    /// A public op depends on a members-lane op.
    #[error("public op depends on members-lane op {0}")]
    LaneDependency(OpId),
}

impl Reason {
    /// True for refusals that are not remembered: the same bytes may be judged again later
    /// (the buffer was full, dependencies were missing), or remembering them would let a
    /// stranger fill memory (their author is not on the roll; a bad signature can name anyone:
    /// checking it again costs what remembering would save).
    fn forgettable(&self) -> bool {
        matches!(
            self,
            Reason::PendingFull
                | Reason::NotHeld
                | Reason::BadSignature
                | Reason::Unauthorized(Denied::UnknownDevice)
        )
    }
}

/// A rejected op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("op {}: {reason}", op.map(|o| o.to_string()).unwrap_or_else(|| "?".into()))]
pub struct Rejection {
    /// The op id, when the bytes decoded far enough to have one.
    pub op: Option<OpId>,
    /// Why.
    pub reason: Reason,
}

/// What became of one op given to [`Replica::insert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted (valid at its causal position).
    Accepted(OpId),
    /// A kind this node does not know: kept and relayed (its author's standing and lane
    /// checked), never applied.
    Unsupported(OpId),
    /// Kept but not judged: it depends on an op this node cannot interpret. Judged by a node
    /// that knows the newer kinds.
    NeedsUpgrade(OpId),
    /// Already held, or already rejected: nothing changed.
    Duplicate(OpId),
    /// Waiting for these dependencies.
    Pending {
        /// The op.
        op: OpId,
        /// Dependencies not yet held.
        missing: Vec<OpId>,
    },
    /// Rejected.
    Rejected(Rejection),
}

impl Outcome {
    /// The op to store, when this outcome keeps one: accepted, unsupported, or held for an
    /// upgrade.
    pub fn kept(&self) -> Option<OpId> {
        match self {
            Outcome::Accepted(id) | Outcome::Unsupported(id) | Outcome::NeedsUpgrade(id) => {
                Some(*id)
            }
            _ => None,
        }
    }
}

/// The result of one insertion: the op's own outcome, plus ops that were waiting for it and
/// have now been accepted or rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insertion {
    /// The op given.
    pub outcome: Outcome,
    /// Waiting ops this one released.
    pub released: Vec<Outcome>,
    /// Every op this insertion kept (the op given and the ops it released), in acceptance
    /// order, with its verdict: what the caller stores.
    pub kept: Vec<(Authentic<SignedOp>, Verdict)>,
}

/// Two ops with the same author, lane and sequence number: a forked chain, kept as evidence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Equivocation {
    /// The device.
    pub device: DeviceId,
    /// The lane of the forked chain.
    pub lane: Lane,
    /// The sequence number.
    pub seq: u64,
    /// The conflicting ops, ascending.
    pub ops: Vec<OpId>,
}

/// The maximal roll ops in an op's causal past (an antichain), ascending. Every roll op in the
/// past is reachable from it through `roll_parents` links, so it identifies the past exactly,
/// forks included. Most hold one op (every judged roll op presents itself to its children),
/// which sits inline: 40 bytes, where a shared slice of one id was a 64-byte block besides
/// the 16-byte handle.
#[derive(Debug, Clone, Eq)]
enum Frontier {
    One(OpId),
    Many(Arc<[OpId]>),
}

impl std::ops::Deref for Frontier {
    type Target = [OpId];

    fn deref(&self) -> &[OpId] {
        match self {
            Frontier::One(id) => std::slice::from_ref(id),
            Frontier::Many(ids) => ids,
        }
    }
}

impl PartialEq for Frontier {
    fn eq(&self, other: &Frontier) -> bool {
        **self == **other
    }
}

impl From<Vec<OpId>> for Frontier {
    fn from(ids: Vec<OpId>) -> Frontier {
        match ids.as_slice() {
            [one] => Frontier::One(*one),
            _ => Frontier::Many(ids.into()),
        }
    }
}

impl OpSet for Frontier {
    fn ops(&self) -> &[OpId] {
        self
    }
}

impl OpSet for crate::roll::Facts {
    fn ops(&self) -> &[OpId] {
        crate::roll::Facts::ops(self)
    }
}

/// A judged roll op: what resolving the roll reads of it (roll ops are low-volume governance,
/// and a resolution may re-read any of them). Its bytes are not kept: they are in the store.
struct RollNode {
    /// The author device's number (`Replica::devices`).
    author: u32,
    lane: Lane,
    /// Its sequence number (an indexed op's fits: see [`Meta`]).
    seq: u32,
    body: RollBody,
    /// The frontier of the op's strict causal past (its number: [`Replica::frontier_ids`]).
    roll_parents: u32,
    /// The maximal public roll ops in its strict past (for a public op, `roll_parents`).
    public_parents: u32,
    /// The roll facts its authorization used at its causal position (their number:
    /// [`RollTable::facts`]).
    facts: u32,
    /// The longest chain of roll ops ending here (at most the number of roll ops).
    roll_depth: u32,
    /// Seniority of the author in the op's causal past (orders concurrent roll ops).
    rank: u64,
}

impl RollNode {
    /// The longest chain of roll ops ending here.
    fn depth(&self) -> u64 {
        u64::from(self.roll_depth)
    }

    /// Its body, as resolving the roll reads it (a certification's certificate zeroed).
    fn body(&self) -> std::borrow::Cow<'_, Body> {
        self.body.get()
    }
}

/// A judged roll op's body. The kinds every member brings sit inline; a device certification
/// leaves out its certificate, checked once when the op arrived and never read again (the
/// certificate is 64 of `CertifyDevice`'s 128 bytes, which make `Body` 136); the rarer kinds
/// are boxed. 72 bytes where the body was 136: on W (20,000 roll ops, half of them
/// certifications) 1.3 MB less.
enum RollBody {
    Admit(crate::body::Admit),
    Certified { member: MemberId, device: DeviceId },
    SetName(crate::body::SetName),
    Other(Box<Body>),
}

impl RollBody {
    fn new(body: Body) -> RollBody {
        match body {
            Body::Admit(admit) => RollBody::Admit(admit),
            Body::CertifyDevice(c) => RollBody::Certified {
                member: c.member,
                device: c.device,
            },
            Body::SetName(set) => RollBody::SetName(set),
            other => RollBody::Other(Box::new(other)),
        }
    }

    /// The body, a certification's certificate zeroed.
    fn get(&self) -> std::borrow::Cow<'_, Body> {
        use std::borrow::Cow;
        match self {
            RollBody::Admit(admit) => Cow::Owned(Body::Admit(admit.clone())),
            RollBody::Certified { member, device } => {
                Cow::Owned(Body::CertifyDevice(crate::body::CertifyDevice {
                    member: *member,
                    device: *device,
                    certificate: crate::body::Certificate([0; 64]),
                }))
            }
            RollBody::SetName(set) => Cow::Owned(Body::SetName(set.clone())),
            RollBody::Other(body) => Cow::Borrowed(body),
        }
    }
}

/// The judged roll ops, by index number, ascending (numbers are given in acceptance order, so
/// a roll op accepted goes at the end). Found through the index: a node costs its own bytes
/// and 4 more, where a table by id cost 40 more and a box each.
#[derive(Default)]
struct RollTable {
    numbers: Vec<u32>,
    nodes: Vec<RollNode>,
    /// The sets of facts the nodes hold, one copy each: the members a steward admitted share
    /// the steward's (W: 10,000 admissions by one steward, where each kept its own 96 bytes).
    /// A set of one op held (a device certifying itself names its own member's admission: W's
    /// 10,000 certifications) is numbered by the op itself and costs nothing.
    facts: OpSets<crate::roll::Facts>,
}

impl RollTable {
    /// The node of roll op `id`, if judged.
    fn get(&self, index: &Index, id: &OpId) -> Option<&RollNode> {
        let n = index.number(id)?;
        let at = self.numbers.binary_search(&n).ok()?;
        self.nodes.get(at)
    }

    /// Records the node of the op numbered `n` (the newest op: numbers only grow).
    fn push(&mut self, n: u32, node: RollNode) {
        debug_assert!(self.numbers.last().is_none_or(|last| *last < n));
        self.numbers.push(n);
        self.nodes.push(node);
    }

    /// The roll ops of the set of facts numbered `n`.
    fn facts<'a>(&'a self, index: &'a Index, n: u32) -> &'a [OpId] {
        self.facts.ops(index, n)
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if `id` is a judged roll op of `lane`.
    fn judged_in(&self, index: &Index, id: &OpId, lane: Lane) -> bool {
        self.get(index, id).is_some_and(|node| node.lane == lane)
    }

    /// The judged roll ops of `lane` with their nodes, in acceptance order. (Their order
    /// decides nothing: resolution orders them itself.)
    fn judged<'a>(
        &'a self,
        index: &'a Index,
        lane: Lane,
    ) -> impl Iterator<Item = (OpId, &'a RollNode)> + 'a {
        self.numbers
            .iter()
            .zip(&self.nodes)
            .filter(move |(_, node)| node.lane == lane)
            .filter_map(|(n, node)| Some((index.id(*n)?, node)))
    }

    /// Gives back the spare capacity (grown by doubling).
    fn shrink_to_fit(&mut self) {
        shrink(&mut self.numbers);
        shrink(&mut self.nodes);
        self.facts.shrink_to_fit();
    }

    fn spare_bytes(&self) -> usize {
        spare_bytes(&self.numbers) + spare_bytes(&self.nodes) + self.facts.spare_bytes()
    }
}

/// True if ops after this one cannot be judged by this node: an unsupported op of the roll
/// family, or a roll op held for an upgrade.
fn taints(meta: &Meta) -> bool {
    match meta.verdict() {
        Verdict::Accepted => false,
        Verdict::Unsupported => kind::ROLL.contains(&meta.kind),
        Verdict::NeedsUpgrade => kind::is_roll(meta.kind),
    }
}

/// The outcome of resolving a causally closed set of roll ops.
#[derive(Debug, Clone, Default)]
struct Resolution {
    roll: Roll,
    denied: imbl::OrdMap<OpId, Denied>,
}

impl Resolution {
    /// Resolves one more public roll op, the next in resolution order: it must be authorized
    /// by the roll as resolved so far, and every roll fact its authorization used at its causal
    /// position (`facts`) must be accepted (the validity rule, as for every other op). Applied
    /// if so, denied with the reason if not.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        hub: &HubId,
        id: OpId,
        author: &DeviceId,
        lane: Lane,
        seq: u64,
        body: &Body,
        facts: &[OpId],
    ) {
        let verdict = self.roll.authorize(hub, author, lane, body).and_then(|_| {
            match facts.iter().find(|f| self.denied.contains_key(*f)) {
                Some(fact) => Err(Denied::UnacceptedFact(*fact)),
                // Resting on a role grant revoked with a cut this op is beyond (it waited for
                // the revocation in the resolution order, so the cut is known here).
                None if self.roll.beyond_grant_cut(facts, author, lane, seq) => {
                    Err(Denied::BeyondCut)
                }
                None => Ok(()),
            }
        });
        match verdict {
            Ok(()) => self.roll.apply(id, author, body),
            Err(denied) => {
                self.denied.insert(id, denied);
            }
        }
    }
}

/// What a worker made of one op of a batch.
// Nearly every op is the large variant; boxing it would add an allocation per op.
#[allow(clippy::large_enum_variant)]
enum Checked {
    /// The bytes are not an op.
    Malformed(DecodeError),
    /// The signature does not verify.
    BadSignature(moot_crypto::SignatureError),
    /// Authentic, with its body decoded, and whether the device certificate the body carries
    /// (a genesis, a device certification) verified: all on the worker thread, off the
    /// validating one. A body that does not decode, and a certificate that fails, are left to
    /// validation, which gives the reason.
    Authentic {
        op: Authentic<SignedOp>,
        body: Result<Body, BodyError>,
        certificates_checked: bool,
    },
}

/// Signature checks' results with the bodies decoded and the device certificates they carry
/// verified, together in Ed25519 batches.
fn certify(
    hub: &HubId,
    verified: Vec<Result<Authentic<SignedOp>, moot_crypto::SignatureError>>,
) -> Vec<Checked> {
    let mut out: Vec<Checked> = verified
        .into_iter()
        .map(|result| match result {
            Ok(op) => {
                let body = Body::decode(op.kind(), op.body());
                Checked::Authentic {
                    op,
                    body,
                    certificates_checked: false,
                }
            }
            Err(error) => Checked::BadSignature(error),
        })
        .collect();
    let mut carried = Vec::new();
    for (at, checked) in out.iter().enumerate() {
        if let Checked::Authentic {
            op, body: Ok(body), ..
        } = checked
            && let Some(certificate) = body.certificate(hub, &op.author())
        {
            carried.push((at, certificate));
        }
    }
    let checks: Vec<moot_crypto::SignatureCheck<'_>> = carried
        .iter()
        .map(
            |(_, (member, message, signature))| moot_crypto::SignatureCheck {
                key: member,
                message,
                signature,
            },
        )
        .collect();
    let verdicts = moot_crypto::verify_signatures(&checks);
    for ((at, _), holds) in carried.iter().zip(verdicts) {
        if holds
            && let Some(Checked::Authentic {
                certificates_checked,
                ..
            }) = out.get_mut(*at)
        {
            *certificates_checked = true;
        }
    }
    out
}

/// What the checks made of a run of ops, in their order: each decoded, its signature and
/// the device certificates its body carries verified, its body decoded ([`check_chunk`]).
/// Validation ([`Replica::insert_checked_runs`]) needs the replica; this does not.
pub struct CheckedChunk(Vec<Checked>);

impl CheckedChunk {
    /// How many ops.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if it holds no op.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for CheckedChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckedChunk({} ops)", self.0.len())
    }
}

/// Decodes `ops` (for `hub`) and checks their signatures in Ed25519 batches, decodes their
/// bodies and checks the device certificates the bodies carry: all of a batch's work that
/// does not need the replica, and most of its cost. `authors` keeps the keys parsed (with their
/// points) for the next chunks. Pure: the result depends only on `hub` and `ops`.
pub fn check_chunk<B: AsRef<[u8]>>(
    hub: &HubId,
    ops: &[B],
    authors: &mut moot_crypto::ParsedKeys,
) -> CheckedChunk {
    let mut errors = Vec::new();
    let mut decoded = Vec::with_capacity(ops.len());
    let mut decoded_at = Vec::with_capacity(ops.len());
    for (position, bytes) in ops.iter().enumerate() {
        match decode_cached(authors, bytes.as_ref()) {
            Ok(op) => {
                decoded.push(op);
                decoded_at.push(position);
            }
            Err(error) => errors.push((position, error)),
        }
    }
    let verified = certify(
        hub,
        moot_crypto::authenticate_sequential_with(hub, decoded, authors),
    );
    let mut verified = decoded_at.into_iter().zip(verified).peekable();
    // Merge back into input order (decode errors were pushed in order).
    let mut merged = Vec::with_capacity(ops.len());
    let mut errors = errors.into_iter().peekable();
    loop {
        let take_error = match (errors.peek(), verified.peek()) {
            (Some((e, _)), Some((v, _))) => e < v,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_error {
            errors.next().map(|(_, e)| Checked::Malformed(e))
        } else {
            verified.next().map(|(_, checked)| checked)
        };
        if let Some(next) = next {
            merged.push(next);
        }
    }
    CheckedChunk(merged)
}

/// An op waiting for dependencies, with where it came from.
struct Waiting {
    op: Authentic<SignedOp>,
    source: Source,
}

/// What one source has waiting.
#[derive(Default, Clone, Copy)]
struct Usage {
    ops: usize,
    bytes: usize,
}

/// Why a draft could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DraftError {
    /// The body cannot be encoded (an unknown kind).
    #[error("this body cannot be written by this node")]
    NotWritable,
    /// The body's kind belongs in another lane.
    #[error("kind {kind} belongs in the {} lane", expected.as_str())]
    WrongLane {
        /// The kind.
        kind: u16,
        /// Its lane.
        expected: Lane,
    },
    /// More dependencies than an op may name.
    #[error("{0} dependencies: more than an op may name")]
    TooManyDeps(usize),
    /// A public op cannot depend on a members-lane op.
    #[error("a public op cannot depend on members-lane op {0}")]
    LaneDependency(OpId),
    /// A dependency is not held here.
    #[error("dependency {0} is not held")]
    UnknownDependency(OpId),
}

/// The points of a replica's certified devices, for checks started away from it
/// ([`Replica::device_points`]): read and filled by those checks, and nothing else — devices
/// are added by the replica only.
#[derive(Clone)]
pub struct DevicePoints(pub(crate) Arc<moot_crypto::KnownPoints>);

impl std::fmt::Debug for DevicePoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DevicePoints({} devices)", self.0.len())
    }
}

/// One hub's ops and the state derived from them.
pub struct Replica {
    hub: HubId,
    limits: Limits,
    /// Every op held: id, sequence, device, frontier, kind, lane, verdict.
    index: Index,
    /// Judged roll ops: what resolving the roll reads of each (not its bytes).
    rolls: RollTable,
    /// Op bytes, with [`Retain::Everything`].
    archive: HashMap<OpId, Authentic<SignedOp>>,
    /// Author devices by number.
    devices: Vec<moot_crypto::PublicKey>,
    /// Finds a device's number by its key ([`Replica::device_no`]).
    device_places: crate::index::Places,
    /// Roll frontiers by number (interned: many ops share one; one of a single op held, which
    /// every judged roll op presents to its children, is numbered by the op and costs nothing).
    frontiers: OpSets<Frontier>,
    /// The frontier of the union of two frontiers, by their numbers (ascending): an op naming
    /// an old roll op beside the current heads (a ballot names its poll's open) would otherwise
    /// walk every roll op written since, for each op. Pure (ancestry among held roll ops never
    /// changes), so a cache; bounded.
    unions: HashMap<(u32, u32), u32>,
    /// The newest op of each (device, lane) chain (lowest id at a forked seq).
    tips: HashMap<(u32, Lane), u32>,
    /// The first op of each (device, lane) chain (to detect a fork at seq 1).
    firsts: HashMap<(u32, Lane), u32>,
    /// Forked chain positions: (device key bytes, lane, seq) → op ids, ascending.
    forks: BTreeMap<([u8; 32], Lane, u64), Vec<OpId>>,
    /// The maximal judged roll ops, per lane: what a new op names so that its authority is
    /// judged against the roll its author saw. The members lane sees both lanes' roll ops.
    roll_heads: [BTreeSet<OpId>; 2],
    rejected: HashMap<OpId, Reason>,
    rejected_order: VecDeque<OpId>,
    pending: HashMap<OpId, Waiting>,
    waiting_on: HashMap<OpId, BTreeSet<OpId>>,
    usage: BTreeMap<Source, Usage>,
    /// Rolls of causal pasts, by interned frontier number.
    cache: HashMap<u32, (Arc<Resolution>, usize)>,
    cache_order: VecDeque<u32>,
    cache_bytes: usize,
    global: Option<Arc<Resolution>>,
    /// Non-roll ops (by index number) whose authorization also rested on roll ops beyond the
    /// author's standing, and those ops: few (decisions and amendment resolutions by
    /// conveners, coordinators' changes to others' offers and requests).
    rested_on: HashMap<u32, crate::roll::Facts>,
    /// Parsed author keys (parsing a key dominates decoding); bounded.
    authors: moot_crypto::ParsedKeys,
    /// Devices that a certificate held here names (a genesis or a device certification, judged
    /// or held for an upgrade), with their curve points, shared with the threads that check
    /// signatures. An op by any other device cannot be valid here, so it is refused before any
    /// work that costs memory, and its refusal is not remembered.
    points: Arc<moot_crypto::KnownPoints>,
    /// Assemblies, polls and ballots.
    governance: polls::Governance,
    /// Proposals and their documents' changes.
    deliberation: deliberation::Deliberation,
    /// The mutual-aid board.
    aid: aid::AidBoard,
    /// Per op (by index number), where its parents start in `dep_list` (one entry more
    /// than ops).
    dep_start: Vec<u32>,
    /// The parents' index numbers of every op, op after op.
    dep_list: Vec<u32>,
}

/// Most parsed author keys kept.
const MAX_CACHED_AUTHORS: usize = 4_096;
/// Most frontier unions kept (12 bytes each, plus the table's overhead).
const MAX_CACHED_UNIONS: usize = 65_536;
/// Estimated bytes of one member or device record in a roll resolved afresh (the record, its
/// key, and its share of the persistent map's nodes).
const ENTRY_BYTES: usize = 320;
/// Estimated bytes a cached roll adds when it extends another by one op (the copied paths).
const EXTENSION_BYTES: usize = 16 * 1024;

/// How far validation has got in a batch insertion (chunks validated), for the workers that
/// check signatures ahead of it; `stopped` once validation has ended.
#[derive(Default)]
struct ValidatedUpTo {
    state: std::sync::Mutex<(usize, bool)>,
    changed: std::sync::Condvar,
}

impl ValidatedUpTo {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, bool)> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until chunk `index` is within `window` chunks of the next one to validate; false
    /// if validation has ended (the chunk is not needed).
    fn wait_within(&self, index: usize, window: usize) -> bool {
        let mut state = self.lock();
        while index >= state.0.saturating_add(window) && !state.1 {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        !state.1
    }

    /// Validation has got to chunk `expected`.
    fn set(&self, expected: usize) {
        self.lock().0 = expected;
        self.changed.notify_all();
    }

    /// Marks validation ended when the guard is dropped.
    fn release_on_drop(&self) -> impl Drop + '_ {
        struct Release<'a>(&'a ValidatedUpTo);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.lock().1 = true;
                self.0.changed.notify_all();
            }
        }
        Release(self)
    }
}

/// Decodes an op, parsing its author key through `authors` (parsing a key costs more than
/// decoding the rest of an op, and checking the op's signature needs the point it parsed; the
/// cache is bounded).
fn decode_cached(
    authors: &mut moot_crypto::ParsedKeys,
    bytes: &[u8],
) -> Result<SignedOp, DecodeError> {
    SignedOp::decode_with(bytes, |raw| authors.parse(raw))
}

/// A cache of parsed author keys (bounded) that takes the points of the devices in `points`
/// from there.
fn author_keys(points: &Arc<moot_crypto::KnownPoints>) -> moot_crypto::ParsedKeys {
    let mut keys = moot_crypto::ParsedKeys::new(MAX_CACHED_AUTHORS);
    keys.consult(Some(Arc::clone(points)));
    keys
}

fn lane_index(lane: Lane) -> usize {
    match lane {
        Lane::Public => 0,
        Lane::Members => 1,
    }
}

impl Replica {
    /// An empty replica of `hub`.
    pub fn new(hub: HubId, limits: Limits) -> Self {
        let points = Arc::new(moot_crypto::KnownPoints::new());
        let authors = author_keys(&points);
        Replica {
            hub,
            limits,
            index: Index::new(),
            rolls: RollTable::default(),
            archive: HashMap::default(),
            devices: Vec::new(),
            device_places: crate::index::Places::default(),
            frontiers: OpSets::default(),
            unions: HashMap::default(),
            tips: HashMap::default(),
            firsts: HashMap::default(),
            forks: BTreeMap::new(),
            roll_heads: [BTreeSet::new(), BTreeSet::new()],
            rejected: HashMap::default(),
            rejected_order: VecDeque::new(),
            pending: HashMap::default(),
            waiting_on: HashMap::default(),
            usage: BTreeMap::new(),
            cache: HashMap::default(),
            cache_order: VecDeque::new(),
            cache_bytes: 0,
            global: None,
            rested_on: HashMap::default(),
            authors,
            points,
            governance: polls::Governance::default(),
            deliberation: deliberation::Deliberation::default(),
            aid: aid::AidBoard::default(),
            dep_start: vec![0],
            dep_list: Vec::new(),
        }
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<SignedOp, DecodeError> {
        decode_cached(&mut self.authors, bytes)
    }

    /// The hub.
    pub fn hub(&self) -> HubId {
        self.hub
    }

    /// Ops accepted (including unsupported and held ones).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no op is held.
    pub fn is_empty(&self) -> bool {
        self.index.len() == 0
    }

    /// Makes room for `additional` more ops (a load of known size), so the index does not
    /// over-allocate as it grows.
    pub fn reserve(&mut self, additional: usize) {
        self.index.reserve(additional);
    }

    /// Roll ops held (accepted ones, judged and kept decoded): the roll, and what is derived
    /// from it, can only have changed if this grew.
    pub fn roll_op_count(&self) -> usize {
        self.rolls.len()
    }

    /// Distinct roll frontiers of more than one op interned (a diagnostic: they grow with
    /// concurrent combinations of roll ops that kept ops present, never with refused ops; a
    /// frontier of one op is numbered by the op itself and costs nothing).
    pub fn frontier_count(&self) -> usize {
        self.frontiers.len()
    }

    /// Heap bytes of the per-op index (what grows with the hub; the roll ops, the roll
    /// caches and retained op bytes are not counted).
    pub fn index_bytes(&self) -> usize {
        self.index.heap_bytes()
    }

    /// Lets go of what only speeds up taking in more ops, for a node whose arrivals have
    /// settled: the cached rolls of causal pasts (all but those of the current roll heads,
    /// which new ops name; a full sync leaves thousands, tens of MB, that no new op will name),
    /// the cached frontier unions and parsed author keys, and the spare capacity of the per-op
    /// tables. Results never depend on it: a roll dropped here is resolved again if an op needs
    /// it.
    pub fn shed_caches(&mut self) {
        let heads: BTreeSet<OpId> = self.roll_heads.iter().flatten().copied().collect();
        let (frontiers, index) = (&self.frontiers, &self.index);
        self.cache.retain(|number, _| {
            frontiers
                .ops(index, *number)
                .iter()
                .all(|id| heads.contains(id))
        });
        self.cache.shrink_to_fit();
        let cache = &self.cache;
        self.cache_order.retain(|number| cache.contains_key(number));
        self.cache_order.shrink_to_fit();
        self.cache_bytes = self.cache.values().map(|(_, bytes)| bytes).sum();
        self.unions = HashMap::default();
        self.authors = author_keys(&self.points);
        self.points.shrink_to_fit();
        self.shrink_tables();
    }

    /// Gives back the per-op tables' spare capacity but a little room ([`shrink`]): the tables
    /// [`Replica::spare_bytes`] counts.
    fn shrink_tables(&mut self) {
        self.index.shrink_to_fit();
        self.rolls.shrink_to_fit();
        shrink(&mut self.dep_start);
        shrink(&mut self.dep_list);
        shrink(&mut self.devices);
        self.frontiers.shrink_to_fit();
        self.device_places
            .shrink_to_fit(&self.devices, moot_crypto::PublicKey::as_bytes);
        self.deliberation.changes.shrink_to_fit();
    }

    /// Bytes of spare capacity in the per-op tables (grown by doubling): what
    /// [`Replica::shed_caches`] would give back of them ([`Replica::shrink_tables`]). A node
    /// that shed its caches during a burst of arrivals sheds again at its end if this is large,
    /// whatever the burst's size: one doubling near the end can leave megabytes unused.
    pub fn spare_bytes(&self) -> usize {
        self.index.spare_bytes()
            + self.rolls.spare_bytes()
            + spare_bytes(&self.dep_start)
            + spare_bytes(&self.dep_list)
            + spare_bytes(&self.devices)
            + self.frontiers.spare_bytes()
            + self.deliberation.changes.spare_bytes()
    }

    /// Cached rolls of causal pasts (a diagnostic of [`Replica::shed_caches`]).
    pub fn cached_rolls(&self) -> usize {
        self.cache.len()
    }

    /// The verdict on an op held.
    pub fn verdict(&self, id: &OpId) -> Option<Verdict> {
        self.index.get(id).map(|(_, m)| m.verdict())
    }

    /// Ops waiting for dependencies, all sources.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Bytes of ops waiting for dependencies from `source`.
    pub fn pending_bytes(&self, source: Source) -> usize {
        self.usage.get(&source).map_or(0, |u| u.bytes)
    }

    /// Rejections remembered.
    pub fn remembered_rejections(&self) -> usize {
        self.rejected.len()
    }

    /// The bytes of an op held, when the replica keeps them ([`Retain::Everything`]; otherwise
    /// they are in the store).
    pub fn op_bytes(&self, id: &OpId) -> Option<&[u8]> {
        self.op(id).map(SignedOp::bytes)
    }

    /// An op held, when the replica has its bytes (see [`Replica::op_bytes`]).
    pub fn op(&self, id: &OpId) -> Option<&SignedOp> {
        self.archive.get(id).map(|op| op.get())
    }

    /// True if the op is held, waiting, or was rejected: giving it again changes nothing.
    fn is_known(&self, id: &OpId) -> bool {
        self.index.contains(id) || self.rejected.contains_key(id) || self.pending.contains_key(id)
    }

    /// True if the op is held (accepted, unsupported or held for an upgrade).
    pub fn holds(&self, id: &OpId) -> bool {
        self.index.contains(id)
    }

    /// True if an op held here is `id` and sits in the chain of the device with key bytes
    /// `device`, in `lane`, at `seq` (what a peer's head claims of it).
    pub fn holds_in_chain(&self, id: &OpId, device: &[u8; 32], lane: Lane, seq: u64) -> bool {
        self.index.get(id).is_some_and(|(_, meta)| {
            meta.lane() == lane
                && meta.seq() == seq
                && self
                    .devices
                    .get(meta.device as usize)
                    .is_some_and(|key| key.to_bytes() == *device)
        })
    }

    /// Every accepted op id, ascending.
    pub fn op_ids(&self) -> BTreeSet<OpId> {
        self.index.ids().iter().copied().collect()
    }

    /// Why an op was rejected, if it was (and is still remembered).
    pub fn rejection(&self, id: &OpId) -> Option<&Reason> {
        self.rejected.get(id)
    }

    /// The latest op of `device`'s chain in `lane` held here: `(seq, id)` (at a forked seq,
    /// the lowest id).
    pub fn chain_head(&self, device: &DeviceId, lane: Lane) -> Option<(u64, OpId)> {
        let device = self.device_no(device.as_bytes())?;
        let tip = *self.tips.get(&(device, lane))?;
        Some((self.index.meta(tip)?.seq(), self.index.id(tip)?))
    }

    /// The head of every (device, lane) chain held: each op that no op held continues (names
    /// as `prev`), so one per chain unless the chain is forked. Sorted by device, lane,
    /// sequence number and id. From memory, in time proportional to the chains (and, when some
    /// chain is forked, one pass over the index for the heads of forked chains): what a sync
    /// engine sends as its heads, without reading the store.
    pub fn chain_heads(&self) -> Vec<(DeviceId, Lane, u64, OpId)> {
        let mut heads: Vec<(DeviceId, Lane, u64, OpId)> = Vec::with_capacity(self.tips.len());
        let mut forked: HashSet<(u32, Lane)> = HashSet::default();
        for (&(device_no, lane), &tip) in &self.tips {
            let Some(device) = self.devices.get(device_no as usize) else {
                continue;
            };
            if self.is_forked(device, lane) {
                forked.insert((device_no, lane));
                continue;
            }
            // An unforked chain's latest op is its one head.
            if let (Some(meta), Some(id)) = (self.index.meta(tip), self.index.id(tip)) {
                heads.push((*device, lane, meta.seq(), id));
            }
        }
        if !forked.is_empty() {
            for (n, id) in self.index.ids().iter().enumerate() {
                let Some(meta) = self.index.meta(n as u32) else {
                    continue;
                };
                if meta.successor == NONE
                    && forked.contains(&(meta.device, meta.lane()))
                    && let Some(device) = self.devices.get(meta.device as usize)
                {
                    heads.push((*device, meta.lane(), meta.seq(), *id));
                }
            }
        }
        heads.sort_unstable_by(|a, b| {
            (a.0.to_bytes(), a.1, a.2, a.3).cmp(&(b.0.to_bytes(), b.1, b.2, b.3))
        });
        heads
    }

    /// True if `device`'s chain in `lane` holds two ops with one sequence number (a fork):
    /// its ops are then not all ancestors of one head. What a sync engine asks before it
    /// treats "the peer holds seq n" as "the peer holds every op up to n".
    pub fn is_forked(&self, device: &DeviceId, lane: Lane) -> bool {
        let key = device.to_bytes();
        self.forks
            .range((key, lane, 0)..=(key, lane, u64::MAX))
            .next()
            .is_some()
    }

    /// The highest sequence number of `device` in `lane` held here (what a removal's cut
    /// states, per lane), 0 if none.
    pub fn last_seq(&self, device: &DeviceId, lane: Lane) -> u64 {
        self.chain_head(device, lane).map_or(0, |(seq, _)| seq)
    }

    /// The last sequence numbers of `device` held here, per lane: what a removal or revocation
    /// written now accepts (its cut).
    pub fn lane_cut(&self, device: &DeviceId) -> LaneCut {
        LaneCut {
            public: self.last_seq(device, Lane::Public),
            members: self.last_seq(device, Lane::Members),
        }
    }

    /// The maximal judged roll ops visible to an op in `lane`, ascending.
    pub fn roll_heads(&self, lane: Lane) -> Vec<OpId> {
        self.roll_heads[lane_index(lane)].iter().copied().collect()
    }

    /// Decodes, authenticates and inserts one op from the default source.
    pub fn insert(&mut self, bytes: &[u8]) -> Insertion {
        self.insert_from(Source::DEFAULT, bytes)
    }

    /// Decodes, authenticates and inserts one op from `source`.
    pub fn insert_from(&mut self, source: Source, bytes: &[u8]) -> Insertion {
        let op = match self.decode(bytes) {
            Ok(op) => op,
            Err(error) => {
                return Self::single(Outcome::Rejected(Rejection {
                    op: None,
                    reason: Reason::Malformed(error),
                }));
            }
        };
        let id = op.id();
        if self.is_known(&id) {
            return Self::single(Outcome::Duplicate(id));
        }
        match op.authenticate(&self.hub) {
            Ok(op) => self.insert_authentic_from(source, op),
            Err(_) => {
                let outcome = self.reject(id, Reason::BadSignature);
                Self::single(outcome)
            }
        }
    }

    /// How many devices a certificate held here names, and of how many the curve point is
    /// held (for the threads that check signatures: a device's ops are checked without
    /// decompressing its key again).
    pub fn known_devices(&self) -> (usize, usize) {
        (self.points.len(), self.points.points_held())
    }

    /// Lets go of the certified devices' curve points (160 bytes each: 16 MB for a hub of
    /// 100,000 devices), keeping the devices; a check computes a point again when it needs it.
    /// For a node at rest: the points spare one square root per device in the next burst of
    /// their ops, which is what a node taking ops in should keep and a node that has taken
    /// none for a while need not. True if any point was held.
    pub fn forget_points(&mut self) -> bool {
        let held = self.points.points_held() > 0;
        self.points.forget_points();
        held
    }

    /// A handle on the points of the devices certified here, for checks started away from the
    /// replica ([`crate::precheck::Precheck::start_with`]: the sync's checking pool).
    pub fn device_points(&self) -> DevicePoints {
        DevicePoints(Arc::clone(&self.points))
    }

    /// The key of a device that ops held here are by, from its bytes, without parsing them
    /// again (they parsed when its first op was decoded): what `PublicKey::from_bytes` gives
    /// for them, without the square root. `None` for any other bytes.
    pub fn held_key(&self, raw: &[u8; 32]) -> Option<moot_crypto::PublicKey> {
        let n = self.device_no(raw)?;
        self.devices.get(n as usize).copied()
    }

    /// True if a certificate held here names `device`.
    pub fn names_device(&self, device: &moot_crypto::PublicKey) -> bool {
        self.points.contains(device)
    }

    /// Decodes and inserts many ops from the default source, checking their signatures in
    /// Ed25519 batches. Outcomes are the same as inserting them one by one, in order.
    pub fn insert_batch<B: AsRef<[u8]> + Sync>(&mut self, ops: &[B]) -> Vec<Insertion> {
        self.insert_batch_from(Source::DEFAULT, ops)
    }

    /// [`Replica::insert_batch`] from `source`.
    pub fn insert_batch_from<B: AsRef<[u8]> + Sync>(
        &mut self,
        source: Source,
        ops: &[B],
    ) -> Vec<Insertion> {
        let mut out: Vec<Insertion> = Vec::with_capacity(ops.len());
        self.insert_batch_runs(source, ops, &mut |run| {
            out.extend(run);
            true
        });
        out
    }

    /// [`Replica::insert_batch_from`] for a large input (an import, a whole poll's ballots):
    /// each run of outcomes, in input order, is handed over to `validated` as soon as it is
    /// validated and not kept here, so memory holds a few chunks of the input, not all of its
    /// outcomes. `validated` returns false to stop: the ops after that run are not inserted.
    /// Signature checks run ahead of validation by at most 8 chunks per worker thread.
    pub fn insert_batch_runs<B: AsRef<[u8]> + Sync>(
        &mut self,
        source: Source,
        ops: &[B],
        validated: &mut dyn FnMut(Vec<Insertion>) -> bool,
    ) {
        // Worker threads decode the ops and check their signatures in Ed25519 batches, chunk by
        // chunk, while this thread validates the chunks already checked, in input order. Only
        // validation (which needs the replica) runs here, so it overlaps all the rest.
        let hub = self.hub;
        let points = Arc::clone(&self.points);
        let chunk_count = ops.len().div_ceil(moot_crypto::op::BATCH);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let next_chunk = AtomicUsize::new(0);
        // Chunks are validated in input order and each keeps its ops' order: the outcomes come
        // out in input order. A worker starts a chunk only within `window` chunks of the next
        // one to validate, so the checks run at most that far ahead (8,192 ops on 2 cores; a
        // window of 4 chunks stalled the workers: 100,000 ballots took 6% longer).
        let window = 8 * workers;
        let validated_upto = ValidatedUpTo::default();
        std::thread::scope(|scope| {
            let (sender, receiver) = mpsc::sync_channel(workers);
            for _ in 0..workers.min(chunk_count) {
                let sender = sender.clone();
                let next_chunk = &next_chunk;
                let validated_upto = &validated_upto;
                let points = &points;
                scope.spawn(move || {
                    // Parsing a key costs more than decoding the rest of an op: each worker
                    // keeps the keys it parsed, with their points for the signature checks
                    // (bounded).
                    let mut authors = author_keys(points);
                    loop {
                        let index = next_chunk.fetch_add(1, Ordering::Relaxed);
                        if index >= chunk_count || !validated_upto.wait_within(index, window) {
                            break;
                        }
                        let start = index * moot_crypto::op::BATCH;
                        let end = (start + moot_crypto::op::BATCH).min(ops.len());
                        let checked = check_chunk(&hub, &ops[start..end], &mut authors);
                        if sender.send((index, checked)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            // However this thread leaves the loop (done, stopped, or unwinding), the workers
            // waiting for the window are released.
            let _release = validated_upto.release_on_drop();
            let mut ready: BTreeMap<usize, CheckedChunk> = BTreeMap::new();
            let mut expected = 0;
            for (index, checked) in receiver {
                ready.insert(index, checked);
                let mut run: Vec<Insertion> = Vec::new();
                while let Some(checked) = ready.remove(&expected) {
                    self.validate_chunk(source, checked, &mut run);
                    expected += 1;
                }
                validated_upto.set(expected);
                // Stopping drops the receiver: each worker's next send fails and it ends.
                if !run.is_empty() && !validated(run) {
                    break;
                }
            }
        });
    }

    /// [`Replica::insert_batch_runs`] for ops checked already, chunk by chunk ([`check_chunk`],
    /// e.g. on worker threads while an earlier batch was validated): each chunk is validated in
    /// the order given and its outcomes handed to `validated` as one run (stopping if it
    /// returns false). The result is the same as for the ops' bytes given in that order.
    pub fn insert_checked_runs(
        &mut self,
        source: Source,
        chunks: &mut dyn Iterator<Item = CheckedChunk>,
        validated: &mut dyn FnMut(Vec<Insertion>) -> bool,
    ) {
        for chunk in chunks {
            let mut run = Vec::with_capacity(chunk.len());
            self.validate_chunk(source, chunk, &mut run);
            if !run.is_empty() && !validated(run) {
                break;
            }
        }
    }

    /// Validates a checked chunk's ops in order, pushing each one's insertion to `run`.
    fn validate_chunk(&mut self, source: Source, chunk: CheckedChunk, run: &mut Vec<Insertion>) {
        for result in chunk.0 {
            let insertion = match result {
                Checked::Malformed(error) => Self::single(Outcome::Rejected(Rejection {
                    op: None,
                    reason: Reason::Malformed(error),
                })),
                Checked::Authentic {
                    op,
                    body,
                    certificates_checked,
                } => self.insert_checked(source, op, Some(body), certificates_checked),
                Checked::BadSignature(moot_crypto::SignatureError::Invalid(id)) => {
                    if self.is_known(&id) {
                        Self::single(Outcome::Duplicate(id))
                    } else {
                        Self::single(self.reject(id, Reason::BadSignature))
                    }
                }
                Checked::BadSignature(_) => Self::single(Outcome::Rejected(Rejection {
                    op: None,
                    reason: Reason::BadSignature,
                })),
            };
            run.push(insertion);
        }
    }

    /// Inserts an op this node signed itself (or read from its own store).
    pub fn insert_authentic(&mut self, op: Authentic<SignedOp>) -> Insertion {
        self.insert_authentic_from(Source::DEFAULT, op)
    }

    /// Inserts an authenticated op from `source`.
    pub fn insert_authentic_from(&mut self, source: Source, op: Authentic<SignedOp>) -> Insertion {
        self.insert_checked(source, op, None, false)
    }

    /// [`Replica::insert_authentic_from`]; `body`: the op's body decoded already, and
    /// `certificates_checked`: the device certificates it carries were verified already (both on
    /// a worker thread of a batch).
    fn insert_checked(
        &mut self,
        source: Source,
        op: Authentic<SignedOp>,
        body: Option<Result<Body, BodyError>>,
        certificates_checked: bool,
    ) -> Insertion {
        let id = op.id();
        if self.is_known(&id) {
            return Self::single(Outcome::Duplicate(id));
        }
        let mut kept = Vec::new();
        let outcome = self.admit(op, body, source, &mut kept, certificates_checked);
        let mut released = Vec::new();
        if let Some(id) = self.settled(&outcome) {
            self.release(id, &mut released, &mut kept);
        }
        Insertion {
            outcome,
            released,
            kept,
        }
    }

    /// Loads an op from the node's own store with the verdict it was given when it arrived.
    /// Verdicts are final, so an accepted op of a non-roll kind is indexed without being judged
    /// again (no signature check, no authorization: the store loader alone may call this).
    /// Roll ops are judged again to rebuild the roll (they are few), and unsupported or held
    /// ops are judged again because a newer version may now understand them. Ops must come in
    /// the order they were accepted. Returns the op's verdict now; an op that the current rules
    /// refuse, or whose dependencies are not held, is an error, never a quiet skip.
    pub fn restore(
        &mut self,
        op: Authentic<SignedOp>,
        stored: Verdict,
    ) -> Result<Verdict, Rejection> {
        let id = op.id();
        if let Some(verdict) = self.verdict(&id) {
            return Ok(verdict);
        }
        if let Some(missing) = Self::parents(&op).find(|p| !self.index.contains(p)) {
            return Err(Rejection {
                op: Some(id),
                reason: Reason::InvalidDependency(missing),
            });
        }
        // Proposals, documents and the aid board keep records built by their checks (document
        // changes: their automerge hashes and counters), so they take the full path.
        if stored != Verdict::Accepted
            || kind::is_roll(op.kind())
            || Self::deliberative(op.kind())
            || Self::aid(op.kind())
        {
            let mut kept = Vec::new();
            // An accepted op's certificates were checked when it arrived (verdicts are final,
            // like its signature); an op an older version could not judge never had them checked.
            let checked = stored == Verdict::Accepted;
            return match self.admit(op, None, Source::DEFAULT, &mut kept, checked) {
                Outcome::Accepted(_) => Ok(Verdict::Accepted),
                Outcome::Unsupported(_) => Ok(Verdict::Unsupported),
                Outcome::NeedsUpgrade(_) => Ok(Verdict::NeedsUpgrade),
                Outcome::Rejected(rejection) => Err(rejection),
                Outcome::Pending { op, missing } => Err(Rejection {
                    op: Some(op),
                    reason: Reason::InvalidDependency(missing.first().copied().unwrap_or(op)),
                }),
                Outcome::Duplicate(_) => Ok(stored),
            };
        }
        let refused = |reason| Rejection {
            op: Some(id),
            reason,
        };
        // The structure is checked (cheap index lookups; it catches a store whose order or
        // contents were altered): dependencies held (above), the lane rule, the chain.
        if op.lane() == Lane::Public
            && let Some(dep) = Self::parents(&op).find(|p| {
                self.index
                    .get(p)
                    .is_some_and(|(_, m)| m.lane() != Lane::Public)
            })
        {
            return Err(refused(Reason::LaneDependency(dep)));
        }
        if let Some(prev) = op.prev() {
            let author = self.device_no(op.author().as_bytes());
            let continues = self.index.get(&prev).is_some_and(|(_, m)| {
                Some(m.device) == author && m.lane() == op.lane() && m.seq() + 1 == op.seq()
            });
            if !continues {
                return Err(refused(Reason::BrokenChain));
            }
        }
        let tainted = Self::parents(&op).any(|p| {
            self.index
                .get(&p)
                .is_some_and(|(_, m)| m.tainted() || taints(m))
        });
        let (frontier, _) = self.frontier_of_parents(&op);
        // The author's standing and lane in the op's past (a lookup in a cached roll): a store
        // holding a stranger's op marked accepted is refused, not believed.
        let past = self.resolution(frontier);
        if let Err(denied) = past.roll.authorize(
            &self.hub,
            &op.author(),
            op.lane(),
            &Body::Unknown(op.kind()),
        ) {
            return Err(refused(Reason::Unauthorized(denied)));
        }
        let device = self.device_number(op.author());
        let (seq, lane) = (op.seq(), op.lane());
        let n = self.index.insert(
            id,
            Meta::new(seq, device, frontier, op.kind(), lane, stored, tainted),
        );
        self.link_chain(n, id, device, lane, seq, op.prev());
        self.record_deps(n, &op);
        if op.kind() == kind::BALLOT
            && stored == Verdict::Accepted
            && let Ok(body) = Body::decode(op.kind(), op.body())
            && let Some(member) = past.roll.member_of(&op.author())
        {
            self.record_governance(id, n, member, lane, &body);
        }
        if self.limits.retain == Retain::Everything {
            self.archive.insert(id, op);
        }
        Ok(stored)
    }

    /// Forgets the ops waiting from `source` (a peer that went away, a bundle that ended).
    pub fn drop_source(&mut self, source: Source) {
        let dropped: Vec<OpId> = self
            .pending
            .iter()
            .filter(|(_, w)| w.source == source)
            .map(|(id, _)| *id)
            .collect();
        for id in dropped {
            if let Some(waiting) = self.pending.remove(&id) {
                for parent in Self::parents(&waiting.op) {
                    if let Some(waiters) = self.waiting_on.get_mut(&parent) {
                        waiters.remove(&id);
                        if waiters.is_empty() {
                            self.waiting_on.remove(&parent);
                        }
                    }
                }
            }
        }
        self.usage.remove(&source);
    }

    fn single(outcome: Outcome) -> Insertion {
        Insertion {
            outcome,
            released: Vec::new(),
            kept: Vec::new(),
        }
    }

    fn reject(&mut self, id: OpId, reason: Reason) -> Outcome {
        if !reason.forgettable() && self.rejected.insert(id, reason.clone()).is_none() {
            self.rejected_order.push_back(id);
            while self.rejected_order.len() > self.limits.max_remembered_rejections {
                if let Some(old) = self.rejected_order.pop_front() {
                    self.rejected.remove(&old);
                }
            }
        }
        Outcome::Rejected(Rejection {
            op: Some(id),
            reason,
        })
    }

    /// [`Replica::reject`], remembering the refusal only if `remember`.
    fn refuse(&mut self, remember: bool, id: OpId, reason: Reason) -> Outcome {
        if remember {
            self.reject(id, reason)
        } else {
            Outcome::Rejected(Rejection {
                op: Some(id),
                reason,
            })
        }
    }

    /// The op whose fate is now settled by `outcome` (kept, or rejected and remembered): ops
    /// waiting on it can be judged. A refusal that is not remembered settles nothing.
    fn settled(&self, outcome: &Outcome) -> Option<OpId> {
        match outcome {
            Outcome::Rejected(Rejection { op: Some(id), .. }) => {
                self.rejected.contains_key(id).then_some(*id)
            }
            other => other.kept(),
        }
    }

    /// Re-examines ops that were waiting on `id`, transitively.
    fn release(
        &mut self,
        id: OpId,
        released: &mut Vec<Outcome>,
        kept: &mut Vec<(Authentic<SignedOp>, Verdict)>,
    ) {
        let mut queue = vec![id];
        while let Some(done) = queue.pop() {
            let Some(waiters) = self.waiting_on.remove(&done) else {
                continue;
            };
            for waiter in waiters {
                let ready = self.pending.get(&waiter).is_some_and(|w| {
                    Self::parents(&w.op)
                        .all(|p| self.index.contains(&p) || self.rejected.contains_key(&p))
                });
                if !ready {
                    continue;
                }
                let Some(waiting) = self.pending.remove(&waiter) else {
                    continue;
                };
                let source = waiting.source;
                if let Some(usage) = self.usage.get_mut(&source) {
                    usage.ops = usage.ops.saturating_sub(1);
                    usage.bytes = usage.bytes.saturating_sub(waiting.op.bytes().len());
                }
                let outcome = self.admit(waiting.op, None, source, kept, false);
                if let Some(id) = self.settled(&outcome) {
                    queue.push(id);
                }
                released.push(outcome);
            }
        }
    }

    fn parents(op: &SignedOp) -> impl Iterator<Item = OpId> + '_ {
        op.prev().into_iter().chain(op.deps().iter().copied())
    }

    /// True if an op with missing dependencies may wait: its author's device is certified and
    /// active in the current roll, or it is a device presenting its own certificate for a
    /// member on the roll. Anything else could be a stranger filling memory.
    fn may_wait(&mut self, op: &SignedOp, body: &Body) -> bool {
        // The roll of everything held: the past of the current roll heads. (Cached and
        // extended op by op, unlike the global resolution, which is rebuilt after each roll
        // op: a sync that interleaves waiting ops with roll ops stays linear.)
        let heads: Vec<OpId> = self.roll_heads[lane_index(Lane::Members)]
            .iter()
            .copied()
            .collect();
        let heads = self.frontier_number(Frontier::from(heads));
        let current = self.resolution(heads);
        let roll = &current.roll;
        let author = op.author();
        let active = |member: &MemberId| {
            roll.member(member)
                .is_some_and(|r| r.status != Status::Removed)
        };
        if let Some(device) = roll.devices.get(&author) {
            return !device.revoked && active(&device.member);
        }
        match body {
            Body::CertifyDevice(c) => c.device == author && active(&c.member),
            _ => false,
        }
    }

    /// The author device of a judged roll op. Always found: a node's author is numbered
    /// (`device_number`) before the node is made, and numbers are never taken back.
    fn author_of(&self, node: &RollNode) -> Option<&DeviceId> {
        let author = self.devices.get(node.author as usize);
        debug_assert!(author.is_some(), "a roll node's author has no number");
        author
    }

    /// The number of a device, assigned on first sight.
    fn device_number(&mut self, device: moot_crypto::PublicKey) -> u32 {
        if let Some(n) = self.device_no(device.as_bytes()) {
            return n;
        }
        let n = self.devices.len() as u32;
        self.devices.push(device);
        self.device_places
            .insert(&self.devices, n, moot_crypto::PublicKey::as_bytes);
        n
    }

    /// The number of a device held, by its key.
    fn device_no(&self, raw: &[u8; 32]) -> Option<u32> {
        self.device_places
            .find(&self.devices, raw, moot_crypto::PublicKey::as_bytes)
    }

    /// The ops of the frontier numbered `n` ([`OpSets::ops`]).
    fn frontier_ids(&self, n: u32) -> &[OpId] {
        self.frontiers.ops(&self.index, n)
    }

    /// The frontier numbered `n`.
    fn frontier(&self, n: u32) -> Option<Frontier> {
        if n & ONE_OP != 0 {
            self.index.id(n & !ONE_OP).map(Frontier::One)
        } else {
            self.frontiers.kept(n).cloned()
        }
    }

    /// The number of a frontier, interned ([`OpSets::number`]).
    fn frontier_number(&mut self, frontier: Frontier) -> u32 {
        self.frontiers.number(&self.index, frontier)
    }

    /// The checks after authentication. A kept op is pushed on `kept` with its verdict.
    /// `body`: the op's body, when decoded already (else it is decoded here).
    /// `certificates_checked`: the device certificates the body carries were verified already
    /// (on a batch's worker thread, or an accepted op restored from the node's own store), so
    /// they are not verified again.
    fn admit(
        &mut self,
        op: Authentic<SignedOp>,
        body: Option<Result<Body, BodyError>>,
        source: Source,
        kept: &mut Vec<(Authentic<SignedOp>, Verdict)>,
        certificates_checked: bool,
    ) -> Outcome {
        let id = op.id();
        // Refusals are remembered only for devices a certificate here names: anything else
        // could be a stranger filling memory.
        let insider = self.points.contains(&op.author());
        let body = match body.unwrap_or_else(|| Body::decode(op.kind(), op.body())) {
            Ok(body) => body,
            Err(error) => return self.refuse(insider, id, Reason::MalformedBody(error)),
        };
        if let Some(expected) = body.lane()
            && expected != op.lane()
        {
            return self.refuse(
                insider,
                id,
                Reason::WrongLane {
                    kind: op.kind(),
                    expected,
                },
            );
        }
        if !certificates_checked && !body.check_certificates(&self.hub, &op.author()) {
            let denied = match body {
                Body::Found(_) => Denied::BadGenesis,
                _ => Denied::BadCertificate,
            };
            return self.refuse(insider, id, Reason::Unauthorized(denied));
        }
        // Only a device some certificate here names can write a valid op (or a device
        // presenting its own certificate, or the genesis). Anything else is refused before it
        // costs memory (frontiers, rolls of its past), and not remembered.
        let presents_itself = match &body {
            // Only this hub's genesis (its id derives from the founder and nonce), as the
            // first op of a chain with no dependencies: anyone can sign a genesis, and it must
            // not cost memory either.
            Body::Found(found) => {
                crate::body::hub_id(&found.founder, &found.nonce) == self.hub
                    && op.prev().is_none()
                    && op.deps().is_empty()
            }
            Body::CertifyDevice(c) => c.device == op.author(),
            _ => false,
        };
        if !presents_itself && !insider {
            return self.refuse(insider, id, Reason::Unauthorized(Denied::UnknownDevice));
        }
        if let Some(bad) = Self::parents(&op).find(|p| self.rejected.contains_key(p)) {
            return self.refuse(insider, id, Reason::InvalidDependency(bad));
        }
        let missing: Vec<OpId> = Self::parents(&op)
            .filter(|p| !self.index.contains(p))
            .collect();
        if !missing.is_empty() {
            if !self.may_wait(&op, &body) {
                return self.refuse(insider, id, Reason::NotHeld);
            }
            let usage = self.usage.get(&source).copied().unwrap_or_default();
            let bytes = op.bytes().len();
            if usage.ops >= self.limits.max_pending
                || usage.bytes + bytes > self.limits.max_pending_bytes
            {
                return self.refuse(insider, id, Reason::PendingFull);
            }
            for dep in &missing {
                self.waiting_on.entry(*dep).or_default().insert(id);
            }
            let entry = self.usage.entry(source).or_default();
            entry.ops += 1;
            entry.bytes += bytes;
            self.pending.insert(id, Waiting { op, source });
            return Outcome::Pending { op: id, missing };
        }
        let lane = op.lane();
        // One pass over the parents (each an index lookup): the lane rule, the chain, the
        // taint, references to unjudged ops, and the frontiers of their pasts.
        let author = op.author();
        let author_no = self.device_no(author.as_bytes());
        let mut frontiers = [0u32; 1 + moot_crypto::op::MAX_DEPS];
        let mut frontier_count = 0;
        let (mut continues, mut tainted, mut refers_to_unjudged) =
            (op.prev().is_none(), false, false);
        for parent in Self::parents(&op) {
            let Some((_, m)) = self.index.get(&parent) else {
                continue;
            };
            if lane == Lane::Public && m.lane() != Lane::Public {
                return self.refuse(insider, id, Reason::LaneDependency(parent));
            }
            let is_prev = op.prev() == Some(parent);
            if is_prev {
                continues =
                    Some(m.device) == author_no && m.lane() == lane && m.seq() + 1 == op.seq();
            }
            tainted |= m.tainted() || taints(m);
            // What an op refers to is in its `deps`; `prev` only continues the author's chain,
            // so following a newer kind's op in one's own chain does not hold everything after
            // it. (Roll-family unknowns hold what follows them through the taint.)
            refers_to_unjudged |= !is_prev && m.verdict() != Verdict::Accepted;
            if let Some(slot) = frontiers.get_mut(frontier_count) {
                *slot = m.frontier;
                frontier_count += 1;
            }
        }
        if !continues {
            return self.refuse(insider, id, Reason::BrokenChain);
        }
        let (roll_parents_no, roll_parents) =
            self.frontier_of_numbers(&mut frontiers[..frontier_count]);
        let unknown = matches!(body, Body::Unknown(_));
        let verdict = if tainted || (refers_to_unjudged && !unknown) {
            Verdict::NeedsUpgrade
        } else if unknown {
            Verdict::Unsupported
        } else {
            Verdict::Accepted
        };
        // The roll state of the op's causal past. An op held for an upgrade is not judged.
        let past = self.resolution(roll_parents_no);
        let mut author_member = None;
        let mut facts = if verdict == Verdict::NeedsUpgrade {
            // Not judged, but never kept without its author's standing and lane: checked in
            // the roll of its past as for a kind this node does not know — unless that past
            // itself rests on an unknowable roll change, where only the certificate check
            // above stands.
            if !tainted
                && let Err(denied) =
                    past.roll
                        .authorize(&self.hub, &author, lane, &Body::Unknown(op.kind()))
            {
                return self.refuse(insider, id, Reason::Unauthorized(denied));
            }
            crate::roll::Facts::default()
        } else {
            match past.roll.authorize_member(&self.hub, &author, lane, &body) {
                Ok((facts, member)) => {
                    author_member = member;
                    facts
                }
                Err(denied) => return self.refuse(insider, id, Reason::Unauthorized(denied)),
            }
        };
        let mut governed = None;
        if verdict == Verdict::Accepted && Self::governed(op.kind()) {
            let Some(member) = author_member else {
                return self.refuse(insider, id, Reason::Unauthorized(Denied::UnknownDevice));
            };
            match self.govern(id, member, lane, &body, op.deps(), &roll_parents, &past) {
                Ok(more) => facts = facts.with(&more),
                Err(denied) => return self.refuse(insider, id, Reason::Unauthorized(denied)),
            }
            governed = Some(member);
        }
        let mut discussed = None;
        // The roll ops beyond the author's standing that a non-roll op's authorization rested
        // on (a convener's grant or appointment, a coordinator's grant): kept, so that the
        // validity rule can hold the op to them later (`Replica::validity`).
        let mut rested_on: Vec<OpId> = Vec::new();
        if verdict == Verdict::Accepted && (Self::deliberative(op.kind()) || Self::aid(op.kind())) {
            let Some(member) = author_member else {
                return self.refuse(insider, id, Reason::Unauthorized(Denied::UnknownDevice));
            };
            let checked = if Self::aid(op.kind()) {
                self.check_aid(member, lane, &body, &op, &past)
            } else {
                self.deliberate(member, lane, &body, &op, &roll_parents, &past)
            };
            match checked {
                Ok(more) => {
                    facts = facts.with(&more);
                    rested_on = more;
                }
                Err(denied) => return self.refuse(insider, id, Reason::Unauthorized(denied)),
            }
            discussed = Some(member);
        }
        let certifies = match &body {
            Body::Found(_) => Some(author),
            Body::CertifyDevice(c) => Some(c.device),
            _ => None,
        };
        let is_resolved_roll = verdict == Verdict::Accepted && body.is_roll();
        // A judged roll op presents itself: the frontier of one op, numbered by the number the
        // index is about to give it.
        let presented = if is_resolved_roll {
            match crate::index::one_op_number(self.index.len()) {
                Some(n) => n,
                None => self.frontier_number(Frontier::One(id)),
            }
        } else {
            roll_parents_no
        };
        // A roll op's body moves into the roll; an assembly or poll op's is recorded below.
        let mut body = Some(body);
        let recorded = match governed {
            Some(member) if is_resolved_roll => body.clone().map(|b| (b, member)),
            Some(member) => body.take().map(|b| (b, member)),
            None => None,
        };
        let mut roll_node = None;
        if is_resolved_roll && let Some(body) = body.take() {
            let member = match &body {
                Body::Found(found) => found.founder,
                Body::CertifyDevice(c) if c.device == author => c.member,
                _ => match past.roll.member_of(&author) {
                    Some(member) => member,
                    None => {
                        return self.refuse(
                            insider,
                            id,
                            Reason::Unauthorized(Denied::UnknownDevice),
                        );
                    }
                },
            };
            let rank = match &body {
                Body::Found(_) => 0,
                _ => past.roll.rank(&member),
            };
            let roll_depth = roll_parents
                .iter()
                .filter_map(|p| self.rolls.get(&self.index, p).map(|n| n.roll_depth))
                .max()
                .unwrap_or(0)
                .saturating_add(1);
            let public_parents = match lane {
                Lane::Public => roll_parents_no,
                Lane::Members => {
                    let public = self.public_frontier(&roll_parents);
                    self.frontier_number(public)
                }
            };
            if lane == Lane::Public {
                // Extend the cached resolution: this op follows every roll op in its past, so
                // it comes last in their resolution order. The roll's maps are persistent, so
                // the copy shares everything but what this op changes, and the past's entry
                // stays cached for other ops that share that past.
                let mut extended = (*past).clone();
                extended.step(&self.hub, id, &author, lane, op.seq(), &body, facts.ops());
                self.remember(presented, Arc::new(extended), true);
            }
            self.global = None;
            // Every head in this op's past is in its frontier (a head is maximal overall, so
            // maximal in any past holding it).
            let lanes: &[Lane] = match lane {
                Lane::Public => &[Lane::Public, Lane::Members],
                Lane::Members => &[Lane::Members],
            };
            for lane in lanes {
                let heads = &mut self.roll_heads[lane_index(*lane)];
                for parent in roll_parents.iter() {
                    heads.remove(parent);
                }
                heads.insert(id);
            }
            roll_node = Some(RollNode {
                author: self.device_number(author),
                lane,
                seq: u32::try_from(op.seq()).unwrap_or(u32::MAX),
                body: RollBody::new(body),
                roll_parents: roll_parents_no,
                public_parents,
                facts: self.rolls.facts.number(&self.index, facts),
                roll_depth,
                rank,
            });
        }
        if let Some(device) = certifies {
            self.points.add(&device);
        }
        let device = self.device_number(author);
        let frontier = presented;
        let seq = op.seq();
        let n = self.index.insert(
            id,
            Meta::new(seq, device, frontier, op.kind(), lane, verdict, tainted),
        );
        debug_assert!(!is_resolved_roll || self.frontier_ids(frontier) == [id]);
        if let Some(node) = roll_node {
            self.rolls.push(n, node);
        }
        if !rested_on.is_empty() {
            self.rested_on.insert(n, crate::roll::Facts::of(&rested_on));
        }
        self.link_chain(n, id, device, lane, seq, op.prev());
        self.record_deps(n, &op);
        if let Some((body, member)) = recorded {
            self.record_governance(id, n, member, lane, &body);
        }
        if let (Some(member), Some(body)) = (discussed, body.as_ref()) {
            if Self::aid(op.kind()) {
                self.record_aid(id, member, lane, body);
            } else {
                self.record_change(id, body);
                self.record_deliberation(id, n, member, lane, body);
            }
        }
        if self.limits.retain == Retain::Everything {
            self.archive.insert(id, op.clone());
        }
        kept.push((op, verdict));
        match verdict {
            Verdict::Accepted => Outcome::Accepted(id),
            Verdict::Unsupported => Outcome::Unsupported(id),
            Verdict::NeedsUpgrade => Outcome::NeedsUpgrade(id),
        }
    }

    /// Records op `n` in its author's chain: the chain's tip, and fork evidence when another
    /// op already continued the same `prev` (or also started the chain).
    fn link_chain(
        &mut self,
        n: u32,
        id: OpId,
        device: u32,
        lane: Lane,
        seq: u64,
        prev: Option<OpId>,
    ) {
        let sibling = match prev {
            Some(prev) => match self.index.number(&prev) {
                Some(p) => match self.index.meta_mut(p) {
                    Some(meta) if meta.successor == NONE => {
                        meta.successor = n;
                        None
                    }
                    Some(meta) => Some(meta.successor),
                    None => None,
                },
                None => None,
            },
            None => match self.firsts.get(&(device, lane)) {
                Some(first) => Some(*first),
                None => {
                    self.firsts.insert((device, lane), n);
                    None
                }
            },
        };
        if let Some(sibling) = sibling.and_then(|s| self.index.id(s))
            && let Some(key) = self.devices.get(device as usize).map(|d| d.to_bytes())
        {
            let ids = self.forks.entry((key, lane, seq)).or_default();
            for fork in [sibling, id] {
                if !ids.contains(&fork) {
                    ids.push(fork);
                }
            }
            ids.sort_unstable();
        }
        let newer = match self.tips.get(&(device, lane)) {
            None => true,
            Some(tip) => {
                let tip_seq = self.index.meta(*tip).map_or(0, |m| m.seq());
                let tip_id = self.index.id(*tip);
                seq > tip_seq || (seq == tip_seq && tip_id.is_some_and(|t| id < t))
            }
        };
        if newer {
            self.tips.insert((device, lane), n);
        }
    }

    /// Caches the roll of a past, with its estimated size: `shared` for an extension of a
    /// cached roll (the persistent maps copy only the paths one op changed), a full estimate
    /// for a roll resolved afresh. Oldest entries go first when the count or byte bound is hit.
    fn remember(&mut self, frontier: u32, resolution: Arc<Resolution>, shared: bool) {
        let bytes = if shared {
            EXTENSION_BYTES
        } else {
            (resolution.roll.members.len() + resolution.roll.devices.len()) * ENTRY_BYTES
                + resolution.denied.len() * 64
                + EXTENSION_BYTES
        };
        match self.cache.insert(frontier, (resolution, bytes)) {
            Some((_, old)) => self.cache_bytes = self.cache_bytes.saturating_sub(old),
            None => self.cache_order.push_back(frontier),
        }
        self.cache_bytes += bytes;
        while self.cache_order.len() > self.limits.max_cached_rolls
            || (self.cache_bytes > self.limits.max_cached_roll_bytes && self.cache_order.len() > 1)
        {
            let Some(old) = self.cache_order.pop_front() else {
                break;
            };
            if let Some((_, bytes)) = self.cache.remove(&old) {
                self.cache_bytes = self.cache_bytes.saturating_sub(bytes);
            }
        }
    }

    /// The frontier an op presents to its children: itself for a judged roll op, otherwise
    /// the frontier of its past.
    fn frontier_of(&self, id: &OpId) -> Option<Frontier> {
        let (_, meta) = self.index.get(id)?;
        self.frontier(meta.frontier)
    }

    /// The frontier of an op's strict causal past — the maximal roll ops among its parents' —
    /// as an interned number and as ids. Most ops' parents share one frontier: then no set is
    /// built at all.
    fn frontier_of_parents(&mut self, op: &SignedOp) -> (u32, Frontier) {
        let mut numbers: Vec<u32> = Self::parents(op)
            .filter_map(|p| self.index.get(&p).map(|(_, m)| m.frontier))
            .collect();
        self.frontier_of_numbers(&mut numbers)
    }

    /// The maximal roll ops of the union of the frontiers numbered `numbers` (sorted in
    /// place), interned.
    fn frontier_of_numbers(&mut self, numbers: &mut [u32]) -> (u32, Frontier) {
        numbers.sort_unstable();
        let all_same = numbers.windows(2).all(|w| w[0] == w[1]);
        if let (true, Some(only)) = (all_same, numbers.first())
            && let Some(frontier) = self.frontier(*only)
        {
            return (*only, frontier);
        }
        // Two distinct frontiers (the common case of an op naming an older roll op): cached.
        let pair = match (numbers.first(), numbers.last()) {
            (Some(&first), Some(&last)) if numbers.iter().all(|n| *n == first || *n == last) => {
                Some((first, last))
            }
            _ => None,
        };
        if let Some(n) = pair.and_then(|p| self.unions.get(&p).copied())
            && let Some(frontier) = self.frontier(n)
        {
            return (n, frontier);
        }
        let mut union: Vec<OpId> = numbers
            .iter()
            .flat_map(|n| self.frontier_ids(*n).iter().copied())
            .collect();
        union.sort_unstable();
        union.dedup();
        let frontier = Frontier::from(self.maximal(union));
        let n = self.frontier_number(frontier.clone());
        if let Some(pair) = pair {
            if self.unions.len() >= MAX_CACHED_UNIONS {
                self.unions.clear();
            }
            self.unions.insert(pair, n);
        }
        (n, frontier)
    }

    /// The frontier of the roll ops `ids` (interned): their maximal elements.
    fn frontier_of_ids(&mut self, ids: &[OpId]) -> (u32, Frontier) {
        let mut numbers: Vec<u32> = ids
            .iter()
            .filter_map(|id| self.index.get(id).map(|(_, m)| m.frontier))
            .collect();
        self.frontier_of_numbers(&mut numbers)
    }

    /// True if roll op `a` is a strict ancestor of roll op `b`.
    fn is_roll_ancestor(&self, a: &OpId, b: &OpId) -> bool {
        let Some(depth_a) = self.rolls.get(&self.index, a).map(|n| n.depth()) else {
            return false;
        };
        let mut stack = vec![*b];
        let mut seen = HashSet::default();
        while let Some(current) = stack.pop() {
            let Some(node) = self.rolls.get(&self.index, &current) else {
                continue;
            };
            for parent in self.frontier_ids(node.roll_parents).iter() {
                if parent == a {
                    return true;
                }
                // Ancestors of `a`'s depth or lower cannot lead to it.
                let deeper = self
                    .rolls
                    .get(&self.index, parent)
                    .is_some_and(|p| p.depth() > depth_a);
                if deeper && seen.insert(*parent) {
                    stack.push(*parent);
                }
            }
        }
        false
    }

    /// The roll ops in the causal past of roll op `id` (itself included): one walk, for many
    /// membership tests (a merge report asks it of every roll op brought in).
    pub fn roll_past(&self, id: &OpId) -> std::collections::HashSet<OpId> {
        self.roll_closure(&[*id]).into_iter().collect()
    }

    /// True if roll op `a` is in the causal past described by `frontier`.
    fn in_past(&self, a: &OpId, frontier: &[OpId]) -> bool {
        frontier
            .iter()
            .any(|f| f == a || self.is_roll_ancestor(a, f))
    }

    /// The maximal public roll ops in the past described by `frontier` (which may name
    /// members-lane roll ops: a public op never follows one, so each maps to the public
    /// frontier of its own past).
    fn public_frontier(&self, frontier: &Frontier) -> Frontier {
        let mut public: Vec<OpId> = Vec::new();
        let mut mapped = false;
        for id in frontier.iter() {
            match self.rolls.get(&self.index, id) {
                Some(node) if node.lane == Lane::Members => {
                    public.extend(self.frontier_ids(node.public_parents).iter().copied());
                    mapped = true;
                }
                _ => public.push(*id),
            }
        }
        if !mapped {
            return frontier.clone();
        }
        public.sort_unstable();
        public.dedup();
        Frontier::from(self.maximal(public))
    }

    /// The maximal roll ops of `set` (sorted, distinct): those not a strict ancestor of
    /// another. One walk down from every element at once, no deeper than the shallowest
    /// element (ancestry only goes down in depth), instead of a walk per pair: a set of k ops
    /// spread over a long chain costs one pass over it, not k² (an insider's op naming 32
    /// scattered old roll ops cannot make each op cost a thousand walks).
    fn maximal(&self, mut set: Vec<OpId>) -> Vec<OpId> {
        if set.len() <= 1 {
            return set;
        }
        let depth = |id: &OpId| self.rolls.get(&self.index, id).map_or(0, |n| n.depth());
        let floor = set.iter().map(depth).min().unwrap_or(0);
        let members: HashSet<OpId> = set.iter().copied().collect();
        let mut dominated: HashSet<OpId> = HashSet::default();
        let mut seen: HashSet<OpId> = HashSet::default();
        let mut stack: Vec<OpId> = Vec::new();
        for id in &set {
            if let Some(node) = self.rolls.get(&self.index, id) {
                stack.extend(self.frontier_ids(node.roll_parents).iter().copied());
            }
        }
        while let Some(current) = stack.pop() {
            if !seen.insert(current) {
                continue;
            }
            if members.contains(&current) {
                dominated.insert(current);
            }
            if let Some(node) = self.rolls.get(&self.index, &current) {
                stack.extend(
                    self.frontier_ids(node.roll_parents)
                        .iter()
                        .filter(|p| depth(p) >= floor)
                        .copied(),
                );
            }
        }
        set.retain(|id| !dominated.contains(id));
        set
    }

    /// The resolution of the public roll ops in the causal past described by `frontier`: the
    /// roll that authorizes an op there. (Personal data in the members lane never decides an
    /// authorization, so past rolls leave it out; the global roll applies it on top.)
    fn resolution(&mut self, frontier_no: u32) -> Arc<Resolution> {
        if let Some((hit, _)) = self.cache.get(&frontier_no) {
            return hit.clone();
        }
        let frontier = self
            .frontier(frontier_no)
            .unwrap_or(Frontier::Many(Arc::from([])));
        let public = self.public_frontier(&frontier);
        let public_no = self.frontier_number(public.clone());
        if let Some((hit, _)) = self.cache.get(&public_no) {
            let hit = hit.clone();
            self.remember(frontier_no, hit.clone(), true);
            return hit;
        }
        let mut subset = BTreeSet::new();
        let mut stack: Vec<OpId> = public.to_vec();
        while let Some(current) = stack.pop() {
            if subset.insert(current)
                && let Some(node) = self.rolls.get(&self.index, &current)
            {
                stack.extend(self.frontier_ids(node.roll_parents).iter().copied());
            }
        }
        let resolution = Arc::new(self.resolve(&subset));
        self.remember(public_no, resolution.clone(), false);
        if public_no != frontier_no {
            self.remember(frontier_no, resolution.clone(), true);
        }
        resolution
    }

    /// Resolves a causally closed set of roll ops, in the deterministic order described in the
    /// module docs (Kahn's algorithm: an op waits for its roll parents, and an op cut by a
    /// concurrent removal or revocation also waits for that removal; among ready ops the best
    /// (seniority, op id) goes first; a cycle of mutual cuts is broken by seniority).
    fn resolve(&self, subset: &BTreeSet<OpId>) -> Resolution {
        let mut waiting_for: HashMap<OpId, usize> = HashMap::default();
        let mut real_waiting: HashMap<OpId, usize> = HashMap::default();
        let mut children: HashMap<OpId, Vec<OpId>> = HashMap::default();
        let mut devices_of: BTreeMap<MemberId, BTreeSet<DeviceId>> = BTreeMap::new();
        for id in subset {
            let Some(node) = self.rolls.get(&self.index, id) else {
                continue;
            };
            let parents = self
                .frontier_ids(node.roll_parents)
                .iter()
                .filter(|p| subset.contains(*p))
                .count();
            waiting_for.insert(*id, parents);
            real_waiting.insert(*id, parents);
            for parent in self
                .frontier_ids(node.roll_parents)
                .iter()
                .filter(|p| subset.contains(*p))
            {
                children.entry(*parent).or_default().push(*id);
            }
            match &*node.body() {
                Body::Found(found) => {
                    if let Some(author) = self.author_of(node) {
                        devices_of.entry(found.founder).or_default().insert(*author);
                    }
                }
                Body::CertifyDevice(c) => {
                    devices_of.entry(c.member).or_default().insert(c.device);
                }
                _ => {}
            }
        }
        // Cuts: a roll op concurrent with a removal or revocation of its author (or of a role
        // of theirs), beyond the cut, waits for it (and is then judged by the roll after it).
        for id in subset {
            let Some(node) = self.rolls.get(&self.index, id) else {
                continue;
            };
            let cuts: Vec<(DeviceId, LaneCut)> = match &*node.body() {
                Body::Remove(remove) => {
                    let listed: BTreeMap<DeviceId, LaneCut> = remove.cuts.iter().copied().collect();
                    devices_of
                        .get(&remove.member)
                        .into_iter()
                        .flatten()
                        .map(|d| (*d, listed.get(d).copied().unwrap_or_default()))
                        .collect()
                }
                Body::RevokeDevice(revoke) => vec![(revoke.device, revoke.cut)],
                Body::Revoke(revoke) => {
                    let Some(cuts) = &revoke.cuts else {
                        continue;
                    };
                    let listed: BTreeMap<DeviceId, LaneCut> = cuts.iter().copied().collect();
                    devices_of
                        .get(&revoke.member)
                        .into_iter()
                        .flatten()
                        .map(|d| (*d, listed.get(d).copied().unwrap_or_default()))
                        .collect()
                }
                _ => continue,
            };
            for other in subset {
                let Some(target) = self.rolls.get(&self.index, other) else {
                    continue;
                };
                let target_author = self.author_of(target);
                let beyond = cuts.iter().any(|(device, last)| {
                    target_author == Some(device) && u64::from(target.seq) > last.get(target.lane)
                });
                if other != id
                    && beyond
                    && !self.is_roll_ancestor(other, id)
                    && !self.is_roll_ancestor(id, other)
                {
                    children.entry(*id).or_default().push(*other);
                    *waiting_for.entry(*other).or_default() += 1;
                }
            }
        }
        let key = |id: &OpId| {
            (
                self.rolls.get(&self.index, id).map_or(u64::MAX, |n| n.rank),
                *id,
            )
        };
        let mut ready: BTreeSet<(u64, OpId)> = waiting_for
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| key(id))
            .collect();
        let mut done: HashSet<OpId> = HashSet::default();
        let mut resolution = Resolution::default();
        while done.len() < waiting_for.len() {
            let next = match ready.pop_first() {
                Some((_, id)) => id,
                None => {
                    // Only mutual cuts remain blocked: break the cycle by seniority, among ops
                    // whose causal parents are all done.
                    let candidate = real_waiting
                        .iter()
                        .filter(|(id, n)| **n == 0 && !done.contains(*id))
                        .map(|(id, _)| key(id))
                        .min();
                    match candidate {
                        Some((_, id)) => id,
                        None => break,
                    }
                }
            };
            if !done.insert(next) {
                continue;
            }
            if let Some(node) = self.rolls.get(&self.index, &next)
                && let Some(author) = self.author_of(node)
            {
                resolution.step(
                    &self.hub,
                    next,
                    author,
                    node.lane,
                    u64::from(node.seq),
                    &node.body(),
                    self.rolls.facts(&self.index, node.facts),
                );
            }
            for child in children.get(&next).into_iter().flatten() {
                let is_real = self
                    .rolls
                    .get(&self.index, child)
                    .is_some_and(|c| self.frontier_ids(c.roll_parents).contains(&next));
                if is_real && let Some(n) = real_waiting.get_mut(child) {
                    *n = n.saturating_sub(1);
                }
                if let Some(n) = waiting_for.get_mut(child) {
                    *n = n.saturating_sub(1);
                    if *n == 0 && !done.contains(child) {
                        ready.insert(key(child));
                    }
                }
            }
        }
        // Every op is processed above (the causal order is acyclic); should one remain, it is
        // not accepted, so nothing can rest on it.
        for id in waiting_for.keys() {
            if !done.contains(id) {
                resolution.denied.insert(*id, Denied::Unresolved);
            }
        }
        resolution
    }

    fn global(&mut self) -> Arc<Resolution> {
        if let Some(global) = &self.global {
            return global.clone();
        }
        // The public roll ops resolved are those in the past of the public heads: usually a
        // resolution already cached (each public roll op extends its past's), else resolved.
        let heads = self.roll_heads(Lane::Public);
        let (public_no, _) = self.frontier_of_ids(&heads);
        let mut resolution = (*self.resolution(public_no)).clone();
        // Personal data: the members-lane roll ops that count (like any op: the roll facts
        // their authorization used are accepted, and they are not beyond a cut), applied in
        // causal order; of concurrent writes, the senior author's stands.
        let order = self.members_order();
        for id in order {
            let verdict = self.member_roll_verdict(&id, &resolution, true);
            let Some(node) = self.rolls.get(&self.index, &id) else {
                continue;
            };
            let Some(author) = self.author_of(node) else {
                continue;
            };
            match verdict {
                Ok(()) => resolution.roll.apply(id, author, &node.body()),
                Err(denied) => {
                    resolution.denied.insert(id, denied);
                }
            }
        }
        let resolution = Arc::new(resolution);
        self.global = Some(resolution.clone());
        resolution
    }

    /// The members-lane roll ops in a deterministic causal order (Kahn's algorithm over their
    /// roll links). Among ready (concurrent) ops the junior author's goes first, so that of two
    /// concurrent writes to one field the senior author's is applied last and stands (then the
    /// lower op id's).
    fn members_order(&self) -> Vec<OpId> {
        self.members_order_within(None)
    }

    /// [`Replica::members_order`] restricted to the ops in `within` (a causally closed set).
    fn members_order_within(&self, within: Option<&HashSet<OpId>>) -> Vec<OpId> {
        let mut waiting: HashMap<OpId, usize> = HashMap::default();
        let mut children: HashMap<OpId, Vec<OpId>> = HashMap::default();
        for (id, node) in self
            .rolls
            .judged(&self.index, Lane::Members)
            .filter(|(id, _)| within.is_none_or(|w| w.contains(id)))
        {
            let parents: Vec<OpId> = self
                .frontier_ids(node.roll_parents)
                .iter()
                .filter(|p| self.rolls.judged_in(&self.index, p, Lane::Members))
                .copied()
                .collect();
            waiting.insert(id, parents.len());
            for parent in parents {
                children.entry(parent).or_default().push(id);
            }
        }
        let key = |id: &OpId| {
            (
                self.rolls.get(&self.index, id).map_or(u64::MAX, |n| n.rank),
                *id,
            )
        };
        let mut ready: BTreeSet<(u64, OpId)> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(id, _)| key(id))
            .collect();
        let mut order = Vec::with_capacity(waiting.len());
        while let Some((_, next)) = ready.pop_last() {
            order.push(next);
            for child in children.get(&next).into_iter().flatten() {
                if let Some(n) = waiting.get_mut(child) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        ready.insert(key(child));
                    }
                }
            }
        }
        order
    }

    /// Whether a members-lane roll op counts against the resolved public roll `global`. With
    /// `forks` false, forked chains are not looked at (see [`Replica::counts`]): for a judgment
    /// at a causal position, which must not depend on ops outside that past.
    fn member_roll_verdict(
        &self,
        id: &OpId,
        global: &Resolution,
        forks: bool,
    ) -> Result<(), Denied> {
        let Some(node) = self.rolls.get(&self.index, id) else {
            return Err(Denied::Unresolved);
        };
        let Some(author) = self.author_of(node) else {
            return Err(Denied::Unresolved);
        };
        self.counts(
            global,
            Some(self.rolls.facts(&self.index, node.facts)),
            author,
            node.lane,
            u64::from(node.seq),
            self.frontier_ids(node.roll_parents),
            forks,
        )
    }

    /// The validity rule for an op that is not a public roll op: every roll fact in `facts`
    /// is accepted by the resolved roll `global`, and the op (by `author`, at `seq` in `lane`,
    /// with the roll frontier `past`) is not beyond a cut it does not follow. `None` for facts:
    /// the author is not on the roll of its past. With `forks`, a chain forked under a cut
    /// counts for nothing from the fork on; the forks known are all those held, so a judgment
    /// made at a causal position (final: a refusal is not revisited) passes `false`.
    #[allow(clippy::too_many_arguments)]
    fn counts(
        &self,
        global: &Resolution,
        facts: Option<&[OpId]>,
        author: &DeviceId,
        lane: Lane,
        seq: u64,
        past: &[OpId],
        forks: bool,
    ) -> Result<(), Denied> {
        let facts = facts.ok_or(Denied::UnknownDevice)?;
        // A fact is a public roll op, or (an appointment in a members-only assembly) a
        // members-lane one, judged before the op in causal order.
        if let Some(fact) = facts
            .iter()
            .find(|f| global.denied.contains_key(*f) || self.rolls.get(&self.index, f).is_none())
        {
            return Err(Denied::UnacceptedFact(*fact));
        }
        // The cuts of removals and device revocations of the author, and of revocations of a
        // role grant the op rests on.
        let cuts = global.roll.cuts_for(author).into_iter().chain(
            facts
                .iter()
                .flat_map(|grant| global.roll.grant_cuts_for(grant, author)),
        );
        for (cut, last_seq) in cuts {
            let last = last_seq.get(lane);
            if self.in_past(&cut.by, past) {
                continue;
            }
            if seq > last {
                return Err(Denied::BeyondCut);
            }
            if forks
                && self
                    .first_fork(author, lane)
                    .is_some_and(|fork| fork <= seq && fork <= last)
            {
                return Err(Denied::ForkedUnderCut);
            }
        }
        Ok(())
    }

    /// Whether the accepted non-roll op `id` counts by the validity rule against `past`, the
    /// resolved roll of a later op's causal past that holds it: the roll facts it rested on
    /// accepted there, and not beyond a cut there that it does not follow. A pure function of
    /// that past, so a later op may be judged by it (an ex-convener's decision beyond a cut
    /// leaves the proposal to be decided).
    fn counts_against(&mut self, id: &OpId, past: &Resolution) -> bool {
        let Some((n, meta)) = self.index.get(id) else {
            return false;
        };
        let meta = *meta;
        if meta.verdict() != Verdict::Accepted {
            return false;
        }
        let (Some(author), Some(frontier)) = (
            self.devices.get(meta.device as usize).copied(),
            self.frontier(meta.frontier),
        ) else {
            return false;
        };
        let facts = self.resolution(meta.frontier).roll.author_facts(&author);
        let facts = self.with_rested_on(n, facts);
        // Each fact as it stands there (a members-lane one, an appointment, by this rule in
        // turn: `past` resolves public roll ops only), then the cuts there.
        let Some(facts) = facts else {
            return false;
        };
        facts.ops().iter().all(|f| self.counts_at(f, past))
            && self
                .counts(
                    past,
                    Some(facts.ops()),
                    &author,
                    meta.lane(),
                    meta.seq(),
                    &frontier,
                    false,
                )
                .is_ok()
    }

    /// `facts` (an op's author facts), with the roll ops the op numbered `n` also rested on
    /// ([`Replica::rested_on`]).
    fn with_rested_on(
        &self,
        n: u32,
        facts: Option<crate::roll::Facts>,
    ) -> Option<crate::roll::Facts> {
        match (facts, self.rested_on.get(&n)) {
            (Some(facts), Some(more)) => Some(facts.with(more.ops())),
            (facts, _) => facts,
        }
    }

    /// The lowest sequence number at which `device`'s chain in `lane` forks, if it does.
    fn first_fork(&self, device: &DeviceId, lane: Lane) -> Option<u64> {
        let key = device.to_bytes();
        self.forks
            .range((key, lane, 0)..=(key, lane, u64::MAX))
            .next()
            .map(|((_, _, seq), _)| *seq)
    }

    /// The roll derived from every valid op held.
    pub fn roll(&mut self) -> Roll {
        self.global().roll.clone()
    }

    /// The roll of the public roll ops alone: [`Replica::roll`] without the members-lane
    /// details (names, constituencies, contributions), which decide no one's standing, devices
    /// or the hub's access. Cheaper: the public heads' resolution is usually cached, where the
    /// whole roll applies every members-lane roll op again after each change.
    pub fn public_roll(&mut self) -> Roll {
        let heads = self.roll_heads(Lane::Public);
        let (public_no, _) = self.frontier_of_ids(&heads);
        self.resolution(public_no).roll.clone()
    }

    /// Whether an accepted op counts, with the reason if it does not. Unsupported and held ops
    /// never count here (they are kept, not applied).
    pub fn validity(&mut self, id: &OpId) -> Option<Result<(), Denied>> {
        let global = self.global();
        let (n, meta) = self.index.get(id)?;
        let meta = *meta;
        match meta.verdict() {
            Verdict::Accepted => {}
            Verdict::Unsupported => return Some(Err(Denied::Unsupported)),
            Verdict::NeedsUpgrade => return Some(Err(Denied::NeedsUpgrade)),
        }
        if kind::is_roll(meta.kind) {
            return Some(match global.denied.get(id) {
                Some(denied) => Err(denied.clone()),
                None => Ok(()),
            });
        }
        let author = *self.devices.get(meta.device as usize)?;
        let frontier = self.frontier(meta.frontier)?;
        let frontier_no = meta.frontier;
        // The roll facts the op's authorization used: its device's certification and its
        // member's admission, as they stood in its causal past. Only a denied roll op can make
        // one unaccepted, so the past is resolved only when some roll op was denied. And the
        // ones it rested on besides (a role grant, an appointment), kept when it was accepted:
        // their denial, or a revocation's cut, holds for it too.
        let facts = if global.denied.is_empty() {
            Some(crate::roll::Facts::default())
        } else {
            self.resolution(frontier_no).roll.author_facts(&author)
        };
        let facts = self.with_rested_on(n, facts);
        Some(self.counts(
            &global,
            facts.as_ref().map(crate::roll::Facts::ops),
            &author,
            meta.lane(),
            meta.seq(),
            &frontier,
            true,
        ))
    }

    /// Every accepted op id with whether it counts, ascending by id.
    pub fn validities(&mut self) -> BTreeMap<OpId, Result<(), Denied>> {
        let ids = self.op_ids();
        ids.into_iter()
            .filter_map(|id| self.validity(&id).map(|v| (id, v)))
            .collect()
    }

    /// Forked chains: two or more ops with one author, lane and sequence number, at the
    /// position where the chain first forks (later positions of the two branches follow from
    /// it).
    pub fn equivocations(&self) -> Vec<Equivocation> {
        self.forks
            .iter()
            .filter_map(|((device, lane, seq), ids)| {
                Some(Equivocation {
                    device: moot_crypto::PublicKey::from_bytes(device).ok()?,
                    lane: *lane,
                    seq: *seq,
                    ops: ids.clone(),
                })
            })
            .collect()
    }

    /// A draft of `device`'s next op in `lane`. Its dependencies are chosen, not guessed: the
    /// device's own chain `prev`, the roll heads this replica holds for the lane (so the op's
    /// authority is judged against the roll its author saw), and `refs`, the ops it refers to
    /// (a ballot names the poll it is for). Fails when they exceed the envelope's limit (see
    /// [`Replica::write_in`], which gathers them with checkpoints first).
    pub fn draft(
        &self,
        device: &DeviceId,
        lane: Lane,
        body: &Body,
        refs: &[OpId],
    ) -> Result<Draft, DraftError> {
        let (kind, bytes) = body.encode().ok_or(DraftError::NotWritable)?;
        if let Some(expected) = body.lane()
            && expected != lane
        {
            return Err(DraftError::WrongLane { kind, expected });
        }
        let (seq, prev) = self.next_in_chain(device, lane);
        let mut deps: BTreeSet<OpId> = self.uncovered_heads(lane, prev).collect();
        for r in refs {
            let (_, meta) = self.index.get(r).ok_or(DraftError::UnknownDependency(*r))?;
            if !lane.may_depend_on(meta.lane()) {
                return Err(DraftError::LaneDependency(*r));
            }
            deps.insert(*r);
        }
        if let Some(prev) = prev {
            deps.remove(&prev);
        }
        if deps.len() > moot_crypto::op::MAX_DEPS {
            return Err(DraftError::TooManyDeps(deps.len()));
        }
        Ok(Draft {
            lane,
            seq,
            prev,
            deps: deps.into_iter().collect(),
            kind,
            body: bytes,
        })
    }

    /// Signs `body` as `device` in the body's lane (the members lane for kinds that may go in
    /// either) and inserts it. Returns the op's id (any checkpoints written first are in
    /// [`Replica::write_in`]'s result).
    pub fn write(&mut self, device: &SecretKey, body: &Body) -> Result<OpId, Rejection> {
        let lane = body.lane().unwrap_or(Lane::Members);
        self.write_in(device, lane, body, &[])
            .map(|ids| ids.last().copied().unwrap_or(OpId([0; 32])))
    }

    /// [`Replica::write_in`], returning the signed ops written (checkpoints, then the op), for
    /// the caller to store.
    pub fn write_ops(
        &mut self,
        device: &SecretKey,
        lane: Lane,
        body: &Body,
        refs: &[OpId],
    ) -> Result<Vec<Authentic<SignedOp>>, Rejection> {
        let refused = |reason| Rejection { op: None, reason };
        let mut written = Vec::new();
        loop {
            match self.draft(&device.public(), lane, body, refs) {
                Ok(draft) => {
                    written.push(self.sign_and_insert(device, draft)?);
                    return Ok(written);
                }
                Err(DraftError::TooManyDeps(_)) if written.len() < 64 => {
                    let checkpoint = self.checkpoint_draft(&device.public(), lane, refs.len())?;
                    written.push(self.sign_and_insert(device, checkpoint)?);
                }
                Err(DraftError::WrongLane { kind, expected }) => {
                    return Err(refused(Reason::WrongLane { kind, expected }));
                }
                Err(DraftError::LaneDependency(dep)) => {
                    return Err(refused(Reason::LaneDependency(dep)));
                }
                Err(_) => return Err(refused(Reason::MalformedBody(BodyError::Limit(0)))),
            }
        }
    }

    /// Signs `body` as `device` in `lane`, naming `refs`, and inserts it. When the roll heads
    /// and `refs` are more than one op may name, checkpoint ops gather the heads first. Returns
    /// every op written, in order (checkpoints, then the op).
    pub fn write_in(
        &mut self,
        device: &SecretKey,
        lane: Lane,
        body: &Body,
        refs: &[OpId],
    ) -> Result<Vec<OpId>, Rejection> {
        self.write_ops(device, lane, body, refs)
            .map(|ops| ops.iter().map(|op| op.id()).collect())
    }

    /// [`Replica::write_ops`] for an op that must follow **everything this replica holds** in
    /// the lanes `lane` may depend on (a poll's close, a station close: exactly the ballots in
    /// its causal past count). Checkpoints in the author's own chain name every other chain's
    /// tip, up to the dependency limit each, so the op's past holds every op held. Returns
    /// the ops written, in order.
    pub fn write_covering(
        &mut self,
        device: &SecretKey,
        lane: Lane,
        body: &Body,
        refs: &[OpId],
    ) -> Result<Vec<Authentic<SignedOp>>, Rejection> {
        let refused = |reason| Rejection { op: None, reason };
        let own = self.device_no(device.public().as_bytes());
        // Each chain is named by its last op this node judged and accepted: naming an op of a
        // kind it cannot judge (a newer version's) would hold this op for an upgrade, so that
        // anyone, a guest too, could keep every poll from closing. What such an op follows in
        // its chain is named instead. A chain whose op so named is a roll op is in the past of
        // the roll heads, which the op names anyway (and naming many roll ops at once would
        // cost a frontier computation each).
        let named = |n: u32| {
            self.last_judged_in_chain(n)
                .filter(|&n| self.index.meta(n).is_some_and(|m| !kind::is_roll(m.kind)))
                .and_then(|n| self.index.id(n))
        };
        let mut cover: Vec<OpId> = self
            .tips
            .iter()
            .filter(|((d, l), _)| Some(*d) != own && lane.may_depend_on(*l))
            .filter_map(|(_, n)| named(*n))
            .collect();
        // Every branch of a forked chain: the tips follow one branch, so each other one is
        // followed from where it forks to its end (an op on it may be a ballot).
        cover.extend(
            self.forks
                .iter()
                .filter(|((_, l, _), _)| lane.may_depend_on(*l))
                .flat_map(|(_, ids)| ids.iter())
                .filter_map(|id| self.branch_end(id))
                .filter_map(|id| self.index.number(&id))
                .filter_map(named),
        );
        cover.sort_unstable();
        cover.dedup();
        let mut written = Vec::new();
        // The refs and the roll heads go in the final op; the rest in checkpoints.
        let room = moot_crypto::op::MAX_DEPS.saturating_sub(refs.len() + 1);
        let mut rest = cover.as_slice();
        while rest.len() > room {
            let (chunk, later) = rest.split_at(rest.len().min(moot_crypto::op::MAX_DEPS));
            rest = later;
            let (kind, bytes) = Body::Checkpoint(Checkpoint {})
                .encode()
                .ok_or_else(|| refused(Reason::MalformedBody(BodyError::Limit(0))))?;
            let (seq, prev) = self.next_in_chain(&device.public(), lane);
            let draft = Draft {
                lane,
                seq,
                prev,
                deps: chunk.iter().copied().filter(|d| Some(*d) != prev).collect(),
                kind,
                body: bytes,
            };
            written.push(self.sign_and_insert(device, draft)?);
        }
        let mut refs = refs.to_vec();
        refs.extend_from_slice(rest);
        written.extend(self.write_ops(device, lane, body, &refs)?);
        Ok(written)
    }

    /// Op `n` if this node judged and accepted it, else the nearest op before it in its chain
    /// that it did (`None` if there is none): what a covering op names of a chain.
    fn last_judged_in_chain(&self, mut n: u32) -> Option<u32> {
        loop {
            let meta = self.index.meta(n)?;
            if meta.verdict() == Verdict::Accepted && !meta.tainted() {
                return Some(n);
            }
            // Its `prev`: the parent of its device and lane one sequence number lower.
            n = self.deps_of(n).find(|&p| {
                self.index.meta(p).is_some_and(|m| {
                    m.device == meta.device && m.lane() == meta.lane() && m.seq() + 1 == meta.seq()
                })
            })?;
        }
    }

    /// The last op of the chain branch through `id`: its successors followed to the end (a
    /// later fork on the branch is in `forks` too, and followed from there).
    fn branch_end(&self, id: &OpId) -> Option<OpId> {
        let mut n = self.index.number(id)?;
        // A successor is numbered after its predecessor, so the walk ends.
        while let Some(next) = self
            .index
            .meta(n)
            .map(|m| m.successor)
            .filter(|s| *s != NONE && *s > n)
        {
            n = next;
        }
        self.index.id(n)
    }

    /// A checkpoint naming as many roll heads as fit beside `room` other dependencies, the
    /// lowest ids first (deterministic).
    fn checkpoint_draft(
        &self,
        device: &DeviceId,
        lane: Lane,
        room: usize,
    ) -> Result<Draft, Rejection> {
        let refused = |reason| Rejection { op: None, reason };
        let body = Body::Checkpoint(Checkpoint {});
        let (kind, bytes) = body
            .encode()
            .ok_or_else(|| refused(Reason::MalformedBody(BodyError::Limit(kind::CHECKPOINT))))?;
        let (seq, prev) = self.next_in_chain(device, lane);
        let take =
            moot_crypto::op::MAX_DEPS.saturating_sub(room.min(moot_crypto::op::MAX_DEPS / 2));
        let deps: Vec<OpId> = self
            .uncovered_heads(lane, prev)
            .filter(|h| Some(*h) != prev)
            .take(take.max(2))
            .collect();
        Ok(Draft {
            lane,
            seq,
            prev,
            deps,
            kind,
            body: bytes,
        })
    }

    /// The `seq` and `prev` of `device`'s next op in `lane`.
    fn next_in_chain(&self, device: &DeviceId, lane: Lane) -> (u64, Option<OpId>) {
        match self.chain_head(device, lane) {
            Some((seq, id)) => (seq + 1, Some(id)),
            None => (1, None),
        }
    }

    /// The roll heads of `lane` not already in the past of `prev` (the device's own chain).
    /// A head in that past is maximal there, so it is in `prev`'s frontier: that is the test.
    fn uncovered_heads(&self, lane: Lane, prev: Option<OpId>) -> impl Iterator<Item = OpId> + '_ {
        let covered = prev.and_then(|p| self.frontier_of(&p));
        self.roll_heads[lane_index(lane)]
            .iter()
            .filter(move |h| !covered.as_ref().is_some_and(|c| c.contains(h)))
            .copied()
    }

    fn sign_and_insert(
        &mut self,
        device: &SecretKey,
        draft: Draft,
    ) -> Result<Authentic<SignedOp>, Rejection> {
        let op = draft.sign(&self.hub, device).map_err(|e| Rejection {
            op: None,
            reason: match e {
                moot_crypto::BuildError::Invalid(d) => Reason::Malformed(d),
                _ => Reason::BadSignature,
            },
        })?;
        let insertion = self.insert_authentic(op.clone());
        match insertion.outcome {
            Outcome::Rejected(rejection) => Err(rejection),
            Outcome::Accepted(_)
            | Outcome::Unsupported(_)
            | Outcome::NeedsUpgrade(_)
            | Outcome::Duplicate(_)
            | Outcome::Pending { .. } => Ok(op),
        }
    }
}

#[cfg(test)]
mod tests {
    /// A judged roll op's node: its body and numbers — the author by device number, not by
    /// its 32-byte key, and its two frontiers and its facts by their interned numbers, not by
    /// handles of 16 bytes each.
    #[test]
    fn a_roll_node_keeps_its_author_frontiers_and_facts_by_number() {
        assert_eq!(
            std::mem::size_of::<super::RollNode>(),
            std::mem::size_of::<super::RollBody>() + 8 + 6 * 4 + 8
        );
        // A frontier of one op holds it inline.
        assert_eq!(std::mem::size_of::<super::Frontier>(), 40);
    }

    /// A roll op's body costs 72 bytes, not a `Body`'s 136, and reads back as it was, but for
    /// a certification's certificate (checked on arrival, never read again).
    #[test]
    fn a_roll_body_is_kept_small_and_reads_back_as_it_was() {
        use super::RollBody;
        use crate::body::{Admit, Body, Certificate, CertifyDevice, Remove, SetName, Standing};
        assert_eq!(std::mem::size_of::<RollBody>(), 72);
        assert_eq!(std::mem::size_of::<Body>(), 136);
        let member = crate::sample::key(1, 3).public();
        let device = crate::sample::key(2, 3).public();
        let bodies = [
            Body::Admit(Admit {
                member,
                standing: Standing::Guest,
            }),
            Body::SetName(SetName {
                member,
                name: "Ada".into(),
            }),
            Body::Remove(Remove {
                member,
                cuts: vec![],
            }),
        ];
        for body in bodies {
            assert_eq!(*RollBody::new(body.clone()).get(), body);
        }
        let certify = CertifyDevice {
            member,
            device,
            certificate: Certificate([9; 64]),
        };
        let kept = RollBody::new(Body::CertifyDevice(certify.clone()));
        let read = kept.get();
        let Body::CertifyDevice(read) = &*read else {
            panic!("{read:?}");
        };
        assert_eq!((read.member, read.device), (certify.member, certify.device));
        assert_eq!(read.certificate, Certificate([0; 64]));
    }

    /// The members one steward admitted share one copy of the steward's facts; a device
    /// certifying itself, which rests on its own member's admission alone, is numbered by that
    /// admission and takes no place in the table.
    #[test]
    fn roll_ops_share_the_facts_they_have_in_common() {
        // 40 members admitted by the founder, each certifying a device of its own.
        let sample = crate::sample::poll_history(40);
        let mut replica = super::Replica::new(sample.hub, crate::Limits::default());
        replica.insert_batch(&sample.setup);
        let rolls = &replica.rolls;
        let facts_of = |kind: fn(&super::RollBody) -> bool| -> Vec<u32> {
            rolls
                .nodes
                .iter()
                .filter(|n| kind(&n.body))
                .map(|n| n.facts)
                .collect()
        };
        let admissions = facts_of(|b| matches!(b, super::RollBody::Admit(_)));
        assert!(admissions.len() >= 40, "{} admissions", admissions.len());
        let mut distinct = admissions.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() <= 2, "{distinct:?}");
        let certifications = facts_of(|b| matches!(b, super::RollBody::Certified { .. }));
        assert!(certifications.len() >= 40);
        for n in certifications {
            assert_ne!(n & super::ONE_OP, 0, "a certification's facts in the table");
            let [admission] = rolls.facts(&replica.index, n) else {
                panic!("{:?}", rolls.facts(&replica.index, n));
            };
            assert!(
                rolls
                    .get(&replica.index, admission)
                    .is_some_and(|node| matches!(node.body, super::RollBody::Admit(_)))
            );
        }
        // The admissions' one set of facts, and the genesis's and the poll setup's few.
        assert!(
            rolls.facts.len() < 6,
            "{} sets of facts for {} nodes",
            rolls.facts.len(),
            rolls.nodes.len()
        );
        // Every node's facts are the facts its authorization used, by number.
        for node in &rolls.nodes {
            let ids = rolls.facts(&replica.index, node.facts);
            assert!(ids.iter().all(|id| replica.index.contains(id)));
        }
    }

    /// A held author's key comes back without parsing, equal to the parsed one; bytes of no
    /// author held here (a stranger's key, non-points) give nothing.
    #[test]
    fn held_keys_are_the_parsed_keys_of_authors_held() {
        let sample = crate::sample::poll_history(20);
        let mut replica = super::Replica::new(sample.hub, crate::Limits::default());
        replica.insert_batch(&sample.setup);
        let authors: std::collections::BTreeSet<[u8; 32]> = sample
            .setup
            .iter()
            .filter_map(|bytes| moot_crypto::op::SignedOp::decode(bytes).ok())
            .map(|op| op.author().to_bytes())
            .collect();
        assert!(authors.len() > 20, "{} authors", authors.len());
        for raw in &authors {
            let parsed = moot_crypto::PublicKey::from_bytes(raw).ok();
            assert!(parsed.is_some());
            assert_eq!(replica.held_key(raw), parsed);
        }
        let stranger = moot_crypto::SecretKey::from_seed([77; 32])
            .public()
            .to_bytes();
        assert_eq!(replica.held_key(&stranger), None);
        assert_eq!(replica.held_key(&[0xff; 32]), None);
    }
}
