//! The replica's compact index of every op it holds: what validation needs to know about an op
//! once it is accepted, in about 58 bytes, so that op bytes and bodies can live on disk.
//!
//! An op is numbered in acceptance order. Its 32-byte id is kept once (`ids`), a hash table of
//! 4-byte numbers finds it by id, and a 20-byte [`Meta`] holds the rest: sequence number,
//! device number, the roll frontier it presents to its children (an interned number), the
//! first op that continued its chain (to detect forks), its kind and a flags byte (lane,
//! verdict, taint). Roll ops, which are few, keep their body elsewhere in the replica.

use hashbrown::HashTable;
use moot_crypto::{Lane, OpId};

/// No op (a [`Meta::successor`] that nothing continued yet).
pub(crate) const NONE: u32 = u32::MAX;

/// How an accepted op stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Judged at its causal position and found authorized.
    Accepted,
    /// A kind this node does not know: only its author's standing and lane were checked.
    Unsupported,
    /// Not judged: it rests on something this node cannot interpret.
    NeedsUpgrade,
}

impl Verdict {
    /// The verdict's byte in the store.
    pub fn to_byte(self) -> u8 {
        match self {
            Verdict::Accepted => 0,
            Verdict::Unsupported => 1,
            Verdict::NeedsUpgrade => 2,
        }
    }

    /// The verdict of a stored byte.
    pub fn from_byte(byte: u8) -> Option<Verdict> {
        match byte {
            0 => Some(Verdict::Accepted),
            1 => Some(Verdict::Unsupported),
            2 => Some(Verdict::NeedsUpgrade),
            _ => None,
        }
    }
}

const LANE_MEMBERS: u8 = 1;
const VERDICT_SHIFT: u8 = 1;
const VERDICT_MASK: u8 = 0b110;
const TAINTED: u8 = 0b1000;

/// What the index keeps of one op.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    /// Sequence number in the author's chain in its lane. An op is indexed only if it
    /// continues its chain (`seq` one more than its `prev`'s, 1 without one), so a chain held
    /// has at most as many ops as the index numbers them: `u32`.
    seq: u32,
    /// The author device's number in the replica.
    pub device: u32,
    /// The number of the roll frontier the op presents to its children.
    pub frontier: u32,
    /// The first op held that names this one as `prev` ([`NONE`] if none yet).
    pub successor: u32,
    /// The op's kind.
    pub kind: u16,
    flags: u8,
}

impl Meta {
    pub fn new(
        seq: u64,
        device: u32,
        frontier: u32,
        kind: u16,
        lane: Lane,
        verdict: Verdict,
        tainted: bool,
    ) -> Meta {
        let mut flags = verdict.to_byte() << VERDICT_SHIFT;
        if lane == Lane::Members {
            flags |= LANE_MEMBERS;
        }
        if tainted {
            flags |= TAINTED;
        }
        debug_assert!(u32::try_from(seq).is_ok(), "a chain longer than the index");
        Meta {
            seq: u32::try_from(seq).unwrap_or(u32::MAX),
            device,
            frontier,
            successor: NONE,
            kind,
            flags,
        }
    }

    /// Sequence number in the author's chain in its lane.
    pub fn seq(&self) -> u64 {
        u64::from(self.seq)
    }

    pub fn lane(&self) -> Lane {
        if self.flags & LANE_MEMBERS != 0 {
            Lane::Members
        } else {
            Lane::Public
        }
    }

    pub fn verdict(&self) -> Verdict {
        Verdict::from_byte((self.flags & VERDICT_MASK) >> VERDICT_SHIFT)
            .unwrap_or(Verdict::Accepted)
    }

    /// True if the op's causal past holds an op whose effect on the roll this node cannot know.
    pub fn tainted(&self) -> bool {
        self.flags & TAINTED != 0
    }
}

/// Ops by number and by id.
pub(crate) struct Index {
    ids: Vec<OpId>,
    meta: Vec<Meta>,
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl Index {
    pub fn new() -> Index {
        Index {
            ids: Vec::new(),
            meta: Vec::new(),
            table: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn hash(hasher: &foldhash::fast::RandomState, id: &OpId) -> u64 {
        use std::hash::BuildHasher as _;
        hasher.hash_one(id.0)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The number of an op held.
    pub fn number(&self, id: &OpId) -> Option<u32> {
        let hash = Self::hash(&self.hasher, id);
        self.table
            .find(hash, |n| self.ids.get(*n as usize) == Some(id))
            .copied()
    }

    /// An op's number and index entry.
    pub fn get(&self, id: &OpId) -> Option<(u32, &Meta)> {
        let n = self.number(id)?;
        self.meta.get(n as usize).map(|m| (n, m))
    }

    pub fn contains(&self, id: &OpId) -> bool {
        self.number(id).is_some()
    }

    pub fn meta(&self, n: u32) -> Option<&Meta> {
        self.meta.get(n as usize)
    }

    pub fn meta_mut(&mut self, n: u32) -> Option<&mut Meta> {
        self.meta.get_mut(n as usize)
    }

    pub fn id(&self, n: u32) -> Option<OpId> {
        self.ids.get(n as usize).copied()
    }

    /// Adds an op not held yet; returns its number.
    pub fn insert(&mut self, id: OpId, meta: Meta) -> u32 {
        let n = self.ids.len() as u32;
        self.ids.push(id);
        self.meta.push(meta);
        let (ids, hasher) = (&self.ids, &self.hasher);
        let hash = Self::hash(hasher, &id);
        self.table.insert_unique(hash, n, |m| {
            ids.get(*m as usize).map_or(0, |id| Self::hash(hasher, id))
        });
        n
    }

    /// Makes room for `additional` more ops at once (a load of known size), and the little room
    /// a shed keeps ([`shrink`]): the first ops after a load do not double the tables.
    pub fn reserve(&mut self, additional: usize) {
        let room = (self.ids.len() + additional) / ROOM;
        self.ids.reserve_exact(additional + room);
        self.meta.reserve_exact(additional + room);
        let (ids, hasher) = (&self.ids, &self.hasher);
        self.table.reserve(additional, |m| {
            ids.get(*m as usize).map_or(0, |id| Self::hash(hasher, id))
        });
    }

    /// Gives back the capacity beyond what is held (grown by doubling, up to half of it) but
    /// for a little room ([`shrink`]).
    pub fn shrink_to_fit(&mut self) {
        shrink(&mut self.ids);
        shrink(&mut self.meta);
        let (ids, hasher) = (&self.ids, &self.hasher);
        self.table
            .shrink_to_fit(|m| ids.get(*m as usize).map_or(0, |id| Self::hash(hasher, id)));
    }

    /// Bytes of spare capacity in the per-op vectors (grown by doubling; what
    /// [`Index::shrink_to_fit`] gives back).
    pub fn spare_bytes(&self) -> usize {
        spare_bytes(&self.ids) + spare_bytes(&self.meta)
    }

    /// Every id held, in acceptance order.
    pub fn ids(&self) -> &[OpId] {
        &self.ids
    }

    /// Heap bytes held by the index (capacities, not lengths).
    pub fn heap_bytes(&self) -> usize {
        self.ids.capacity() * std::mem::size_of::<OpId>()
            + self.meta.capacity() * std::mem::size_of::<Meta>()
            + self.table.allocation_size()
    }
}

/// Finds values kept once in a vector (numbered by their place in it) by a key each holds:
/// a hash table of 4-byte places, where a map from keys to numbers keeps every key twice.
/// The table is only looked up, so its hashes (seeded per process) change no result.
#[derive(Default)]
pub(crate) struct Places {
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl Places {
    fn hash<K: std::hash::Hash + ?Sized>(hasher: &foldhash::fast::RandomState, key: &K) -> u64 {
        use std::hash::BuildHasher as _;
        hasher.hash_one(key)
    }

    /// The number of the value in `values` whose key is `key`.
    pub fn find<T, K: std::hash::Hash + Eq + ?Sized>(
        &self,
        values: &[T],
        key: &K,
        key_of: impl Fn(&T) -> &K,
    ) -> Option<u32> {
        self.table
            .find(Self::hash(&self.hasher, key), |n| {
                values.get(*n as usize).is_some_and(|v| key_of(v) == key)
            })
            .copied()
    }

    /// Records that `values[n]` (not recorded yet) is found by its key.
    pub fn insert<T, K: std::hash::Hash + ?Sized>(
        &mut self,
        values: &[T],
        n: u32,
        key_of: impl Fn(&T) -> &K,
    ) {
        let Some(value) = values.get(n as usize) else {
            return;
        };
        let hasher = &self.hasher;
        self.table
            .insert_unique(Self::hash(hasher, key_of(value)), n, |m| {
                values
                    .get(*m as usize)
                    .map_or(0, |v| Self::hash(hasher, key_of(v)))
            });
    }

    /// Gives back the table's spare capacity.
    pub fn shrink_to_fit<T, K: std::hash::Hash + ?Sized>(
        &mut self,
        values: &[T],
        key_of: impl Fn(&T) -> &K,
    ) {
        let hasher = &self.hasher;
        self.table.shrink_to_fit(|m| {
            values
                .get(*m as usize)
                .map_or(0, |v| Self::hash(hasher, key_of(v)))
        });
    }
}

/// The bit that marks a number given by [`OpSets`] as that of a set of one op held, numbered
/// by the op's index number.
pub(crate) const ONE_OP: u32 = 1 << 31;

/// The [`OpSets`] number of the set of one op whose index number is (or will be) `n`.
pub(crate) fn one_op_number(n: usize) -> Option<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| n & ONE_OP == 0)
        .map(|n| n | ONE_OP)
}

/// Sets of ops (roll frontiers, sets of roll facts), each numbered once: a set of one op held
/// by the op itself ([`ONE_OP`] and its index number), costing nothing; any other by its place
/// in a vector, found through [`Places`].
pub(crate) struct OpSets<T> {
    sets: Vec<T>,
    places: Places,
}

/// A set of ops an [`OpSets`] numbers.
pub(crate) trait OpSet {
    /// Its ops.
    fn ops(&self) -> &[OpId];
}

impl<T> Default for OpSets<T> {
    fn default() -> Self {
        OpSets {
            sets: Vec::new(),
            places: Places::default(),
        }
    }
}

impl<T: OpSet> OpSets<T> {
    /// The number of `set`, interned.
    pub fn number(&mut self, index: &Index, set: T) -> u32 {
        let ops_of = T::ops;
        if let [one] = ops_of(&set)
            && let Some(n) = index.number(one).and_then(|n| one_op_number(n as usize))
        {
            return n;
        }
        if let Some(n) = self.places.find(&self.sets, ops_of(&set), ops_of) {
            return n;
        }
        let n = self.sets.len() as u32;
        // 2^31 distinct sets would take some 80 GB first; a number read as another's would
        // change verdicts, so it stops here rather than go on wrong.
        assert!(n & ONE_OP == 0, "2^31 sets of ops");
        self.sets.push(set);
        self.places.insert(&self.sets, n, ops_of);
        n
    }

    /// The ops of the set numbered `n` (every number a replica holds was given by
    /// [`OpSets::number`], or by [`one_op_number`] for an op about to be indexed, so it is
    /// always there).
    pub fn ops<'a>(&'a self, index: &'a Index, n: u32) -> &'a [OpId] {
        let ids = if n & ONE_OP != 0 {
            index
                .ids()
                .get((n & !ONE_OP) as usize)
                .map(std::slice::from_ref)
        } else {
            self.sets.get(n as usize).map(T::ops)
        };
        debug_assert!(ids.is_some(), "set of ops {n} was never numbered");
        ids.unwrap_or(&[])
    }

    /// The set numbered `n` when it has a place in the vector (not a set of one op held).
    pub fn kept(&self, n: u32) -> Option<&T> {
        self.sets.get(n as usize).filter(|_| n & ONE_OP == 0)
    }

    /// Sets with a place in the vector.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Gives back the spare capacity but a little room ([`shrink`]).
    pub fn shrink_to_fit(&mut self) {
        shrink(&mut self.sets);
        self.places.shrink_to_fit(&self.sets, T::ops);
    }

    /// Bytes of spare capacity in the vector ([`spare_bytes`]).
    pub fn spare_bytes(&self) -> usize {
        spare_bytes(&self.sets)
    }
}

/// A per-op table shed keeps room for this fraction of its length (1/32) more, so that the
/// next few ops do not double it at once: a node that sheds whenever a table holds more spare
/// capacity than that ([`spare_bytes`]) would otherwise shed after every op of a conversation.
const ROOM: usize = 32;

/// Gives back `v`'s capacity beyond its length and 1/[`ROOM`] of it.
pub(crate) fn shrink<T>(v: &mut Vec<T>) {
    v.shrink_to(v.len() + v.len() / ROOM);
}

/// Bytes of `v`'s capacity beyond its length and 1/[`ROOM`] of it: what [`shrink`] gives back.
pub(crate) fn spare_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity().saturating_sub(v.len() + v.len() / ROOM) * std::mem::size_of::<T>()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn finds_every_op_by_id_and_keeps_its_fields() {
        let mut index = Index::new();
        for n in 0..10_000u32 {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&n.to_le_bytes());
            let lane = if n % 3 == 0 {
                Lane::Members
            } else {
                Lane::Public
            };
            let verdict = match n % 5 {
                0 => Verdict::Unsupported,
                1 => Verdict::NeedsUpgrade,
                _ => Verdict::Accepted,
            };
            let number = index.insert(
                OpId(id),
                Meta::new(
                    u64::from(n) + 1,
                    n / 7,
                    n / 11,
                    (n % 65_536) as u16,
                    lane,
                    verdict,
                    n % 2 == 0,
                ),
            );
            assert_eq!(number, n);
        }
        for n in 0..10_000u32 {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&n.to_le_bytes());
            let (number, meta) = index.get(&OpId(id)).unwrap();
            assert_eq!(number, n);
            assert_eq!(meta.seq(), u64::from(n) + 1);
            assert_eq!(meta.device, n / 7);
            assert_eq!(meta.frontier, n / 11);
            assert_eq!(meta.lane() == Lane::Members, n % 3 == 0);
            assert_eq!(meta.tainted(), n % 2 == 0);
            assert_eq!(meta.successor, NONE);
            let verdict = match n % 5 {
                0 => Verdict::Unsupported,
                1 => Verdict::NeedsUpgrade,
                _ => Verdict::Accepted,
            };
            assert_eq!(meta.verdict(), verdict);
        }
        assert!(index.get(&OpId([0xff; 32])).is_none());
        assert_eq!(std::mem::size_of::<Meta>(), 20);
    }

    /// Values kept once in a vector are found by their keys, before and after a shrink;
    /// a key not held finds nothing.
    #[test]
    fn places_find_each_value_by_its_key() {
        fn key_of(v: &([u8; 8], u32)) -> &[u8; 8] {
            &v.0
        }
        let mut values: Vec<([u8; 8], u32)> = Vec::new();
        let mut places = Places::default();
        for n in 0..5_000u32 {
            values.push(((u64::from(n) * 7919).to_le_bytes(), n));
            places.insert(&values, n, key_of);
        }
        values.truncate(4_000);
        places.shrink_to_fit(&values, key_of);
        for n in 0..4_000u32 {
            let key = (u64::from(n) * 7919).to_le_bytes();
            assert_eq!(places.find(&values, &key, key_of), Some(n));
        }
        for n in 4_000..5_000u32 {
            let key = (u64::from(n) * 7919).to_le_bytes();
            assert_eq!(places.find(&values, &key, key_of), None, "{n} is gone");
        }
        assert_eq!(places.find(&values, &[0xff; 8], key_of), None);
    }

    /// A load reserves its ops and the room a shed keeps: the ops that follow it fit, and a
    /// shed right after the load has nothing to give back.
    #[test]
    fn a_load_leaves_room_for_the_next_ops() {
        let mut index = Index::new();
        let n = 64 * ROOM;
        index.reserve(n);
        let meta = Meta::new(1, 0, 0, 0, Lane::Public, Verdict::Accepted, false);
        for i in 0..n + n / ROOM {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            index.insert(OpId(id), meta);
            if i == n - 1 {
                assert_eq!(
                    index.spare_bytes(),
                    0,
                    "a shed after the load would give back"
                );
            }
        }
        assert_eq!(
            index.ids.capacity(),
            n + n / ROOM,
            "the room after the load was too small"
        );
    }
}
