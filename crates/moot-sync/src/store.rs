//! What the engine needs from the node's op store ([`OpStore`]), and an in-memory store
//! ([`MemoryStore`]) for tests, the simulation and tools.
//!
//! The engine does not own storage: the node implements [`OpStore`] over its redb file
//! (`moot-store`: `Store::ops_from`/`load_from`, `Store::op`, `Store::heads`,
//! `Store::put_kept`). Positions are the store's acceptance order: every op is stored after the
//! ops it depends on, so reading in position order is a causal order.

use std::collections::{BTreeMap, BTreeSet};

use moot_crypto::{Lane, OpId, SignedOp};
use moot_state::Verdict;

use crate::wire::Head;

/// A store failure, as the node's store reports it. The engine passes it up unchanged; the
/// node decides (a store that cannot write cannot acknowledge ops).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("op store: {0}")]
pub struct StoreError(pub String);

/// The node's op store for one hub, as the sync engine sees it.
///
/// **Invariants the engine relies on:** positions only grow; an op is stored only after
/// every op it depends on (so [`OpStore::ops_from`] is a causal order); the store holds exactly
/// the ops the node's `Replica` holds (the node stores what the replica keeps, and loads the
/// replica from the store).
pub trait OpStore {
    /// A position past every op stored so far; ops stored later get positions at or above it.
    /// After [`OpStore::put_kept`] it is past the ops just stored, and past any op another
    /// writer stored meanwhile (the engine compares it with the count it stored).
    fn end(&self) -> u64;
    /// Up to `max_ops` ops from `position` on, in position order: `(position, exact bytes)`.
    fn ops_from(&self, position: u64, max_ops: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// An op's exact bytes, if stored.
    fn op(&self, id: &OpId) -> Result<Option<Vec<u8>>, StoreError>;
    /// The heads of every (device, lane) chain, fork-aware: every op of a chain that no other
    /// op of the chain names as `prev`.
    fn heads(&self) -> Result<Vec<Head>, StoreError>;
    /// Stores ops the replica kept, with their verdicts, in the order given (acceptance order),
    /// durably, before returning. Ops already stored are skipped.
    fn put_kept(&mut self, ops: &[(&SignedOp, Verdict)]) -> Result<(), StoreError>;

    /// Stores batches of kept ops as they come (each in acceptance order, the batches in
    /// order), all of them durably before returning: what the engine uses while a frame is
    /// still being validated (it runs this on a thread of its own, fed batch by batch). The
    /// default stores each batch with [`OpStore::put_kept`]; a store with costly commits
    /// writes them all in one transaction.
    fn put_kept_batches(
        &mut self,
        batches: &mut dyn Iterator<Item = Vec<(SignedOp, Verdict)>>,
    ) -> Result<(), StoreError> {
        for batch in batches {
            let refs: Vec<(&SignedOp, Verdict)> = batch.iter().map(|(op, v)| (op, *v)).collect();
            self.put_kept(&refs)?;
        }
        Ok(())
    }
}

/// A (device, lane) chain.
type Chain = ([u8; 32], Lane);

/// An op store in memory: ops in position order, an id index, and chain heads.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    ops: Vec<(Vec<u8>, Verdict)>,
    ids: BTreeMap<OpId, u64>,
    /// Per (device, lane): the chain's branch ends.
    heads: BTreeMap<Chain, BTreeSet<(u64, OpId)>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
    /// Number of ops stored.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// True if the op is stored.
    pub fn contains(&self, id: &OpId) -> bool {
        self.ids.contains_key(id)
    }
    /// Every op id stored, ascending.
    pub fn ids(&self) -> BTreeSet<OpId> {
        self.ids.keys().copied().collect()
    }
    /// Every op with its verdict, in position order (what a node loads at start).
    pub fn stored(&self) -> impl Iterator<Item = (&[u8], Verdict)> {
        self.ops.iter().map(|(b, v)| (b.as_slice(), *v))
    }
}

impl OpStore for MemoryStore {
    fn end(&self) -> u64 {
        self.ops.len() as u64
    }

    fn ops_from(&self, position: u64, max_ops: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let start = usize::try_from(position).unwrap_or(usize::MAX);
        Ok(self
            .ops
            .iter()
            .enumerate()
            .skip(start)
            .take(max_ops)
            .map(|(at, (bytes, _))| (at as u64, bytes.clone()))
            .collect())
    }

    fn op(&self, id: &OpId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .ids
            .get(id)
            .and_then(|&at| self.ops.get(at as usize))
            .map(|(bytes, _)| bytes.clone()))
    }

    fn heads(&self) -> Result<Vec<Head>, StoreError> {
        Ok(self
            .heads
            .iter()
            .flat_map(|((device, lane), ends)| {
                ends.iter().map(|&(seq, id)| Head {
                    device: *device,
                    lane: *lane,
                    seq,
                    id,
                })
            })
            .collect())
    }

    fn put_kept(&mut self, ops: &[(&SignedOp, Verdict)]) -> Result<(), StoreError> {
        for (op, verdict) in ops {
            let id = op.id();
            if self.ids.contains_key(&id) {
                continue;
            }
            self.ids.insert(id, self.ops.len() as u64);
            self.ops.push((op.bytes().to_vec(), *verdict));
            let ends = self
                .heads
                .entry((op.author().to_bytes(), op.lane()))
                .or_default();
            if let Some(prev) = op.prev() {
                ends.remove(&(op.seq() - 1, prev));
            }
            // An op whose successor is already stored cannot arrive (it is stored after its
            // dependencies), so a new op is always a branch end.
            ends.insert((op.seq(), id));
        }
        Ok(())
    }
}
