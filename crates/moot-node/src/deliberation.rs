//! Proposals on a node: writing their ops, and their documents materialised from the ops.
//!
//! A proposal's text is an automerge document (`moot-doc`) whose changes are the document's
//! ops. A document is **materialised** when needed: from its snapshot (a derived view,
//! `doc/<id>`, holding automerge's saved bytes and which changes they hold) plus the changes
//! after it, or rebuilt from its ops when the snapshot is missing, damaged or does not match
//! the ops held. A snapshot is written when a member edits the document, and when at least
//! [`SNAPSHOT_EVERY`] changes arrived since the last one; documents are opened only when asked
//! for (a read, an edit), one at a time per command.

use moot_crypto::{HubId, OpId, SignedOp};
use moot_doc::{Document, Excluded};
use moot_state::body::{
    Amend, AssemblyRef, Comment, CreateProposal, Decide, DocChange, Outcome, ResolveAmendment,
    Stance, StanceKind,
};
use moot_state::deliberation::{AmendmentStatus, ChangeRef, ProposalInfo};
use moot_state::{Body, Lane, Replica};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::polls::{PollWrite, assembly_id};
use crate::{Node, NodeError, Signer, clean_text};

/// A snapshot is rewritten when this many changes arrived since the last one.
pub const SNAPSHOT_EVERY: usize = 64;
/// Longest proposal text accepted from a user, in bytes.
pub const MAX_PROPOSAL_BYTES: usize = 1 << 20;

/// A document snapshot (view `doc/<id>`).
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    /// How many of the document's changes (in the replica's order) it holds.
    changes: u32,
    /// SHA-256 of those changes' op ids, in order.
    list: [u8; 32],
    /// Automerge's saved bytes.
    saved: Vec<u8>,
}

fn list_hash(changes: &[ChangeRef]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    for c in changes {
        h.update(c.op.0);
    }
    h.finalize().into()
}

fn view_name(doc: &OpId) -> String {
    format!("doc/{doc}")
}

/// A materialised document.
pub struct Materialised {
    /// The document.
    pub doc: Document,
    /// Changes the document leaves out, with why.
    pub excluded: Vec<Excluded>,
    /// The document's changes held.
    pub changes: Vec<ChangeRef>,
}

/// A proposal as the CLI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalView {
    /// Its id (its create op, also its document's id).
    pub proposal_id: String,
    /// Its assembly.
    pub assembly_id: String,
    /// Its title.
    pub title: String,
    /// Guests may read it.
    pub public: bool,
    /// Who proposed it.
    pub proposer: String,
    /// The text now.
    pub text: String,
    /// Comments, a reply after what it answers.
    pub comments: Vec<CommentView>,
    /// Each member's standing stance.
    pub stances: Vec<StanceView>,
    /// Amendments.
    pub amendments: Vec<AmendmentView>,
    /// The outcome, if decided.
    pub outcome: Option<OutcomeView>,
    /// Objections and blocks standing.
    pub objections: usize,
    /// Flags for readers (concurrent decisions, equivocal stances, excluded changes…).
    pub flags: Vec<String>,
    /// Changes in the document.
    pub changes: usize,
    /// The document's heads (hex): the version `text` is, for an edit counted in it
    /// (`proposal edit --base`).
    pub heads: Vec<String>,
}

/// A comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentView {
    /// Its id.
    pub comment_id: String,
    /// The comment it answers.
    pub reply_to: Option<String>,
    /// Who wrote it.
    pub author: String,
    /// What it says.
    pub text: String,
}

/// A standing stance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StanceView {
    /// Whose.
    pub member: String,
    /// `agree`, `concerns`, `object` or `block`.
    pub stance: String,
    /// Why.
    pub reason: String,
    /// Its revision.
    pub revision: u32,
}

/// An amendment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmendmentView {
    /// Its id.
    pub amendment_id: String,
    /// Who proposed it.
    pub author: String,
    /// The text it replaces.
    pub original: String,
    /// The replacement.
    pub replacement: String,
    /// `open`, `accepted` or `rejected`.
    pub status: String,
}

/// A proposal's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeView {
    /// The decision op.
    pub decision_id: String,
    /// Who decided.
    pub by: String,
    /// `adopted`, `sent-to-vote` or `withdrawn`.
    pub outcome: String,
    /// The poll, if sent to a vote.
    pub poll_id: Option<String>,
}

/// A proposal in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalSummary {
    /// Its id.
    pub proposal_id: String,
    /// Its assembly.
    pub assembly_id: String,
    /// Its title.
    pub title: String,
    /// `open`, `adopted`, `sent-to-vote` or `withdrawn`.
    pub status: String,
    /// Objections and blocks standing.
    pub objections: usize,
    /// Guests may read it (it is in the public lane).
    pub public: bool,
}

/// How a proposal is to end (the CLI's `decide`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Adopted by consensus.
    Adopt,
    /// Withdrawn.
    Withdraw,
    /// Sent to a vote.
    Vote,
}

fn outcome_name(outcome: &Outcome) -> (&'static str, Option<String>) {
    match outcome {
        Outcome::Adopted => ("adopted", None),
        Outcome::SentToVote { poll } => ("sent-to-vote", Some(poll.to_string())),
        Outcome::Withdrawn => ("withdrawn", None),
    }
}

fn held_proposal(replica: &mut Replica, id: &OpId) -> Result<ProposalInfo, NodeError> {
    replica
        .proposal(id)
        .ok_or_else(|| NodeError::NoSuchProposal(id.to_string()))
}

/// The automerge change an op carries, if it is one of a document's changes (a stored op:
/// its change passed the pre-scan when it arrived; `Document::apply` checks it again).
fn change_of(op: &SignedOp) -> Option<Vec<u8>> {
    moot_state::body::stored_change(op.kind(), op.body())
}

fn refused(denied: moot_state::Denied) -> NodeError {
    NodeError::Refused(moot_state::Reason::Unauthorized(denied))
}

fn doc_error(e: moot_doc::DocError) -> NodeError {
    if e == moot_doc::DocError::UnknownBase {
        return NodeError::UnknownBase;
    }
    NodeError::BadText {
        what: "edit",
        reason: match e {
            moot_doc::DocError::Empty => "changes nothing".into(),
            e => format!("is refused: {e}"),
        },
    }
}

impl Node {
    /// The bytes of the automerge changes `changes` carry, read from the store.
    fn change_bytes(
        &self,
        hub: &HubId,
        changes: &[ChangeRef],
    ) -> Result<Vec<(OpId, Vec<u8>)>, NodeError> {
        let store = self.store()?;
        let mut out = Vec::with_capacity(changes.len());
        for c in changes {
            let bytes = store
                .op(hub, &c.op)?
                .ok_or_else(|| NodeError::Corrupt(format!("change op {} is not stored", c.op)))?;
            let op = SignedOp::decode(&bytes)
                .map_err(|e| NodeError::Corrupt(format!("stored op {}: {e}", c.op)))?;
            let change = change_of(&op)
                .ok_or_else(|| NodeError::Corrupt(format!("op {} is not a change", c.op)))?;
            out.push((c.op, change));
        }
        Ok(out)
    }

    /// Materialises document `doc` from its snapshot and the changes after it, or from its
    /// ops. With `keyed`, every change held gets its op id (needed to write a change that
    /// names its dependencies), which reads every change op.
    pub fn materialise(
        &self,
        hub: &HubId,
        replica: &mut Replica,
        doc: &OpId,
        keyed: bool,
    ) -> Result<Materialised, NodeError> {
        let changes = replica.doc_changes(doc);
        if changes.is_empty() {
            return Err(NodeError::NoSuchProposal(doc.to_string()));
        }
        let snapshot = self
            .view(hub, &view_name(doc))?
            .and_then(|bytes| postcard::from_bytes::<Snapshot>(&bytes).ok())
            .filter(|s| {
                let n = s.changes as usize;
                n <= changes.len() && changes.get(..n).is_some_and(|c| list_hash(c) == s.list)
            });
        let from_snapshot = snapshot.and_then(|s| {
            Document::load(&s.saved, &moot_doc::Limits::default())
                .ok()
                .map(|d| (d, s.changes as usize))
        });
        let (mut document, start) = match from_snapshot {
            Some((d, n)) if !keyed => (d, n),
            Some((d, _)) => (d, 0),
            None => {
                let first = self.change_bytes(hub, &changes[..1])?;
                let (_, creator) = first
                    .first()
                    .ok_or_else(|| NodeError::Corrupt("document without a creator".into()))?;
                let d = Document::from_creator(creator)
                    .map_err(|e| NodeError::Corrupt(format!("document {doc}: {e}")))?;
                (d, 0)
            }
        };
        let rest = self.change_bytes(hub, changes.get(start..).unwrap_or_default())?;
        let batch: Vec<(moot_doc::Key, &[u8])> = rest
            .iter()
            .map(|(id, bytes)| (id.0, bytes.as_slice()))
            .collect();
        let mut excluded = document.apply(&batch);
        if start > 0 && !excluded.is_empty() {
            // A snapshot does not keep its changes' op ids, and which of two forked changes
            // stands depends on them: rebuild from the ops, as a node without the snapshot does.
            let all = self.change_bytes(hub, &changes)?;
            let (_, creator) = all
                .first()
                .ok_or_else(|| NodeError::Corrupt("document without a creator".into()))?;
            document = Document::from_creator(creator)
                .map_err(|e| NodeError::Corrupt(format!("document {doc}: {e}")))?;
            let batch: Vec<(moot_doc::Key, &[u8])> = all
                .iter()
                .map(|(id, bytes)| (id.0, bytes.as_slice()))
                .collect();
            excluded = document.apply(&batch);
            self.put_snapshot(hub, doc, &document, &changes)?;
            return Ok(Materialised {
                doc: document,
                excluded,
                changes,
            });
        }
        if changes.len() - start >= SNAPSHOT_EVERY || start == 0 {
            self.put_snapshot(hub, doc, &document, &changes)?;
        }
        Ok(Materialised {
            doc: document,
            excluded,
            changes,
        })
    }

    /// Builds the documents `docs` from their ops and stores their snapshots. Change bytes
    /// found in `known` (ops just taken in) are not read again from the store. Returns the
    /// changes applied.
    pub fn refresh_documents(
        &self,
        hub: &HubId,
        replica: &mut Replica,
        docs: &[OpId],
        known: &std::collections::HashMap<OpId, Vec<u8>>,
    ) -> Result<usize, NodeError> {
        let mut applied = 0;
        for doc in docs {
            let changes = replica.doc_changes(doc);
            let missing: Vec<ChangeRef> = changes
                .iter()
                .filter(|c| !known.contains_key(&c.op))
                .cloned()
                .collect();
            let read: std::collections::HashMap<OpId, Vec<u8>> =
                self.change_bytes(hub, &missing)?.into_iter().collect();
            let bytes_of = |id: &OpId| known.get(id).or_else(|| read.get(id));
            let Some(creator) = changes.first().and_then(|c| bytes_of(&c.op)) else {
                continue;
            };
            let mut document = Document::from_creator(creator)
                .map_err(|e| NodeError::Corrupt(format!("document {doc}: {e}")))?;
            let mut batch: Vec<(moot_doc::Key, &[u8])> = Vec::with_capacity(changes.len());
            for c in &changes {
                let change = bytes_of(&c.op).ok_or_else(|| {
                    NodeError::Corrupt(format!("change op {} is not stored", c.op))
                })?;
                batch.push((c.op.0, change.as_slice()));
            }
            document.apply(&batch);
            applied += batch.len();
            self.put_snapshot(hub, doc, &document, &changes)?;
        }
        Ok(applied)
    }

    fn put_snapshot(
        &self,
        hub: &HubId,
        doc: &OpId,
        document: &Document,
        changes: &[ChangeRef],
    ) -> Result<(), NodeError> {
        let snapshot = Snapshot {
            changes: u32::try_from(changes.len()).unwrap_or(u32::MAX),
            list: list_hash(changes),
            saved: document.save(),
        };
        let bytes =
            postcard::to_allocvec(&snapshot).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        self.put_view(hub, &view_name(doc), &bytes)
    }

    /// Creates a proposal in an assembly → its id.
    pub fn create_proposal(
        &self,
        hub: &HubId,
        signer: &Signer,
        assembly: &AssemblyRef,
        title: &str,
        text: &str,
    ) -> Result<OpId, NodeError> {
        let title = clean_text("title", title)?;
        if text.len() > MAX_PROPOSAL_BYTES {
            return Err(NodeError::BadText {
                what: "proposal text",
                reason: format!("is longer than {MAX_PROPOSAL_BYTES} bytes"),
            });
        }
        let change = moot_doc::creator_change(&signer.device.public().to_bytes(), text)
            .map_err(doc_error)?;
        let text_len = text.len();
        let assembly = assembly.clone();
        self.write_poll_op(hub, signer, |replica| {
            let lane = match &assembly {
                AssemblyRef::Created(a) => replica
                    .assemblies()
                    .into_iter()
                    .find(|i| i.assembly == AssemblyRef::Created(*a))
                    .map(|i| i.lane)
                    .ok_or_else(|| NodeError::NoSuchAssembly(a.to_string()))?,
                _ => Lane::Members,
            };
            let refs = match &assembly {
                AssemblyRef::Created(a) => vec![*a],
                _ => Vec::new(),
            };
            let body = Body::CreateProposal(CreateProposal {
                assembly,
                title,
                change,
            });
            // The first text travels in one op: past an op's size it is bad input with a way
            // round, not a refusal of a malformed op.
            let size = body.encode().map_or(usize::MAX, |(_, bytes)| bytes.len());
            if size > moot_crypto::op::MAX_BODY_BYTES {
                return Err(NodeError::BadText {
                    what: "proposal text",
                    reason: format!(
                        "is too long to start a proposal with ({} bytes of text make an op of \
                         {size} bytes; at most {}): create it with the first part, then add \
                         the rest with `moot proposal edit`",
                        text_len,
                        moot_crypto::op::MAX_BODY_BYTES
                    ),
                });
            }
            Ok(PollWrite {
                body,
                lane,
                refs,
                covering: false,
            })
        })
    }

    /// Edits a proposal's text: `edit` makes the change on the materialised document. Returns
    /// the change op's id.
    pub fn edit_proposal(
        &self,
        hub: &HubId,
        signer: &Signer,
        proposal: &OpId,
        edit: impl FnOnce(&mut Document, &[u8]) -> Result<Vec<u8>, moot_doc::DocError>,
    ) -> Result<OpId, NodeError> {
        Ok(self.edit_proposal_heads(hub, signer, proposal, edit)?.0)
    }

    /// [`Node::edit_proposal`], also returning the document's heads after the edit (hex): the
    /// version an editor's next edit counts in.
    pub fn edit_proposal_heads(
        &self,
        hub: &HubId,
        signer: &Signer,
        proposal: &OpId,
        edit: impl FnOnce(&mut Document, &[u8]) -> Result<Vec<u8>, moot_doc::DocError>,
    ) -> Result<(OpId, Vec<String>), NodeError> {
        let proposal = *proposal;
        let (id, snapshot) = self.write_steps(hub, signer, |steps| {
            let info = held_proposal(steps.replica, &proposal)?;
            self.write_edit(hub, steps, &proposal, info.lane, edit)
        })?;
        let heads = snapshot.0.heads().iter().map(hex::encode).collect();
        // The edit is saved: a snapshot not written is only a cache missed (the document is
        // rebuilt from its ops), and an editor told the edit failed would send it again.
        if let Err(error) = self.put_snapshot(hub, &proposal, &snapshot.0, &snapshot.1) {
            tracing::warn!(%proposal, %error, "the edit is saved; its snapshot is not");
        }
        Ok((id, heads))
    }

    /// Writes a change made by `edit` on the materialised document → the change op's id, and
    /// the document with its changes (for the snapshot, stored once the ops are).
    fn write_edit(
        &self,
        hub: &HubId,
        steps: &mut crate::polls::Steps<'_>,
        proposal: &OpId,
        lane: Lane,
        edit: impl FnOnce(&mut Document, &[u8]) -> Result<Vec<u8>, moot_doc::DocError>,
    ) -> Result<(OpId, (Document, Vec<ChangeRef>)), NodeError> {
        let actor = steps.device_key().to_bytes();
        let mut m = self.materialise(hub, steps.replica, proposal, true)?;
        let change = edit(&mut m.doc, &actor).map_err(doc_error)?;
        // One op carries the change (with the document's id and the change's length): a
        // larger one every peer refuses, so it is refused here, saying what to do.
        let room = moot_crypto::op::MAX_BODY_BYTES - 64;
        if change.len() > room {
            return Err(NodeError::BadText {
                what: "edit",
                reason: format!(
                    "is refused: its change is {} bytes, and one op carries at most {room} \
                     (about that many characters of new text): make it in parts",
                    change.len()
                ),
            });
        }
        let refs = Self::change_refs(&m, proposal, &change, &actor)?;
        let id = steps.write(PollWrite {
            body: Body::DocChange(DocChange {
                doc: *proposal,
                change: change.clone(),
            }),
            lane,
            refs,
            covering: false,
        })?;
        // The local change gets its op id (for later edits naming it).
        m.doc.apply(&[(id.0, &change)]);
        let changes = steps.replica.doc_changes(proposal);
        Ok((id, (m.doc, changes)))
    }

    /// What a new change must name: the document, the ops carrying its automerge
    /// dependencies, and the author device's previous change to the document.
    fn change_refs(
        m: &Materialised,
        doc: &OpId,
        change: &[u8],
        actor: &[u8],
    ) -> Result<Vec<OpId>, NodeError> {
        let info = moot_doc::prescan(change, &moot_doc::Limits::default()).map_err(|e| {
            NodeError::Corrupt(format!("a change made here fails the pre-scan: {e}"))
        })?;
        let mut refs = vec![*doc];
        for dep in &info.deps {
            let key = m.doc.key_of(dep).ok_or_else(|| {
                NodeError::Corrupt("a dependency of the new change has no op".into())
            })?;
            refs.push(OpId(key));
        }
        if info.seq > 1 {
            // The device's previous change to the document.
            let key = m.doc.key_of_seq(actor, info.seq - 1).ok_or_else(|| {
                NodeError::Corrupt("the device's previous change has no op".into())
            })?;
            refs.push(OpId(key));
        }
        refs.sort();
        refs.dedup();
        Ok(refs)
    }

    /// Comments on a proposal (or answers a comment) → the comment's id.
    pub fn comment(
        &self,
        hub: &HubId,
        signer: &Signer,
        proposal: &OpId,
        reply_to: Option<OpId>,
        text: &str,
    ) -> Result<OpId, NodeError> {
        let text = clean_prose("comment", text)?;
        let proposal = *proposal;
        self.write_poll_op(hub, signer, |replica| {
            let info = held_proposal(replica, &proposal)?;
            let mut refs = vec![proposal];
            if let Some(parent) = reply_to {
                if !info.comments.iter().any(|c| c.id == parent) {
                    return Err(NodeError::NoSuchComment(parent.to_string()));
                }
                refs.push(parent);
            }
            Ok(PollWrite {
                body: Body::Comment(Comment {
                    proposal,
                    parent: reply_to,
                    text,
                }),
                lane: info.lane,
                refs,
                covering: false,
            })
        })
    }

    /// Takes (or changes) the signer's stance → the stance's id and revision.
    pub fn stance(
        &self,
        hub: &HubId,
        signer: &Signer,
        proposal: &OpId,
        stance: StanceKind,
        reason: &str,
    ) -> Result<(OpId, u32), NodeError> {
        let reason = clean_prose("reason", reason)?;
        let proposal = *proposal;
        let member = signer.member_id();
        let mut revision = 1;
        let id = self.write_poll_op(hub, signer, |replica| {
            let info = held_proposal(replica, &proposal)?;
            revision = replica
                .latest_stance_revision(&proposal, &member)
                .map_or(1, |r| r.saturating_add(1));
            Ok(PollWrite {
                body: Body::Stance(Stance {
                    proposal,
                    revision,
                    stance,
                    reason,
                }),
                lane: info.lane,
                refs: vec![proposal],
                covering: false,
            })
        })?;
        Ok((id, revision))
    }

    /// Proposes an amendment: replace the one occurrence of `original` in the text with
    /// `replacement` → the amendment's id.
    pub fn amend(
        &self,
        hub: &HubId,
        signer: &Signer,
        proposal: &OpId,
        original: &str,
        replacement: &str,
    ) -> Result<OpId, NodeError> {
        let replacement = clean_prose("replacement", replacement)?;
        if original.is_empty() || original.len() > moot_state::body::MAX_PROSE_BYTES {
            return Err(NodeError::BadText {
                what: "text to replace",
                reason: "must be 1 to 4000 bytes".into(),
            });
        }
        let proposal = *proposal;
        self.write_poll_op(hub, signer, |replica| {
            let info = held_proposal(replica, &proposal)?;
            let m = self.materialise(hub, replica, &proposal, false)?;
            let text = m.doc.text();
            let mut found = text.match_indices(original);
            let (at, _) = found.next().ok_or_else(|| NodeError::BadText {
                what: "text to replace",
                reason: "does not occur in the proposal".into(),
            })?;
            if found.next().is_some() {
                return Err(NodeError::BadText {
                    what: "text to replace",
                    reason: "occurs more than once: quote more of it".into(),
                });
            }
            let from = utf16_len(&text[..at]);
            let to = from + utf16_len(original);
            let from = m.doc.cursor(from).map_err(doc_error)?;
            let to = m.doc.cursor(to).map_err(doc_error)?;
            Ok(PollWrite {
                body: Body::Amend(Amend {
                    proposal,
                    from,
                    to,
                    original: original.to_string(),
                    replacement,
                }),
                lane: info.lane,
                refs: vec![proposal],
                covering: false,
            })
        })
    }

    /// Accepts or rejects an amendment (the proposer or a convener); an accepted one is applied
    /// to the text at once, by a change of the same signer. Returns the resolution's id (and the
    /// change's, when accepted).
    pub fn resolve_amendment(
        &self,
        hub: &HubId,
        signer: &Signer,
        amendment: &OpId,
        accepted: bool,
    ) -> Result<(OpId, Option<OpId>), NodeError> {
        let amendment = *amendment;
        // The resolution and the change applying it are stored together, or neither.
        let (resolution, change) = self.write_steps(hub, signer, |steps| {
            let found = steps.replica.proposal_ids().into_iter().find_map(|p| {
                let info = steps.replica.proposal(&p)?;
                let a = info.amendments.into_iter().find(|a| a.id == amendment)?;
                Some((p, info.lane, a))
            });
            let (proposal, lane, a) =
                found.ok_or_else(|| NodeError::NoSuchAmendment(amendment.to_string()))?;
            if a.status != AmendmentStatus::Open {
                return Err(refused(moot_state::Denied::AlreadyResolved));
            }
            let resolution = steps.write(PollWrite {
                body: Body::ResolveAmendment(ResolveAmendment {
                    amendment,
                    accepted,
                }),
                lane,
                refs: vec![amendment],
                covering: false,
            })?;
            if !accepted {
                return Ok((resolution, None));
            }
            let (change, snapshot) =
                self.write_edit(hub, steps, &proposal, lane, |doc, actor| {
                    let from = doc.resolve(&a.from)?;
                    let to = doc.resolve(&a.to)?.max(from);
                    doc.edit(actor, from, to - from, &a.replacement)
                })?;
            Ok((resolution, Some((change, proposal, snapshot))))
        })?;
        let change = match change {
            Some((change, proposal, (doc, changes))) => {
                self.put_snapshot(hub, &proposal, &doc, &changes)?;
                Some(change)
            }
            None => None,
        };
        Ok((resolution, change))
    }

    /// Decides a proposal (the proposer or a convener). Sending it to a vote creates and opens
    /// a poll of the proposal's assembly whose options are the proposal as written, with each
    /// open amendment, and rejecting it. Returns the decision's id and the poll's, if any.
    pub fn decide(
        &self,
        hub: &HubId,
        signer: &Signer,
        proposal: &OpId,
        decision: Decision,
    ) -> Result<(OpId, Option<OpId>), NodeError> {
        let proposal = *proposal;
        // The poll, its open and the decision are stored together, or none of them.
        self.write_steps(hub, signer, |steps| {
            let info = held_proposal(steps.replica, &proposal)?;
            let poll = if decision == Decision::Vote {
                let mut options = vec![fit("Adopt: ", &short(&info.title, 150), "")];
                let open: Vec<_> = info
                    .amendments
                    .iter()
                    .filter(|a| a.status == AmendmentStatus::Open)
                    .collect();
                // "Adopt", one option per open amendment, "Reject": all must fit one ballot.
                let room = moot_state::body::MAX_POLL_OPTIONS - 2;
                if open.len() > room {
                    return Err(NodeError::BadText {
                        what: "vote",
                        reason: format!(
                            "{} open amendments do not fit one ballot (at most {room}): accept \
                             or reject some first",
                            open.len()
                        ),
                    });
                }
                for (i, a) in open.into_iter().enumerate() {
                    options.push(fit(
                        &format!("Adopt with amendment {}: ", i + 1),
                        &short(&a.replacement, 120),
                        "",
                    ));
                }
                options.push("Reject".to_string());
                let checked = crate::polls::check_poll_spec(crate::polls::PollSpec {
                    assembly: info.assembly.clone(),
                    question: fit("Adopt the proposal \"", &info.title, "\"?"),
                    options,
                    seats: 1,
                    officers: Vec::new(),
                    stations: Vec::new(),
                    quorum: None,
                    opens_at: None,
                    closes_at: None,
                })?;
                let create = crate::polls::create_poll_write(steps.replica, checked)?;
                let poll = steps.write(create)?;
                let open = crate::polls::open_poll_write(steps.replica, poll)?;
                steps.write(open)?;
                Some(poll)
            } else {
                None
            };
            let outcome = match (decision, poll) {
                (Decision::Adopt, _) => Outcome::Adopted,
                (Decision::Withdraw, _) => Outcome::Withdrawn,
                (Decision::Vote, Some(poll)) => Outcome::SentToVote { poll },
                (Decision::Vote, None) => return Err(NodeError::Corrupt("no poll".into())),
            };
            let mut refs = vec![proposal];
            refs.extend(poll);
            let id = steps
                .write(PollWrite {
                    body: Body::Decide(Decide { proposal, outcome }),
                    lane: info.lane,
                    refs,
                    // A decision follows everything this node holds: the stances it weighs
                    // are those in its causal past.
                    covering: true,
                })
                .map_err(|e| match e {
                    NodeError::Refused(moot_state::Reason::Unauthorized(
                        moot_state::Denied::UnresolvedObjection,
                    )) => NodeError::ObjectionStands(proposal.to_string()),
                    other => other,
                })?;
            Ok((id, poll))
        })
    }

    /// A proposal with its text.
    pub fn proposal_view(&self, hub: &HubId, proposal: &OpId) -> Result<ProposalView, NodeError> {
        self.with_read_replica(hub, |replica| self.proposal_view_in(hub, replica, proposal))
    }

    /// [`Node::proposal_view`] on a replica already loaded (a running node keeps one).
    pub fn proposal_view_in(
        &self,
        hub: &HubId,
        replica: &mut Replica,
        proposal: &OpId,
    ) -> Result<ProposalView, NodeError> {
        let info = held_proposal(replica, proposal)?;
        let m = self.materialise(hub, replica, proposal, false)?;
        let mut flags = info.flags.clone();
        for e in &m.excluded {
            flags.push(match e.key {
                Some(k) => format!("change {} left out of the text: {:?}", OpId(k), e.reason),
                None => format!("a change left out of the text: {:?}", e.reason),
            });
        }
        Ok(ProposalView {
            proposal_id: proposal.to_string(),
            assembly_id: assembly_id(&info.assembly),
            title: info.title.clone(),
            public: info.lane == Lane::Public,
            proposer: info.proposer.to_string(),
            text: m.doc.text(),
            comments: info
                .comments
                .iter()
                .map(|c| CommentView {
                    comment_id: c.id.to_string(),
                    reply_to: c.parent.map(|p| p.to_string()),
                    author: c.author.to_string(),
                    text: c.text.clone(),
                })
                .collect(),
            stances: info
                .stances
                .iter()
                .map(|s| StanceView {
                    member: s.member.to_string(),
                    stance: s.stance.as_str().to_string(),
                    reason: s.reason.clone(),
                    revision: s.revision,
                })
                .collect(),
            amendments: info
                .amendments
                .iter()
                .map(|a| AmendmentView {
                    amendment_id: a.id.to_string(),
                    author: a.author.to_string(),
                    original: a.original.clone(),
                    replacement: a.replacement.clone(),
                    status: a.status.as_str().to_string(),
                })
                .collect(),
            outcome: info.outcome.as_ref().map(|o| {
                let (name, poll) = outcome_name(&o.outcome);
                OutcomeView {
                    decision_id: o.id.to_string(),
                    by: o.by.to_string(),
                    outcome: name.to_string(),
                    poll_id: poll,
                }
            }),
            objections: info.objections(),
            flags,
            changes: m.changes.len(),
            heads: m.doc.heads().iter().map(hex::encode).collect(),
        })
    }

    /// Every proposal, ascending by id.
    pub fn proposals(&self, hub: &HubId) -> Result<Vec<ProposalSummary>, NodeError> {
        self.with_read_replica(hub, |replica| {
            let mut out = Vec::new();
            for id in replica.proposal_ids() {
                if let Some(info) = replica.proposal(&id) {
                    out.push(ProposalSummary {
                        proposal_id: id.to_string(),
                        assembly_id: assembly_id(&info.assembly),
                        title: info.title.clone(),
                        status: info
                            .outcome
                            .as_ref()
                            .map_or("open", |o| outcome_name(&o.outcome).0)
                            .to_string(),
                        objections: info.objections(),
                        public: info.lane == Lane::Public,
                    });
                }
            }
            Ok(out)
        })
    }

    /// The proposal's document in automerge's saved format (what JS `Automerge.load` opens).
    pub fn export_proposal(&self, hub: &HubId, proposal: &OpId) -> Result<Vec<u8>, NodeError> {
        self.with_read_replica(hub, |replica| {
            held_proposal(replica, proposal)?;
            let m = self.materialise(hub, replica, proposal, false)?;
            Ok(m.doc.save())
        })
    }
}

fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `prefix`, `text` and `suffix` in at most [`crate::MAX_TEXT_BYTES`] (a poll's question or
/// option): `text` cut at a character's end, with an ellipsis, if the whole is longer (a
/// proposal's title may take all 200 bytes).
fn fit(prefix: &str, text: &str, suffix: &str) -> String {
    let max = crate::MAX_TEXT_BYTES;
    if prefix.len() + text.len() + suffix.len() <= max {
        return format!("{prefix}{text}{suffix}");
    }
    let ellipsis = '…';
    let mut cut = max
        .saturating_sub(prefix.len() + suffix.len() + ellipsis.len_utf8())
        .min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let kept = text.get(..cut).unwrap_or_default().trim_end();
    format!("{prefix}{kept}{ellipsis}{suffix}")
}

/// The first `max` characters of `text`, with an ellipsis if cut.
fn short(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// Normalised prose from a user: at most [`moot_state::body::MAX_PROSE_BYTES`], not blank.
pub fn clean_prose(what: &'static str, text: &str) -> Result<String, NodeError> {
    let text = moot_text::normalize(text);
    if text.len() > moot_state::body::MAX_PROSE_BYTES {
        return Err(NodeError::BadText {
            what,
            reason: format!("is longer than {} bytes", moot_state::body::MAX_PROSE_BYTES),
        });
    }
    Ok(text)
}
