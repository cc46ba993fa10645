//! Assemblies and polls on a node: writing their ops (validated in the hub's replica, then
//! stored in one durable transaction), and the poll results view.
//!
//! The results of each poll are a **derived view** stored beside the ops (`poll/<id>`): the
//! counted ballots' summaries (total, per station, the rest), the excluded ballots with their
//! reasons, and the flags. It is rewritten whenever the node writes or imports ops, and
//! recomputed from the ops when the store holds more ops than it was made from; so
//! `moot poll results` reads a few kilobytes instead of loading the hub. `verify_poll`
//! recomputes it from the signed ops alone, checking every signature again.

use moot_crypto::{OpId, PublicKey};
use moot_star::Summary;
use moot_state::body::{
    AssemblyKind, AssemblyRef, Ballot, ClosePoll, CloseStation, Convener, CreateAssembly,
    CreatePoll, Join, OpenPoll, Seat,
};
use moot_state::poll::{AssemblyInfo, Exclusion, Flag, PollCount, PollInfo};
use moot_state::{Body, Lane, Limits, Replica, Retain, Status};
use serde::{Deserialize, Serialize};

use crate::{Node, NodeError, Signer, clean_text};

/// Longest list of options or officers accepted from a user.
const MAX_LIST: usize = moot_state::body::MAX_POLL_OPTIONS;

/// An assembly as the CLI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssemblyView {
    /// `activism`, `policy`, `constituency:NAME`, or the create op's id (64 hex digits).
    pub assembly_id: String,
    /// Its name.
    pub name: String,
    /// `working-group`, `committee` or `society`.
    pub kind: String,
    /// Guests may read it.
    pub public: bool,
    /// One of the automatic societies.
    pub automatic: bool,
    /// Its members now.
    pub members: Vec<String>,
    /// Its own conveners (the hub's stewards and conveners convene every assembly).
    pub conveners: Vec<String>,
}

/// A poll as the CLI lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollView {
    /// The poll's id (its create op).
    pub poll_id: String,
    /// Its assembly.
    pub assembly_id: String,
    /// The question.
    pub question: String,
    /// The options.
    pub options: Vec<String>,
    /// Seats.
    pub seats: u16,
    /// `created`, `open` or `closed`.
    pub stage: String,
    /// The open op (the tiebreak seed), if open.
    pub open_id: Option<String>,
    /// The close op, if closed.
    pub close_id: Option<String>,
    /// Size of the electorate, if open.
    pub electorate: Option<u32>,
    /// Returning officers.
    pub officers: Vec<String>,
    /// Station officers.
    pub stations: Vec<String>,
    /// Ballots needed, if any.
    pub quorum: Option<u32>,
    /// Advisory opening time, UTC (`YYYY-MM-DDTHH:MM:SSZ`): shown, never enforced.
    pub opens_at: Option<String>,
    /// Advisory closing time, UTC: shown, never enforced (only a signed close settles a poll).
    pub closes_at: Option<String>,
}

/// Seconds since the Unix epoch of a UTC time written `YYYY-MM-DDTHH:MM[:SS][Z]` (a space may
/// stand for the `T`), years 1970 to 9999. `None` for anything else.
pub fn parse_utc(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = text.split_once(['T', ' '])?;
    let mut date_parts = date.split('-');
    let (year, month, day) = (date_parts.next()?, date_parts.next()?, date_parts.next()?);
    if date_parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let mut time_parts = time.split(':');
    let (hour, minute) = (time_parts.next()?, time_parts.next()?);
    let second = time_parts.next().unwrap_or("00");
    if time_parts.next().is_some() || [hour, minute, second].iter().any(|p| p.len() != 2) {
        return None;
    }
    let number = |s: &str| -> Option<u64> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (year, month, day) = (number(year)?, number(month)?, number(day)?);
    let (hour, minute, second) = (number(hour)?, number(minute)?, number(second)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&year)
        || day == 0
        || day > days_in_month
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch.
pub fn format_utc(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 of a date from 1970 on (H. Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A ballot that does not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedView {
    /// The ballot op.
    pub ballot_id: String,
    /// The voter.
    pub member_id: String,
    /// Its revision.
    pub revision: u32,
    /// `not_valid`, `other_open`, `outside_close`, `superseded_revision` or `equivocation`.
    pub reason: String,
    /// Details (for `not_valid`: why).
    pub detail: Option<String>,
}

/// Something to audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagView {
    /// `provisional`, `competing_opens`, `competing_closes`, `equivocation` or
    /// `quorum_not_met`.
    pub kind: String,
    /// The ops concerned (the one that stands first).
    pub ops: Vec<String>,
    /// The member concerned (equivocations).
    pub member_id: Option<String>,
    /// In words.
    pub message: String,
}

/// One polling station's share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StationView {
    /// The station close op.
    pub close_id: String,
    /// Its station officer.
    pub officer: String,
    /// Its counted ballots' summary.
    pub summary: Summary,
}

/// A poll's results, as stored in the view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollResults {
    /// The store's op count when this was derived.
    pub op_count: u64,
    /// The poll.
    pub poll: PollView,
    /// The seed (the open op's id, hex).
    pub seed: String,
    /// Ballots counted.
    pub counted: u64,
    /// Ballots held that do not count.
    pub excluded: Vec<ExcludedView>,
    /// Flags.
    pub flags: Vec<FlagView>,
    /// Quorum met (`None`: no quorum).
    pub quorum_met: Option<bool>,
    /// Each station's share.
    pub stations: Vec<StationView>,
    /// Counted ballots cast at no station.
    pub rest: Summary,
    /// All counted ballots.
    pub total: Summary,
}

/// What `verify_poll` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The recomputed results equal the stored view.
    pub ok: bool,
    /// Ops whose signatures were checked and which were validated again.
    pub ops_checked: u64,
    /// Ballots counted in the recomputation.
    pub counted: u64,
    /// What differs, if anything.
    pub differences: Vec<String>,
}

/// An assembly named on the command line.
pub fn parse_assembly(text: &str) -> Option<AssemblyRef> {
    match text {
        "activism" => Some(AssemblyRef::Activism),
        "policy" => Some(AssemblyRef::Policy),
        _ => {
            if let Some(name) = text.strip_prefix("constituency:") {
                let name = moot_text::normalize(name);
                return (!name.is_empty()).then_some(AssemblyRef::Constituency(name));
            }
            parse_op_id(text).map(AssemblyRef::Created)
        }
    }
}

/// An op id (64 hex digits).
pub fn parse_op_id(text: &str) -> Option<OpId> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(OpId(bytes))
}

/// The command-line name of an assembly.
pub fn assembly_id(assembly: &AssemblyRef) -> String {
    match assembly {
        AssemblyRef::Created(id) => id.to_string(),
        AssemblyRef::Activism => "activism".into(),
        AssemblyRef::Policy => "policy".into(),
        AssemblyRef::Constituency(name) => format!("constituency:{name}"),
    }
}

fn ids(members: &[PublicKey]) -> Vec<String> {
    members.iter().map(|m| m.to_string()).collect()
}

fn assembly_view(info: &AssemblyInfo) -> AssemblyView {
    AssemblyView {
        assembly_id: assembly_id(&info.assembly),
        name: info.name.clone(),
        kind: info.kind.as_str().into(),
        public: info.lane == Lane::Public,
        automatic: info.automatic,
        members: ids(&info.members),
        conveners: ids(&info.conveners),
    }
}

fn poll_view(info: &PollInfo) -> PollView {
    PollView {
        poll_id: info.poll.to_string(),
        assembly_id: assembly_id(&info.assembly),
        question: info.question.clone(),
        options: info.options.clone(),
        seats: info.seats,
        stage: info.stage.as_str().into(),
        open_id: info.open.map(|o| o.to_string()),
        close_id: info.close.map(|c| c.to_string()),
        electorate: info.electorate,
        officers: ids(&info.officers),
        stations: ids(&info.stations),
        quorum: info.quorum,
        opens_at: info.opens_at.map(format_utc),
        closes_at: info.closes_at.map(format_utc),
    }
}

fn flag_view(flag: &Flag) -> FlagView {
    let hexes = |ops: &[OpId]| ops.iter().map(|o| o.to_string()).collect::<Vec<_>>();
    match flag {
        Flag::Provisional => FlagView {
            kind: "provisional".into(),
            ops: Vec::new(),
            member_id: None,
            message: "not closed yet: the count is of the ballots held now".into(),
        },
        Flag::CompetingOpens(ops) => FlagView {
            kind: "competing_opens".into(),
            ops: hexes(ops),
            member_id: None,
            message: "the poll was opened more than once concurrently; the lowest id stands".into(),
        },
        Flag::CompetingCloses(ops) => FlagView {
            kind: "competing_closes".into(),
            ops: hexes(ops),
            member_id: None,
            message: "returning officers closed the poll concurrently; the close holding the \
                      most ballots stands"
                .into(),
        },
        Flag::Equivocation { member, ballots } => FlagView {
            kind: "equivocation".into(),
            ops: hexes(ballots),
            member_id: Some(member.to_string()),
            message: "a member cast different ballots with the same revision; the lowest id \
                      counts"
                .into(),
        },
        Flag::QuorumNotMet { quorum, counted } => FlagView {
            kind: "quorum_not_met".into(),
            ops: Vec::new(),
            member_id: None,
            message: format!("{counted} ballots counted; the quorum is {quorum}"),
        },
    }
}

/// The counts of every open or closed poll of a replica: what their results views show
/// ([`count_polls`]).
pub(crate) struct PollCounts(Vec<PollCount>);

/// Counts every open or closed poll of `replica`.
pub(crate) fn count_polls(replica: &mut Replica) -> Result<PollCounts, NodeError> {
    let polls = replica.polls();
    let mut counts = Vec::new();
    for info in polls.iter().filter(|p| p.open.is_some()) {
        let Some(count) = replica.count_poll(&info.poll) else {
            continue;
        };
        counts.push(count.map_err(|e| NodeError::Corrupt(format!("poll count: {e}")))?);
    }
    Ok(PollCounts(counts))
}

/// The stored view of a count.
pub fn results_view(op_count: u64, count: &PollCount) -> PollResults {
    PollResults {
        op_count,
        poll: poll_view(&count.info),
        seed: hex::encode(count.seed),
        counted: count.counted.len() as u64,
        excluded: count
            .excluded
            .iter()
            .map(|e| ExcludedView {
                ballot_id: e.ballot.to_string(),
                member_id: e.member.to_string(),
                revision: e.revision,
                reason: e.reason.as_str().into(),
                detail: match &e.reason {
                    Exclusion::NotValid(denied) => Some(denied.to_string()),
                    _ => None,
                },
            })
            .collect(),
        flags: count.flags.iter().map(flag_view).collect(),
        quorum_met: count.quorum_met,
        stations: count
            .stations
            .iter()
            .map(|s| StationView {
                close_id: s.close.to_string(),
                officer: s.officer.to_string(),
                summary: s.summary.clone(),
            })
            .collect(),
        rest: count.rest.clone(),
        total: count.total.clone(),
    }
}

fn view_name(poll: &OpId) -> String {
    format!("poll/{poll}")
}

/// The create op of a created assembly (automatic societies have none).
fn created(assembly: &AssemblyRef) -> Result<OpId, NodeError> {
    match assembly {
        AssemblyRef::Created(id) => Ok(*id),
        other => Err(NodeError::Automatic(assembly_id(other))),
    }
}

/// The lane of a created assembly the replica holds.
fn assembly_lane(replica: &mut Replica, id: OpId) -> Result<Lane, NodeError> {
    replica
        .assemblies()
        .iter()
        .find(|a| a.assembly == AssemblyRef::Created(id))
        .map(|a| a.lane)
        .ok_or_else(|| NodeError::NoSuchAssembly(id.to_string()))
}

/// A poll the replica holds, or `NoSuchPoll`.
fn held_poll(replica: &mut Replica, poll: &OpId) -> Result<PollInfo, NodeError> {
    replica
        .poll(poll)
        .ok_or_else(|| NodeError::NoSuchPoll(poll.to_string()))
}

/// Refuses, naming them, the first of `members` who is not an active member on the roll now
/// (a guest, removed, or unknown): the rules refuse them too, as "no such member on the roll",
/// which is wrong for a guest and does not say who.
fn must_be_members(
    replica: &mut Replica,
    members: &[PublicKey],
    role: &'static str,
) -> Result<(), NodeError> {
    let roll = replica.roll();
    for member in members {
        let standing = match roll.member(member).map(|r| r.status) {
            Some(Status::Member) => continue,
            Some(Status::Guest) => "a guest",
            Some(Status::Removed) => "removed from the roll",
            None => "not on the roll",
        };
        return Err(NodeError::NotAMember {
            member: member.to_string(),
            standing,
            role,
        });
    }
    Ok(())
}

/// A poll spec from a user, checked before anything is loaded: its question and options
/// cleaned, counts and seats in range.
pub(crate) struct CheckedPoll {
    spec: PollSpec,
    question: String,
    options: Vec<String>,
}

pub(crate) fn check_poll_spec(spec: PollSpec) -> Result<CheckedPoll, NodeError> {
    let question = clean_text("question", &spec.question)?;
    if spec.options.len() > MAX_LIST
        || spec.officers.len() > MAX_LIST
        || spec.stations.len() > MAX_LIST
    {
        return Err(NodeError::BadText {
            what: "poll",
            reason: format!("has more than {MAX_LIST} options or officers"),
        });
    }
    let mut options = Vec::with_capacity(spec.options.len());
    for option in &spec.options {
        let option = clean_text("option", option)?;
        if options
            .iter()
            .any(|o: &String| moot_text::fold(o) == moot_text::fold(&option))
        {
            return Err(NodeError::BadText {
                what: "option",
                reason: format!("{option:?} is given twice"),
            });
        }
        options.push(option);
    }
    if options.len() < 2 {
        return Err(NodeError::BadText {
            what: "poll",
            reason: "needs at least two options".into(),
        });
    }
    if spec.seats == 0 || usize::from(spec.seats) >= options.len() {
        return Err(NodeError::BadText {
            what: "number of seats",
            reason: format!(
                "must be from 1 to {} for {} options",
                options.len() - 1,
                options.len()
            ),
        });
    }
    Ok(CheckedPoll {
        spec,
        question,
        options,
    })
}

/// The create op of a checked poll, against the hub's replica.
pub(crate) fn create_poll_write(
    replica: &mut Replica,
    checked: CheckedPoll,
) -> Result<PollWrite, NodeError> {
    let CheckedPoll {
        spec,
        question,
        options,
    } = checked;
    let assembly = spec.assembly.clone();
    must_be_members(replica, &spec.officers, "returning officers")?;
    must_be_members(replica, &spec.stations, "station officers")?;
    let assemblies = replica.assemblies();
    let held = assemblies.iter().find(|a| a.assembly == assembly);
    let lane = match (&assembly, held) {
        (_, Some(held)) => held.lane,
        (AssemblyRef::Created(id), None) => {
            return Err(NodeError::NoSuchAssembly(id.to_string()));
        }
        // A constituency no member is in: the rules would take the poll, but nobody
        // could ever vote in it (a typo, or another case: names match exactly).
        (AssemblyRef::Constituency(name), None) => {
            return Err(NodeError::NoSuchConstituency {
                name: name.clone(),
                known: assemblies
                    .iter()
                    .filter_map(|a| match &a.assembly {
                        AssemblyRef::Constituency(c) => Some(c.clone()),
                        _ => None,
                    })
                    .collect(),
            });
        }
        _ => Lane::Members,
    };
    let refs = match &assembly {
        AssemblyRef::Created(id) => vec![*id],
        _ => Vec::new(),
    };
    Ok(PollWrite {
        body: Body::CreatePoll(Box::new(CreatePoll {
            assembly: assembly.clone(),
            question,
            options,
            seats: spec.seats,
            officers: spec.officers,
            stations: spec.stations,
            quorum: spec.quorum,
            opens_at: spec.opens_at,
            closes_at: spec.closes_at,
        })),
        lane,
        refs,
        covering: false,
    })
}

/// The open op of `poll`, against the hub's replica: its electorate now.
pub(crate) fn open_poll_write(replica: &mut Replica, poll: OpId) -> Result<PollWrite, NodeError> {
    let info = held_poll(replica, &poll)?;
    if info.open.is_some() {
        return Err(NodeError::Refused(moot_state::Reason::Unauthorized(
            moot_state::Denied::AlreadyOpen,
        )));
    }
    let (electorate, electorate_hash) = replica
        .electorate_now(&poll, info.lane)
        .map_err(|d| NodeError::Refused(moot_state::Reason::Unauthorized(d)))?;
    if electorate == 0 {
        return Err(NodeError::EmptyElectorate(assembly_id(&info.assembly)));
    }
    Ok(PollWrite {
        body: Body::OpenPoll(OpenPoll {
            poll,
            electorate,
            electorate_hash,
        }),
        lane: info.lane,
        refs: vec![poll],
        covering: false,
    })
}

/// Ops being written in one transaction ([`Node::write_steps`]).
pub(crate) struct Steps<'a> {
    /// The hub's replica, holding the ops written so far.
    pub(crate) replica: &'a mut Replica,
    device: &'a moot_crypto::SecretKey,
    written: Vec<(
        moot_crypto::Authentic<moot_crypto::SignedOp>,
        moot_state::Verdict,
    )>,
}

impl Steps<'_> {
    /// The signing device's public key.
    pub(crate) fn device_key(&self) -> moot_crypto::PublicKey {
        self.device.public()
    }

    /// Writes one op (and any checkpoints it needs) in the replica → its id.
    pub(crate) fn write(&mut self, write: PollWrite) -> Result<OpId, NodeError> {
        let ops = if write.covering {
            self.replica
                .write_covering(self.device, write.lane, &write.body, &write.refs)
        } else {
            self.replica
                .write_ops(self.device, write.lane, &write.body, &write.refs)
        }
        .map_err(|r| NodeError::Refused(r.reason))?;
        let id = ops
            .last()
            .map(|op| op.id())
            .ok_or_else(|| NodeError::Corrupt("nothing written".into()))?;
        for op in ops {
            let verdict = self.replica.verdict(&op.id()).ok_or_else(|| {
                NodeError::Corrupt(format!("written op {} is not in the replica", op.id()))
            })?;
            self.written.push((op, verdict));
        }
        Ok(id)
    }
}

/// What a poll write is: its body, lane and the ops it names, and whether it must follow
/// everything held (closes).
pub(crate) struct PollWrite {
    pub(crate) body: Body,
    pub(crate) lane: Lane,
    pub(crate) refs: Vec<OpId>,
    pub(crate) covering: bool,
}

impl Node {
    /// Writes one op built from the hub's replica, certifying the signer's device first when
    /// needed; stores everything in one durable transaction and refreshes the views. Returns
    /// the op's id.
    pub(crate) fn write_poll_op(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        build: impl FnOnce(&mut Replica) -> Result<PollWrite, NodeError>,
    ) -> Result<OpId, NodeError> {
        self.write_steps(hub, signer, |steps| {
            let write = build(steps.replica)?;
            steps.write(write)
        })
    }

    /// Writes several ops, each built from the replica as the ones before it left it,
    /// certifying the signer's device first when needed; stores them all in one durable
    /// transaction (all or nothing) and refreshes the views.
    pub(crate) fn write_steps<T>(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        build: impl FnOnce(&mut Steps<'_>) -> Result<T, NodeError>,
    ) -> Result<T, NodeError> {
        let _writing = self.own_writes();
        let mut replica = self.replica(hub)?;
        let written = self.certify_if_needed(hub, signer, &mut replica)?;
        let mut steps = Steps {
            replica: &mut replica,
            device: &signer.device,
            written,
        };
        let out = build(&mut steps)?;
        let written = std::mem::take(&mut steps.written);
        self.persist(hub, &written)?;
        self.refresh_after_commit(hub, &mut replica);
        Ok(out)
    }

    /// Creates an assembly (public: guests may read it) → its id.
    pub fn create_assembly(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        name: &str,
        kind: AssemblyKind,
        public: bool,
    ) -> Result<OpId, NodeError> {
        let name = clean_text("assembly name", name)?;
        let lane = if public { Lane::Public } else { Lane::Members };
        self.write_poll_op(hub, signer, |_| {
            Ok(PollWrite {
                body: Body::CreateAssembly(CreateAssembly { name, kind }),
                lane,
                refs: Vec::new(),
                covering: false,
            })
        })
    }

    /// Joins (or leaves) a working group or society.
    pub fn join_assembly(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        assembly: &AssemblyRef,
        joined: bool,
    ) -> Result<OpId, NodeError> {
        self.write_in_assembly(hub, signer, assembly, None, |assembly| {
            Body::Join(Join { assembly, joined })
        })
    }

    /// Seats (or unseats) a member on a committee (a convener of the committee).
    pub fn seat(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        assembly: &AssemblyRef,
        member: PublicKey,
        seated: bool,
    ) -> Result<OpId, NodeError> {
        let named = seated.then_some((member, "those seated on a committee"));
        self.write_in_assembly(hub, signer, assembly, named, |assembly| {
            Body::Seat(Seat {
                assembly,
                member,
                seated,
            })
        })
    }

    /// Appoints (or dismisses) a convener of a created assembly (a steward, or one of its
    /// conveners).
    pub fn appoint_convener(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        assembly: &AssemblyRef,
        member: PublicKey,
        convener: bool,
    ) -> Result<OpId, NodeError> {
        let named = convener.then_some((member, "conveners"));
        self.write_in_assembly(hub, signer, assembly, named, |assembly| {
            Body::Convener(Convener {
                assembly,
                member,
                convener,
            })
        })
    }

    /// Writes an op about a created assembly (`body` of its create op's id), in its lane,
    /// naming it. `named`: a member the op seats or appoints, who must be an active member.
    fn write_in_assembly(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        assembly: &AssemblyRef,
        named: Option<(PublicKey, &'static str)>,
        body: impl FnOnce(OpId) -> Body,
    ) -> Result<OpId, NodeError> {
        let id = created(assembly)?;
        self.write_poll_op(hub, signer, |replica| {
            if let Some((member, role)) = named {
                must_be_members(replica, &[member], role)?;
            }
            Ok(PollWrite {
                body: body(id),
                lane: assembly_lane(replica, id)?,
                refs: vec![id],
                covering: false,
            })
        })
    }

    /// The hub's assemblies: the automatic societies, then the created ones.
    pub fn assemblies(&self, hub: &moot_crypto::HubId) -> Result<Vec<AssemblyView>, NodeError> {
        self.with_read_replica(hub, |replica| {
            Ok(replica.assemblies().iter().map(assembly_view).collect())
        })
    }

    /// Creates a poll → its id.
    pub fn create_poll(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        spec: PollSpec,
    ) -> Result<OpId, NodeError> {
        let checked = check_poll_spec(spec)?;
        self.write_poll_op(hub, signer, |replica| create_poll_write(replica, checked))
    }

    /// Opens a poll: fixes the electorate as the assembly's membership now → the open op's id
    /// (the tiebreak seed).
    pub fn open_poll(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        poll: &OpId,
    ) -> Result<OpId, NodeError> {
        let poll = *poll;
        self.write_poll_op(hub, signer, |replica| open_poll_write(replica, poll))
    }

    /// Casts (or re-casts) the signer's ballot: `scores` by option name (options not named
    /// score 0) → the ballot's id and revision.
    pub fn vote(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        poll: &OpId,
        scores: &[(String, u8)],
    ) -> Result<(OpId, u32), NodeError> {
        let poll = *poll;
        let member = signer.member_id();
        let mut revision = 0;
        let id = self
            .write_poll_op(hub, signer, |replica| {
                let info = held_poll(replica, &poll)?;
                let open = info
                    .open
                    .ok_or_else(|| NodeError::PollNotOpenYet(poll.to_string()))?;
                let mut ballot = vec![0u8; info.options.len()];
                let mut seen = vec![false; info.options.len()];
                for (name, score) in scores {
                    let wanted = moot_text::fold(name);
                    let index = info
                        .options
                        .iter()
                        .position(|o| moot_text::fold(o) == wanted)
                        .ok_or_else(|| NodeError::BadText {
                            what: "option",
                            reason: format!(
                                "{name:?} is not an option of this poll (options: {})",
                                info.options
                                    .iter()
                                    .map(|o| format!("{o:?}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        })?;
                    if seen[index] {
                        return Err(NodeError::BadText {
                            what: "option",
                            reason: format!("{name:?} is scored twice"),
                        });
                    }
                    if *score > moot_state::body::MAX_SCORE {
                        return Err(NodeError::BadText {
                            what: "score",
                            reason: format!("{score} for {name:?} is above 5"),
                        });
                    }
                    seen[index] = true;
                    ballot[index] = *score;
                }
                revision = replica
                    .latest_revision(&poll, &member)
                    .map_or(1, |r| r.saturating_add(1));
                Ok(PollWrite {
                    body: Body::Ballot(Ballot {
                        open,
                        member: member.to_bytes(),
                        revision,
                        scores: ballot,
                    }),
                    lane: info.lane,
                    refs: vec![open],
                    covering: false,
                })
            })
            .map_err(|e| match e {
                NodeError::Refused(moot_state::Reason::Unauthorized(
                    moot_state::Denied::NotInElectorate,
                )) => NodeError::NotInElectorate(member.to_string()),
                other => other,
            })?;
        Ok((id, revision))
    }

    /// Closes the signer's polling station (a station officer) → the station close's id.
    pub fn close_station(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        poll: &OpId,
    ) -> Result<OpId, NodeError> {
        self.close_with(hub, signer, poll, |open| {
            Body::CloseStation(CloseStation { open })
        })
    }

    /// Closes the poll (a returning officer): exactly the ballots held now count → the close's
    /// id.
    pub fn close_poll(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        poll: &OpId,
    ) -> Result<OpId, NodeError> {
        self.close_with(hub, signer, poll, |open| {
            Body::ClosePoll(ClosePoll { open })
        })
    }

    fn close_with(
        &self,
        hub: &moot_crypto::HubId,
        signer: &Signer,
        poll: &OpId,
        body: impl FnOnce(OpId) -> Body,
    ) -> Result<OpId, NodeError> {
        let poll = *poll;
        self.write_poll_op(hub, signer, |replica| {
            let info = held_poll(replica, &poll)?;
            let open = info
                .open
                .ok_or_else(|| NodeError::PollNotOpenYet(poll.to_string()))?;
            Ok(PollWrite {
                body: body(open),
                lane: info.lane,
                refs: vec![open],
                covering: true,
            })
        })
    }

    /// The hub's polls.
    pub fn polls(&self, hub: &moot_crypto::HubId) -> Result<Vec<PollView>, NodeError> {
        self.with_read_replica(hub, |replica| {
            Ok(replica.polls().iter().map(poll_view).collect())
        })
    }

    /// A poll's results: from the stored view when it is current, otherwise recomputed from
    /// the ops (and stored).
    pub fn poll_results(
        &self,
        hub: &moot_crypto::HubId,
        poll: &OpId,
    ) -> Result<PollResults, NodeError> {
        let store = self.store()?;
        let op_count = store.op_count(hub)?;
        if let Some(bytes) = self.view(hub, &view_name(poll))?
            && let Ok(view) = postcard::from_bytes::<PollResults>(&bytes)
            && view.op_count == op_count
        {
            return Ok(view);
        }
        // Stale: the hub is loaded once, its views brought up to date (the roll view only if
        // roll ops were added), and the poll's read back.
        self.with_read_replica(hub, |replica| {
            self.refresh_view(hub, replica)?;
            match self.view(hub, &view_name(poll))? {
                Some(bytes) => postcard::from_bytes::<PollResults>(&bytes)
                    .map_err(|e| NodeError::Corrupt(format!("poll view: {e}"))),
                None => match replica.poll(poll) {
                    Some(_) => Err(NodeError::PollNotOpenYet(poll.to_string())),
                    None => Err(NodeError::NoSuchPoll(poll.to_string())),
                },
            }
        })
    }

    /// The results views of `counts`, stamped with the store's op count, to be stored.
    pub(crate) fn poll_views(
        counts: &PollCounts,
        op_count: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, NodeError> {
        counts
            .0
            .iter()
            .map(|count| {
                let view = results_view(op_count, count);
                let bytes =
                    postcard::to_allocvec(&view).map_err(|e| NodeError::Corrupt(e.to_string()))?;
                Ok((view_name(&count.info.poll), bytes))
            })
            .collect()
    }

    /// Recomputes a poll's results from the signed ops alone — every signature checked again,
    /// every op validated again at its causal position, in a fresh replica — and compares them
    /// with the results this node shows.
    pub fn verify_poll(
        &self,
        hub: &moot_crypto::HubId,
        poll: &OpId,
    ) -> Result<Verification, NodeError> {
        let shown = self.poll_results(hub, poll)?;
        let store = self.store()?;
        let mut replica = Replica::new(
            *hub,
            Limits {
                retain: Retain::IndexOnly,
                ..Limits::default()
            },
        );
        let mut position = 0;
        let mut checked = 0u64;
        loop {
            let batch = store.load_from(hub, position, crate::LOAD_BATCH)?;
            let Some((last, _, _)) = batch.last() else {
                break;
            };
            position = last + 1;
            let bytes: Vec<&[u8]> = batch.iter().map(|(_, op, _)| op.bytes()).collect();
            for insertion in replica.insert_batch(&bytes) {
                if insertion.outcome.kept().is_some() {
                    checked += 1;
                }
            }
        }
        let mut differences = Vec::new();
        let recomputed = match replica.count_poll(poll) {
            Some(Ok(count)) => Some(results_view(shown.op_count, &count)),
            Some(Err(e)) => {
                differences.push(format!("the count fails: {e}"));
                None
            }
            None => {
                differences.push("the poll is not open in the signed ops".into());
                None
            }
        };
        if let Some(recomputed) = &recomputed {
            if recomputed.total != shown.total {
                differences.push("the counted ballots' totals differ".into());
            }
            if recomputed.counted != shown.counted {
                differences.push(format!(
                    "{} ballots counted, {} shown",
                    recomputed.counted, shown.counted
                ));
            }
            if recomputed.excluded != shown.excluded {
                differences.push("the excluded ballots differ".into());
            }
            if recomputed.stations != shown.stations || recomputed.rest != shown.rest {
                differences.push("the stations' shares differ".into());
            }
            if recomputed.flags != shown.flags {
                differences.push("the flags differ".into());
            }
            if recomputed.poll != shown.poll || recomputed.seed != shown.seed {
                differences.push("the poll's open, close or seed differ".into());
            }
        }
        Ok(Verification {
            ok: differences.is_empty(),
            ops_checked: checked,
            counted: recomputed.map_or(0, |r| r.counted),
            differences,
        })
    }
}

/// What `create_poll` is given.
#[derive(Debug, Clone)]
pub struct PollSpec {
    /// The assembly.
    pub assembly: AssemblyRef,
    /// The question.
    pub question: String,
    /// The options.
    pub options: Vec<String>,
    /// Seats (1: STAR).
    pub seats: u16,
    /// Returning officers (empty: the creator).
    pub officers: Vec<PublicKey>,
    /// Station officers.
    pub stations: Vec<PublicKey>,
    /// Ballots needed.
    pub quorum: Option<u32>,
    /// Advisory opening time.
    pub opens_at: Option<u64>,
    /// Advisory closing time.
    pub closes_at: Option<u64>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn utc_times_parse_and_format_as_the_calendar_says() {
        assert_eq!(parse_utc("1970-01-01T00:00Z"), Some(0));
        assert_eq!(parse_utc("2026-12-01T19:30Z"), Some(1_796_153_400));
        assert_eq!(parse_utc("2026-12-01 19:30:00"), Some(1_796_153_400));
        assert_eq!(parse_utc("2024-02-29T23:59:59Z"), Some(1_709_251_199));
        assert_eq!(parse_utc("9999-12-31T23:59:59Z"), Some(253_402_300_799));
        assert_eq!(format_utc(1_796_153_400), "2026-12-01T19:30:00Z");
        for bad in [
            "2026-02-29T00:00Z",
            "2026-13-01T00:00Z",
            "2026-00-10T00:00Z",
            "2026-12-00T00:00Z",
            "2026-12-01T24:00Z",
            "2026-12-01T23:60Z",
            "2026-1-01T00:00Z",
            "1969-12-31T23:59Z",
            "+026-12-01T00:00Z",
            "2026-12-01",
            "2026-12-01T19:30:00:00Z",
            "2026-12-01T19:30+01:00",
            "",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad:?}");
        }
        // Every day of four centuries round-trips (leap years, the 100- and 400-year rules).
        let mut day = 0u64;
        while day < 146_097 + 30 * 365 {
            let seconds = day * 86_400 + (day % 86_400);
            assert_eq!(parse_utc(&format_utc(seconds)), Some(seconds), "{seconds}");
            day += 1;
        }
    }
}
