//! Proposals in the replica: the checks their ops get at their causal position, the records
//! kept, and the derived view (see `crate::deliberation` for the rules).
//!
//! None of these ops is a roll op: what an op is about (the proposal, the comment answered, the
//! amendment resolved, the poll a proposal is sent to) must be named in its dependencies, so
//! the checks are lookups. Only a decision and a resolution walk their causal past (to find
//! the stances, decisions and resolutions in it): they are few.

use std::collections::BTreeMap;

use moot_crypto::{Lane, OpId, SignedOp};

use super::{HashMap, Replica, Resolution};
use crate::body::{AssemblyRef, Body, MemberId, Outcome, StanceKind};
use crate::deliberation::{
    AmendmentInfo, AmendmentStatus, ChangeRef, CommentInfo, DecisionInfo, ProposalInfo, StanceInfo,
};
use crate::roll::Denied;

/// A proposal.
#[derive(Debug, Clone)]
pub(super) struct ProposalRecord {
    pub(super) assembly: AssemblyRef,
    title: String,
    pub(super) lane: Lane,
    proposer: MemberId,
    comments: Vec<OpId>,
    stances: Vec<StanceRecord>,
    amendments: Vec<OpId>,
    decisions: Vec<(OpId, MemberId, Outcome)>,
    /// The document's changes in acceptance order (a causal order), the creator op first, by
    /// index number (4 bytes each, not an id's 32: a document may have thousands).
    pub(super) changes: Vec<u32>,
}

#[derive(Debug, Clone)]
struct StanceRecord {
    id: OpId,
    member: MemberId,
    revision: u32,
    stance: StanceKind,
    reason: String,
}

#[derive(Debug, Clone)]
struct CommentRecord {
    proposal: OpId,
    parent: Option<OpId>,
    author: MemberId,
    text: String,
}

#[derive(Debug, Clone)]
struct AmendRecord {
    proposal: OpId,
    author: MemberId,
    body: crate::body::Amend,
    resolutions: Vec<(OpId, bool)>,
}

/// What the replica keeps of proposals.
#[derive(Debug, Default)]
pub(super) struct Deliberation {
    pub(super) proposals: BTreeMap<OpId, ProposalRecord>,
    comments: HashMap<OpId, CommentRecord>,
    amendments: HashMap<OpId, AmendRecord>,
    /// Document changes (the creator op too), by index number: 24 bytes each, as a document
    /// may have hundreds of thousands.
    pub(super) changes: super::docs::ChangeTable,
    /// The key of the changes' hash tags.
    pub(super) tags: super::docs::HashTags,
    /// A change checked just now, recorded when its op is accepted.
    pub(super) checked: Option<(OpId, super::docs::ChangeRecord)>,
}

impl Replica {
    /// Checks a proposal op (not a document change) at its causal position. `by` is the
    /// author's member, `frontier` its roll frontier, `past` the roll there.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn deliberate(
        &mut self,
        by: MemberId,
        lane: Lane,
        body: &Body,
        op: &SignedOp,
        frontier: &[OpId],
        past: &Resolution,
    ) -> Result<Vec<OpId>, Denied> {
        let deps: &[OpId] = &Self::parents(op).collect::<Vec<_>>();
        match body {
            Body::CreateProposal(p) => {
                let assembly_lane = match &p.assembly {
                    AssemblyRef::Created(a) => self.assembly_lane_in_past(a, frontier)?,
                    _ => Lane::Members,
                };
                if assembly_lane != lane {
                    return Err(Denied::AssemblyLane);
                }
                if p.title.trim().is_empty() {
                    return Err(Denied::NoSuchProposal);
                }
                self.check_creator_change(op, &p.change)?;
                Ok(Vec::new())
            }
            Body::DocChange(c) => {
                let proposal = self.named_proposal(&c.doc, deps, lane)?;
                let _ = proposal;
                self.check_doc_change(op, &c.doc, &c.change)?;
                Ok(Vec::new())
            }
            Body::Comment(c) => {
                self.named_proposal(&c.proposal, deps, lane)?;
                if let Some(parent) = &c.parent {
                    let answered = self.deliberation.comments.get(parent);
                    if !deps.contains(parent) || answered.is_none_or(|r| r.proposal != c.proposal) {
                        return Err(Denied::NoSuchComment);
                    }
                }
                Ok(Vec::new())
            }
            Body::Stance(s) => {
                self.named_proposal(&s.proposal, deps, lane)?;
                Ok(Vec::new())
            }
            Body::Amend(a) => {
                self.named_proposal(&a.proposal, deps, lane)?;
                Ok(Vec::new())
            }
            Body::ResolveAmendment(r) => {
                let amendment = match self.deliberation.amendments.get(&r.amendment) {
                    Some(a) if deps.contains(&r.amendment) => a.clone(),
                    _ => return Err(Denied::NoSuchAmendment),
                };
                let proposal = self.named_or_known_proposal(&amendment.proposal, lane)?;
                let fact = self.proposer_or_convener(proposal, &by, frontier, past)?;
                if !amendment.resolutions.is_empty() {
                    let walk = self.past_of_parents(op);
                    let earlier = amendment.resolutions.iter().map(|(id, _)| *id);
                    if self.any_counting_in(earlier, &walk, past) {
                        return Err(Denied::AlreadyResolved);
                    }
                }
                Ok(fact.into_iter().collect())
            }
            Body::Decide(d) => {
                let proposal = self.named_proposal(&d.proposal, deps, lane)?;
                let fact = self.proposer_or_convener(proposal, &by, frontier, past)?;
                let walk = self.past_of_parents(op);
                let earlier: Vec<OpId> = proposal.decisions.iter().map(|(id, _, _)| *id).collect();
                if self.any_counting_in(earlier, &walk, past) {
                    return Err(Denied::AlreadyDecided);
                }
                // Borrowed again: the check above needed the replica mutably.
                let proposal = self.named_proposal(&d.proposal, deps, lane)?;
                let in_walk = |id: &OpId| self.index.get(id).is_some_and(|(n, _)| walk.contains(n));
                match &d.outcome {
                    Outcome::Adopted => {
                        let seen: Vec<StanceRecord> = proposal
                            .stances
                            .iter()
                            .filter(|s| in_walk(&s.id))
                            .cloned()
                            .collect();
                        // Those that count there: an objection a removed member wrote apart,
                        // beyond the removal's cut, blocks nothing (their stance before it, if
                        // any, stands).
                        let counting: Vec<StanceRecord> = seen
                            .into_iter()
                            .filter(|s| self.counts_against(&s.id, past))
                            .collect();
                        let standing = standing_stances(counting.iter());
                        if standing.iter().any(|s| s.stance.stops_consensus()) {
                            return Err(Denied::UnresolvedObjection);
                        }
                    }
                    Outcome::SentToVote { poll } => {
                        if !deps.contains(poll)
                            || self.poll_assembly(poll) != Some(&proposal.assembly)
                        {
                            return Err(Denied::WrongPoll);
                        }
                    }
                    Outcome::Withdrawn => {}
                }
                Ok(fact.into_iter().collect())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// True if one of the ops `ids` is in the causal past `walk` and counts there (`past` is
    /// its resolved roll): one that does not — an ex-convener's decision beyond a cut in that
    /// past — leaves the proposal to be decided, or the amendment to be resolved.
    fn any_counting_in(
        &mut self,
        ids: impl IntoIterator<Item = OpId>,
        walk: &super::polls::Past,
        past: &Resolution,
    ) -> bool {
        let earlier: Vec<OpId> = ids
            .into_iter()
            .filter(|id| self.index.get(id).is_some_and(|(n, _)| walk.contains(n)))
            .collect();
        earlier.iter().any(|id| self.counts_against(id, past))
    }

    /// Records an accepted proposal op.
    pub(super) fn record_deliberation(
        &mut self,
        id: OpId,
        n: u32,
        member: MemberId,
        lane: Lane,
        body: &Body,
    ) {
        let d = &mut self.deliberation;
        match body {
            Body::CreateProposal(p) => {
                d.proposals.insert(
                    id,
                    ProposalRecord {
                        assembly: p.assembly.clone(),
                        title: p.title.clone(),
                        lane,
                        proposer: member,
                        comments: Vec::new(),
                        stances: Vec::new(),
                        amendments: Vec::new(),
                        decisions: Vec::new(),
                        changes: vec![n],
                    },
                );
            }
            Body::DocChange(c) => {
                if let Some(p) = d.proposals.get_mut(&c.doc) {
                    p.changes.push(n);
                }
            }
            Body::Comment(c) => {
                if let Some(p) = d.proposals.get_mut(&c.proposal) {
                    p.comments.push(id);
                }
                d.comments.insert(
                    id,
                    CommentRecord {
                        proposal: c.proposal,
                        parent: c.parent,
                        author: member,
                        text: c.text.clone(),
                    },
                );
            }
            Body::Stance(s) => {
                if let Some(p) = d.proposals.get_mut(&s.proposal) {
                    p.stances.push(StanceRecord {
                        id,
                        member,
                        revision: s.revision,
                        stance: s.stance,
                        reason: s.reason.clone(),
                    });
                }
            }
            Body::Amend(a) => {
                if let Some(p) = d.proposals.get_mut(&a.proposal) {
                    p.amendments.push(id);
                }
                d.amendments.insert(
                    id,
                    AmendRecord {
                        proposal: a.proposal,
                        author: member,
                        body: a.clone(),
                        resolutions: Vec::new(),
                    },
                );
            }
            Body::ResolveAmendment(r) => {
                if let Some(a) = d.amendments.get_mut(&r.amendment) {
                    a.resolutions.push((id, r.accepted));
                }
            }
            Body::Decide(dec) => {
                if let Some(p) = d.proposals.get_mut(&dec.proposal) {
                    p.decisions.push((id, member, dec.outcome.clone()));
                }
            }
            _ => {}
        }
    }

    /// The proposal `id`, named in `deps`, in lane `lane`.
    fn named_proposal(
        &self,
        id: &OpId,
        deps: &[OpId],
        lane: Lane,
    ) -> Result<&ProposalRecord, Denied> {
        if !deps.contains(id) {
            return Err(Denied::NoSuchProposal);
        }
        self.named_or_known_proposal(id, lane)
    }

    /// The proposal `id` (already known to be in the op's past), in lane `lane`.
    fn named_or_known_proposal(&self, id: &OpId, lane: Lane) -> Result<&ProposalRecord, Denied> {
        let record = self
            .deliberation
            .proposals
            .get(id)
            .ok_or(Denied::NoSuchProposal)?;
        if record.lane != lane {
            return Err(Denied::AssemblyLane);
        }
        Ok(record)
    }

    /// The proposer, or a convener of the assembly: the fact the authority rests on (none for
    /// the proposer).
    fn proposer_or_convener(
        &self,
        proposal: &ProposalRecord,
        by: &MemberId,
        frontier: &[OpId],
        past: &Resolution,
    ) -> Result<Option<OpId>, Denied> {
        if proposal.proposer == *by {
            return Ok(None);
        }
        self.convenes(&proposal.assembly, by, frontier, past)
            .map(Some)
            .map_err(|_| Denied::NotProposerOrConvener)
    }

    /// The causal past of an op not yet in the index: the union of its parents' pasts.
    pub(super) fn past_of_parents(&self, op: &SignedOp) -> super::polls::Past {
        let mut past = super::polls::Past::with_len(self.index.len());
        let mut stack = Vec::new();
        for parent in Self::parents(op) {
            if let Some((n, _)) = self.index.get(&parent)
                && past.insert(n)
            {
                stack.push(n);
            }
        }
        self.extend_past(&mut past, stack);
        past
    }

    /// Proposals held, ascending by id.
    pub fn proposal_ids(&self) -> Vec<OpId> {
        self.deliberation.proposals.keys().copied().collect()
    }

    /// A proposal as the ops held show it: only ops that count by the validity rule (their
    /// authors' standing and devices stand) are shown.
    pub fn proposal(&mut self, id: &OpId) -> Option<ProposalInfo> {
        let record = self.deliberation.proposals.get(id)?.clone();
        let mut flags = Vec::new();
        let mut comments = Vec::new();
        for c in &record.comments {
            // Left out, and said so (never dropped silently): a comment whose author's standing
            // or device does not count, e.g. one a removed member wrote without following the
            // removal.
            match self.validity(c) {
                Some(Ok(())) => {}
                Some(Err(denied)) => {
                    flags.push(format!("comment {c} not shown: {denied}"));
                    continue;
                }
                None => continue,
            }
            if let Some(r) = self.deliberation.comments.get(c) {
                comments.push(CommentInfo {
                    id: *c,
                    parent: r.parent,
                    author: r.author,
                    text: r.text.clone(),
                });
            }
        }
        let comments =
            same_order_everywhere(comments, |c| c.id, |c| c.parent.into_iter().collect());
        let counted: Vec<StanceRecord> = record
            .stances
            .iter()
            .filter(|s| self.shown(&s.id))
            .cloned()
            .collect();
        let stances = standing_stances(counted.iter());
        for (member, ids) in equivocal_stances(counted.iter()) {
            flags.push(format!(
                "member {} has different stances with the same revision: {}",
                member,
                ids.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut amendments = Vec::new();
        for a in &record.amendments {
            if !self.shown(a) {
                continue;
            }
            let Some(r) = self.deliberation.amendments.get(a).cloned() else {
                continue;
            };
            let mut resolutions: Vec<(OpId, bool)> = r
                .resolutions
                .iter()
                .filter(|(id, _)| self.shown(id))
                .copied()
                .collect();
            resolutions.sort();
            if resolutions.len() > 1 {
                flags.push(format!(
                    "amendment {a} was resolved {} times concurrently; the lowest op id stands",
                    resolutions.len()
                ));
            }
            let standing = resolutions.first().copied();
            amendments.push(AmendmentInfo {
                id: *a,
                author: r.author,
                from: r.body.from.clone(),
                to: r.body.to.clone(),
                original: r.body.original.clone(),
                replacement: r.body.replacement.clone(),
                status: match standing {
                    None => AmendmentStatus::Open,
                    Some((_, true)) => AmendmentStatus::Accepted,
                    Some((_, false)) => AmendmentStatus::Rejected,
                },
                resolution: standing.map(|(id, _)| id),
            });
        }
        let mut decisions: Vec<(OpId, MemberId, Outcome)> = record
            .decisions
            .iter()
            .filter(|(id, _, _)| self.shown(id))
            .cloned()
            .collect();
        decisions.sort_by_key(|a| a.0);
        if decisions.len() > 1 {
            flags.push(format!(
                "{} concurrent decisions; the lowest op id stands",
                decisions.len()
            ));
        }
        let outcome = decisions
            .into_iter()
            .next()
            .map(|(id, by, outcome)| DecisionInfo { id, by, outcome });
        let changes = self.doc_changes(id).into_iter().map(|c| c.op).collect();
        Some(ProposalInfo {
            id: *id,
            assembly: record.assembly,
            title: record.title,
            lane: record.lane,
            proposer: record.proposer,
            comments,
            stances,
            amendments,
            outcome,
            flags,
            changes,
        })
    }

    /// A document's changes, for materialising it: the creator op first, then its change ops
    /// in a causal order (each after the changes it names, ties by the lower op id: the same
    /// on every replica), each with its parents among the document's changes. Only changes
    /// that count by the validity rule.
    pub fn doc_changes(&mut self, doc: &OpId) -> Vec<ChangeRef> {
        let Some(record) = self.deliberation.proposals.get(doc) else {
            return Vec::new();
        };
        let ids: Vec<OpId> = record
            .changes
            .iter()
            .filter_map(|n| self.index.id(*n))
            .collect();
        let shown: Vec<OpId> = ids.into_iter().filter(|c| self.shown(c)).collect();
        let changes: Vec<ChangeRef> = shown
            .into_iter()
            .map(|op| ChangeRef {
                op,
                parents: self.change_parents(&op),
            })
            .collect();
        same_order_everywhere(changes, |c| c.op, |c| c.parents.clone())
    }

    /// A member's highest stance revision on a proposal, if any (a new stance goes one higher).
    pub fn latest_stance_revision(&self, proposal: &OpId, member: &MemberId) -> Option<u32> {
        self.deliberation
            .proposals
            .get(proposal)?
            .stances
            .iter()
            .filter(|s| s.member == *member)
            .map(|s| s.revision)
            .max()
    }

    /// Whether an accepted op counts now by the validity rule.
    pub(super) fn shown(&mut self, id: &OpId) -> bool {
        matches!(self.validity(id), Some(Ok(())))
    }
}

/// Each member's standing stance: the highest revision, then the lower op id. Sorted by
/// member.
fn standing_stances<'a>(stances: impl Iterator<Item = &'a StanceRecord>) -> Vec<StanceInfo> {
    let mut best: BTreeMap<[u8; 32], &StanceRecord> = BTreeMap::new();
    for s in stances {
        let key = s.member.to_bytes();
        match best.get(&key) {
            Some(b)
                if (b.revision, std::cmp::Reverse(b.id))
                    >= (s.revision, std::cmp::Reverse(s.id)) => {}
            _ => {
                best.insert(key, s);
            }
        }
    }
    best.into_values()
        .map(|s| StanceInfo {
            id: s.id,
            member: s.member,
            stance: s.stance,
            revision: s.revision,
            reason: s.reason.clone(),
        })
        .collect()
}

/// Members with two different stances of the same highest revision.
fn equivocal_stances<'a>(
    stances: impl Iterator<Item = &'a StanceRecord> + Clone,
) -> Vec<(MemberId, Vec<OpId>)> {
    let standing = standing_stances(stances.clone());
    let mut out = Vec::new();
    for s in standing {
        let mut same: Vec<OpId> = stances
            .clone()
            .filter(|o| {
                o.member == s.member
                    && o.revision == s.revision
                    && (o.stance != s.stance || o.reason != s.reason)
            })
            .map(|o| o.id)
            .collect();
        if !same.is_empty() {
            same.insert(0, s.id);
            out.push((s.member, same));
        }
    }
    out
}

/// `items` in an order that is the same on every replica whatever order their ops arrived in:
/// each after its `parents` among `items` (a reply after what it answers, a change after the
/// changes it names), ties broken by the lower op id.
fn same_order_everywhere<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> OpId,
    parents: impl Fn(&T) -> Vec<OpId>,
) -> Vec<T> {
    let ids: BTreeMap<OpId, usize> = items.iter().enumerate().map(|(i, t)| (id(t), i)).collect();
    let mut waiting = vec![0usize; items.len()];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    for (i, item) in items.iter().enumerate() {
        let mut named: Vec<usize> = parents(item)
            .iter()
            .filter_map(|p| ids.get(p).copied())
            .filter(|p| *p != i)
            .collect();
        named.sort_unstable();
        named.dedup();
        waiting[i] = named.len();
        for p in named {
            children[p].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<(OpId, usize)> = (0..items.len())
        .filter(|i| waiting[*i] == 0)
        .map(|i| (id(&items[i]), i))
        .collect();
    let mut order = Vec::with_capacity(items.len());
    while let Some((_, i)) = ready.pop_first() {
        order.push(i);
        for &c in &children[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.insert((id(&items[c]), c));
            }
        }
    }
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    let mut out: Vec<T> = order.iter().filter_map(|i| slots[*i].take()).collect();
    out.extend(slots.into_iter().flatten());
    out
}
