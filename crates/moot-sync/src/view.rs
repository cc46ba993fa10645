//! What one peer is known to hold: the heads of each (device, lane) chain.
//!
//! A node keeps two views per connected peer: what its last heads said with what this node
//! sent it since, and what the peer sent in this session that no set of its heads has shown
//! yet. Between them they hold a chain for every (author device, lane) the peer holds ops of,
//! mostly each in one of them, so their layout is the engine's memory per peer: a chain's key
//! and first head sit side by side in one vector (88 bytes), in the order the chains were
//! first seen, and a hash table of 4-byte places finds them by key. On workload W a fresh
//! node's views of its peer took 3.9 MB at rest when every chain was in both, where an ordered
//! map of keys to vectors of heads took 5.1 MB (docs/BENCHMARKS.md). A chain with more than
//! one head (a forked chain, or heads the peer holds beyond ours) keeps them in a vector of
//! its own.
//!
//! Iteration follows first-seen order, a pure function of the calls made; the table is only
//! looked up, so its hashes (seeded per process) change no decision.

use hashbrown::HashTable;
use moot_crypto::{Lane, OpId};

/// A (device, lane) chain: the device's key bytes and the lane.
pub(crate) type Chain = ([u8; 32], Lane);

/// A head: sequence number and op id.
pub(crate) type Head = (u64, OpId);

/// One chain's heads: nearly always exactly one, held inline.
#[derive(Debug, Clone)]
pub(crate) enum Heads {
    One(Head),
    Many(Vec<Head>),
}

impl Heads {
    pub(crate) fn as_slice(&self) -> &[Head] {
        match self {
            Heads::One(head) => std::slice::from_ref(head),
            Heads::Many(heads) => heads,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub(crate) fn contains_id(&self, id: &OpId) -> bool {
        self.as_slice().iter().any(|(_, h)| h == id)
    }

    pub(crate) fn push(&mut self, head: Head) {
        match self {
            Heads::Many(heads) if heads.is_empty() => *self = Heads::One(head),
            Heads::Many(heads) => heads.push(head),
            Heads::One(first) => *self = Heads::Many(vec![*first, head]),
        }
    }

    /// Keeps the heads `keep` says to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Head) -> bool) {
        match self {
            Heads::One(head) => {
                if !keep(head) {
                    *self = Heads::Many(Vec::new());
                }
            }
            Heads::Many(heads) => heads.retain(|h| keep(h)),
        }
    }

    /// Gives back spare capacity (a lone head goes back inline).
    fn shrink(&mut self) {
        if let Heads::Many(heads) = self {
            match heads.as_slice() {
                [one] => *self = Heads::One(*one),
                _ => heads.shrink_to_fit(),
            }
        }
    }
}

/// A chain and its heads.
#[derive(Debug, Clone)]
struct Entry {
    chain: Chain,
    heads: Heads,
}

/// The heads of each chain a peer is known to hold, with their count.
#[derive(Debug, Default)]
pub(crate) struct View {
    entries: Vec<Entry>,
    /// Places in `entries`, found by the hash of their chain.
    places: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Heads held, over all chains.
    pub(crate) len: usize,
}

impl View {
    fn hash(&self, chain: &Chain) -> u64 {
        use std::hash::BuildHasher as _;
        self.hasher.hash_one(chain)
    }

    fn place(&self, chain: &Chain) -> Option<usize> {
        let entries = &self.entries;
        self.places
            .find(self.hash(chain), |&at| {
                entries.get(at as usize).is_some_and(|e| e.chain == *chain)
            })
            .map(|&at| at as usize)
    }

    /// The chain's heads, if the chain is known.
    pub(crate) fn get(&self, chain: &Chain) -> Option<&Heads> {
        self.place(chain)
            .and_then(|at| self.entries.get(at))
            .map(|e| &e.heads)
    }

    /// The chain's heads, the chain added with none if new; `None` only when the view holds
    /// more than `u32::MAX` chains (a bound no configured head limit comes near).
    pub(crate) fn chain_mut(&mut self, chain: Chain) -> Option<&mut Heads> {
        let at = match self.place(&chain) {
            Some(at) => at,
            None => {
                let at = u32::try_from(self.entries.len()).ok()?;
                self.entries.push(Entry {
                    chain,
                    heads: Heads::Many(Vec::new()),
                });
                let (entries, hasher) = (&self.entries, &self.hasher);
                let hash = self.hash(&chain);
                self.places.insert_unique(hash, at, |&p| {
                    use std::hash::BuildHasher as _;
                    entries
                        .get(p as usize)
                        .map_or(0, |e| hasher.hash_one(e.chain))
                });
                at as usize
            }
        };
        self.entries.get_mut(at).map(|e| &mut e.heads)
    }

    /// The chains, in the order first seen.
    pub(crate) fn chains(&self) -> impl Iterator<Item = &Chain> {
        self.entries.iter().map(|e| &e.chain)
    }

    /// Every (chain, head), chains in the order first seen.
    pub(crate) fn heads(&self) -> impl Iterator<Item = (Chain, Head)> + '_ {
        self.entries
            .iter()
            .flat_map(|e| e.heads.as_slice().iter().map(|h| (e.chain, *h)))
    }

    /// Gives back the spare capacity (grown by doubling while a sync brings chains in).
    pub(crate) fn shrink(&mut self) {
        for entry in &mut self.entries {
            entry.heads.shrink();
        }
        self.entries.shrink_to_fit();
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.places.shrink_to_fit(|&p| {
            use std::hash::BuildHasher as _;
            entries
                .get(p as usize)
                .map_or(0, |e| hasher.hash_one(e.chain))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> OpId {
        OpId([n; 32])
    }

    #[test]
    fn a_chain_holds_any_number_of_heads_and_goes_back_inline() {
        let mut heads = Heads::Many(Vec::new());
        assert_eq!(heads.len(), 0);
        heads.push((1, id(1)));
        assert!(matches!(heads, Heads::One(_)));
        heads.push((2, id(2)));
        heads.push((3, id(3)));
        assert_eq!(heads.as_slice(), &[(1, id(1)), (2, id(2)), (3, id(3))]);
        heads.retain(|(seq, _)| *seq != 2);
        assert!(heads.contains_id(&id(3)) && !heads.contains_id(&id(2)));
        heads.retain(|(seq, _)| *seq == 3);
        heads.shrink();
        assert!(matches!(heads, Heads::One((3, _))));
        heads.retain(|_| false);
        assert_eq!(heads.len(), 0);
        heads.push((4, id(4)));
        assert_eq!(heads.as_slice(), &[(4, id(4))]);
    }

    #[test]
    fn chains_are_found_by_key_and_listed_in_the_order_first_seen() {
        let mut view = View::default();
        // Keys that share all but their last byte, and a key in both lanes.
        let key = |n: u8| {
            let mut k = [7u8; 32];
            k[31] = n;
            k
        };
        let order: Vec<Chain> = (0..200u8)
            .rev()
            .map(|n| (key(n), Lane::Public))
            .chain([(key(5), Lane::Members)])
            .collect();
        for (i, chain) in order.iter().enumerate() {
            let heads = view.chain_mut(*chain).expect("room");
            heads.push((i as u64, id(i as u8)));
        }
        // Adding a chain again finds it.
        view.chain_mut(order[3]).expect("room").push((999, id(250)));
        view.shrink();
        assert_eq!(view.chains().copied().collect::<Vec<_>>(), order);
        for (i, chain) in order.iter().enumerate() {
            let heads = view.get(chain).expect("known").as_slice();
            assert_eq!(heads[0], (i as u64, id(i as u8)));
        }
        assert_eq!(view.get(&order[3]).expect("known").len(), 2);
        assert!(view.get(&(key(5), Lane::Public)).is_some());
        assert!(view.get(&(key(250), Lane::Public)).is_none());
        assert_eq!(view.heads().count(), order.len() + 1);
    }

    #[test]
    fn a_chain_with_one_head_costs_its_key_and_head_inline() {
        assert_eq!(std::mem::size_of::<Entry>(), 88);
    }
}
