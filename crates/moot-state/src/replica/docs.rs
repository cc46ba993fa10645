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

/// What the replica keeps of each accepted document change (56 bytes; its parents among the
/// document's changes are found through the replica's dependency numbers).
#[derive(Debug, Clone)]
pub(super) struct ChangeRecord {
    /// The document's index number (its creator op's).
    doc: u32,
    /// The author device's number (the change's actor).
    device: u32,
    /// The change's last op counter (at most `u32::MAX`: the pre-scan refuses more).
    max_op: u32,
    seq: u64,
    hash: [u8; 32],
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
                // Set when recorded: the creator is its own document.
                doc: u32::MAX,
                device: self.device_number(op.author()),
                seq: info.seq,
                max_op: u32::try_from(info.max_op).unwrap_or(u32::MAX),
                hash: info.hash,
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
                && let Some(r) = changes.get(&n).filter(|r| r.doc == doc_no)
            {
                seen.push(n);
                parents.push(r);
            }
        }
        let previous = parents
            .iter()
            .filter(|r| r.device == device)
            .map(|r| r.seq)
            .max()
            .unwrap_or(0);
        let expected = previous.saturating_add(1);
        if info.seq != expected {
            return Err(Denied::Doc(DocDenied::SeqGap {
                expected,
                found: info.seq,
            }));
        }
        if parents.iter().any(|r| info.start_op <= u64::from(r.max_op)) {
            return Err(Denied::Doc(DocDenied::StartOp {
                start_op: info.start_op,
            }));
        }
        if let Some(unnamed) = info
            .deps
            .iter()
            .find(|h| !parents.iter().any(|r| r.hash == **h))
        {
            return Err(Denied::Doc(DocDenied::UnnamedDependency(*unnamed)));
        }
        self.deliberation.checked = Some((
            op.id(),
            ChangeRecord {
                doc: doc_no,
                device,
                seq: info.seq,
                max_op: u32::try_from(info.max_op).unwrap_or(u32::MAX),
                hash: info.hash,
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
        let Some(doc) = self.deliberation.changes.get(&n).map(|r| r.doc) else {
            return Vec::new();
        };
        let mut parents: Vec<OpId> = self
            .deps_of(n)
            .filter(|p| {
                self.deliberation
                    .changes
                    .get(p)
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
            self.deliberation.changes.insert(n, record);
        }
    }
}
