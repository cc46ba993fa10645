//! Assemblies and polls in the replica: the checks their ops get at their causal position, the
//! records kept of them, and the count of a poll (see `crate::poll` for the rules).
//!
//! Assembly and poll governance ops (`kind::GOVERNANCE_KINDS`) are roll ops, kept decoded, so the
//! causal past of any op names them exactly (its roll frontier): "is this poll open in this
//! ballot's past", "who convened this assembly at this open" are ancestry questions among few
//! ops. Ballots are the high-volume kind: each keeps a compact record (voter, revision,
//! scores); which of them a close counts is found by walking the close's past through the
//! per-op dependency numbers the replica keeps.

use std::sync::Arc;

use moot_crypto::{Lane, OpId, SignedOp};
use moot_star::Summary;

use super::{HashMap, HashSet, Replica, Resolution};
use crate::body::{
    AssemblyKind, AssemblyRef, Body, CreatePoll, MAX_SCORE, MemberId, electorate_hash, kind,
};
use crate::poll::{
    AssemblyInfo, Candidate, Excluded, Exclusion, Flag, PollCount, PollInfo, PollStage,
    StationCount, pick_latest,
};
use crate::roll::Denied;

/// A created assembly.
#[derive(Debug, Clone)]
pub(super) struct AssemblyRecord {
    name: String,
    kind: AssemblyKind,
    lane: Lane,
    creator: MemberId,
}

/// A created poll.
#[derive(Debug, Clone)]
pub(super) struct PollRecord {
    body: CreatePoll,
    lane: Lane,
    creator: MemberId,
    opens: Vec<OpId>,
}

/// An accepted open.
#[derive(Debug, Clone)]
pub(super) struct OpenRecord {
    poll: OpId,
    /// The electorate, sorted (computed when first needed).
    electorate: Option<Arc<Electorate>>,
    closes: Vec<OpId>,
    stations: Vec<(OpId, MemberId)>,
}

/// A ballot, compactly (44 bytes, and its scores in [`PollBallots::scores`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct BallotRecord {
    /// Its number in the index.
    n: u32,
    /// The index number of the open it was cast under.
    open: u32,
    member: [u8; 32],
    revision: u32,
}

/// A poll's ballots: records, and their scores row after row (`width` per ballot).
#[derive(Debug, Clone, Default)]
pub(super) struct PollBallots {
    width: usize,
    records: Vec<BallotRecord>,
    scores: Vec<u8>,
}

impl PollBallots {
    fn scores(&self, i: usize) -> &[u8] {
        self.scores
            .get(i * self.width..(i + 1) * self.width)
            .unwrap_or_default()
    }
}

/// One membership change: (op, member, on).
type Change = (OpId, MemberId, bool);

/// What the replica keeps of assemblies and polls.
#[derive(Debug, Default)]
pub(super) struct Governance {
    assemblies: std::collections::BTreeMap<OpId, AssemblyRecord>,
    conveners: HashMap<OpId, Vec<Change>>,
    joins: HashMap<OpId, Vec<Change>>,
    seats: HashMap<OpId, Vec<Change>>,
    polls: std::collections::BTreeMap<OpId, PollRecord>,
    opens: HashMap<OpId, OpenRecord>,
    ballots: HashMap<OpId, PollBallots>,
    /// An electorate computed while checking an open, kept when the open is accepted.
    checked_electorate: Option<(OpId, Arc<Electorate>)>,
}

impl Governance {
    /// Ballots held, all polls.
    pub(super) fn ballot_count(&self) -> usize {
        self.ballots.values().map(|b| b.records.len()).sum()
    }
}

impl Replica {
    /// Checks an assembly or poll op, or a ballot, at its causal position: `frontier` is its
    /// roll frontier, `past` the roll there. (The roll's own rules — standing, roles for
    /// creating committees — were checked by `Roll::authorize`.) Returns the ops the
    /// authority rested on beyond the author's standing (the role grant or the appointment that
    /// makes the author convene the assembly), to be kept with the op's roll facts: the
    /// validity rule then holds for them too — should one not count, neither does the op.
    /// `deps` are the op's named dependencies: an open it names is in its past without a walk.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn govern(
        &mut self,
        id: OpId,
        by: MemberId,
        lane: Lane,
        body: &Body,
        deps: &[OpId],
        frontier: &[OpId],
        past: &Resolution,
    ) -> Result<Vec<OpId>, Denied> {
        match body {
            Body::CreateAssembly(_) => Ok(Vec::new()),
            Body::Convener(c) => {
                let record = self.assembly_in_past(&c.assembly, frontier)?;
                if record.lane != lane {
                    return Err(Denied::AssemblyLane);
                }
                if !past.roll.is_member(&c.member) {
                    return Err(Denied::NoSuchMember);
                }
                self.convenes(&AssemblyRef::Created(c.assembly), &by, frontier, past)
                    .map(|fact| vec![fact])
            }
            Body::Join(j) => {
                let record = self.assembly_in_past(&j.assembly, frontier)?;
                if record.lane != lane {
                    return Err(Denied::AssemblyLane);
                }
                match record.kind {
                    AssemblyKind::Committee => Err(Denied::NotJoinable),
                    AssemblyKind::Society if !past.roll.is_member(&by) => {
                        Err(Denied::GuestNotAllowed)
                    }
                    _ => Ok(Vec::new()),
                }
            }
            Body::Seat(s) => {
                let record = self.assembly_in_past(&s.assembly, frontier)?;
                if record.lane != lane {
                    return Err(Denied::AssemblyLane);
                }
                if record.kind != AssemblyKind::Committee {
                    return Err(Denied::NotCommittee);
                }
                if s.seated && !past.roll.is_member(&s.member) {
                    return Err(Denied::NoSuchMember);
                }
                self.convenes(&AssemblyRef::Created(s.assembly), &by, frontier, past)
                    .map(|fact| vec![fact])
            }
            Body::CreatePoll(p) => {
                // The options must be ones the count accepts: `moot-star`'s check (none blank,
                // no two the same name by `moot_text::fold`), or the poll could never be
                // counted.
                let countable = moot_star::Ballots::new(p.options.clone()).is_ok();
                if !countable
                    || p.options.len() < 2
                    || p.seats == 0
                    || usize::from(p.seats) >= p.options.len()
                    || p.question.trim().is_empty()
                {
                    return Err(Denied::BadPoll);
                }
                if p.officers
                    .iter()
                    .chain(&p.stations)
                    .any(|m| !past.roll.is_member(m))
                {
                    return Err(Denied::NoSuchMember);
                }
                let assembly_lane = match &p.assembly {
                    AssemblyRef::Created(a) => self.assembly_in_past(a, frontier)?.lane,
                    _ => Lane::Members,
                };
                if assembly_lane != lane {
                    return Err(Denied::AssemblyLane);
                }
                self.convenes(&p.assembly, &by, frontier, past)
                    .map(|fact| vec![fact])
            }
            Body::OpenPoll(o) => {
                let poll = self.poll_in_past(&o.poll, frontier)?;
                if poll.lane != lane {
                    return Err(Denied::AssemblyLane);
                }
                let fact = self.convenes(&poll.body.assembly, &by, frontier, past)?;
                // An open in the past that does not count there (its author beyond a cut of a
                // removal or revocation also in that past) leaves the poll to be opened.
                if poll
                    .opens
                    .iter()
                    .any(|open| self.in_past(open, frontier) && self.counts_at(open, past))
                {
                    return Err(Denied::AlreadyOpen);
                }
                let electorate = self.electorate_at(&poll.body.assembly, frontier, past)?;
                let actual = u32::try_from(electorate.len()).unwrap_or(u32::MAX);
                if actual != o.electorate || electorate_hash(electorate.iter()) != o.electorate_hash
                {
                    return Err(Denied::ElectorateMismatch {
                        claimed: o.electorate,
                        actual,
                    });
                }
                self.governance.checked_electorate =
                    Some((id, Arc::new(Electorate::new(electorate))));
                Ok(vec![fact])
            }
            Body::Ballot(b) => {
                // The high-volume path: nothing is cloned.
                let open = match self.governance.opens.get(&b.open) {
                    Some(open) if deps.contains(&b.open) || self.in_past(&b.open, frontier) => open,
                    _ => return Err(Denied::PollNotOpen),
                };
                let poll = self
                    .governance
                    .polls
                    .get(&open.poll)
                    .ok_or(Denied::NoSuchPoll)?;
                if poll.lane != lane {
                    return Err(Denied::AssemblyLane);
                }
                if b.member != by.to_bytes() {
                    return Err(Denied::NotYours);
                }
                if b.scores.len() != poll.body.options.len()
                    || b.scores.iter().any(|s| *s > MAX_SCORE)
                {
                    return Err(Denied::BadScores);
                }
                if open.closes.iter().any(|c| self.in_past(c, frontier)) {
                    return Err(Denied::PollClosed);
                }
                let electorate = self.electorate_of(&b.open)?;
                if !electorate.contains(&by.to_bytes()) {
                    return Err(Denied::NotInElectorate);
                }
                Ok(Vec::new())
            }
            Body::CloseStation(c) => {
                let (open, poll) = self.open_in_past(&c.open, deps, frontier)?;
                if poll.lane != lane {
                    return Err(Denied::AssemblyLane);
                }
                if !poll.body.stations.contains(&by) {
                    return Err(Denied::NotStationOfficer);
                }
                if open.closes.iter().any(|c| self.in_past(c, frontier)) {
                    return Err(Denied::PollClosed);
                }
                Ok(Vec::new())
            }
            Body::ClosePoll(c) => {
                let (open, poll) = self.open_in_past(&c.open, deps, frontier)?;
                if poll.lane != lane {
                    return Err(Denied::AssemblyLane);
                }
                if !returning_officers(&poll).contains(&by) {
                    return Err(Denied::NotReturningOfficer);
                }
                if open.closes.iter().any(|c| self.in_past(c, frontier)) {
                    return Err(Denied::PollClosed);
                }
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Records an accepted assembly or poll op, or a ballot (index number `n`).
    pub(super) fn record_governance(
        &mut self,
        id: OpId,
        n: u32,
        member: MemberId,
        lane: Lane,
        body: &Body,
    ) {
        let open_number = match body {
            Body::Ballot(b) => self.index.get(&b.open).map(|(n, _)| n),
            _ => None,
        };
        let g = &mut self.governance;
        match body {
            Body::CreateAssembly(a) => {
                g.assemblies.insert(
                    id,
                    AssemblyRecord {
                        name: a.name.clone(),
                        kind: a.kind,
                        lane,
                        creator: member,
                    },
                );
            }
            Body::Convener(c) => g
                .conveners
                .entry(c.assembly)
                .or_default()
                .push((id, c.member, c.convener)),
            Body::Join(j) => g
                .joins
                .entry(j.assembly)
                .or_default()
                .push((id, member, j.joined)),
            Body::Seat(s) => g
                .seats
                .entry(s.assembly)
                .or_default()
                .push((id, s.member, s.seated)),
            Body::CreatePoll(p) => {
                g.polls.insert(
                    id,
                    PollRecord {
                        body: (**p).clone(),
                        lane,
                        creator: member,
                        opens: Vec::new(),
                    },
                );
            }
            Body::OpenPoll(o) => {
                let electorate = match g.checked_electorate.take() {
                    Some((checked, electorate)) if checked == id => Some(electorate),
                    _ => None,
                };
                if let Some(poll) = g.polls.get_mut(&o.poll) {
                    poll.opens.push(id);
                }
                g.opens.insert(
                    id,
                    OpenRecord {
                        poll: o.poll,
                        electorate,
                        closes: Vec::new(),
                        stations: Vec::new(),
                    },
                );
            }
            Body::Ballot(b) => {
                if let (Some(open), Some(open_number)) = (g.opens.get(&b.open), open_number) {
                    let ballots = g.ballots.entry(open.poll).or_default();
                    if ballots.records.is_empty() {
                        // Room for one ballot per voter from the start (no regrowing).
                        let voters = open.electorate.as_ref().map_or(0, |e| e.len());
                        ballots.records.reserve(voters);
                        ballots
                            .scores
                            .reserve(voters.saturating_mul(b.scores.len()));
                    }
                    ballots.width = b.scores.len();
                    ballots.records.push(BallotRecord {
                        n,
                        open: open_number,
                        member: member.to_bytes(),
                        revision: b.revision,
                    });
                    ballots.scores.extend_from_slice(&b.scores);
                }
            }
            Body::CloseStation(c) => {
                if let Some(open) = g.opens.get_mut(&c.open) {
                    open.stations.push((id, member));
                }
            }
            Body::ClosePoll(c) => {
                if let Some(open) = g.opens.get_mut(&c.open) {
                    open.closes.push(id);
                }
            }
            _ => {}
        }
    }

    pub(super) fn assembly_in_past(
        &self,
        assembly: &OpId,
        frontier: &[OpId],
    ) -> Result<AssemblyRecord, Denied> {
        match self.governance.assemblies.get(assembly) {
            Some(record) if self.in_past(assembly, frontier) => Ok(record.clone()),
            _ => Err(Denied::NoSuchAssembly),
        }
    }

    fn poll_in_past(&self, poll: &OpId, frontier: &[OpId]) -> Result<PollRecord, Denied> {
        match self.governance.polls.get(poll) {
            Some(record) if self.in_past(poll, frontier) => Ok(record.clone()),
            _ => Err(Denied::NoSuchPoll),
        }
    }

    /// The open `open` if it is in the past described by `frontier`. An op names the open it
    /// is cast under (`deps`), so the ancestry walk — through every roll op written since the
    /// open, for each ballot — is needed only for one that does not.
    fn open_in_past(
        &self,
        open: &OpId,
        deps: &[OpId],
        frontier: &[OpId],
    ) -> Result<(OpenRecord, PollRecord), Denied> {
        let record = match self.governance.opens.get(open) {
            Some(record) if deps.contains(open) || self.in_past(open, frontier) => record,
            _ => return Err(Denied::PollNotOpen),
        };
        let poll = self
            .governance
            .polls
            .get(&record.poll)
            .ok_or(Denied::NoSuchPoll)?;
        // Cheap clones: the electorate is shared, the lists are short.
        Ok((record.clone(), poll.clone()))
    }

    /// Whether `member` convenes `assembly` at the position `frontier` (roll `past`): the
    /// hub's stewards and conveners convene every assembly; a created one also has its
    /// creator and the conveners appointed in it (the causally latest appointment or
    /// dismissal of a member stands; of concurrent ones, the higher (depth, id)). Returns the
    /// op it rests on: the role grant, the appointment, or the assembly (for its creator).
    pub(super) fn convenes(
        &self,
        assembly: &AssemblyRef,
        member: &MemberId,
        frontier: &[OpId],
        past: &Resolution,
    ) -> Result<OpId, Denied> {
        if let Some(grant) = past.roll.convener_grant(member) {
            return Ok(grant);
        }
        let AssemblyRef::Created(a) = assembly else {
            return Err(Denied::NotConvener);
        };
        let creator = self
            .governance
            .assemblies
            .get(a)
            .is_some_and(|r| r.creator == *member);
        let appointed = self.latest_changes(
            self.governance
                .conveners
                .get(a)
                .into_iter()
                .flatten()
                .filter(|(op, m, _)| {
                    m == member && self.in_past(op, frontier) && self.counts_at(op, past)
                }),
        );
        match appointed.get(member) {
            Some((op, true)) => Ok(*op),
            Some((_, false)) => Err(Denied::NotConvener),
            None if creator && past.roll.is_member(member) => Ok(*a),
            None => Err(Denied::NotConvener),
        }
    }

    /// The state each member ends in after `changes`: the latest by (roll depth, op id), a
    /// linear extension of causal order.
    fn latest<'a>(
        &self,
        changes: impl Iterator<Item = &'a Change>,
    ) -> std::collections::BTreeMap<MemberId, bool> {
        self.latest_changes(changes)
            .into_iter()
            .map(|(m, (_, on))| (m, on))
            .collect()
    }

    /// [`Replica::latest`], with the op of each member's latest change.
    fn latest_changes<'a>(
        &self,
        changes: impl Iterator<Item = &'a Change>,
    ) -> std::collections::BTreeMap<MemberId, (OpId, bool)> {
        let mut best: std::collections::BTreeMap<MemberId, ((u64, OpId), bool)> =
            std::collections::BTreeMap::new();
        for (op, member, on) in changes {
            let key = (
                self.rolls.get(&self.index, op).map_or(0, |n| n.depth()),
                *op,
            );
            match best.get(member) {
                Some((seen, _)) if *seen >= key => {}
                _ => {
                    best.insert(*member, (key, *on));
                }
            }
        }
        best.into_iter()
            .map(|(m, ((_, op), on))| (m, (op, on)))
            .collect()
    }

    /// Whether an assembly change (a join, a seat, an appointment) counts at a position whose
    /// roll is `past`: a public one unless that roll denied it; a members-lane one (the rolls
    /// of pasts resolve public ops only) by the validity rule against that roll — its roll
    /// facts count there (members-lane ones, an appointment, by this rule in turn) and it is
    /// not beyond a cut there that it does not follow. So a seat by a steward removed
    /// concurrently, beyond the removal's cut, puts no one in an electorate.
    pub(super) fn counts_at(&self, op: &OpId, past: &Resolution) -> bool {
        let mut stack = vec![*op];
        let mut seen: HashSet<OpId> = HashSet::default();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let Some(node) = self.rolls.get(&self.index, &id) else {
                return false;
            };
            if node.lane == Lane::Public {
                if past.denied.contains_key(&id) {
                    return false;
                }
                continue;
            }
            if self.member_roll_verdict(&id, past, false).is_err() {
                return false;
            }
            stack.extend(
                self.rolls
                    .facts(&self.index, node.facts)
                    .iter()
                    .filter(|f| self.rolls.judged_in(&self.index, f, Lane::Members))
                    .copied(),
            );
        }
        true
    }

    /// Every roll op in the past described by `frontier`.
    pub(super) fn roll_closure(&self, frontier: &[OpId]) -> HashSet<OpId> {
        let mut closure = HashSet::default();
        let mut stack: Vec<OpId> = frontier.to_vec();
        while let Some(current) = stack.pop() {
            if closure.insert(current)
                && let Some(node) = self.rolls.get(&self.index, &current)
            {
                stack.extend(self.frontier_ids(node.roll_parents).iter().copied());
            }
        }
        closure
    }

    /// The members of `assembly` at the position `frontier` (roll `past`), sorted: who a poll
    /// opened there may vote. Only active members (not guests) are ever in an electorate.
    fn electorate_at(
        &self,
        assembly: &AssemblyRef,
        frontier: &[OpId],
        past: &Resolution,
    ) -> Result<Vec<[u8; 32]>, Denied> {
        let active = past
            .roll
            .members
            .iter()
            .filter(|(_, r)| r.status == crate::roll::Status::Member)
            .map(|(id, _)| *id);
        let mut out: Vec<[u8; 32]> = match assembly {
            AssemblyRef::Activism | AssemblyRef::Policy => active.map(|m| m.to_bytes()).collect(),
            AssemblyRef::Constituency(name) => {
                // Personal data as it stood at this position: the members-lane roll ops in the
                // past that count there, in the global roll's order.
                let closure = self.roll_closure(frontier);
                let mut constituency: std::collections::BTreeMap<MemberId, Option<String>> =
                    std::collections::BTreeMap::new();
                for id in self.members_order_within(Some(&closure)) {
                    let Some(node) = self.rolls.get(&self.index, &id) else {
                        continue;
                    };
                    let body = node.body();
                    let Body::SetConstituency(set) = &*body else {
                        continue;
                    };
                    if self.member_roll_verdict(&id, past, false).is_ok() {
                        constituency.insert(set.member, set.constituency.clone());
                    }
                }
                active
                    .filter(|m| {
                        constituency
                            .get(m)
                            .is_some_and(|c| c.as_deref() == Some(name.as_str()))
                    })
                    .map(|m| m.to_bytes())
                    .collect()
            }
            AssemblyRef::Created(a) => {
                let record = self
                    .governance
                    .assemblies
                    .get(a)
                    .ok_or(Denied::NoSuchAssembly)?;
                let changes = match record.kind {
                    AssemblyKind::Committee => self.governance.seats.get(a),
                    _ => self.governance.joins.get(a),
                };
                let closure = self.roll_closure(frontier);
                let state = self.latest(
                    changes
                        .into_iter()
                        .flatten()
                        .filter(|(op, _, _)| closure.contains(op) && self.counts_at(op, past)),
                );
                active
                    .filter(|m| state.get(m) == Some(&true))
                    .map(|m| m.to_bytes())
                    .collect()
            }
        };
        out.sort_unstable();
        Ok(out)
    }

    /// The electorate fixed by an accepted open (computed once, when first needed).
    fn electorate_of(&mut self, open: &OpId) -> Result<Arc<Electorate>, Denied> {
        let record = self.governance.opens.get(open).ok_or(Denied::PollNotOpen)?;
        if let Some(electorate) = &record.electorate {
            return Ok(electorate.clone());
        }
        let poll = self
            .governance
            .polls
            .get(&record.poll)
            .ok_or(Denied::NoSuchPoll)?
            .body
            .assembly
            .clone();
        let node = self
            .rolls
            .get(&self.index, open)
            .ok_or(Denied::PollNotOpen)?;
        let number = node.roll_parents;
        let frontier: Vec<OpId> = self.frontier_ids(number).to_vec();
        let past = self.resolution(number);
        let electorate = Arc::new(Electorate::new(
            self.electorate_at(&poll, &frontier, &past)?,
        ));
        if let Some(record) = self.governance.opens.get_mut(open) {
            record.electorate = Some(electorate.clone());
        }
        Ok(electorate)
    }

    /// The electorate a poll opened now by this replica would record: its size and hash (for
    /// writing an open).
    pub fn electorate_now(&mut self, poll: &OpId, lane: Lane) -> Result<(u32, [u8; 32]), Denied> {
        let assembly = self
            .governance
            .polls
            .get(poll)
            .ok_or(Denied::NoSuchPoll)?
            .body
            .assembly
            .clone();
        let heads: Vec<OpId> = self.roll_heads(lane);
        let (number, frontier) = self.frontier_of_ids(&heads);
        let past = self.resolution(number);
        let electorate = self.electorate_at(&assembly, &frontier, &past)?;
        let count = u32::try_from(electorate.len()).unwrap_or(u32::MAX);
        Ok((count, electorate_hash(electorate.iter())))
    }

    /// Whether a governance op counts: it counts by the validity rule, and so does every
    /// assembly, poll or open it rests on.
    fn governance_counts(&mut self, id: &OpId) -> bool {
        if !matches!(self.validity(id), Some(Ok(()))) {
            return false;
        }
        let body = self.rolls.get(&self.index, id).map(|n| n.body());
        let rests_on = match body.as_deref() {
            Some(Body::Convener(c)) => Some(c.assembly),
            Some(Body::Join(j)) => Some(j.assembly),
            Some(Body::Seat(s)) => Some(s.assembly),
            Some(Body::CreatePoll(p)) => match &p.assembly {
                AssemblyRef::Created(a) => Some(*a),
                _ => None,
            },
            Some(Body::OpenPoll(o)) => Some(o.poll),
            Some(Body::CloseStation(c)) => Some(c.open),
            Some(Body::ClosePoll(c)) => Some(c.open),
            _ => None,
        };
        match rests_on {
            Some(parent) => self.governance_counts(&parent),
            None => true,
        }
    }

    /// The assemblies: the automatic societies (and one per constituency on the roll), then
    /// the created ones that count, ascending by id.
    pub fn assemblies(&mut self) -> Vec<AssemblyInfo> {
        let roll = self.roll();
        let active: Vec<MemberId> = roll
            .members
            .iter()
            .filter(|(_, r)| r.status == crate::roll::Status::Member)
            .map(|(id, _)| *id)
            .collect();
        let conveners: Vec<MemberId> = active
            .iter()
            .filter(|m| roll.convenes_all(m))
            .copied()
            .collect();
        let automatic =
            |assembly: AssemblyRef, name: String, members: Vec<MemberId>| AssemblyInfo {
                assembly,
                name,
                kind: AssemblyKind::Society,
                lane: Lane::Members,
                automatic: true,
                members,
                conveners: conveners.clone(),
            };
        let mut out = vec![
            automatic(
                AssemblyRef::Activism,
                "Activism Society".into(),
                active.clone(),
            ),
            automatic(AssemblyRef::Policy, "Policy Society".into(), active.clone()),
        ];
        let mut constituencies: std::collections::BTreeMap<String, Vec<MemberId>> =
            std::collections::BTreeMap::new();
        for member in &active {
            if let Some(c) = roll.member(member).and_then(|r| r.constituency.clone()) {
                constituencies.entry(c).or_default().push(*member);
            }
        }
        for (name, members) in constituencies {
            out.push(automatic(
                AssemblyRef::Constituency(name.clone()),
                format!("Society of {name}"),
                members,
            ));
        }
        let created: Vec<(OpId, AssemblyRecord)> = self
            .governance
            .assemblies
            .iter()
            .map(|(id, r)| (*id, r.clone()))
            .collect();
        for (id, record) in created {
            if !self.governance_counts(&id) {
                continue;
            }
            let changes = match record.kind {
                AssemblyKind::Committee => self.governance.seats.get(&id).cloned(),
                _ => self.governance.joins.get(&id).cloned(),
            }
            .unwrap_or_default();
            let counting: Vec<Change> = changes
                .into_iter()
                .filter(|(op, _, _)| matches!(self.validity(op), Some(Ok(()))))
                .collect();
            let members: Vec<MemberId> = self
                .latest(counting.iter())
                .into_iter()
                .filter(|(m, on)| *on && roll.is_member(m))
                .map(|(m, _)| m)
                .collect();
            let appointed: Vec<Change> = self
                .governance
                .conveners
                .get(&id)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|(op, _, _)| matches!(self.validity(op), Some(Ok(()))))
                .collect();
            let latest = self.latest(appointed.iter());
            let mut conveners: Vec<MemberId> = latest
                .iter()
                .filter(|(m, on)| **on && roll.is_member(m))
                .map(|(m, _)| *m)
                .collect();
            if !latest.contains_key(&record.creator) && roll.is_member(&record.creator) {
                conveners.push(record.creator);
            }
            conveners.sort();
            out.push(AssemblyInfo {
                assembly: AssemblyRef::Created(id),
                name: record.name,
                kind: record.kind,
                lane: record.lane,
                automatic: false,
                members,
                conveners,
            });
        }
        out
    }

    /// Every poll that counts, ascending by id.
    pub fn polls(&mut self) -> Vec<PollInfo> {
        let ids: Vec<OpId> = self.governance.polls.keys().copied().collect();
        ids.iter().filter_map(|id| self.poll(id)).collect()
    }

    /// A poll, if it is held and counts.
    pub fn poll(&mut self, poll: &OpId) -> Option<PollInfo> {
        if !self.governance_counts(poll) {
            return None;
        }
        let record = self.governance.polls.get(poll)?.clone();
        let (open, _) = self.standing_open(&record);
        let mut electorate = None;
        let mut close = None;
        if let Some(open) = open {
            electorate = self
                .rolls
                .get(&self.index, &open)
                .and_then(|n| match &*n.body() {
                    Body::OpenPoll(o) => Some(o.electorate),
                    _ => None,
                });
            close = self.standing_close(&open).0;
        }
        let stage = match (open, close) {
            (None, _) => PollStage::Created,
            (Some(_), None) => PollStage::Open,
            (Some(_), Some(_)) => PollStage::Closed,
        };
        Some(PollInfo {
            poll: *poll,
            assembly: record.body.assembly.clone(),
            lane: record.lane,
            question: record.body.question.clone(),
            options: record.body.options.clone(),
            seats: record.body.seats,
            officers: returning_officers(&record),
            stations: record.body.stations.clone(),
            quorum: record.body.quorum,
            opens_at: record.body.opens_at,
            closes_at: record.body.closes_at,
            created_by: record.creator,
            open,
            electorate,
            close,
            stage,
        })
    }

    /// The open that stands and all that count, the standing one first: the lowest id among
    /// the opens a counting close closed, else among all that count. A close fixes which
    /// ballots count, so an open written later (even one not following the first, whose id
    /// sorts before it) cannot undo it: it is only flagged as competing.
    fn standing_open(&mut self, record: &PollRecord) -> (Option<OpId>, Vec<OpId>) {
        let mut opens: Vec<OpId> = record
            .opens
            .iter()
            .copied()
            .filter(|o| self.governance_counts(o))
            .collect();
        opens.sort();
        if opens.len() > 1
            && let Some(at) = (0..opens.len()).find(|&i| self.standing_close(&opens[i]).0.is_some())
        {
            let closed = opens.remove(at);
            opens.insert(0, closed);
        }
        (opens.first().copied(), opens)
    }

    /// The close that stands for `open` (the one whose past holds most of the poll's ballots,
    /// then the lowest id), with every close that counts.
    fn standing_close(&mut self, open: &OpId) -> (Option<OpId>, Vec<OpId>) {
        let Some((poll, mut closes)) = self
            .governance
            .opens
            .get(open)
            .map(|r| (r.poll, r.closes.clone()))
        else {
            return (None, Vec::new());
        };
        closes.retain(|c| matches!(self.validity(c), Some(Ok(()))));
        closes.sort();
        if closes.len() <= 1 {
            return (closes.first().copied(), closes);
        }
        let ballots: Vec<u32> = self
            .governance
            .ballots
            .get(&poll)
            .map(|b| b.records.iter().map(|r| r.n).collect())
            .unwrap_or_default();
        let mut best: Option<(usize, OpId)> = None;
        for close in &closes {
            let past = self.past_of(close);
            let held = ballots.iter().filter(|n| past.contains(**n)).count();
            if best.is_none_or(|(count, _)| held > count) {
                best = Some((held, *close));
            }
        }
        (best.map(|(_, c)| c), closes)
    }

    /// The count of a poll (see `crate::poll`). `None` if the poll is not held, does not
    /// count, or is not open.
    pub fn count_poll(
        &mut self,
        poll: &OpId,
    ) -> Option<Result<PollCount, moot_star::SummaryError>> {
        let info = self.poll(poll)?;
        let open = info.open?;
        let record = self.governance.polls.get(poll)?.clone();
        let (_, opens) = self.standing_open(&record);
        let (close, closes) = self.standing_close(&open);
        let mut flags = Vec::new();
        if close.is_none() {
            flags.push(Flag::Provisional);
        }
        if opens.len() > 1 {
            flags.push(Flag::CompetingOpens(opens.clone()));
        }
        if closes.len() > 1 {
            let mut ordered = closes.clone();
            ordered.sort_by_key(|c| (Some(*c) != close, *c));
            flags.push(Flag::CompetingCloses(ordered));
        }
        let close_past = close.map(|c| self.past_of(&c));
        let open_number = self.index.get(&open).map(|(n, _)| n);
        // Taken out while counting (validity needs the replica), put back after: no copy.
        let ballots = self.governance.ballots.remove(poll).unwrap_or_default();
        let mut excluded = Vec::new();
        let mut candidates = Vec::new();
        for (i, ballot) in ballots.records.iter().enumerate() {
            let Some(id) = self.index.id(ballot.n) else {
                continue;
            };
            let exclude = |reason| (id, ballot.member, ballot.revision, reason);
            match self.validity(&id) {
                Some(Ok(())) => {}
                Some(Err(denied)) => {
                    excluded.push(exclude(Exclusion::NotValid(denied)));
                    continue;
                }
                None => continue,
            }
            if Some(ballot.open) != open_number {
                excluded.push(exclude(Exclusion::OtherOpen));
                continue;
            }
            if let Some(past) = &close_past
                && !past.contains(ballot.n)
            {
                excluded.push(exclude(Exclusion::OutsideClose));
                continue;
            }
            candidates.push(Candidate {
                id,
                member: ballot.member,
                revision: ballot.revision,
                scores: ballots.scores(i),
            });
        }
        let picked = pick_latest(candidates);
        let result = self.finish_count(info, open, close_past, &picked, excluded, flags);
        self.governance.ballots.insert(*poll, ballots);
        Some(result)
    }

    /// The rest of [`Replica::count_poll`]: stations, summaries, quorum, and the members'
    /// keys for what is shown.
    fn finish_count(
        &mut self,
        info: PollInfo,
        open: OpId,
        close_past: Option<Past>,
        picked: &crate::poll::Picked<'_>,
        mut excluded_raw: Vec<(OpId, [u8; 32], u32, Exclusion)>,
        mut flags: Vec<Flag>,
    ) -> Result<PollCount, moot_star::SummaryError> {
        excluded_raw.extend(
            picked
                .excluded
                .iter()
                .map(|(c, reason)| (c.id, c.member, c.revision, reason.clone())),
        );
        excluded_raw.sort_by_key(|e| e.0);
        let excluded: Vec<Excluded> = excluded_raw
            .into_iter()
            .filter_map(|(ballot, member, revision, reason)| {
                Some(Excluded {
                    ballot,
                    member: MemberId::from_bytes(&member).ok()?,
                    revision,
                    reason,
                })
            })
            .collect();
        for (member, ballots) in &picked.equivocations {
            if let Ok(member) = MemberId::from_bytes(member) {
                flags.push(Flag::Equivocation {
                    member,
                    ballots: ballots.clone(),
                });
            }
        }
        let counted = &picked.counted;
        // Stations: closes that count, in the close's past (when closed), ordered causally
        // (roll depth) then by id; each counted ballot goes to the first that holds it.
        let mut station_closes: Vec<(OpId, MemberId)> = self
            .governance
            .opens
            .get(&open)
            .map(|o| o.stations.clone())
            .unwrap_or_default();
        station_closes.retain(|(s, _)| matches!(self.validity(s), Some(Ok(()))));
        if let Some(past) = &close_past {
            station_closes
                .retain(|(s, _)| self.index.get(s).is_some_and(|(n, _)| past.contains(n)));
        }
        station_closes
            .sort_by_key(|(s, _)| (self.rolls.get(&self.index, s).map_or(0, |n| n.depth()), *s));
        let station_pasts: Vec<Past> = station_closes
            .iter()
            .map(|(s, _)| self.past_of(s))
            .collect();
        let names = info.options.clone();
        let mut summaries: Vec<Summary> = Vec::with_capacity(station_closes.len());
        for _ in &station_closes {
            summaries.push(Summary::new(names.clone())?);
        }
        let mut rest = Summary::new(names.clone())?;
        // The total streams through the summary builder (column scans), the stations' shares
        // are added ballot by ballot (few ballots each, usually).
        let mut total = moot_star::SummaryBuilder::new(names)?;
        for ballot in counted {
            let station = if station_pasts.is_empty() {
                None
            } else {
                let n = self.index.get(&ballot.id).map(|(n, _)| n);
                n.and_then(|n| station_pasts.iter().position(|p| p.contains(n)))
            };
            match station.and_then(|s| summaries.get_mut(s)) {
                Some(summary) => summary.add(ballot.scores)?,
                None if !station_pasts.is_empty() => rest.add(ballot.scores)?,
                None => {}
            }
            total.push(ballot.scores)?;
        }
        let total = total.finish()?;
        if station_pasts.is_empty() {
            rest = total.clone();
        }
        let counted_n = u32::try_from(counted.len()).unwrap_or(u32::MAX);
        let quorum_met = info.quorum.map(|q| counted_n >= q);
        if let Some(quorum) = info.quorum
            && counted_n < quorum
        {
            flags.push(Flag::QuorumNotMet {
                quorum,
                counted: counted_n,
            });
        }
        let stations = station_closes
            .into_iter()
            .zip(summaries)
            .map(|((close, officer), summary)| StationCount {
                close,
                officer,
                summary,
            })
            .collect();
        Ok(PollCount {
            info,
            seed: open.0,
            counted: counted.iter().map(|c| c.id).collect(),
            excluded,
            stations,
            rest,
            total,
            quorum_met,
            flags,
        })
    }

    /// The causal past of an op (itself included), as a set of index numbers: a walk over the
    /// dependency numbers kept per op.
    fn past_of(&self, id: &OpId) -> Past {
        let mut past = Past::with_len(self.index.len());
        let Some((start, _)) = self.index.get(id) else {
            return past;
        };
        past.insert(start);
        self.extend_past(&mut past, vec![start]);
        past
    }

    /// Adds to `past` everything in the pasts of the ops on `stack` (already in `past`).
    pub(super) fn extend_past(&self, past: &mut Past, mut stack: Vec<u32>) {
        while let Some(n) = stack.pop() {
            for parent in self.deps_of(n) {
                if past.insert(parent) {
                    stack.push(parent);
                }
            }
        }
    }

    /// The assembly a poll belongs to, if the poll is held.
    pub(super) fn poll_assembly(&self, poll: &OpId) -> Option<&AssemblyRef> {
        self.governance.polls.get(poll).map(|p| &p.body.assembly)
    }

    /// The lane of a created assembly in the past described by `frontier`.
    pub(super) fn assembly_lane_in_past(
        &self,
        assembly: &OpId,
        frontier: &[OpId],
    ) -> Result<Lane, Denied> {
        self.assembly_in_past(assembly, frontier).map(|r| r.lane)
    }

    /// Records the index numbers of an op's parents (its `prev` and `deps`), for walks over
    /// pasts. Called for every op added to the index, in index order.
    pub(super) fn record_deps(&mut self, n: u32, op: &SignedOp) {
        debug_assert_eq!(n as usize + 1, self.dep_start.len());
        for parent in Self::parents(op) {
            if let Some((p, _)) = self.index.get(&parent) {
                self.dep_list.push(p);
            }
        }
        self.dep_start
            .push(u32::try_from(self.dep_list.len()).unwrap_or(u32::MAX));
    }

    pub(super) fn deps_of(&self, n: u32) -> impl Iterator<Item = u32> + '_ {
        let from = self.dep_start.get(n as usize).copied().unwrap_or(0) as usize;
        let to = self.dep_start.get(n as usize + 1).copied().unwrap_or(0) as usize;
        self.dep_list.get(from..to).into_iter().flatten().copied()
    }

    /// The highest revision of `member`'s ballots held for `poll`, if any (a re-cast goes one
    /// higher).
    pub fn latest_revision(&self, poll: &OpId, member: &MemberId) -> Option<u32> {
        self.governance
            .ballots
            .get(poll)?
            .records
            .iter()
            .filter(|b| b.member == member.to_bytes())
            .map(|b| b.revision)
            .max()
    }

    /// Every ballot held for `poll` (counted or not): (ballot op, voter).
    pub fn poll_ballots(&self, poll: &OpId) -> Vec<(OpId, [u8; 32])> {
        self.governance
            .ballots
            .get(poll)
            .map(|b| {
                b.records
                    .iter()
                    .filter_map(|r| self.index.id(r.n).map(|id| (id, r.member)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The kind of a held op.
    pub fn kind_of(&self, id: &OpId) -> Option<u16> {
        self.index.get(id).map(|(_, m)| m.kind)
    }

    /// Ballots held (all polls).
    pub fn ballot_count(&self) -> usize {
        self.governance.ballot_count()
    }

    /// Whether the body is checked by [`Replica::govern`].
    pub(super) fn governed(kind: u16) -> bool {
        kind::is_governance(kind) || kind == kind::BALLOT
    }

    /// Whether the body is checked by [`Replica::deliberate`]: proposals and documents.
    pub(super) fn deliberative(kind: u16) -> bool {
        matches!(
            kind,
            kind::CREATE_PROPOSAL
                | kind::DOC_CHANGE
                | kind::COMMENT
                | kind::STANCE
                | kind::AMEND
                | kind::RESOLVE_AMENDMENT
                | kind::DECIDE
        )
    }

    /// Whether the body is checked by [`Replica::check_aid`].
    pub(super) fn aid(kind: u16) -> bool {
        matches!(
            kind,
            kind::AID_ITEM
                | kind::AID_UPDATE
                | kind::AID_PLEDGE
                | kind::AID_UNPLEDGE
                | kind::AID_CONTACT
        )
    }
}

/// An open's electorate: its members' ids, for O(1) membership tests.
#[derive(Debug)]
pub(super) struct Electorate(HashSet<[u8; 32]>);

impl Electorate {
    fn new(sorted: Vec<[u8; 32]>) -> Electorate {
        Electorate(sorted.into_iter().collect())
    }

    fn contains(&self, member: &[u8; 32]) -> bool {
        self.0.contains(member)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// A set of index numbers.
pub(super) struct Past {
    bits: Vec<u64>,
}

impl Past {
    /// An empty set for an index of `len` ops.
    pub(super) fn with_len(len: usize) -> Past {
        Past {
            bits: vec![0u64; len.div_ceil(64)],
        }
    }

    pub(super) fn insert(&mut self, n: u32) -> bool {
        let (word, bit) = ((n / 64) as usize, n % 64);
        match self.bits.get_mut(word) {
            Some(w) if *w & (1 << bit) == 0 => {
                *w |= 1 << bit;
                true
            }
            _ => false,
        }
    }

    pub(super) fn contains(&self, n: u32) -> bool {
        self.bits
            .get((n / 64) as usize)
            .is_some_and(|w| w & (1 << (n % 64)) != 0)
    }
}

/// A poll's returning officers: those named, or its creator.
fn returning_officers(poll: &PollRecord) -> Vec<MemberId> {
    if poll.body.officers.is_empty() {
        vec![poll.creator]
    } else {
        poll.body.officers.clone()
    }
}
