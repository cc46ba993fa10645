//! A hub replica: takes signed ops in any order, validates each at its causal position, and
//! derives the roll from the valid op set.
//!
//! # Validity
//! An op is accepted into the replica when it decodes, its signature verifies for the hub, its
//! body decodes, its dependencies are present (otherwise it waits, bounded) and none was
//! rejected, it continues its author's chain (`prev` is the author's op with `seq - 1`), and
//! its author was allowed to write it in the **roll state of its causal past**: the resolution
//! of the roll ops it causally follows. That check is made once, since an op's past never
//! changes.
//!
//! Whether an accepted op *counts* can still depend on concurrent ops, because removals must win
//! against ops a removed member writes without acknowledging them (back-dating):
//! - **Roll ops** are resolved in one deterministic order: each op after its causal ancestors;
//!   among concurrent ones, the author with the higher seniority first (the founder, then
//!   stewards in the order they became stewards, then everyone else), then the lower op id. Each
//!   must be authorized by the roll as resolved so far, so a removal processed first disables
//!   the removed member's concurrent roll ops.
//! - **Other ops** count unless they come after a removal or revocation cut they do not follow.
//!
//! Everything is a pure function of the set of ops: two replicas holding the same ops agree on
//! every result, whatever the order of arrival (a property test checks it).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};

/// Hash maps keyed by op ids and keys: a fast, randomly seeded hasher. Iteration order of these
/// maps never reaches a result (ordered maps are used wherever it could).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

use moot_crypto::{Authentic, DecodeError, Draft, HubId, OpId, SecretKey, SignedOp};

use crate::body::{Body, BodyError, DeviceId, MemberId};
use crate::roll::{Denied, Roll};

/// Bounds on what a replica buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Ops waiting for missing dependencies, at most.
    pub max_pending: usize,
    /// Cached roll resolutions (performance only: results never depend on it).
    pub max_cached_rolls: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pending: 10_000,
            max_cached_rolls: 4_096,
        }
    }
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
    /// Too many ops already wait for dependencies; send it again later.
    #[error("too many ops waiting for dependencies")]
    PendingFull,
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

/// The result of one insertion: the op's own outcome, plus ops that were waiting for it and
/// have now been accepted or rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insertion {
    /// The op given.
    pub outcome: Outcome,
    /// Waiting ops this one released.
    pub released: Vec<Outcome>,
}

/// Two ops with the same author and sequence number: a forked chain, kept as evidence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Equivocation {
    /// The device.
    pub device: DeviceId,
    /// The sequence number.
    pub seq: u64,
    /// The conflicting ops, ascending.
    pub ops: Vec<OpId>,
}

/// The maximal roll ops in an op's causal past (an antichain), ascending. Every roll op in the
/// past is reachable from it through `roll_parents` links, so it identifies the past exactly,
/// forks included.
type Frontier = Arc<Vec<OpId>>;

struct Node {
    op: Authentic<SignedOp>,
    body: Body,
    member: MemberId,
    /// The frontier of the op's strict causal past.
    roll_parents: Frontier,
    /// For roll ops, the longest chain of roll ops ending here; 0 otherwise.
    roll_depth: u64,
    /// Seniority of the author in the op's causal past (orders concurrent roll ops).
    rank: u64,
}

/// The outcome of resolving a causally closed set of roll ops.
#[derive(Debug, Clone, Default)]
struct Resolution {
    roll: Roll,
    denied: imbl::OrdMap<OpId, Denied>,
}

/// A valid op: only the replica can make one.
#[derive(Debug, Clone, Copy)]
pub struct Valid<'a> {
    op: &'a SignedOp,
    body: &'a Body,
    member: MemberId,
}

impl<'a> Valid<'a> {
    /// The signed op.
    pub fn op(&self) -> &'a SignedOp {
        self.op
    }
    /// Its decoded body.
    pub fn body(&self) -> &'a Body {
        self.body
    }
    /// The member who wrote it.
    pub fn member(&self) -> MemberId {
        self.member
    }
}

/// One hub's ops and the state derived from them.
pub struct Replica {
    hub: HubId,
    limits: Limits,
    nodes: HashMap<OpId, Box<Node>>,
    /// Author chains: (device key bytes, seq) → op ids (more than one: a fork).
    chains: BTreeMap<([u8; 32], u64), Vec<OpId>>,
    heads: BTreeSet<OpId>,
    rejected: HashMap<OpId, Reason>,
    pending: HashMap<OpId, Authentic<SignedOp>>,
    waiting_on: HashMap<OpId, BTreeSet<OpId>>,
    roll_ops: BTreeSet<OpId>,
    cache: HashMap<Frontier, Arc<Resolution>>,
    cache_order: VecDeque<Frontier>,
    global: Option<Arc<Resolution>>,
    /// Parsed author keys (parsing a key dominates decoding); bounded.
    authors: HashMap<[u8; 32], moot_crypto::PublicKey>,
}

/// Most parsed author keys kept.
const MAX_CACHED_AUTHORS: usize = 65_536;

impl Replica {
    /// An empty replica of `hub`.
    pub fn new(hub: HubId, limits: Limits) -> Self {
        Replica {
            hub,
            limits,
            nodes: HashMap::default(),
            chains: BTreeMap::new(),
            heads: BTreeSet::new(),
            rejected: HashMap::default(),
            pending: HashMap::default(),
            waiting_on: HashMap::default(),
            roll_ops: BTreeSet::new(),
            cache: HashMap::default(),
            cache_order: VecDeque::new(),
            global: None,
            authors: HashMap::default(),
        }
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<SignedOp, DecodeError> {
        let authors = &mut self.authors;
        SignedOp::decode_with(bytes, |raw| {
            if let Some(key) = authors.get(raw) {
                return Ok(*key);
            }
            let key = moot_crypto::PublicKey::from_bytes(raw)?;
            if authors.len() >= MAX_CACHED_AUTHORS {
                authors.clear();
            }
            authors.insert(*raw, key);
            Ok(key)
        })
    }

    /// The hub.
    pub fn hub(&self) -> HubId {
        self.hub
    }

    /// Ops accepted.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no op is held.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Ops waiting for dependencies.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The bytes of an accepted op.
    pub fn op_bytes(&self, id: &OpId) -> Option<&[u8]> {
        self.op(id).map(SignedOp::bytes)
    }

    /// An accepted op.
    pub fn op(&self, id: &OpId) -> Option<&SignedOp> {
        self.nodes.get(id).map(|n| n.op.get())
    }

    /// True if the op is held, waiting, or was rejected: giving it again changes nothing.
    fn is_known(&self, id: &OpId) -> bool {
        self.nodes.contains_key(id)
            || self.rejected.contains_key(id)
            || self.pending.contains_key(id)
    }

    /// Every accepted op id, ascending.
    pub fn op_ids(&self) -> BTreeSet<OpId> {
        self.nodes.keys().copied().collect()
    }

    /// Why an op was rejected, if it was.
    pub fn rejection(&self, id: &OpId) -> Option<&Reason> {
        self.rejected.get(id)
    }

    /// The latest op of `device`'s chain held here: `(seq, id)`.
    pub fn chain_head(&self, device: &DeviceId) -> Option<(u64, OpId)> {
        let device = device.to_bytes();
        self.chains
            .range((device, 0)..=(device, u64::MAX))
            .next_back()
            .and_then(|((_, seq), ids)| ids.first().map(|id| (*seq, *id)))
    }

    /// Decodes, authenticates and inserts one op.
    pub fn insert(&mut self, bytes: &[u8]) -> Insertion {
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
            Ok(op) => self.insert_authentic(op),
            Err(_) => {
                let outcome = self.reject(id, Reason::BadSignature);
                Self::single(outcome)
            }
        }
    }

    /// Decodes and inserts many ops, checking their signatures in Ed25519 batches. Outcomes are
    /// the same as inserting them one by one, in order.
    pub fn insert_batch<B: AsRef<[u8]>>(&mut self, ops: &[B]) -> Vec<Insertion> {
        let mut slots: Vec<Option<Insertion>> = Vec::with_capacity(ops.len());
        let mut to_check = Vec::new();
        let mut positions = Vec::new();
        let mut seen = HashSet::default();
        for bytes in ops {
            match self.decode(bytes.as_ref()) {
                Err(error) => slots.push(Some(Self::single(Outcome::Rejected(Rejection {
                    op: None,
                    reason: Reason::Malformed(error),
                })))),
                Ok(op) => {
                    let id = op.id();
                    let known = self.is_known(&id);
                    if known || !seen.insert(id) {
                        slots.push(Some(Self::single(Outcome::Duplicate(id))));
                    } else {
                        positions.push(slots.len());
                        slots.push(None);
                        to_check.push(op);
                    }
                }
            }
        }
        self.nodes.reserve(to_check.len());
        // Signatures are checked in Ed25519 batches on worker threads while this thread
        // validates the batches already checked, in input order.
        let hub = self.hub;
        let mut chunks: Vec<Mutex<Option<Vec<SignedOp>>>> = Vec::new();
        let mut chunk_positions: Vec<Vec<usize>> = Vec::new();
        let mut ops_left = to_check.into_iter().zip(positions).peekable();
        while ops_left.peek().is_some() {
            let (chunk, chunk_pos): (Vec<SignedOp>, Vec<usize>) =
                ops_left.by_ref().take(moot_crypto::op::BATCH).unzip();
            chunks.push(Mutex::new(Some(chunk)));
            chunk_positions.push(chunk_pos);
        }
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let next_chunk = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let (sender, receiver) = mpsc::channel();
            for _ in 0..workers.min(chunks.len()) {
                let sender = sender.clone();
                let (chunks, next_chunk) = (&chunks, &next_chunk);
                scope.spawn(move || {
                    loop {
                        let index = next_chunk.fetch_add(1, Ordering::Relaxed);
                        let Some(slot) = chunks.get(index) else { break };
                        // `take` cannot panic, so the lock is never poisoned; recover it anyway.
                        let chunk = slot
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .take()
                            .unwrap_or_default();
                        let checked = moot_crypto::authenticate_sequential(&hub, chunk);
                        if sender.send((index, checked)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(sender);
            let mut ready: BTreeMap<usize, Vec<_>> = BTreeMap::new();
            let mut expected = 0;
            for (index, checked) in receiver {
                ready.insert(index, checked);
                while let Some(checked) = ready.remove(&expected) {
                    for (position, result) in chunk_positions[expected].iter().zip(checked) {
                        let insertion = match result {
                            Ok(op) => self.insert_authentic(op),
                            Err(moot_crypto::SignatureError::Invalid(id)) => {
                                let outcome = self.reject(id, Reason::BadSignature);
                                Self::single(outcome)
                            }
                            Err(_) => Self::single(Outcome::Rejected(Rejection {
                                op: None,
                                reason: Reason::BadSignature,
                            })),
                        };
                        slots[*position] = Some(insertion);
                    }
                    expected += 1;
                }
            }
        });
        slots.into_iter().flatten().collect()
    }

    /// Inserts an op this node signed itself.
    pub fn insert_authentic(&mut self, op: Authentic<SignedOp>) -> Insertion {
        let id = op.id();
        if self.is_known(&id) {
            return Self::single(Outcome::Duplicate(id));
        }
        let outcome = self.admit(op);
        let mut released = Vec::new();
        if let Outcome::Accepted(id) | Outcome::Rejected(Rejection { op: Some(id), .. }) = &outcome
        {
            self.release(*id, &mut released);
        }
        Insertion { outcome, released }
    }

    fn single(outcome: Outcome) -> Insertion {
        Insertion {
            outcome,
            released: Vec::new(),
        }
    }

    fn reject(&mut self, id: OpId, reason: Reason) -> Outcome {
        if reason != Reason::PendingFull {
            self.rejected.insert(id, reason.clone());
        }
        Outcome::Rejected(Rejection {
            op: Some(id),
            reason,
        })
    }

    /// Re-examines ops that were waiting on `id`, transitively.
    fn release(&mut self, id: OpId, released: &mut Vec<Outcome>) {
        let mut queue = vec![id];
        while let Some(done) = queue.pop() {
            let Some(waiters) = self.waiting_on.remove(&done) else {
                continue;
            };
            for waiter in waiters {
                let still_missing = self.missing_deps(&waiter);
                if !still_missing.is_empty() {
                    continue;
                }
                let Some(op) = self.pending.remove(&waiter) else {
                    continue;
                };
                let outcome = self.admit(op);
                if let Outcome::Accepted(id) | Outcome::Rejected(Rejection { op: Some(id), .. }) =
                    &outcome
                {
                    queue.push(*id);
                }
                released.push(outcome);
            }
        }
    }

    fn parents(op: &SignedOp) -> impl Iterator<Item = OpId> + '_ {
        op.prev().into_iter().chain(op.deps().iter().copied())
    }

    fn missing_deps(&self, id: &OpId) -> Vec<OpId> {
        let Some(op) = self.pending.get(id) else {
            return Vec::new();
        };
        Self::parents(op)
            .filter(|p| !self.nodes.contains_key(p))
            .collect()
    }

    /// The checks after authentication.
    fn admit(&mut self, op: Authentic<SignedOp>) -> Outcome {
        let id = op.id();
        let body = match Body::decode(op.kind(), op.body()) {
            Ok(body) => body,
            Err(error) => return self.reject(id, Reason::MalformedBody(error)),
        };
        if !body.check_certificates(&self.hub, &op.author()) {
            let denied = match body {
                Body::Found(_) => Denied::BadGenesis,
                _ => Denied::BadCertificate,
            };
            return self.reject(id, Reason::Unauthorized(denied));
        }
        if let Some(bad) = Self::parents(&op).find(|p| self.rejected.contains_key(p)) {
            return self.reject(id, Reason::InvalidDependency(bad));
        }
        let missing: Vec<OpId> = Self::parents(&op)
            .filter(|p| !self.nodes.contains_key(p))
            .collect();
        if !missing.is_empty() {
            if self.pending.len() >= self.limits.max_pending {
                return self.reject(id, Reason::PendingFull);
            }
            for dep in &missing {
                self.waiting_on.entry(*dep).or_default().insert(id);
            }
            self.pending.insert(id, op);
            return Outcome::Pending { op: id, missing };
        }
        if let Some(prev) = op.prev() {
            let continues = self
                .nodes
                .get(&prev)
                .is_some_and(|p| p.op.author() == op.author() && p.op.seq() + 1 == op.seq());
            if !continues {
                return self.reject(id, Reason::BrokenChain);
            }
        }
        // The roll state of the op's causal past.
        let roll_parents = self.frontier_of_parents(&op);
        let past = self.resolution(&roll_parents);
        let author = op.author();
        if let Err(denied) = past.roll.authorize(&self.hub, &author, &body) {
            return self.reject(id, Reason::Unauthorized(denied));
        }
        let member = match &body {
            Body::Found(found) => found.founder,
            Body::CertifyDevice(c) if c.device == author => c.member,
            _ => match past.roll.member_of(&author) {
                Some(member) => member,
                None => return self.reject(id, Reason::Unauthorized(Denied::UnknownDevice)),
            },
        };
        let rank = match &body {
            Body::Found(_) => 0,
            _ => past.roll.rank(&member),
        };
        let is_roll = body.is_roll();
        let roll_depth = if is_roll {
            1 + roll_parents
                .iter()
                .filter_map(|p| self.nodes.get(p).map(|n| n.roll_depth))
                .max()
                .unwrap_or(0)
        } else {
            0
        };
        if is_roll {
            // Extend the cached resolution: this op follows every roll op in its past, so it
            // comes last in their resolution order. The roll's maps are persistent, so the
            // copy shares everything but what this op changes, and the past's entry stays
            // cached for other ops that share that past.
            self.global = None;
            let mut extended = (*past).clone();
            match extended.roll.authorize(&self.hub, &author, &body) {
                Ok(()) => extended.roll.apply(id, &author, &body),
                Err(denied) => {
                    extended.denied.insert(id, denied);
                }
            }
            self.remember(Arc::new(vec![id]), Arc::new(extended));
            self.roll_ops.insert(id);
            self.global = None;
        }
        for parent in Self::parents(&op) {
            self.heads.remove(&parent);
        }
        self.heads.insert(id);
        let ids = self
            .chains
            .entry((author.to_bytes(), op.seq()))
            .or_default();
        ids.push(id);
        ids.sort_unstable();
        self.nodes.insert(
            id,
            Box::new(Node {
                op,
                body,
                member,
                roll_parents,
                roll_depth,
                rank,
            }),
        );
        Outcome::Accepted(id)
    }

    fn remember(&mut self, frontier: Frontier, resolution: Arc<Resolution>) {
        if self.cache.insert(frontier.clone(), resolution).is_none() {
            self.cache_order.push_back(frontier);
        }
        while self.cache_order.len() > self.limits.max_cached_rolls {
            if let Some(old) = self.cache_order.pop_front() {
                self.cache.remove(&old);
            }
        }
    }

    /// The frontier a roll op or other op presents to its children.
    fn frontier_of(&self, id: &OpId) -> Option<Frontier> {
        let node = self.nodes.get(id)?;
        Some(if node.body.is_roll() {
            Arc::new(vec![*id])
        } else {
            node.roll_parents.clone()
        })
    }

    /// The frontier of an op's strict causal past: the maximal roll ops among its parents'.
    fn frontier_of_parents(&self, op: &SignedOp) -> Frontier {
        let mut frontiers: Vec<Frontier> = Self::parents(op)
            .filter_map(|p| self.frontier_of(&p))
            .collect();
        frontiers.dedup();
        if let [only] = frontiers.as_slice() {
            return only.clone();
        }
        let mut union: Vec<OpId> = frontiers.iter().flat_map(|f| f.iter().copied()).collect();
        union.sort_unstable();
        union.dedup();
        let maximal: Vec<OpId> = union
            .iter()
            .copied()
            .filter(|a| !union.iter().any(|b| b != a && self.is_roll_ancestor(a, b)))
            .collect();
        Arc::new(maximal)
    }

    /// True if roll op `a` is a strict ancestor of roll op `b`.
    fn is_roll_ancestor(&self, a: &OpId, b: &OpId) -> bool {
        let Some(depth_a) = self.nodes.get(a).map(|n| n.roll_depth) else {
            return false;
        };
        let mut stack = vec![*b];
        let mut seen = HashSet::default();
        while let Some(current) = stack.pop() {
            let Some(node) = self.nodes.get(&current) else {
                continue;
            };
            for parent in node.roll_parents.iter() {
                if parent == a {
                    return true;
                }
                // Ancestors of `a`'s depth or lower cannot lead to it.
                let deeper = self
                    .nodes
                    .get(parent)
                    .is_some_and(|p| p.roll_depth > depth_a);
                if deeper && seen.insert(*parent) {
                    stack.push(*parent);
                }
            }
        }
        false
    }

    /// True if roll op `a` is in the causal past described by `frontier`.
    fn in_past(&self, a: &OpId, frontier: &[OpId]) -> bool {
        frontier
            .iter()
            .any(|f| f == a || self.is_roll_ancestor(a, f))
    }

    /// The resolution of the roll ops in the causal past described by `frontier`.
    fn resolution(&mut self, frontier: &Frontier) -> Arc<Resolution> {
        if let Some(hit) = self.cache.get(frontier) {
            return hit.clone();
        }
        let mut subset = BTreeSet::new();
        let mut stack: Vec<OpId> = frontier.to_vec();
        while let Some(current) = stack.pop() {
            if subset.insert(current)
                && let Some(node) = self.nodes.get(&current)
            {
                stack.extend(node.roll_parents.iter().copied());
            }
        }
        let resolution = Arc::new(self.resolve(&subset));
        self.remember(frontier.clone(), resolution.clone());
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
            let Some(node) = self.nodes.get(id) else {
                continue;
            };
            let parents = node
                .roll_parents
                .iter()
                .filter(|p| subset.contains(*p))
                .count();
            waiting_for.insert(*id, parents);
            real_waiting.insert(*id, parents);
            for parent in node.roll_parents.iter().filter(|p| subset.contains(*p)) {
                children.entry(*parent).or_default().push(*id);
            }
            match &node.body {
                Body::Found(found) => {
                    devices_of
                        .entry(found.founder)
                        .or_default()
                        .insert(node.op.author());
                }
                Body::CertifyDevice(c) => {
                    devices_of.entry(c.member).or_default().insert(c.device);
                }
                _ => {}
            }
        }
        // Cuts: a roll op concurrent with a removal or revocation of its author, beyond the cut,
        // waits for it (and is then judged by the roll after it).
        for id in subset {
            let Some(node) = self.nodes.get(id) else {
                continue;
            };
            let cuts: Vec<(DeviceId, u64)> = match &node.body {
                Body::Remove(remove) => {
                    let listed: BTreeMap<DeviceId, u64> = remove.cuts.iter().copied().collect();
                    devices_of
                        .get(&remove.member)
                        .into_iter()
                        .flatten()
                        .map(|d| (*d, listed.get(d).copied().unwrap_or(0)))
                        .collect()
                }
                Body::RevokeDevice(revoke) => vec![(revoke.device, revoke.cut)],
                _ => continue,
            };
            for other in subset {
                let Some(target) = self.nodes.get(other) else {
                    continue;
                };
                let beyond = cuts
                    .iter()
                    .any(|(device, last)| target.op.author() == *device && target.op.seq() > *last);
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
        let key = |id: &OpId| (self.nodes.get(id).map_or(u64::MAX, |n| n.rank), *id);
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
            if let Some(node) = self.nodes.get(&next) {
                let author = node.op.author();
                match resolution.roll.authorize(&self.hub, &author, &node.body) {
                    Ok(()) => resolution.roll.apply(next, &author, &node.body),
                    Err(denied) => {
                        resolution.denied.insert(next, denied);
                    }
                }
            }
            for child in children.get(&next).into_iter().flatten() {
                let is_real = self
                    .nodes
                    .get(child)
                    .is_some_and(|c| c.roll_parents.contains(&next));
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
        resolution
    }

    fn global(&mut self) -> Arc<Resolution> {
        if let Some(global) = &self.global {
            return global.clone();
        }
        let resolution = Arc::new(self.resolve(&self.roll_ops));
        self.global = Some(resolution.clone());
        resolution
    }

    /// The roll derived from every valid op held.
    pub fn roll(&mut self) -> Roll {
        self.global().roll.clone()
    }

    /// Whether an accepted op counts, with the reason if it does not.
    pub fn validity(&mut self, id: &OpId) -> Option<Result<Valid<'_>, Denied>> {
        let global = self.global();
        let node = self.nodes.get(id)?;
        if node.body.is_roll() {
            if let Some(denied) = global.denied.get(id) {
                return Some(Err(denied.clone()));
            }
        } else {
            for (cut, last_seq) in global.roll.cuts_for(&node.op.author()) {
                if node.op.seq() > last_seq && !self.in_past(&cut.by, &node.roll_parents) {
                    return Some(Err(Denied::BeyondCut));
                }
            }
        }
        Some(Ok(Valid {
            op: &node.op,
            body: &node.body,
            member: node.member,
        }))
    }

    /// Every accepted op id with whether it counts, ascending by id.
    pub fn validities(&mut self) -> BTreeMap<OpId, Result<(), Denied>> {
        let ids = self.op_ids();
        ids.into_iter()
            .filter_map(|id| self.validity(&id).map(|v| (id, v.map(drop))))
            .collect()
    }

    /// Forked chains: two or more ops with one author and sequence number.
    pub fn equivocations(&self) -> Vec<Equivocation> {
        self.chains
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .filter_map(|((device, seq), ids)| {
                Some(Equivocation {
                    device: moot_crypto::PublicKey::from_bytes(device).ok()?,
                    seq: *seq,
                    ops: ids.clone(),
                })
            })
            .collect()
    }

    /// A draft of `device`'s next op: the next sequence number, `prev`, and the current heads
    /// as dependencies (at most [`moot_crypto::op::MAX_DEPS`], the highest ids).
    pub fn draft(&self, device: &DeviceId, body: &Body) -> Option<Draft> {
        let (kind, bytes) = body.encode()?;
        let (seq, prev) = match self.chain_head(device) {
            Some((seq, id)) => (seq + 1, Some(id)),
            None => (1, None),
        };
        let deps: Vec<OpId> = self
            .heads
            .iter()
            .rev()
            .filter(|h| Some(**h) != prev)
            .take(moot_crypto::op::MAX_DEPS)
            .copied()
            .collect();
        Some(Draft {
            seq,
            prev,
            deps,
            kind,
            body: bytes,
        })
    }

    /// Signs `body` as `device` at this replica's current position and inserts it.
    pub fn write(&mut self, device: &SecretKey, body: &Body) -> Result<OpId, Rejection> {
        let draft = self.draft(&device.public(), body).ok_or(Rejection {
            op: None,
            reason: Reason::MalformedBody(BodyError::Limit(0)),
        })?;
        let op = draft.sign(&self.hub, device).map_err(|e| Rejection {
            op: None,
            reason: match e {
                moot_crypto::BuildError::Invalid(d) => Reason::Malformed(d),
                _ => Reason::BadSignature,
            },
        })?;
        match self.insert_authentic(op).outcome {
            Outcome::Accepted(id) => Ok(id),
            Outcome::Rejected(rejection) => Err(rejection),
            Outcome::Duplicate(id) | Outcome::Pending { op: id, .. } => Ok(id),
        }
    }
}
