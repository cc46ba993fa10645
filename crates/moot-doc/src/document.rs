//! A proposal document: automerge inside, one Text object at `ROOT."text"`, changes applied in
//! batches under rules that do not depend on arrival order.
//!
//! # Rules of [`Document::apply`]
//! Each change comes with its [`Key`] (the id of the signed op that carries it). A change is
//! excluded, with an [`Exclusion`] saying why, when:
//! - it fails [`prescan`] ([`Exclusion::Invalid`]);
//! - a dep is excluded ([`Exclusion::DependsOnExcluded`]) or unknown ([`Exclusion::MissingDep`]:
//!   changes must come in causal order);
//! - another change has the same (actor, seq) — a forked device. The one with the lower Key is
//!   kept, the other excluded ([`Exclusion::ForkedSeq`]) with every change that depends on it.
//!   When the lower-Key twin arrives after the other was applied, the document is rebuilt from
//!   its accepted changes, so it ends equal to that of a node that got them in the other order;
//! - its seq does not follow the actor's previous accepted change (a gap), or its `start_op`
//!   does not come after its deps' ops ([`Exclusion::Refused`]): automerge would misbehave;
//! - automerge refuses it, or panics on it ([`Exclusion::Refused`]). automerge 0.12 unwraps in
//!   its batch apply (e.g. deletes in an object that does not exist): the call is wrapped in
//!   `catch_unwind` and the document rebuilt from its accepted changes, so such a change costs
//!   one rebuild and is excluded with its dependants. This relies on `panic = "unwind"`.
//!
//! Without forks, a change's fate depends only on its ancestors, so the order changes arrive in
//! (each after its deps) does not matter. Forks can nest (a kept twin later excluded through
//! another fork, whose displaced twin must then come back), so once a Document has seen a
//! forked (actor, seq) it keeps the bytes of its excluded changes too, and every `apply`
//! computes it again from every change seen, fed in one order that depends only on the changes
//! (a topological order of their deps, ready changes by ascending Key); `apply` then returns
//! every exclusion, not only new ones. That costs a rebuild per call, only on documents a
//! forked device wrote to.
//!
//! The Document keeps the raw bytes of its accepted changes (about the size of the document's
//! history again) so that it can rebuild itself without the caller. A Document loaded from a
//! snapshot reads them back from automerge the first time it needs them.
//!
//! # Keys the Document does not know
//! Changes made by [`creator_change`]/[`Document::from_creator`], by [`Document::edit`] and
//! [`Document::replace_all`], and those read from a snapshot by [`Document::load`] have no Key
//! until the caller passes them to [`Document::apply`] with their Key (they are recognised by
//! hash and only the Key is recorded). A fork against a change whose Key is unknown keeps the
//! change already there, so callers bind Keys as soon as they have them.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, Automerge, Change, Cursor, CursorPosition, LoadOptions, ObjType, OnPartialLoad, ROOT,
    ReadDoc, TextEncoding, VerificationMode,
};

use crate::prescan::{ChangeInfo, Limits, PrescanError, prescan};

/// The id of the signed op that carries a change (its hash in Moot's op DAG).
pub type Key = [u8; 32];

/// The property of the root that holds the document's text.
pub const TEXT_PROP: &str = "text";

/// Text positions count UTF-16 code units, as JS automerge does.
const ENCODING: TextEncoding = TextEncoding::Utf16CodeUnit;

/// Why a change was left out of a [`Document`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exclusion {
    /// Another change with the same (actor, seq) was kept: the one with the lower Key (`None`
    /// when the kept change's Key was never given to this Document).
    ForkedSeq {
        /// The Key of the kept twin.
        kept: Option<Key>,
    },
    /// The change depends (through automerge deps, transitively) on an excluded change.
    DependsOnExcluded {
        /// The Key of the excluded dep (`None` if it was never given).
        on: Option<Key>,
    },
    /// A dep is not in the document: changes must be applied in causal order.
    MissingDep {
        /// The missing dep's change hash.
        dep: [u8; 32],
    },
    /// The bytes are not an acceptable change.
    Invalid(PrescanError),
    /// automerge refused the change, or it breaks a rule automerge relies on (seq continuity,
    /// op counters after its deps', actors known to the document).
    Refused(String),
}

/// One change left out by [`Document::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// The change's Key, if this Document was given it.
    pub key: Option<Key>,
    /// The change's automerge hash (all zeros when the bytes did not pre-scan).
    pub hash: [u8; 32],
    /// Why.
    pub reason: Exclusion,
}

/// Why a [`Document`] operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// The creator change did not pre-scan.
    #[error("invalid change: {0}")]
    Invalid(#[from] PrescanError),
    /// The creator change is not a seq-1 change without deps that creates `ROOT."text"`.
    #[error("not a creator change: {0}")]
    NotACreator(&'static str),
    /// The document does not have exactly one root property, `"text"`, holding a Text object.
    #[error("the document does not have the proposal shape")]
    Shape,
    /// automerge refused the bytes or the operation.
    #[error("automerge: {0}")]
    Automerge(String),
    /// A saved document could not be loaded (damaged or too large): rebuild it from its ops.
    #[error("cannot load the saved document: {0}")]
    Load(String),
    /// A position or range is past the end of the text.
    #[error("position {pos} (+{delete}) is past the end of the text ({len} UTF-16 units)")]
    OutOfRange {
        /// The position asked for.
        pos: usize,
        /// The number of units to delete.
        delete: usize,
        /// The text's length in UTF-16 units.
        len: usize,
    },
    /// A position falls between the two halves of a surrogate pair.
    #[error("position {pos} splits a character")]
    SplitsChar {
        /// The position asked for.
        pos: usize,
    },
    /// The edit changes nothing, so there is no change to sign.
    #[error("the edit changes nothing")]
    Empty,
    /// The actor id is empty or longer than [`Limits::max_actor_bytes`].
    #[error("bad actor id")]
    BadActor,
    /// The cursor string is not an automerge cursor of this document's text.
    #[error("bad cursor: {0}")]
    BadCursor(String),
    /// An edit's base names a change this document does not have.
    #[error("the edit's base names a change this document does not have (yet)")]
    UnknownBase,
    /// The edit would delete and insert more characters than one change may hold
    /// ([`Limits::max_ops`]), which every peer refuses.
    #[error(
        "one edit changes at most {max} characters (each deleted or inserted one counts), and \
         this one changes {changes}: make it in parts"
    )]
    TooLarge {
        /// Characters the edit deletes and inserts.
        changes: usize,
        /// The most one change may hold.
        max: u64,
    },
}

/// How long [`Document::replace_all`] looks for a minimal diff before it settles for a coarser
/// one (still exact: the text becomes the new text). A minimal diff costs the texts' length
/// times the characters changed: automerge's own `update_text`, with no limit, took 30 s for a
/// 60 KB body rewritten in a debug build and never ended for 1 MB, while a node held its turn.
pub const DIFF_TIME: std::time::Duration = std::time::Duration::from_millis(250);

/// What the Document remembers of an accepted change.
#[derive(Debug, Clone)]
struct Entry {
    key: Option<Key>,
    actor: Vec<u8>,
    seq: u64,
    max_op: u64,
    deps: Vec<[u8; 32]>,
    bytes: Vec<u8>,
}

/// A proposal document. See the [module docs](self) for the rules of `apply`.
#[derive(Debug, Clone)]
pub struct Document {
    doc: Automerge,
    text: automerge::ObjId,
    limits: Limits,
    /// False after `load` until the accepted changes have been read back from automerge.
    indexed: bool,
    /// Accepted changes, in the order they were applied (a causal order).
    order: Vec<[u8; 32]>,
    entries: BTreeMap<[u8; 32], Entry>,
    by_seq: BTreeMap<(Vec<u8>, u64), [u8; 32]>,
    /// The actor's highest accepted seq.
    last_seq: BTreeMap<Vec<u8>, u64>,
    excluded: BTreeMap<[u8; 32], (Option<Key>, Exclusion)>,
    /// The bytes of excluded changes that pre-scanned, kept once the document has seen a forked
    /// (actor, seq): it is then recomputed from every change seen (see `recompute`).
    excluded_bytes: BTreeMap<[u8; 32], (Option<Key>, Vec<u8>)>,
    /// True once two changes with the same (actor, seq) were seen.
    forked: bool,
}

/// The bytes of the first change of a new document: seq 1 by `actor`, creating `ROOT."text"`
/// as Text holding `initial_text`, with timestamp 0 and no message, so that the same inputs
/// give the same bytes.
///
/// # Errors
/// [`DocError::BadActor`] for an empty or overlong actor; [`DocError::Automerge`] if automerge
/// fails.
pub fn creator_change(actor: &[u8], initial_text: &str) -> Result<Vec<u8>, DocError> {
    check_actor(actor, &Limits::default())?;
    let mut doc = Automerge::new_with_encoding(ENCODING).with_actor(ActorId::from(actor));
    let mut tx = doc.transaction();
    let text = tx.put_object(ROOT, TEXT_PROP, ObjType::Text).map_err(am)?;
    tx.splice_text(&text, 0, 0, initial_text).map_err(am)?;
    tx.commit_with(CommitOptions::default().with_time(0));
    let change = doc
        .get_last_local_change()
        .ok_or(DocError::Automerge("no change committed".into()))?;
    Ok(change.raw_bytes().to_vec())
}

impl Document {
    /// The document created by `creator` (the bytes from [`creator_change`], or a change made
    /// the same way by another implementation), with the default [`Limits`].
    ///
    /// # Errors
    /// [`DocError::Invalid`] if it does not pre-scan, [`DocError::NotACreator`] if it is not a
    /// seq-1 change without deps, [`DocError::Shape`] if the result is not a proposal.
    pub fn from_creator(creator: &[u8]) -> Result<Document, DocError> {
        let limits = Limits::default();
        let info = prescan(creator, &limits)?;
        if info.seq != 1 || !info.deps.is_empty() || info.start_op != 1 {
            return Err(DocError::NotACreator(
                "seq 1, start_op 1 and no deps expected",
            ));
        }
        let change = Change::try_from(creator).map_err(am)?;
        let mut doc = Automerge::new_with_encoding(ENCODING);
        guarded(|| doc.apply_changes([change]))
            .map_err(DocError::Automerge)?
            .map_err(am)?;
        let text = text_obj(&doc)?;
        let mut d = Document::empty(doc, text, limits);
        d.indexed = true;
        d.record(None, &info, creator.to_vec());
        Ok(d)
    }

    /// Opens a document saved by [`Document::save`] (our snapshots, and what `moot proposal
    /// export` writes). Damaged bytes give an error, never a panic: the caller then rebuilds
    /// the document from its ops.
    ///
    /// # Errors
    /// [`DocError::Load`] for bytes automerge cannot load (or larger than
    /// [`Limits::max_change_bytes`] × 16), [`DocError::Shape`] for a document that is not a
    /// proposal.
    pub fn load(bytes: &[u8], limits: &Limits) -> Result<Document, DocError> {
        if bytes.len() > limits.max_change_bytes.saturating_mul(16) {
            return Err(DocError::Load("too large".into()));
        }
        let doc = guarded(|| {
            Automerge::load_with_options(
                bytes,
                LoadOptions::new()
                    .text_encoding(ENCODING)
                    .on_partial_load(OnPartialLoad::Error)
                    .verification_mode(VerificationMode::Check),
            )
        })
        .map_err(|e| DocError::Load(e.to_string()))?
        .map_err(|e| DocError::Load(e.to_string()))?;
        let text = text_obj(&doc)?;
        Ok(Document::empty(doc, text, *limits))
    }

    fn empty(doc: Automerge, text: automerge::ObjId, limits: Limits) -> Document {
        Document {
            doc,
            text,
            limits,
            indexed: false,
            order: Vec::new(),
            entries: BTreeMap::new(),
            by_seq: BTreeMap::new(),
            last_seq: BTreeMap::new(),
            excluded: BTreeMap::new(),
            excluded_bytes: BTreeMap::new(),
            forked: false,
        }
    }

    /// Reads the accepted changes back from automerge (after `load`).
    fn ensure_indexed(&mut self) {
        if self.indexed {
            return;
        }
        self.indexed = true;
        let changes = self.doc.get_changes(&[]);
        for c in changes {
            let bytes = c.raw_bytes().to_vec();
            // Changes automerge wrote itself; a larger limit only so that none is dropped.
            let limits = Limits {
                max_ops: u64::from(u32::MAX),
                max_deps: usize::MAX,
                max_other_actors: usize::MAX,
                max_actor_bytes: usize::MAX,
                max_columns: usize::MAX,
                max_change_bytes: usize::MAX,
            };
            if let Ok(info) = prescan(&bytes, &limits) {
                self.record(None, &info, bytes);
            }
        }
    }

    fn record(&mut self, key: Option<Key>, info: &ChangeInfo, bytes: Vec<u8>) {
        self.order.push(info.hash);
        self.by_seq
            .insert((info.actor.clone(), info.seq), info.hash);
        let last = self.last_seq.entry(info.actor.clone()).or_insert(0);
        *last = (*last).max(info.seq);
        self.entries.insert(
            info.hash,
            Entry {
                key,
                actor: info.actor.clone(),
                seq: info.seq,
                max_op: info.max_op,
                deps: info.deps.clone(),
                bytes,
            },
        );
    }

    /// Applies changes given in causal order, each with its Key, in one automerge batch where
    /// possible; returns the changes left out (including earlier accepted ones a lower-Key twin
    /// displaced), each with its reason. See the [module docs](self) for the rules.
    pub fn apply(&mut self, changes: &[(Key, &[u8])]) -> Vec<Excluded> {
        let out = self.apply_inner(changes);
        if self.forked {
            // With forks, which twin stands can depend on which came first when forks nest
            // (a kept twin later excluded through another fork); so the document is computed
            // again from every change seen, in one order that depends only on the changes.
            return self.recompute();
        }
        out
    }

    fn apply_inner(&mut self, changes: &[(Key, &[u8])]) -> Vec<Excluded> {
        self.ensure_indexed();
        let mut out = Vec::new();
        let before: BTreeSet<[u8; 32]> = self.entries.keys().copied().collect();
        let mut pending: Vec<[u8; 32]> = Vec::new();
        let mut rebuild = false;
        for (key, bytes) in changes {
            let key = *key;
            let info = match prescan(bytes, &self.limits) {
                Ok(info) => info,
                Err(e) => {
                    out.push(Excluded {
                        key: Some(key),
                        hash: [0; 32],
                        reason: Exclusion::Invalid(e),
                    });
                    continue;
                }
            };
            if let Some(entry) = self.entries.get_mut(&info.hash) {
                if entry.key.is_none() {
                    entry.key = Some(key);
                }
                continue;
            }
            if let Some((_, reason)) = self.excluded.get(&info.hash) {
                out.push(Excluded {
                    key: Some(key),
                    hash: info.hash,
                    reason: reason.clone(),
                });
                continue;
            }
            if let Some(reason) = self.check(&info) {
                self.exclude_new(key, info.hash, reason, &mut out);
                continue;
            }
            if let Some(&twin) = self.by_seq.get(&(info.actor.clone(), info.seq)) {
                self.forked = true;
                let twin_key = self.entries.get(&twin).and_then(|e| e.key);
                match twin_key {
                    Some(k) if key < k => {
                        let reason = Exclusion::ForkedSeq { kept: Some(key) };
                        let removed = self.exclude_accepted(twin, reason, &mut out);
                        if removed.iter().any(|h| before.contains(h)) {
                            rebuild = true;
                        }
                        pending.retain(|h| !removed.contains(h));
                        // The twin's removal may have taken this change's deps with it.
                        if let Some(reason) = self.check(&info) {
                            self.exclude_new(key, info.hash, reason, &mut out);
                            continue;
                        }
                    }
                    _ => {
                        let reason = Exclusion::ForkedSeq { kept: twin_key };
                        self.exclude_new(key, info.hash, reason, &mut out);
                        continue;
                    }
                }
            }
            self.record(Some(key), &info, bytes.to_vec());
            pending.push(info.hash);
        }
        // Every change of this call that pre-scanned and ended excluded keeps its bytes, for a
        // recompute.
        for (key, bytes) in changes {
            if let Ok(info) = prescan(bytes, &self.limits)
                && self.excluded.contains_key(&info.hash)
            {
                self.excluded_bytes
                    .entry(info.hash)
                    .or_insert_with(|| (Some(*key), bytes.to_vec()));
            }
        }
        if rebuild {
            self.last_seq = recompute_last_seq(&self.entries);
            let all = self.order.clone();
            self.rebuild_with(&all, &mut out);
        } else if !pending.is_empty() {
            self.apply_pending(&pending, &mut out);
        }
        out
    }

    /// The rules checked before automerge sees a change: its deps, seq and op counters, and
    /// actors. `None` when it may be applied (twins aside).
    fn check(&self, info: &ChangeInfo) -> Option<Exclusion> {
        for dep in &info.deps {
            if let Some((key, _)) = self.excluded.get(dep) {
                return Some(Exclusion::DependsOnExcluded { on: *key });
            }
            if !self.entries.contains_key(dep) {
                return Some(Exclusion::MissingDep { dep: *dep });
            }
        }
        let last = self.last_seq.get(&info.actor).copied().unwrap_or(0);
        if info.seq > last.saturating_add(1) {
            return Some(Exclusion::Refused(format!(
                "seq {} after {last}: a gap",
                info.seq
            )));
        }
        let after_deps = info
            .deps
            .iter()
            .filter_map(|d| self.entries.get(d))
            .all(|e| e.max_op < info.start_op);
        let prev = self
            .by_seq
            .get(&(info.actor.clone(), info.seq.saturating_sub(1)))
            .and_then(|h| self.entries.get(h));
        if !after_deps || prev.is_some_and(|p| p.max_op >= info.start_op) {
            return Some(Exclusion::Refused(
                "start_op does not come after its deps' ops".into(),
            ));
        }
        None
    }

    fn exclude_new(
        &mut self,
        key: Key,
        hash: [u8; 32],
        reason: Exclusion,
        out: &mut Vec<Excluded>,
    ) {
        self.excluded.insert(hash, (Some(key), reason.clone()));
        out.push(Excluded {
            key: Some(key),
            hash,
            reason,
        });
    }

    /// Excludes an accepted change and every accepted change that depends on it; returns their
    /// hashes.
    fn exclude_accepted(
        &mut self,
        root: [u8; 32],
        reason: Exclusion,
        out: &mut Vec<Excluded>,
    ) -> BTreeSet<[u8; 32]> {
        let mut gone: BTreeSet<[u8; 32]> = BTreeSet::new();
        gone.insert(root);
        let mut keep = Vec::with_capacity(self.order.len());
        let order = std::mem::take(&mut self.order);
        for h in order {
            let Some(entry) = self.entries.get(&h) else {
                continue;
            };
            let why = if h == root {
                Some(reason.clone())
            } else {
                entry.deps.iter().find(|d| gone.contains(*d)).map(|d| {
                    Exclusion::DependsOnExcluded {
                        on: self.entries.get(d).and_then(|e| e.key),
                    }
                })
            };
            match why {
                None => keep.push(h),
                Some(why) => {
                    gone.insert(h);
                    out.push(Excluded {
                        key: entry.key,
                        hash: h,
                        reason: why.clone(),
                    });
                    self.excluded.insert(h, (entry.key, why));
                }
            }
        }
        self.order = keep;
        for h in &gone {
            if let Some(e) = self.entries.remove(h) {
                self.by_seq.remove(&(e.actor, e.seq));
                self.excluded_bytes.insert(*h, (e.key, e.bytes));
            }
        }
        self.last_seq = recompute_last_seq(&self.entries);
        gone
    }

    /// Applies the accepted changes `pending` (already recorded, at the end of `order`) to the
    /// automerge document in one batch; if automerge refuses the batch, one at a time.
    fn apply_pending(&mut self, pending: &[[u8; 32]], out: &mut Vec<Excluded>) {
        let batch: Result<Vec<Change>, String> = pending
            .iter()
            .map(|h| {
                let bytes = self.entries.get(h).map_or(&[][..], |e| &e.bytes[..]);
                Change::try_from(bytes).map_err(|e| e.to_string())
            })
            .collect();
        if let Ok(batch) = batch {
            let doc = &mut self.doc;
            if let Ok(Ok(())) = guarded(|| doc.apply_changes(batch)) {
                return;
            }
            // A failed batch may have left the document half-changed: start again from the
            // changes accepted before it.
            let pending_set: BTreeSet<[u8; 32]> = pending.iter().copied().collect();
            self.reset_to(&pending_set);
        }
        self.one_at_a_time(pending, out);
    }

    /// Applies `hashes` one by one, keeping each that automerge accepts and excluding each it
    /// refuses (with its dependants).
    fn one_at_a_time(&mut self, hashes: &[[u8; 32]], out: &mut Vec<Excluded>) {
        let mut not_yet: BTreeSet<[u8; 32]> = hashes.iter().copied().collect();
        for h in hashes {
            not_yet.remove(h);
            let Some(entry) = self.entries.get(h) else {
                continue; // excluded meanwhile, as a dependant of a refused change
            };
            let result = match Change::try_from(&entry.bytes[..]) {
                Ok(change) => {
                    let doc = &mut self.doc;
                    match guarded(|| doc.apply_changes([change])) {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(panic) => Err(panic),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            if let Err(why) = result {
                self.exclude_accepted(*h, Exclusion::Refused(why), out);
                self.reset_to(&not_yet);
            }
        }
    }

    /// Rebuilds the automerge document from the accepted changes other than `skip`, in one
    /// batch (they were all applied before, so automerge accepts them).
    fn reset_to(&mut self, skip: &BTreeSet<[u8; 32]>) {
        let changes: Vec<Change> = self
            .order
            .iter()
            .filter(|h| !skip.contains(*h))
            .filter_map(|h| self.entries.get(h))
            .filter_map(|e| Change::try_from(&e.bytes[..]).ok())
            .collect();
        let mut doc = Automerge::new_with_encoding(ENCODING);
        if let Ok(Ok(())) = guarded(|| doc.apply_changes(changes)) {
            self.doc = doc;
        }
        if let Ok(text) = text_obj(&self.doc) {
            self.text = text;
        }
    }

    /// Rebuilds the automerge document from `hashes` (accepted changes in causal order).
    fn rebuild_with(&mut self, hashes: &[[u8; 32]], out: &mut Vec<Excluded>) {
        self.doc = Automerge::new_with_encoding(ENCODING);
        self.apply_pending(hashes, out);
        if let Ok(text) = text_obj(&self.doc) {
            self.text = text;
        }
    }

    /// Computes the document again from every change seen (accepted or excluded), fed in an
    /// order that depends only on the changes: a topological order of their automerge deps,
    /// ready changes taken by ascending Key (then hash). Returns every exclusion.
    fn recompute(&mut self) -> Vec<Excluded> {
        let mut all: BTreeMap<[u8; 32], (Option<Key>, Vec<u8>)> =
            std::mem::take(&mut self.excluded_bytes);
        for (h, e) in &self.entries {
            all.insert(*h, (e.key, e.bytes.clone()));
        }
        let mut deps: BTreeMap<[u8; 32], Vec<[u8; 32]>> = BTreeMap::new();
        for (h, (_, bytes)) in &all {
            let info = prescan(bytes, &self.limits).ok();
            deps.insert(*h, info.map(|i| i.deps).unwrap_or_default());
        }
        let rank = |h: &[u8; 32]| {
            let key = all.get(h).and_then(|(k, _)| *k).unwrap_or([0xFF; 32]);
            (key, *h)
        };
        let mut waiting: BTreeMap<[u8; 32], usize> = BTreeMap::new();
        let mut dependants: BTreeMap<[u8; 32], Vec<[u8; 32]>> = BTreeMap::new();
        let mut ready: BTreeSet<(Key, [u8; 32])> = BTreeSet::new();
        for (h, ds) in &deps {
            let known: Vec<&[u8; 32]> = ds.iter().filter(|d| all.contains_key(*d)).collect();
            waiting.insert(*h, known.len());
            for d in known {
                dependants.entry(*d).or_default().push(*h);
            }
            if waiting.get(h) == Some(&0) {
                ready.insert(rank(h));
            }
        }
        let mut ordered: Vec<[u8; 32]> = Vec::with_capacity(all.len());
        while let Some(next) = ready.pop_first() {
            let h = next.1;
            ordered.push(h);
            for d in dependants.get(&h).into_iter().flatten() {
                if let Some(n) = waiting.get_mut(d) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        ready.insert(rank(d));
                    }
                }
            }
        }
        // Changes waiting on a dep never seen come last (they are excluded as missing it).
        let placed: BTreeSet<[u8; 32]> = ordered.iter().copied().collect();
        let mut stranded: Vec<(Key, [u8; 32])> = all
            .keys()
            .filter(|h| !placed.contains(*h))
            .map(rank)
            .collect();
        stranded.sort();
        ordered.extend(stranded.into_iter().map(|(_, h)| h));
        let mut fresh = Document::empty(
            Automerge::new_with_encoding(ENCODING),
            self.text.clone(),
            self.limits,
        );
        fresh.indexed = true;
        let feed: Vec<(Key, &[u8])> = ordered
            .iter()
            .filter_map(|h| {
                all.get(h)
                    .map(|(k, b)| (k.unwrap_or([0xFF; 32]), b.as_slice()))
            })
            .collect();
        fresh.apply_inner(&feed);
        if let Ok(text) = text_obj(&fresh.doc) {
            fresh.text = text;
        }
        // Keys a change never had stay unknown.
        for (h, (k, _)) in &all {
            if k.is_none() {
                if let Some(e) = fresh.entries.get_mut(h) {
                    e.key = None;
                }
                if let Some(x) = fresh.excluded.get_mut(h) {
                    x.0 = None;
                }
            }
        }
        fresh.forked = true;
        // Changes that never became ready (a dep never seen) keep their bytes too.
        for (h, (k, b)) in all {
            if fresh.excluded.contains_key(&h) || !fresh.entries.contains_key(&h) {
                fresh.excluded_bytes.entry(h).or_insert((k, b));
            }
        }
        *self = fresh;
        self.excluded
            .iter()
            .map(|(h, (key, reason))| Excluded {
                key: *key,
                hash: *h,
                reason: reason.clone(),
            })
            .collect()
    }

    /// The text.
    pub fn text(&self) -> String {
        self.doc.text(&self.text).unwrap_or_default()
    }

    /// The text's length in UTF-16 code units.
    pub fn len_utf16(&self) -> usize {
        self.doc.length(&self.text)
    }

    /// The document's heads (automerge change hashes), sorted.
    pub fn heads(&self) -> Vec<[u8; 32]> {
        self.doc.get_heads().into_iter().map(|h| h.0).collect()
    }

    /// The number of accepted changes.
    pub fn change_count(&self) -> usize {
        if self.indexed {
            self.entries.len()
        } else {
            self.doc.get_changes_meta(&[]).len()
        }
    }

    /// The Key of the accepted change with this (actor, seq), if this Document was given it:
    /// the change a new one by `actor` follows.
    pub fn key_of_seq(&self, actor: &[u8], seq: u64) -> Option<Key> {
        let hash = self.by_seq.get(&(actor.to_vec(), seq))?;
        self.key_of(hash)
    }

    /// The Key of an accepted change, by hash, if this Document was given it.
    pub fn key_of(&self, hash: &[u8; 32]) -> Option<Key> {
        self.entries.get(hash).and_then(|e| e.key)
    }

    /// Makes a change by `actor`: delete `delete` UTF-16 units at `pos`, then insert `insert`
    /// there. Returns the change's bytes, already applied to this Document (seq = the actor's
    /// previous seq here + 1, deps = the heads before, timestamp 0, no message); the caller
    /// signs it and then passes it to [`Document::apply`] with its Key.
    ///
    /// # Errors
    /// [`DocError::OutOfRange`], [`DocError::SplitsChar`], [`DocError::Empty`] (nothing to
    /// change), [`DocError::BadActor`], [`DocError::Automerge`].
    pub fn edit(
        &mut self,
        actor: &[u8],
        pos: usize,
        delete: usize,
        insert: &str,
    ) -> Result<Vec<u8>, DocError> {
        check_actor(actor, &self.limits)?;
        let units: Vec<u16> = self.text().encode_utf16().collect();
        let end = pos.checked_add(delete).filter(|e| *e <= units.len());
        let Some(end) = end else {
            return Err(DocError::OutOfRange {
                pos,
                delete,
                len: units.len(),
            });
        };
        for p in [pos, end] {
            if splits_pair(&units, p) {
                return Err(DocError::SplitsChar { pos: p });
            }
        }
        if delete == 0 && insert.is_empty() {
            return Err(DocError::Empty);
        }
        let deleted =
            char::decode_utf16(units.get(pos..end).unwrap_or_default().iter().copied()).count();
        self.check_size(deleted + insert.chars().count())?;
        let delete = isize::try_from(delete).map_err(|_| DocError::OutOfRange {
            pos,
            delete,
            len: units.len(),
        })?;
        let text = self.text.clone();
        self.commit(actor, |tx| tx.splice_text(&text, pos, delete, insert))
    }

    /// [`Document::edit`] with `pos` and `delete` counted in the text as it was at `base` (heads
    /// the editor saw, e.g. a browser's): the range is carried over to the text now through
    /// automerge cursors, so an edit typed while a peer's edit arrived lands where its author
    /// put it. A base equal to the heads now is a plain [`Document::edit`].
    ///
    /// # Errors
    /// [`DocError::UnknownBase`] for a base this document does not have; those of
    /// [`Document::edit`], with positions checked against the text at `base`.
    pub fn edit_since(
        &mut self,
        actor: &[u8],
        base: &[[u8; 32]],
        pos: usize,
        delete: usize,
        insert: &str,
    ) -> Result<Vec<u8>, DocError> {
        let mut wanted: Vec<[u8; 32]> = base.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted == self.heads() {
            return self.edit(actor, pos, delete, insert);
        }
        let heads: Vec<automerge::ChangeHash> =
            wanted.iter().map(|h| automerge::ChangeHash(*h)).collect();
        if heads
            .iter()
            .any(|h| self.doc.get_change_by_hash(h).is_none())
        {
            return Err(DocError::UnknownBase);
        }
        let then: Vec<u16> = self
            .doc
            .text_at(&self.text, &heads)
            .map_err(am)?
            .encode_utf16()
            .collect();
        let end = pos.checked_add(delete).filter(|e| *e <= then.len());
        let Some(end) = end else {
            return Err(DocError::OutOfRange {
                pos,
                delete,
                len: then.len(),
            });
        };
        for p in [pos, end] {
            if splits_pair(&then, p) {
                return Err(DocError::SplitsChar { pos: p });
            }
        }
        // A position at the base → the same place now: the character that was there (an
        // insertion goes before it wherever it has moved), or the end.
        let anchor = |at: usize| -> Result<Cursor, DocError> {
            let position = if at < then.len() {
                CursorPosition::Index(at)
            } else {
                CursorPosition::End
            };
            self.doc
                .get_cursor(&self.text, position, Some(&heads))
                .map_err(am)
        };
        let now = |cursor: &Cursor| -> Result<usize, DocError> {
            self.doc
                .get_cursor_position(&self.text, cursor, None)
                .map_err(|e| DocError::BadCursor(e.to_string()))
        };
        let start = now(&anchor(pos)?)?;
        let stop = if delete == 0 {
            start
        } else {
            // The range ends after its own last character, not before the one that followed
            // it: what a peer inserted right after the range (or appended) is not deleted.
            let width = if end >= 2 && (0xDC00..=0xDFFF).contains(&then[end - 1]) {
                2
            } else {
                1
            };
            let last = anchor(end - width)?;
            let at = now(&last)?;
            // If a peer deleted that character, the cursor stands where it was: nothing of it
            // is left to take.
            let still_there = at < self.len_utf16()
                && self
                    .doc
                    .get_cursor(&self.text, CursorPosition::Index(at), None)
                    .is_ok_and(|here| here.to_string() == last.to_string());
            (if still_there { at + width } else { at }).max(start)
        };
        self.edit(actor, start, stop - start, insert)
    }

    /// Makes a change by `actor` that turns the text into `new_text` with a minimal diff
    /// (automerge's `update_text`), so that concurrent edits elsewhere in the text survive.
    /// Returns the change's bytes as [`Document::edit`] does.
    ///
    /// # Errors
    /// [`DocError::Empty`] when the text is already `new_text`, [`DocError::BadActor`],
    /// [`DocError::Automerge`].
    pub fn replace_all(&mut self, actor: &[u8], new_text: &str) -> Result<Vec<u8>, DocError> {
        check_actor(actor, &self.limits)?;
        let old_text = self.text();
        if old_text == new_text {
            return Err(DocError::Empty);
        }
        let old: Vec<char> = old_text.chars().collect();
        let new: Vec<char> = new_text.chars().collect();
        // The common start and end, which the edit leaves alone.
        let start = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
        let end = old[start..]
            .iter()
            .rev()
            .zip(new[start..].iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let (old_middle, new_middle) = (&old[start..old.len() - end], &new[start..new.len() - end]);
        self.check_size(old_middle.len() + new_middle.len())?;
        // A minimal diff where one is found in time (concurrent edits to text the new version
        // keeps survive), else a coarser one: the same new text either way.
        let ops = similar::capture_diff_slices_deadline(
            similar::Algorithm::Myers,
            old_middle,
            new_middle,
            Some(std::time::Instant::now() + DIFF_TIME),
        );
        // UTF-16 offsets of the old text's characters (positions count in UTF-16 units).
        let mut offsets = Vec::with_capacity(old.len() + 1);
        let mut at = 0usize;
        offsets.push(at);
        for c in &old {
            at += c.len_utf16();
            offsets.push(at);
        }
        let offset = |i: usize| offsets.get(start + i).copied().unwrap_or(at);
        let text = self.text.clone();
        self.commit(actor, |tx| {
            // From the end back, so that each position still counts in the old text.
            for op in ops.iter().rev() {
                let (tag, old_range, new_range) = op.as_tag_tuple();
                if tag == similar::DiffTag::Equal {
                    continue;
                }
                let from = offset(old_range.start);
                let delete = offset(old_range.end) - from;
                let insert: String = new_middle
                    .get(new_range)
                    .unwrap_or_default()
                    .iter()
                    .collect();
                let delete = isize::try_from(delete).unwrap_or(isize::MAX);
                tx.splice_text(&text, from, delete, &insert)?;
            }
            Ok(())
        })
    }

    /// An edit deleting and inserting `changes` characters fits in one change.
    fn check_size(&self, changes: usize) -> Result<(), DocError> {
        if changes as u64 > self.limits.max_ops {
            return Err(DocError::TooLarge {
                changes,
                max: self.limits.max_ops,
            });
        }
        Ok(())
    }

    fn commit<F>(&mut self, actor: &[u8], f: F) -> Result<Vec<u8>, DocError>
    where
        F: FnOnce(
            &mut automerge::transaction::Transaction<'_>,
        ) -> Result<(), automerge::AutomergeError>,
    {
        self.ensure_indexed();
        self.doc.set_actor(ActorId::from(actor));
        let mut tx = self.doc.transaction();
        if let Err(e) = f(&mut tx) {
            tx.rollback();
            return Err(am(e));
        }
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(0));
        let Some(hash) = hash else {
            return Err(DocError::Empty);
        };
        let change = self
            .doc
            .get_change_by_hash(&hash)
            .ok_or(DocError::Automerge("the new change is missing".into()))?;
        let bytes = change.raw_bytes().to_vec();
        let info = prescan(&bytes, &self.limits)?;
        self.record(None, &info, bytes.clone());
        Ok(bytes)
    }

    /// A stable anchor for UTF-16 position `pos` (0..=len; `len` anchors the end), which
    /// [`Document::resolve`] turns back into a position after concurrent edits.
    ///
    /// # Errors
    /// [`DocError::OutOfRange`] past the end; [`DocError::Automerge`].
    pub fn cursor(&self, pos: usize) -> Result<String, DocError> {
        let len = self.len_utf16();
        let at = match pos.cmp(&len) {
            std::cmp::Ordering::Less => CursorPosition::Index(pos),
            std::cmp::Ordering::Equal => CursorPosition::End,
            std::cmp::Ordering::Greater => {
                return Err(DocError::OutOfRange {
                    pos,
                    delete: 0,
                    len,
                });
            }
        };
        let cursor = self.doc.get_cursor(&self.text, at, None).map_err(am)?;
        Ok(cursor.to_string())
    }

    /// The current UTF-16 position of a cursor from [`Document::cursor`] (on this document or
    /// another replica of it).
    ///
    /// # Errors
    /// [`DocError::BadCursor`] for a string that is not a cursor of this text.
    pub fn resolve(&self, cursor: &str) -> Result<usize, DocError> {
        let cursor = Cursor::try_from(cursor).map_err(|e| DocError::BadCursor(e.to_string()))?;
        self.doc
            .get_cursor_position(&self.text, &cursor, None)
            .map_err(|e| DocError::BadCursor(e.to_string()))
    }

    /// The document in automerge's saved-document format: our snapshots, and what `moot
    /// proposal export` writes (JS `Automerge.load` opens it).
    pub fn save(&self) -> Vec<u8> {
        self.doc.save()
    }
}

fn recompute_last_seq(entries: &BTreeMap<[u8; 32], Entry>) -> BTreeMap<Vec<u8>, u64> {
    let mut last: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for e in entries.values() {
        let s = last.entry(e.actor.clone()).or_insert(0);
        *s = (*s).max(e.seq);
    }
    last
}

/// True if UTF-16 position `p` falls between a high and a low surrogate.
fn splits_pair(units: &[u16], p: usize) -> bool {
    p > 0
        && p < units.len()
        && (0xD800..0xDC00).contains(&units[p - 1])
        && (0xDC00..0xE000).contains(&units[p])
}

fn check_actor(actor: &[u8], limits: &Limits) -> Result<(), DocError> {
    if actor.is_empty() || actor.len() > limits.max_actor_bytes {
        return Err(DocError::BadActor);
    }
    Ok(())
}

/// The Text object at `ROOT."text"`, if the root holds exactly that and nothing else.
fn text_obj(doc: &Automerge) -> Result<automerge::ObjId, DocError> {
    let keys: Vec<String> = doc.keys(ROOT).collect();
    if keys != [TEXT_PROP] {
        return Err(DocError::Shape);
    }
    let values = doc.get_all(ROOT, TEXT_PROP).map_err(am)?;
    match values.as_slice() {
        [(automerge::Value::Object(ObjType::Text), id)] => Ok(id.clone()),
        _ => Err(DocError::Shape),
    }
}

fn am(e: impl std::fmt::Display) -> DocError {
    DocError::Automerge(e.to_string())
}

/// Runs `f`, turning a panic inside automerge into an error string. automerge 0.12 unwraps in
/// some paths that hostile or damaged input can reach; a panic must not take the node down.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "automerge panicked".into())
    })
}
