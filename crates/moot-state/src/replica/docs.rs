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

/// What the replica keeps of each accepted document change.
#[derive(Debug, Clone)]
pub(super) struct ChangeRecord {
    /// The document (its creator op).
    pub(super) doc: OpId,
    /// The author device (the change's actor).
    device: [u8; 32],
    seq: u64,
    max_op: u64,
    hash: [u8; 32],
    /// The document's changes the op names (in its `prev` or `deps`).
    pub(super) parents: Vec<OpId>,
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
                doc: op.id(),
                device: op.author().to_bytes(),
                seq: info.seq,
                max_op: info.max_op,
                hash: info.hash,
                parents: Vec::new(),
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
        let changes = &self.deliberation.changes;
        let mut parents: Vec<(&OpId, &ChangeRecord)> = Self::parents(op)
            .filter_map(|p| changes.get_key_value(&p).filter(|(_, r)| r.doc == *doc))
            .collect();
        parents.sort_by(|a, b| a.0.cmp(b.0));
        parents.dedup_by(|a, b| a.0 == b.0);
        let previous = parents
            .iter()
            .filter(|(_, r)| r.device == author)
            .map(|(_, r)| r.seq)
            .max()
            .unwrap_or(0);
        let expected = previous.saturating_add(1);
        if info.seq != expected {
            return Err(Denied::Doc(DocDenied::SeqGap {
                expected,
                found: info.seq,
            }));
        }
        if parents.iter().any(|(_, r)| info.start_op <= r.max_op) {
            return Err(Denied::Doc(DocDenied::StartOp {
                start_op: info.start_op,
            }));
        }
        if let Some(unnamed) = info
            .deps
            .iter()
            .find(|h| !parents.iter().any(|(_, r)| r.hash == **h))
        {
            return Err(Denied::Doc(DocDenied::UnnamedDependency(*unnamed)));
        }
        let parents = parents.iter().map(|(id, _)| **id).collect();
        self.deliberation.checked = Some((
            op.id(),
            ChangeRecord {
                doc: *doc,
                device: author,
                seq: info.seq,
                max_op: info.max_op,
                hash: info.hash,
                parents,
            },
        ));
        Ok(())
    }

    /// Records an accepted change (checked just before by one of the checks above).
    pub(super) fn record_change(&mut self, id: OpId, body: &Body) {
        if !matches!(body, Body::CreateProposal(_) | Body::DocChange(_)) {
            return;
        }
        if let Some((checked, record)) = self.deliberation.checked.take()
            && checked == id
        {
            self.deliberation.changes.insert(id, record);
        }
    }
}
