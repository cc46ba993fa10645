//! The hub's membership roll: members, guests, roles, devices, and the rules for who may
//! change what. [`Roll::authorize`] checks an op against a roll state without changing it and
//! returns the roll **facts** its authorization used (the roll ops that admitted the author,
//! certified the device, granted a role); [`Roll::apply`] applies an authorized roll op.
//!
//! Every fact on the roll remembers the op that established it, so the replica can apply the
//! validity rule: an op counts only if every fact its authorization used comes from a roll op
//! that the resolved roll accepts.

use std::collections::BTreeMap;

use imbl::OrdMap;

use moot_crypto::{HubId, Lane, OpId};

use crate::body::{Body, Contribution, DeviceId, LaneCut, MemberId, Role, Standing, hub_id};

/// The roll ops an authorization used: the author's admission, their device's certification,
/// and a role when the rule needed one (at most three, ascending, no repeats). Shared when
/// cloned: the replica keeps one copy of the facts many roll ops have in common (a steward's,
/// for each member the steward admitted), and numbers a set of one op by the op.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Facts(std::sync::Arc<[OpId]>);

impl Facts {
    pub(crate) fn of(ids: &[OpId]) -> Facts {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Facts(ids.into())
    }

    /// The roll ops used.
    pub fn ops(&self) -> &[OpId] {
        &self.0
    }

    /// These facts and `more` (the assembly and poll ops an authorization at a causal position
    /// also rested on: a convener's appointment, the role that makes one convene everything).
    pub(crate) fn with(&self, more: &[OpId]) -> Facts {
        let mut ids = self.0.to_vec();
        ids.extend_from_slice(more);
        Facts::of(&ids)
    }
}

/// Why an op was not authorized in a roll state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The hub has no genesis yet in the op's causal past.
    #[error("the hub is not founded in this op's causal past")]
    NotFounded,
    /// A second genesis, or a genesis that is not the hub's.
    #[error("not a valid genesis for this hub")]
    BadGenesis,
    /// The author device is not certified in the hub.
    #[error("author device is not certified")]
    UnknownDevice,
    /// The author device was revoked.
    #[error("author device was revoked")]
    RevokedDevice,
    /// The author's member was removed.
    #[error("author was removed from the hub")]
    RemovedAuthor,
    /// The author is not a steward.
    #[error("only a steward may do this")]
    NotSteward,
    /// The author is a guest; this needs a member.
    #[error("guests may not do this")]
    GuestNotAllowed,
    /// The target member is not on the roll, or already removed.
    #[error("no such member on the roll")]
    NoSuchMember,
    /// Roles are for members, not guests.
    #[error("roles are for members, not guests")]
    RoleForGuest,
    /// The target does not hold the role.
    #[error("the member does not hold that role")]
    NoSuchRole,
    /// The device certificate does not verify.
    #[error("device certificate does not verify")]
    BadCertificate,
    /// The device belongs to another member, or was revoked.
    #[error("device is certified for another member or revoked")]
    DeviceTaken,
    /// The author may not change this device or record.
    #[error("not allowed to change another member's device or record")]
    NotYours,
    /// The op comes after a removal or revocation that it does not follow causally, beyond
    /// the sequence number that removal accepted (a back-dated op).
    #[error("written after a removal or revocation cut")]
    BeyondCut,
    /// The op's chain forks at or below the sequence number a removal or revocation it does
    /// not follow accepted: the device signed two ops for one number (a removed member, or a
    /// thief with a revoked device, writing beside an op the cut accepted). The number cannot
    /// tell which op the cut meant, so no op of the chain from the fork on counts.
    #[error("written by a removed member's or revoked device's forked chain, under the cut")]
    ForkedUnderCut,
    /// A roll fact the op's authorization used (an admission, a device certification, a role)
    /// comes from a roll op that the resolved roll does not accept.
    #[error("authorized by roll op {0}, which the resolved roll does not accept")]
    UnacceptedFact(OpId),
    /// A roll op the resolution could not order (cannot happen: the causal order is acyclic;
    /// kept so that nothing can rest on such an op).
    #[error("roll op could not be ordered")]
    Unresolved,
    /// A kind this node does not know: kept and relayed, never applied.
    #[error("a kind this node does not know (kept, not applied)")]
    Unsupported,
    /// Depends on an op this node cannot interpret: kept, judged after an upgrade.
    #[error("needs a newer Moot to judge (kept, not applied)")]
    NeedsUpgrade,
    /// Creating a committee or society needs a steward or a convener.
    #[error("only a steward or a convener may create a committee or society")]
    NotStewardOrConvener,
    /// The author is not a convener of the assembly (nor a steward or hub convener).
    #[error("only a convener of the assembly may do this")]
    NotConvener,
    /// The assembly is not in the op's causal past.
    #[error("no such assembly in this op's causal past")]
    NoSuchAssembly,
    /// An assembly's ops (and its polls' ops) go in the assembly's lane; automatic societies
    /// are members-only.
    #[error("written in the wrong lane for its assembly or poll")]
    AssemblyLane,
    /// Committees are seated by their conveners; automatic societies follow the roll.
    #[error("this assembly cannot be joined or left")]
    NotJoinable,
    /// Seats are for committees.
    #[error("seats are for committees")]
    NotCommittee,
    /// A poll's options must be 2 or more, distinct and not blank; seats fewer than options.
    #[error("a poll needs two or more distinct options and fewer seats than options")]
    BadPoll,
    /// The poll is not in the op's causal past.
    #[error("no such poll in this op's causal past")]
    NoSuchPoll,
    /// The poll was already opened in the op's causal past.
    #[error("the poll is already open")]
    AlreadyOpen,
    /// The electorate recorded in an open is not the assembly's membership at its position.
    #[error("the open records {claimed} voters, but the assembly had {actual} at its position")]
    ElectorateMismatch {
        /// Voters the op claims.
        claimed: u32,
        /// Voters the assembly had.
        actual: u32,
    },
    /// The ballot's poll is not open in its causal past.
    #[error("the poll is not open in this ballot's causal past")]
    PollNotOpen,
    /// The voter is not in the electorate fixed when the poll opened.
    #[error("the voter is not in the poll's electorate")]
    NotInElectorate,
    /// A ballot must score every option from 0 to 5.
    #[error("a ballot must score every option from 0 to 5")]
    BadScores,
    /// The poll was closed in the op's causal past.
    #[error("the poll is closed")]
    PollClosed,
    /// Only a poll's returning officers may close it.
    #[error("only a returning officer of the poll may close it")]
    NotReturningOfficer,
    /// Only a poll's station officers may close a polling station.
    #[error("only a station officer of the poll may close a polling station")]
    NotStationOfficer,
    /// The proposal (or document) the op is about is not named in its deps.
    #[error("no such proposal named in this op's dependencies")]
    NoSuchProposal,
    /// The comment answered is not a comment on the same proposal named in the op's deps.
    #[error("no such comment on this proposal named in this op's dependencies")]
    NoSuchComment,
    /// The amendment is not named in the op's deps.
    #[error("no such amendment named in this op's dependencies")]
    NoSuchAmendment,
    /// Only the proposer or a convener of the proposal's assembly may do this.
    #[error("only the proposer or a convener of the assembly may do this")]
    NotProposerOrConvener,
    /// The proposal was already decided in the op's causal past.
    #[error("the proposal is already decided")]
    AlreadyDecided,
    /// The amendment was already accepted or rejected in the op's causal past.
    #[error("the amendment is already resolved")]
    AlreadyResolved,
    /// Consensus cannot be declared while an objection or a block stands in the op's past.
    #[error("an objection or block stands: consensus cannot be declared")]
    UnresolvedObjection,
    /// A proposal sent to a vote names a poll of its own assembly, named in the op's deps.
    #[error("the poll is not a poll of the proposal's assembly named in this op's dependencies")]
    WrongPoll,
    /// A document change breaks a document rule.
    #[error("document change refused: {0}")]
    Doc(DocDenied),
    /// The offer or request is not named in the op's deps.
    #[error("no such offer or request named in this op's dependencies")]
    NoSuchItem,
    /// The pledge is not named in the op's deps, or is not for this item.
    #[error("no such pledge named in this op's dependencies")]
    NoSuchPledge,
    /// Only an item's author (or a coordinator) may change it.
    #[error("only the item's author or a coordinator may change it")]
    NotYourItem,
    /// Only the pledger may withdraw a pledge.
    #[error("only the pledger may withdraw a pledge")]
    NotYourPledge,
    /// Nobody pledges to their own item.
    #[error("a member cannot pledge to their own offer or request")]
    OwnItem,
    /// An aid op goes in its item's lane.
    #[error("written in the wrong lane for its item")]
    ItemLane,
    /// Only the recipient of a fulfilled gift may pass it on, as an offer.
    #[error("only the recipient of a fulfilled gift may pass it on, as an offer")]
    NotRecipient,
    /// A sealed contact detail is malformed.
    #[error("malformed sealed contact: {0}")]
    BadContact(String),
}

/// Why a document change breaks a document rule (see `body::DocChange`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocDenied {
    /// The change fails the pre-scan (checked when the body is decoded, so not seen here).
    #[error("{0}")]
    Prescan(moot_doc::PrescanError),
    /// The change's automerge actor is not the author device.
    #[error("the automerge actor is not the author's device")]
    ForgedActor,
    /// The change's seq does not follow the device's previous change named in the deps.
    #[error("seq {found} does not follow the device's previous change (expected {expected})")]
    SeqGap {
        /// The seq that would follow.
        expected: u64,
        /// The change's seq.
        found: u64,
    },
    /// The change's op counter does not start after its predecessors' ops.
    #[error("the change's start op {start_op} does not follow its dependencies' ops")]
    StartOp {
        /// The change's start op.
        start_op: u64,
    },
    /// An automerge dependency is not a change of this document named in the op's deps.
    #[error("automerge dependency {} is not a change of this document named in the op's deps", hex_short(.0))]
    UnnamedDependency([u8; 32]),
    /// Only the document's creator op creates (or touches) root objects.
    #[error("only the document's creator change may touch its root objects")]
    RootObject,
    /// A creator change must be its document's first: seq 1, no dependencies.
    #[error("a document's first change must have seq 1 and no dependencies")]
    NotFirst,
}

fn hex_short(bytes: &[u8; 32]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Status of a person on the roll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// A member.
    Member,
    /// A guest.
    Guest,
    /// Removed.
    Removed,
}

impl Status {
    /// `member`, `guest` or `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Member => "member",
            Status::Guest => "guest",
            Status::Removed => "removed",
        }
    }
}

/// The assembly and poll ops only an active member (not a guest) may write, whatever else
/// the replica checks of them at their causal position.
fn members_only(body: &Body) -> bool {
    matches!(
        body,
        Body::Convener(_)
            | Body::Seat(_)
            | Body::CreatePoll(_)
            | Body::OpenPoll(_)
            | Body::Ballot(_)
            | Body::CloseStation(_)
            | Body::ClosePoll(_)
            | Body::CreateProposal(_)
            | Body::DocChange(_)
            | Body::Comment(_)
            | Body::Stance(_)
            | Body::Amend(_)
            | Body::ResolveAmendment(_)
            | Body::Decide(_)
            | Body::AidItem(_)
            | Body::AidUpdate(_)
            | Body::AidPledge(_)
            | Body::AidUnpledge(_)
            | Body::AidContact(_)
    )
}

/// One person on the roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// Name on the roll (members lane; empty until set, and on a guest's replica).
    pub name: String,
    /// The public display name the member published, if any.
    pub public_name: Option<String>,
    /// Member, guest or removed.
    pub status: Status,
    /// The roll op of the current admission (the genesis for the founder).
    pub admitted_by: OpId,
    /// Roles held (empty unless a member), each with the roll op that granted it.
    pub roles: BTreeMap<Role, OpId>,
    /// Constituency.
    pub constituency: Option<String>,
    /// Pledged contribution.
    pub contribution: Option<Contribution>,
}

/// One certified device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Whose device.
    pub member: MemberId,
    /// The roll op that certified it.
    pub certified_by: OpId,
    /// Revoked (lost or stolen)?
    pub revoked: bool,
}

/// A removal's or revocation's cut: ops of `device` with a higher sequence number that do not
/// causally follow `by` are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cut {
    /// The removal or revocation op.
    pub by: OpId,
    /// The last accepted sequence numbers of the cut device.
    pub last_seq: LaneCut,
}

/// The last accepted sequence number per device, as a removal states it.
pub type DeviceCuts = BTreeMap<DeviceId, LaneCut>;

/// The roll: a deterministic function of the valid roll ops.
///
/// Its maps are persistent (`imbl`): a clone shares all unchanged structure, so the replica can
/// keep the roll of many causal pasts at the cost of their differences.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roll {
    /// The hub's name (empty before the genesis).
    pub hub_name: String,
    /// The founder.
    pub founder: Option<MemberId>,
    /// The genesis op: the founder's admission, first device's certification and steward
    /// grant at once.
    pub genesis: Option<OpId>,
    /// Everyone ever admitted, by member id.
    pub members: OrdMap<MemberId, MemberRecord>,
    /// Every certified device.
    pub devices: OrdMap<DeviceId, DeviceRecord>,
    /// Cuts by removed member: ops of their devices beyond a cut are invalid.
    pub member_cuts: OrdMap<MemberId, Vec<(Cut, DeviceCuts)>>,
    /// Cuts by revoked device.
    pub device_cuts: OrdMap<DeviceId, Vec<Cut>>,
    /// Cuts by revoked role grant (the grant op's id): ops resting on the grant, by the
    /// holder's devices beyond a cut, that do not follow the revocation are invalid.
    pub grant_cuts: OrdMap<OpId, Vec<(Cut, DeviceCuts)>>,
    /// Members-only (see [`crate::body::SetAccess`]); false until a steward says so.
    pub members_only: bool,
    /// Stewards in order of seniority (the founder first).
    steward_order: OrdMap<MemberId, u64>,
    next_steward: u64,
}

/// What an op's author is on the roll.
struct Author<'a> {
    member: MemberId,
    record: &'a MemberRecord,
    /// The device's certification and the member's admission.
    facts: [OpId; 2],
}

impl Roll {
    /// The member a device belongs to, if certified.
    pub fn member_of(&self, device: &DeviceId) -> Option<MemberId> {
        self.devices.get(device).map(|d| d.member)
    }

    /// A person's record.
    pub fn member(&self, member: &MemberId) -> Option<&MemberRecord> {
        self.members.get(member)
    }

    /// True if `member` is an active steward.
    pub fn is_steward(&self, member: &MemberId) -> bool {
        self.members
            .get(member)
            .is_some_and(|r| r.status == Status::Member && r.roles.contains_key(&Role::Steward))
    }

    /// Seniority used to order concurrent roll ops: the founder 0, stewards by when they became
    /// steward, everyone else last.
    pub fn rank(&self, member: &MemberId) -> u64 {
        if self.is_steward(member) {
            self.steward_order
                .get(member)
                .copied()
                .unwrap_or(u64::MAX - 1)
        } else {
            u64::MAX
        }
    }

    /// The active (certified, not revoked, not removed) author of an op.
    fn author(&self, device: &DeviceId) -> Result<Author<'_>, Denied> {
        let record = self.devices.get(device).ok_or(Denied::UnknownDevice)?;
        if record.revoked {
            return Err(Denied::RevokedDevice);
        }
        let person = self
            .members
            .get(&record.member)
            .ok_or(Denied::UnknownDevice)?;
        if person.status == Status::Removed {
            return Err(Denied::RemovedAuthor);
        }
        Ok(Author {
            member: record.member,
            record: person,
            facts: [record.certified_by, person.admitted_by],
        })
    }

    /// The roll facts that make `device` an active author: its certification and its
    /// member's admission (`None` if it is not an active author here).
    pub fn author_facts(&self, device: &DeviceId) -> Option<Facts> {
        self.author(device).ok().map(|a| Facts::of(&a.facts))
    }

    /// The author as a steward: the facts include the steward grant.
    fn steward(&self, device: &DeviceId) -> Result<Facts, Denied> {
        let author = self.author(device)?;
        match author.record.roles.get(&Role::Steward) {
            Some(grant) if author.record.status == Status::Member => {
                Ok(Facts::of(&[author.facts[0], author.facts[1], *grant]))
            }
            _ => Err(Denied::NotSteward),
        }
    }

    /// The author as an active member (not a guest).
    fn voting_member(&self, device: &DeviceId) -> Result<Facts, Denied> {
        let author = self.author(device)?;
        if author.record.status != Status::Member {
            return Err(Denied::GuestNotAllowed);
        }
        Ok(Facts::of(&author.facts))
    }

    /// The author as a steward or a (hub) convener: the facts include the role's grant.
    pub fn steward_or_convener(&self, device: &DeviceId) -> Result<Facts, Denied> {
        let author = self.author(device)?;
        let grant = [Role::Steward, Role::Convener]
            .iter()
            .find_map(|role| author.record.roles.get(role));
        match grant {
            Some(grant) if author.record.status == Status::Member => {
                Ok(Facts::of(&[author.facts[0], author.facts[1], *grant]))
            }
            _ => Err(Denied::NotStewardOrConvener),
        }
    }

    /// True if `member` is an active member holding the steward or convener role: they may
    /// convene any assembly.
    pub fn convenes_all(&self, member: &MemberId) -> bool {
        self.members.get(member).is_some_and(|r| {
            r.status == Status::Member
                && (r.roles.contains_key(&Role::Steward) || r.roles.contains_key(&Role::Convener))
        })
    }

    /// The grant that makes `member` convene every assembly (see [`Roll::convenes_all`]): the
    /// steward grant, else the convener grant, as [`Roll::steward_or_convener`] picks.
    pub(crate) fn convener_grant(&self, member: &MemberId) -> Option<OpId> {
        let record = self
            .members
            .get(member)
            .filter(|r| r.status == Status::Member)?;
        [Role::Steward, Role::Convener]
            .iter()
            .find_map(|role| record.roles.get(role))
            .copied()
    }

    /// The grant that lets `member` change anyone's offers and requests: the coordinator role,
    /// or the steward role (stewards manage the whole hub).
    pub fn coordinator_grant(&self, member: &MemberId) -> Option<OpId> {
        let record = self
            .members
            .get(member)
            .filter(|r| r.status == Status::Member)?;
        [Role::Coordinator, Role::Steward]
            .iter()
            .find_map(|role| record.roles.get(role))
            .copied()
    }

    /// True if `member` is an active member (not a guest, not removed).
    pub fn is_member(&self, member: &MemberId) -> bool {
        self.members
            .get(member)
            .is_some_and(|r| r.status == Status::Member)
    }

    /// The author acting on their own record, or a steward.
    fn self_or_steward(&self, device: &DeviceId, member: &MemberId) -> Result<Facts, Denied> {
        let by = self.author(device)?;
        if by.member == *member {
            return Ok(Facts::of(&by.facts));
        }
        self.steward(device).map_err(|_| Denied::NotYours)
    }

    fn active_target(&self, member: &MemberId) -> Result<&MemberRecord, Denied> {
        match self.members.get(member) {
            Some(r) if r.status != Status::Removed => Ok(r),
            _ => Err(Denied::NoSuchMember),
        }
    }

    /// Checks whether `author` may write `body` in `lane` in this state, and returns the roll
    /// facts the decision used. Changes nothing. Signatures inside bodies (device certificates)
    /// are not re-checked here: they do not depend on the state, so the replica checks them once
    /// when the op arrives (`Body::check_certificates`).
    ///
    /// Lane rule: a members-lane op of any kind, known or not, needs an active member (not a
    /// guest) as its author.
    pub fn authorize(
        &self,
        hub: &HubId,
        author: &DeviceId,
        lane: Lane,
        body: &Body,
    ) -> Result<Facts, Denied> {
        let facts = self.authorize_body(hub, author, body)?;
        // Assembly and poll ops (but joins) were authorized for members only already.
        if lane == Lane::Members
            && !(members_only(body) || matches!(body, Body::CreateAssembly(_)))
            && self.author(author)?.record.status != Status::Member
        {
            return Err(Denied::GuestNotAllowed);
        }
        Ok(facts)
    }

    /// [`Roll::authorize`], also returning the author's member. Ballots (the high-volume kind)
    /// and the other member-only assembly and poll ops look the author up once.
    pub fn authorize_member(
        &self,
        hub: &HubId,
        author: &DeviceId,
        lane: Lane,
        body: &Body,
    ) -> Result<(Facts, Option<MemberId>), Denied> {
        match body {
            _ if members_only(body) && self.founder.is_some() => {
                let by = self.author(author)?;
                if by.record.status != Status::Member {
                    return Err(Denied::GuestNotAllowed);
                }
                Ok((Facts::of(&by.facts), Some(by.member)))
            }
            _ => {
                let facts = self.authorize(hub, author, lane, body)?;
                Ok((facts, self.member_of(author)))
            }
        }
    }

    fn authorize_body(&self, hub: &HubId, author: &DeviceId, body: &Body) -> Result<Facts, Denied> {
        if let Body::Found(found) = body {
            if self.founder.is_some() {
                return Err(Denied::BadGenesis);
            }
            // The device certificate was checked once, on arrival (`Body::check_certificates`).
            let genuine = hub_id(&found.founder, &found.nonce) == *hub;
            return if genuine {
                Ok(Facts::default())
            } else {
                Err(Denied::BadGenesis)
            };
        }
        if self.founder.is_none() {
            return Err(Denied::NotFounded);
        }
        match body {
            Body::Found(_) => Err(Denied::BadGenesis),
            Body::Admit(_) => self.steward(author),
            Body::Remove(remove) => {
                let facts = self.steward(author)?;
                self.active_target(&remove.member)?;
                Ok(facts)
            }
            Body::Grant(change) => {
                let facts = self.steward(author)?;
                match self.active_target(&change.member)?.status {
                    Status::Member => Ok(facts),
                    _ => Err(Denied::RoleForGuest),
                }
            }
            Body::Revoke(change) => {
                let facts = self.steward(author)?;
                if self
                    .active_target(&change.member)?
                    .roles
                    .contains_key(&change.role)
                {
                    Ok(facts)
                } else {
                    Err(Denied::NoSuchRole)
                }
            }
            Body::CertifyDevice(certify) => {
                let target = self.active_target(&certify.member)?;
                // The certificate itself was checked once, on arrival.
                if self
                    .devices
                    .get(&certify.device)
                    .is_some_and(|d| d.member != certify.member || d.revoked)
                {
                    return Err(Denied::DeviceTaken);
                }
                // The new device may announce its own certificate (the fact it relies on is
                // its member's admission); otherwise the author must be the same member's
                // device or a steward.
                if *author == certify.device {
                    return Ok(Facts::of(&[target.admitted_by]));
                }
                self.self_or_steward(author, &certify.member)
            }
            Body::RevokeDevice(revoke) => {
                let owner = self
                    .devices
                    .get(&revoke.device)
                    .ok_or(Denied::UnknownDevice)?;
                self.self_or_steward(author, &owner.member)
            }
            Body::PublicName(public) => {
                let by = self.author(author)?;
                if by.member != public.member {
                    return Err(Denied::NotYours);
                }
                Ok(Facts::of(&by.facts))
            }
            Body::SetName(set) => {
                let facts = self.self_or_steward(author, &set.member)?;
                self.active_target(&set.member)?;
                Ok(facts)
            }
            Body::SetConstituency(set) => {
                let facts = self.steward(author)?;
                self.active_target(&set.member)?;
                Ok(facts)
            }
            Body::SetAccess(_) => self.steward(author),
            Body::SetContribution(set) => {
                let facts = self.self_or_steward(author, &set.member)?;
                if self.author(author)?.record.status != Status::Member {
                    return Err(Denied::GuestNotAllowed);
                }
                self.active_target(&set.member)?;
                Ok(facts)
            }
            Body::CreateAssembly(create) => {
                let by = self.voting_member(author)?;
                match create.kind {
                    crate::body::AssemblyKind::WorkingGroup => Ok(by),
                    _ => self.steward_or_convener(author),
                }
            }
            // Who may do these in an assembly or poll is the replica's check at the op's causal
            // position (assemblies and polls are not on the roll); the roll decides standing.
            Body::Convener(_)
            | Body::Seat(_)
            | Body::CreatePoll(_)
            | Body::OpenPoll(_)
            | Body::Ballot(_)
            | Body::CloseStation(_)
            | Body::ClosePoll(_)
            | Body::CreateProposal(_)
            | Body::DocChange(_)
            | Body::Comment(_)
            | Body::Stance(_)
            | Body::Amend(_)
            | Body::ResolveAmendment(_)
            | Body::Decide(_)
            | Body::AidItem(_)
            | Body::AidUpdate(_)
            | Body::AidPledge(_)
            | Body::AidUnpledge(_)
            | Body::AidContact(_) => self.voting_member(author),
            Body::Join(_) | Body::Checkpoint(_) | Body::Unknown(_) => {
                self.author(author).map(|a| Facts::of(&a.facts))
            }
        }
    }

    /// Applies an authorized roll op by `author`; `op` identifies it (for cuts).
    pub fn apply(&mut self, op: OpId, author: &DeviceId, body: &Body) {
        let cut = |last_seq| Cut { by: op, last_seq };
        match body {
            Body::Found(found) => {
                self.hub_name = found.name.clone();
                self.founder = Some(found.founder);
                self.members.insert(
                    found.founder,
                    MemberRecord {
                        name: String::new(),
                        public_name: None,
                        status: Status::Member,
                        admitted_by: op,
                        roles: BTreeMap::from([(Role::Steward, op)]),
                        constituency: None,
                        contribution: None,
                    },
                );
                self.devices.insert(
                    *author,
                    DeviceRecord {
                        member: found.founder,
                        certified_by: op,
                        revoked: false,
                    },
                );
                self.steward_order.insert(found.founder, 0);
                self.next_steward = 1;
                self.genesis = Some(op);
            }
            Body::Admit(admit) => {
                let status = match admit.standing {
                    Standing::Member => Status::Member,
                    Standing::Guest => Status::Guest,
                };
                let record = self
                    .members
                    .entry(admit.member)
                    .or_insert_with(|| MemberRecord {
                        name: String::new(),
                        public_name: None,
                        status,
                        admitted_by: op,
                        roles: BTreeMap::new(),
                        constituency: None,
                        contribution: None,
                    });
                // A re-admission that changes nothing (same standing) keeps the admission that
                // stands: otherwise a no-op re-admission by a steward removed concurrently would
                // make every op the member wrote after it rest on an unaccepted fact.
                if record.status != status {
                    record.admitted_by = op;
                }
                record.status = status;
                if status != Status::Member {
                    record.roles.clear();
                    self.steward_order.remove(&admit.member);
                }
            }
            Body::Remove(remove) => {
                if let Some(record) = self.members.get_mut(&remove.member) {
                    record.status = Status::Removed;
                    record.roles.clear();
                }
                self.steward_order.remove(&remove.member);
                let cuts: DeviceCuts = remove.cuts.iter().copied().collect();
                let mut list = self
                    .member_cuts
                    .get(&remove.member)
                    .cloned()
                    .unwrap_or_default();
                list.push((cut(LaneCut::default()), cuts));
                self.member_cuts.insert(remove.member, list);
            }
            Body::Grant(change) => {
                // A grant of a role already held keeps the grant that stands (see Admit).
                if let Some(record) = self.members.get_mut(&change.member) {
                    record.roles.entry(change.role).or_insert(op);
                }
                if change.role == Role::Steward && !self.steward_order.contains_key(&change.member)
                {
                    self.steward_order.insert(change.member, self.next_steward);
                    self.next_steward += 1;
                }
            }
            Body::Revoke(change) => {
                if let Some(grant) = self
                    .members
                    .get_mut(&change.member)
                    .and_then(|record| record.roles.remove(&change.role))
                    && let Some(cuts) = &change.cuts
                {
                    let cuts: DeviceCuts = cuts.iter().copied().collect();
                    self.grant_cuts
                        .entry(grant)
                        .or_default()
                        .push((cut(LaneCut::default()), cuts));
                }
                if change.role == Role::Steward {
                    self.steward_order.remove(&change.member);
                }
            }
            Body::CertifyDevice(certify) => {
                if !self.devices.contains_key(&certify.device) {
                    self.devices.insert(
                        certify.device,
                        DeviceRecord {
                            member: certify.member,
                            certified_by: op,
                            revoked: false,
                        },
                    );
                }
            }
            Body::RevokeDevice(revoke) => {
                if let Some(device) = self.devices.get_mut(&revoke.device) {
                    device.revoked = true;
                }
                self.device_cuts
                    .entry(revoke.device)
                    .or_default()
                    .push(cut(revoke.cut));
            }
            Body::PublicName(public) => {
                if let Some(record) = self.members.get_mut(&public.member) {
                    record.public_name = public.name.clone();
                }
            }
            Body::SetName(set) => {
                if let Some(record) = self.members.get_mut(&set.member) {
                    record.name = set.name.clone();
                }
            }
            Body::SetConstituency(set) => {
                if let Some(record) = self.members.get_mut(&set.member) {
                    record.constituency = set.constituency.clone();
                }
            }
            Body::SetAccess(set) => self.members_only = set.members_only,
            Body::SetContribution(set) => {
                if let Some(record) = self.members.get_mut(&set.member) {
                    record.contribution = set.contribution.clone();
                }
            }
            // Assemblies and polls are derived by the replica, not kept on the roll.
            Body::CreateAssembly(_)
            | Body::Convener(_)
            | Body::Join(_)
            | Body::Seat(_)
            | Body::CreatePoll(_)
            | Body::OpenPoll(_)
            | Body::Ballot(_)
            | Body::CloseStation(_)
            | Body::ClosePoll(_)
            | Body::CreateProposal(_)
            | Body::DocChange(_)
            | Body::Comment(_)
            | Body::Stance(_)
            | Body::Amend(_)
            | Body::ResolveAmendment(_)
            | Body::Decide(_)
            | Body::AidItem(_)
            | Body::AidUpdate(_)
            | Body::AidPledge(_)
            | Body::AidUnpledge(_)
            | Body::AidContact(_)
            | Body::Checkpoint(_)
            | Body::Unknown(_) => {}
        }
    }

    /// The revocation cuts of the role grant `grant` that apply to ops by `device` resting on
    /// it: `(cut, last accepted seqs of this device)` (a device the revocation did not list is
    /// cut at 0).
    pub fn grant_cuts_for(&self, grant: &OpId, device: &DeviceId) -> Vec<(Cut, LaneCut)> {
        // The genesis, the founder's steward grant, is also their admission and their first
        // device's certification: every op of the founder's rests on it, and a cut of it would
        // cut them all. It cuts nothing (a node takes the founder's steward role away with a
        // removal and a re-admission instead, whose cut is a removal's: `moot member update`);
        // their roll ops beyond the cut still wait for the revocation and are judged without the
        // role.
        if self.genesis == Some(*grant) {
            return Vec::new();
        }
        self.grant_cuts
            .get(grant)
            .into_iter()
            .flatten()
            .map(|(cut, devices)| (*cut, devices.get(device).copied().unwrap_or_default()))
            .collect()
    }

    /// True if an op by `device` at `seq` in `lane` resting on the roll facts `facts` is beyond
    /// the cut of a revocation of one of them (a role grant). An op that causally follows the
    /// revocation cannot rest on the revoked grant (the role is gone in its past), so no
    /// causal check is needed here.
    pub fn beyond_grant_cut(
        &self,
        facts: &[OpId],
        device: &DeviceId,
        lane: Lane,
        seq: u64,
    ) -> bool {
        !self.grant_cuts.is_empty()
            && facts.iter().any(|grant| {
                self.grant_cuts_for(grant, device)
                    .iter()
                    .any(|(_, last)| seq > last.get(lane))
            })
    }

    /// The cuts that apply to ops by `device`: `(cut, last accepted seqs of this device)`.
    pub fn cuts_for(&self, device: &DeviceId) -> Vec<(Cut, LaneCut)> {
        let mut out = Vec::new();
        // Most rolls have no cuts at all: nothing to look up.
        if self.device_cuts.is_empty() && self.member_cuts.is_empty() {
            return out;
        }
        if let Some(cuts) = self.device_cuts.get(device) {
            out.extend(cuts.iter().map(|c| (*c, c.last_seq)));
        }
        if let Some(member) = self.member_of(device)
            && let Some(removals) = self.member_cuts.get(&member)
        {
            for (cut, devices) in removals {
                out.push((*cut, devices.get(device).copied().unwrap_or_default()));
            }
        }
        out
    }
}
