//! Document changes in the replica: the rules a `DocChange` (and a proposal's creator change)
//! must meet at its causal position before automerge ever sees it.
//!
//! The pre-scan (`moot_doc::prescan`: uncompressed, bounded op count, no extra bytes) runs when
//! the body is decoded. Here, against the ops the change names:
//! - its automerge actor is the author device;
//! - a creator change is its document's first: seq 1, start op 1, no automerge deps;
//! - any other change touches no root object (only the creator creates the document's
//!   structure, so two branches never create duplicate structures);
//! - its seq follows the device's own previous change to the document among those the op
//!   names (seq 1 if it names none);
//! - its op counter starts after every named change's ops (no two ops of one actor share an
//!   id, so automerge never sees a duplicate op id);
//! - every automerge dependency is a change of the same document that the op names, so
//!   automerge never has to queue a change.
//!
//! Two changes with the same (actor, seq) can both be valid (a forked device chain): which one
//! the document keeps is decided when it is materialised (the lower op id; the other and its
//! descendants are excluded and flagged), from [`ChangeRef::parents`](crate::deliberation::ChangeRef).

use moot_crypto::{OpId, SignedOp};

use super::Replica;
use crate::body::Body;
use crate::roll::{Denied, DocDenied};

/// What the replica keeps of each accepted document change (24 bytes; its parents among the
/// document's changes are found through the replica's dependency numbers, its author device
/// through the index).
#[derive(Debug, Clone)]
pub(super) struct ChangeRecord {
    /// The change op's index number (set when the op is accepted).
    n: u32,
    /// The document's index number (its creator op's).
    doc: u32,
    /// The change's last op counter (at most `u32::MAX`: the pre-scan refuses more).
    max_op: u32,
    /// The change's seq: 1, or one more than a named change's ([`Replica::check_doc_change`]),
    /// so at most the number of changes held.
    seq: u32,
    /// The change's automerge hash as this replica's keyed tag ([`HashTags`]).
    tag: u64,
}

/// Keyed 64-bit tags of automerge change hashes: SipHash-2-4 under a 128-bit key drawn from
/// the system's random source when the replica is made, never stored or sent.
///
/// A change's automerge dependencies must all be changes its op names; the check compares the
/// tags of the dependencies with the tags of the named changes instead of their 32-byte
/// hashes (52 -> 24 bytes a change, 2.8 MB on workload W's 100,100). A true dependency always
/// matches. A false one matches only if its tag collides with a named change's under a key the
/// author cannot know: 2^-64 per attempt, each attempt a signed op that this node refuses
/// otherwise. An unkeyed fingerprint would not do: the author writes both changes and could
/// search for a collision of two of their own offline (2^32 work for 64 bits).
pub(super) struct HashTags {
    keys: (u64, u64),
}

/// The key stays out of any debug output.
impl std::fmt::Debug for HashTags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashTags(key withheld)")
    }
}

impl Default for HashTags {
    fn default() -> Self {
        let mut bytes = [0u8; 16];
        if getrandom::fill(&mut bytes).is_err() {
            // The standard library seeds its hash keys from the system's random source too
            // (best effort, never blocking); derive the key from them.
            use std::hash::BuildHasher as _;
            let state = std::hash::RandomState::new();
            bytes[..8].copy_from_slice(&state.hash_one(0u8).to_le_bytes());
            bytes[8..].copy_from_slice(&state.hash_one(1u8).to_le_bytes());
        }
        let (k0, k1) = bytes.split_at(8);
        let key = |half: &[u8]| {
            let mut word = [0u8; 8];
            word.copy_from_slice(half);
            u64::from_le_bytes(word)
        };
        HashTags {
            keys: (key(k0), key(k1)),
        }
    }
}

impl HashTags {
    /// The tag of an automerge change hash.
    pub(super) fn tag(&self, hash: &[u8; 32]) -> u64 {
        use std::hash::Hasher as _;
        let mut hasher = siphasher::sip::SipHasher24::new_with_keys(self.keys.0, self.keys.1);
        hasher.write(hash);
        hasher.finish()
    }
}

/// The accepted document changes, ascending by index number. Numbers are given in acceptance
/// order, so a change recorded when its op is accepted goes at the end; a sorted table costs
/// its 24 bytes a change and no more (a hash map costs about half as much again).
#[derive(Debug, Default)]
pub(super) struct ChangeTable(Vec<ChangeRecord>);

impl ChangeTable {
    /// The change of the op numbered `n`.
    pub(super) fn get(&self, n: u32) -> Option<&ChangeRecord> {
        let at = self.0.binary_search_by_key(&n, |r| r.n).ok()?;
        self.0.get(at)
    }

    /// Records a change (replacing one of the same number).
    fn insert(&mut self, record: ChangeRecord) {
        match self.0.last() {
            Some(last) if last.n >= record.n => {
                match self.0.binary_search_by_key(&record.n, |r| r.n) {
                    Ok(at) => self.0[at] = record,
                    Err(at) => self.0.insert(at, record),
                }
            }
            _ => self.0.push(record),
        }
    }

    /// Gives back the spare capacity (grown by doubling).
    pub(super) fn shrink_to_fit(&mut self) {
        crate::index::shrink(&mut self.0);
    }

    /// Bytes of spare capacity.
    pub(super) fn spare_bytes(&self) -> usize {
        crate::index::spare_bytes(&self.0)
    }
}

fn info(change: &[u8]) -> Result<moot_doc::ChangeInfo, Denied> {
    moot_doc::prescan(change, &moot_doc::Limits::default())
        .map_err(|e| Denied::Doc(DocDenied::Prescan(e)))
}

impl Replica {
    /// Checks a proposal's creator change (the op is the document's creator).
    pub(super) fn check_creator_change(
        &mut self,
        op: &SignedOp,
        change: &[u8],
    ) -> Result<(), Denied> {
        let info = info(change)?;
        if info.actor != op.author().to_bytes() {
            return Err(Denied::Doc(DocDenied::ForgedActor));
        }
        if info.seq != 1 || info.start_op != 1 || !info.deps.is_empty() {
            return Err(Denied::Doc(DocDenied::NotFirst));
        }
        self.deliberation.checked = Some((
            op.id(),
            ChangeRecord {
                n: u32::MAX,
                // Set when recorded: the creator is its own document.
                doc: u32::MAX,
                seq: 1,
                max_op: u32::try_from(info.max_op).unwrap_or(u32::MAX),
                tag: self.deliberation.tags.tag(&info.hash),
            },
        ));
        Ok(())
    }

    /// Checks a change to document `doc` (already found to be a proposal named in the op's
    /// deps, in the op's lane).
    pub(super) fn check_doc_change(
        &mut self,
        op: &SignedOp,
        doc: &OpId,
        change: &[u8],
    ) -> Result<(), Denied> {
        let info = info(change)?;
        let author = op.author().to_bytes();
        if info.actor != author {
            return Err(Denied::Doc(DocDenied::ForgedActor));
        }
        if info.touches_root {
            return Err(Denied::Doc(DocDenied::RootObject));
        }
        let doc_no = self.index.number(doc).ok_or(Denied::NoSuchProposal)?;
        let device = self.device_number(op.author());
        let changes = &self.deliberation.changes;
        let mut parents: Vec<&ChangeRecord> = Vec::new();
        let mut seen: Vec<u32> = Vec::new();
        for p in Self::parents(op) {
            if let Some(n) = self.index.number(&p)
                && !seen.contains(&n)
                && let Some(r) = changes.get(n).filter(|r| r.doc == doc_no)
            {
                seen.push(n);
                parents.push(r);
            }
        }
        let previous = parents
            .iter()
            .filter(|r| self.index.meta(r.n).map(|m| m.device) == Some(device))
            .map(|r| u64::from(r.seq))
            .max()
            .unwrap_or(0);
        let expected = previous.saturating_add(1);
        let seq = u32::try_from(info.seq)
            .ok()
            .filter(|seq| u64::from(*seq) == expected)
            .ok_or(Denied::Doc(DocDenied::SeqGap {
                expected,
                found: info.seq,
            }))?;
        if parents.iter().any(|r| info.start_op <= u64::from(r.max_op)) {
            return Err(Denied::Doc(DocDenied::StartOp {
                start_op: info.start_op,
            }));
        }
        let tags = &self.deliberation.tags;
        if let Some(unnamed) = info.deps.iter().find(|h| {
            let tag = tags.tag(h);
            !parents.iter().any(|r| r.tag == tag)
        }) {
            return Err(Denied::Doc(DocDenied::UnnamedDependency(*unnamed)));
        }
        self.deliberation.checked = Some((
            op.id(),
            ChangeRecord {
                n: u32::MAX,
                doc: doc_no,
                seq,
                max_op: u32::try_from(info.max_op).unwrap_or(u32::MAX),
                tag: self.deliberation.tags.tag(&info.hash),
            },
        ));
        Ok(())
    }

    /// The document changes an accepted change op names (its parents that are changes of the
    /// same document), ascending by id.
    pub(super) fn change_parents(&self, id: &OpId) -> Vec<OpId> {
        let Some(n) = self.index.number(id) else {
            return Vec::new();
        };
        let Some(doc) = self.deliberation.changes.get(n).map(|r| r.doc) else {
            return Vec::new();
        };
        let mut parents: Vec<OpId> = self
            .deps_of(n)
            .filter(|p| {
                self.deliberation
                    .changes
                    .get(*p)
                    .is_some_and(|r| r.doc == doc)
            })
            .filter_map(|p| self.index.id(p))
            .collect();
        parents.sort();
        parents.dedup();
        parents
    }

    /// Records an accepted change (checked just before by one of the checks above).
    pub(super) fn record_change(&mut self, id: OpId, body: &Body) {
        if !matches!(body, Body::CreateProposal(_) | Body::DocChange(_)) {
            return;
        }
        if let Some((checked, mut record)) = self.deliberation.checked.take()
            && checked == id
            && let Some(n) = self.index.number(&id)
        {
            if record.doc == u32::MAX {
                record.doc = n;
            }
            record.n = n;
            self.deliberation.changes.insert(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ChangeRecord, ChangeTable, HashTags};

    fn record(n: u32, doc: u32) -> ChangeRecord {
        ChangeRecord {
            n,
            doc,
            max_op: 1,
            seq: 1,
            tag: u64::from(n),
        }
    }

    /// A hash's tag is the same every time under one key; under two replicas' keys (drawn
    /// afresh) it differs, so no author can know which of their hashes collide here.
    #[test]
    fn a_hash_tag_is_keyed_per_replica() {
        let (ours, theirs) = (HashTags::default(), HashTags::default());
        let hashes: Vec<[u8; 32]> = (0..64u8).map(|i| [i; 32]).collect();
        let tags: Vec<u64> = hashes.iter().map(|h| ours.tag(h)).collect();
        assert_eq!(tags, hashes.iter().map(|h| ours.tag(h)).collect::<Vec<_>>());
        let mut distinct = tags.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), hashes.len(), "two hashes with one tag");
        assert_ne!(ours.keys, theirs.keys);
        assert_eq!(format!("{ours:?}"), "HashTags(key withheld)");
        assert!(
            hashes.iter().all(|h| ours.tag(h) != theirs.tag(h)),
            "a tag that does not depend on the key"
        );
    }

    /// Changes come in ascending numbers; one out of order (or again) still lands in its place.
    #[test]
    fn the_change_table_finds_each_change_by_number() {
        let mut table = ChangeTable::default();
        for n in [2, 5, 9, 4, 7, 5] {
            table.insert(record(n, n * 10));
        }
        table.shrink_to_fit();
        assert_eq!(std::mem::size_of::<ChangeRecord>(), 24);
        for n in [2, 4, 5, 7, 9] {
            assert_eq!(table.get(n).map(|r| r.doc), Some(n * 10), "change {n}");
        }
        for n in [0, 1, 3, 6, 8, 10, u32::MAX] {
            assert!(table.get(n).is_none(), "no change {n}");
        }
        let numbers: Vec<u32> = table.0.iter().map(|r| r.n).collect();
        assert_eq!(numbers, [2, 4, 5, 7, 9]);
    }
}
