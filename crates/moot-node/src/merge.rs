//! The merge report: when a node takes in ops from elsewhere after being apart (today a
//! bundle; later a peer), what each side brought — new ops by family, per poll the ballots
//! seen on one side only and the members who voted on both sides (their ballot counts once,
//! by the count's rule, and they are flagged here), new equivocations, and roll changes that
//! the open of a poll still open did not see (its electorate was fixed without them). Reports are kept (view `merges`, the newest
//! [`MAX_REPORTS`]) and shown by `moot merges`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use moot_crypto::{HubId, OpId};
use moot_state::body::kind;
use moot_state::poll::PollStage;
use moot_state::{Lane, Replica};
use serde::{Deserialize, Serialize};

use crate::{Node, NodeError};

/// Reports kept per hub.
pub const MAX_REPORTS: usize = 100;
const VIEW: &str = "merges";

/// What one merge brought.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeReport {
    /// Where the ops came from (`bundle FILE`).
    pub source: String,
    /// The hub.
    pub hub_id: String,
    /// Ops in what came in.
    pub ops: u64,
    /// Ops this node did not hold.
    pub new_ops: u64,
    /// New ops by family (`roll`, `assemblies`, `documents`, `polls`, `aid`, `housekeeping`,
    /// `unknown`).
    pub by_family: BTreeMap<String, u64>,
    /// Per poll with ballots on either side.
    pub polls: Vec<PollMerge>,
    /// Forked chains seen for the first time: (device, lane, seq, ops).
    pub new_equivocations: Vec<EquivocationView>,
    /// Roll ops brought by the other side that the open of a poll still open did not see (not
    /// in its causal past: the electorate it fixed was made without them — a public roll op
    /// can never follow a members-lane open, so this is "concurrent or later"), and those
    /// polls.
    pub roll_changes_during_open_polls: Vec<RollChange>,
}

/// One poll in a merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollMerge {
    /// The poll.
    pub poll_id: String,
    /// Its question.
    pub question: String,
    /// Ballots this node held that the other side did not bring.
    pub ours_only: u64,
    /// Ballots the other side brought that this node did not hold.
    pub theirs_only: u64,
    /// Members with a ballot on each side: counted once (by the count's rule), flagged.
    pub voted_on_both_sides: Vec<String>,
}

/// A forked chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquivocationView {
    /// The device.
    pub device: String,
    /// `public` or `members`.
    pub lane: String,
    /// The forked sequence number.
    pub seq: u64,
    /// The conflicting ops.
    pub ops: Vec<String>,
}

/// A roll change that open polls' opens did not see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollChange {
    /// The roll op.
    pub op_id: String,
    /// Its kind: its name (`remove`, `grant`…) in JSON, as `moot activity` shows it; its
    /// number where the report is stored.
    #[serde(serialize_with = "kind_by_name")]
    pub kind: u16,
    /// The open polls whose open did not see it.
    pub open_polls: Vec<String>,
}

fn kind_by_name<S: serde::Serializer>(k: &u16, serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.serialize_str(kind::name(*k))
    } else {
        serializer.serialize_u16(*k)
    }
}

/// False for roll ops that never change who is in an assembly (a device's certificate, names,
/// contributions): an open that did not see them fixed the same electorate, so reporting them
/// would be a false alarm (every key's first signature on a laptop certifies its device).
fn can_change_an_electorate(k: u16) -> bool {
    !matches!(
        k,
        kind::CERTIFY_DEVICE | kind::PUBLIC_NAME | kind::SET_NAME | kind::SET_CONTRIBUTION
    )
}

/// What the node held before a merge.
pub(crate) struct Before {
    equivocations: BTreeSet<([u8; 32], u8, u64)>,
}

fn lane_byte(lane: Lane) -> u8 {
    match lane {
        Lane::Public => 0,
        Lane::Members => 1,
    }
}

/// What the node holds before a merge (cheap: the forks it knows).
pub(crate) fn before(replica: &Replica) -> Before {
    Before {
        equivocations: replica
            .equivocations()
            .iter()
            .map(|e| (e.device.to_bytes(), lane_byte(e.lane), e.seq))
            .collect(),
    }
}

/// The report of a merge: `incoming` are the ids of every op that came in, `new` those this
/// node did not hold before (both computed before the merge), `replica` the hub after it.
pub(crate) fn report(
    source: String,
    hub: &HubId,
    replica: &mut Replica,
    before: &Before,
    incoming: &HashSet<OpId>,
    new: &HashSet<OpId>,
) -> MergeReport {
    let mut by_family: BTreeMap<String, u64> = BTreeMap::new();
    let mut new_roll: Vec<(OpId, u16)> = Vec::new();
    for id in new {
        if let Some(k) = replica.kind_of(id) {
            *by_family.entry(kind::family(k).to_string()).or_default() += 1;
            if kind::is_roll(k) && !kind::is_governance(k) && can_change_an_electorate(k) {
                new_roll.push((*id, k));
            }
        }
    }
    new_roll.sort();
    let mut polls = Vec::new();
    let mut opens: Vec<(OpId, String)> = Vec::new();
    for info in replica.polls() {
        if let (Some(open), PollStage::Open) = (info.open, info.stage) {
            opens.push((open, info.poll.to_string()));
        }
        let ballots = replica.poll_ballots(&info.poll);
        if ballots.is_empty() {
            continue;
        }
        // Ours: held before and not brought; theirs: new from the other side.
        let ours: Vec<&(OpId, [u8; 32])> = ballots
            .iter()
            .filter(|(b, _)| !incoming.contains(b) && !new.contains(b))
            .collect();
        let theirs: Vec<&(OpId, [u8; 32])> =
            ballots.iter().filter(|(b, _)| new.contains(b)).collect();
        let our_members: BTreeSet<[u8; 32]> = ours.iter().map(|(_, m)| *m).collect();
        let both: BTreeSet<[u8; 32]> = theirs
            .iter()
            .map(|(_, m)| *m)
            .filter(|m| our_members.contains(m))
            .collect();
        if ours.is_empty() && theirs.is_empty() {
            continue;
        }
        polls.push(PollMerge {
            poll_id: info.poll.to_string(),
            question: info.question.clone(),
            ours_only: ours.len() as u64,
            theirs_only: theirs.len() as u64,
            voted_on_both_sides: both.iter().map(hex::encode).collect(),
        });
    }
    let new_equivocations = replica
        .equivocations()
        .into_iter()
        .filter(|e| {
            !before
                .equivocations
                .contains(&(e.device.to_bytes(), lane_byte(e.lane), e.seq))
        })
        .map(|e| EquivocationView {
            device: e.device.to_string(),
            lane: e.lane.as_str().to_string(),
            seq: e.seq,
            ops: e.ops.iter().map(|o| o.to_string()).collect(),
        })
        .collect();
    // One walk per open poll, then a lookup per roll op brought in.
    let pasts: Vec<(std::collections::HashSet<OpId>, String)> = opens
        .iter()
        .map(|(open, poll)| (replica.roll_past(open), poll.clone()))
        .collect();
    let roll_changes_during_open_polls = new_roll
        .into_iter()
        .filter_map(|(id, k)| {
            let concurrent: Vec<String> = pasts
                .iter()
                .filter(|(past, _)| !past.contains(&id))
                .map(|(_, poll)| poll.clone())
                .collect();
            (!concurrent.is_empty()).then(|| RollChange {
                op_id: id.to_string(),
                kind: k,
                open_polls: concurrent,
            })
        })
        .collect();
    MergeReport {
        source,
        hub_id: hub.to_string(),
        ops: incoming.len() as u64,
        new_ops: new.len() as u64,
        by_family,
        polls,
        new_equivocations,
        roll_changes_during_open_polls,
    }
}

impl MergeReport {
    /// One line for a person.
    pub fn summary(&self) -> String {
        let families = self
            .by_family
            .iter()
            .map(|(f, n)| format!("{n} {f}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut line = format!("merge: {} new ops", self.new_ops);
        if !families.is_empty() {
            line.push_str(&format!(" ({families})"));
        }
        for p in &self.polls {
            line.push_str(&format!(
                "; poll {}: {} ballots from them only, {} ours only",
                p.poll_id.get(..16).unwrap_or(&p.poll_id),
                p.theirs_only,
                p.ours_only
            ));
            if !p.voted_on_both_sides.is_empty() {
                line.push_str(&format!(
                    ", {} member(s) voted on both sides (counted once, flagged)",
                    p.voted_on_both_sides.len()
                ));
            }
        }
        if !self.new_equivocations.is_empty() {
            line.push_str(&format!(
                "; {} new equivocation(s)",
                self.new_equivocations.len()
            ));
        }
        if !self.roll_changes_during_open_polls.is_empty() {
            line.push_str(&format!(
                "; {} roll change(s) the open of a poll still open did not see",
                self.roll_changes_during_open_polls.len()
            ));
        }
        line
    }
}

impl Node {
    /// The merge reports kept for `hub`, oldest first.
    pub fn merges(&self, hub: &HubId) -> Result<Vec<MergeReport>, NodeError> {
        Ok(self
            .view(hub, VIEW)?
            .and_then(|bytes| postcard::from_bytes(&bytes).ok())
            .unwrap_or_default())
    }

    pub(crate) fn record_merge(&self, hub: &HubId, report: &MergeReport) -> Result<(), NodeError> {
        let mut all = self.merges(hub)?;
        all.push(report.clone());
        let excess = all.len().saturating_sub(MAX_REPORTS);
        all.drain(..excess);
        let bytes = postcard::to_allocvec(&all).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        self.put_view(hub, VIEW, &bytes)
    }
}
