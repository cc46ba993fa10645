//! Typed op bodies: the op `kind` says which, the body bytes are its postcard encoding.
//!
//! # Kinds
//! Kinds are numbered by **family**, in fixed ranges, and a number is never reused:
//!
//! | range | family |
//! | --- | --- |
//! | `0x0001..=0x00FF` | the roll (low-volume governance: genesis, admissions, roles, devices) |
//! | `0x0100..=0x01FF` | assemblies |
//! | `0x0200..=0x02FF` | deliberation and documents |
//! | `0x0300..=0x03FF` | polls |
//! | `0x0400..=0x04FF` | mutual aid |
//! | `0x0F00..=0x0FFF` | node housekeeping (checkpoints) |
//!
//! Which kinds are **roll ops** — resolved together by the seniority and cut rules — is the
//! explicit list [`kind::ROLL_KINDS`], not "every known kind". Each known kind has one lane
//! ([`kind::lane_of`]): what validation of public content needs (genesis, keys, certificates,
//! roles, admissions, removals) is public; names, constituencies and pledged contributions are
//! personal data (membership of a political party is sensitive) and travel in the members
//! lane. A member may publish a public display name for themself ([`PublicName`]).
//!
//! A kind this node does not know (written by a newer node) decodes to [`Body::Unknown`]: the
//! op is kept and passed on, its author's standing and lane are checked, and it is not applied
//! (the replica's `Unsupported` outcome). A known kind whose bytes do not decode is malformed.

use moot_crypto::{HubId, Lane, OpId, PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A member's id: their member public key.
pub type MemberId = PublicKey;
/// A device's id: its device public key (the author of ops).
pub type DeviceId = PublicKey;

/// Longest name, constituency or hub name, in bytes.
pub const MAX_TEXT_BYTES: usize = 200;
/// Most device cuts one removal may carry.
pub const MAX_CUTS: usize = 64;
/// The protocol version this code speaks: the kinds it knows and their rules. A hub records
/// the version of the node that founded it in its genesis.
pub const PROTOCOL: u16 = 2;

/// Op kinds, by family.
pub mod kind {
    use std::ops::RangeInclusive;

    use moot_crypto::Lane;

    /// The roll family.
    pub const ROLL: RangeInclusive<u16> = 0x0001..=0x00FF;
    /// Assemblies.
    pub const ASSEMBLIES: RangeInclusive<u16> = 0x0100..=0x01FF;
    /// Deliberation and documents.
    pub const DOCUMENTS: RangeInclusive<u16> = 0x0200..=0x02FF;
    /// Polls.
    pub const POLLS: RangeInclusive<u16> = 0x0300..=0x03FF;
    /// Mutual aid.
    pub const AID: RangeInclusive<u16> = 0x0400..=0x04FF;
    /// Node housekeeping.
    pub const HOUSEKEEPING: RangeInclusive<u16> = 0x0F00..=0x0FFF;

    /// [`super::Found`]: the genesis of a hub. Public.
    pub const FOUND: u16 = 0x0001;
    /// [`super::Admit`]. Public.
    pub const ADMIT: u16 = 0x0002;
    /// [`super::Remove`]. Public.
    pub const REMOVE: u16 = 0x0003;
    /// [`super::RoleChange`] granting a role. Public.
    pub const GRANT: u16 = 0x0004;
    /// [`super::RoleChange`] revoking a role. Public.
    pub const REVOKE: u16 = 0x0005;
    /// [`super::CertifyDevice`]. Public.
    pub const CERTIFY_DEVICE: u16 = 0x0006;
    /// [`super::RevokeDevice`]. Public.
    pub const REVOKE_DEVICE: u16 = 0x0007;
    // 0x0008: retired (protocol 1's self-update of constituency and contribution).
    /// [`super::PublicName`]: a member's own public display name. Public.
    pub const PUBLIC_NAME: u16 = 0x0009;
    /// [`super::SetName`]: a person's name on the roll. Members lane.
    pub const SET_NAME: u16 = 0x0010;
    /// [`super::SetConstituency`]. Members lane; stewards only.
    pub const SET_CONSTITUENCY: u16 = 0x0011;
    /// [`super::SetContribution`]. Members lane.
    pub const SET_CONTRIBUTION: u16 = 0x0012;
    /// [`super::SetAccess`]: who may receive anything of the hub. Public; stewards only.
    pub const SET_ACCESS: u16 = 0x0013;
    /// [`super::CreateAssembly`]: a working group, committee or society. Either lane (the
    /// lane is the assembly's: public, or members-only).
    pub const CREATE_ASSEMBLY: u16 = 0x0101;
    /// [`super::Convener`]: appoint or dismiss a convener of an assembly. The assembly's lane.
    pub const CONVENER: u16 = 0x0102;
    /// [`super::Join`]: join or leave a working group or society. The assembly's lane.
    pub const JOIN: u16 = 0x0103;
    /// [`super::Seat`]: seat or unseat a member of a committee. The assembly's lane.
    pub const SEAT: u16 = 0x0104;
    /// [`super::CreatePoll`]. The assembly's lane.
    pub const CREATE_POLL: u16 = 0x0301;
    /// [`super::OpenPoll`]: fixes the electorate and the tiebreak seed. The poll's lane.
    pub const OPEN_POLL: u16 = 0x0302;
    /// [`super::Ballot`]. The poll's lane. Not a roll op: ballots are the high-volume kind.
    pub const BALLOT: u16 = 0x0303;
    /// [`super::CloseStation`]: a station officer fixes a branch meeting's ballots.
    pub const CLOSE_STATION: u16 = 0x0304;
    /// [`super::ClosePoll`]: a returning officer fixes which ballots count.
    pub const CLOSE_POLL: u16 = 0x0305;
    /// [`super::CreateProposal`]: a proposal in an assembly, and its document's first change.
    /// The assembly's lane.
    pub const CREATE_PROPOSAL: u16 = 0x0201;
    /// [`super::DocChange`]: one automerge change to a document. The document's lane.
    pub const DOC_CHANGE: u16 = 0x0202;
    /// [`super::Comment`] on a proposal. The proposal's lane.
    pub const COMMENT: u16 = 0x0203;
    /// [`super::Stance`] on a proposal. The proposal's lane.
    pub const STANCE: u16 = 0x0204;
    /// [`super::Amend`]: a proposed change to a proposal's text. The proposal's lane.
    pub const AMEND: u16 = 0x0205;
    /// [`super::ResolveAmendment`]: accepted or rejected. The proposal's lane.
    pub const RESOLVE_AMENDMENT: u16 = 0x0206;
    /// [`super::Decide`]: a proposal's outcome. The proposal's lane.
    pub const DECIDE: u16 = 0x0207;
    /// [`super::AidItem`]: an offer or a request (either lane: the author's choice).
    pub const AID_ITEM: u16 = 0x0401;
    /// [`super::AidUpdate`]: an item edited, fulfilled, withdrawn or expired. The item's lane.
    pub const AID_UPDATE: u16 = 0x0402;
    /// [`super::AidPledge`]: a member pledges to meet an item. The item's lane.
    pub const AID_PLEDGE: u16 = 0x0403;
    /// [`super::AidUnpledge`]: the pledger withdraws a pledge. The item's lane.
    pub const AID_UNPLEDGE: u16 = 0x0404;
    /// [`super::AidContact`]: the item's author answers a pledge with their contact, sealed to
    /// the pledger. The item's lane.
    pub const AID_CONTACT: u16 = 0x0405;
    /// [`super::Checkpoint`]: names many heads at once, so later ops can depend on all of
    /// them within the dependency limit. Either lane.
    pub const CHECKPOINT: u16 = 0x0F01;

    /// The governance kinds of assemblies and polls: low-volume ops that later ops' validity
    /// depends on (who convenes, who is in an assembly, which polls are open and closed).
    /// They are roll ops, so the causal past of any op names them exactly.
    pub const GOVERNANCE_KINDS: [u16; 8] = [
        CREATE_ASSEMBLY,
        CONVENER,
        JOIN,
        SEAT,
        CREATE_POLL,
        OPEN_POLL,
        CLOSE_STATION,
        CLOSE_POLL,
    ];

    /// True if `kind` is an assembly or poll governance op.
    pub fn is_governance(kind: u16) -> bool {
        GOVERNANCE_KINDS.contains(&kind)
    }

    /// The kinds resolved as roll ops (seniority order, cuts). Only low-volume governance ops.
    pub const ROLL_KINDS: [u16; 20] = [
        FOUND,
        ADMIT,
        REMOVE,
        GRANT,
        REVOKE,
        CERTIFY_DEVICE,
        REVOKE_DEVICE,
        PUBLIC_NAME,
        SET_NAME,
        SET_CONSTITUENCY,
        SET_CONTRIBUTION,
        SET_ACCESS,
        CREATE_ASSEMBLY,
        CONVENER,
        JOIN,
        SEAT,
        CREATE_POLL,
        OPEN_POLL,
        CLOSE_STATION,
        CLOSE_POLL,
    ];

    /// A known kind's name (`snake_case`, as reports and the activity list show it), or
    /// `unknown`.
    pub fn name(kind: u16) -> &'static str {
        match kind {
            FOUND => "found",
            ADMIT => "admit",
            REMOVE => "remove",
            GRANT => "grant",
            REVOKE => "revoke",
            CERTIFY_DEVICE => "certify_device",
            REVOKE_DEVICE => "revoke_device",
            PUBLIC_NAME => "public_name",
            SET_NAME => "set_name",
            SET_CONSTITUENCY => "set_constituency",
            SET_CONTRIBUTION => "set_contribution",
            SET_ACCESS => "set_access",
            CREATE_ASSEMBLY => "create_assembly",
            CONVENER => "convener",
            JOIN => "join",
            SEAT => "seat",
            CREATE_POLL => "create_poll",
            OPEN_POLL => "open_poll",
            BALLOT => "ballot",
            CLOSE_STATION => "close_station",
            CLOSE_POLL => "close_poll",
            CREATE_PROPOSAL => "create_proposal",
            DOC_CHANGE => "doc_change",
            COMMENT => "comment",
            STANCE => "stance",
            AMEND => "amend",
            RESOLVE_AMENDMENT => "resolve_amendment",
            DECIDE => "decide",
            AID_ITEM => "aid_item",
            AID_UPDATE => "aid_update",
            AID_PLEDGE => "aid_pledge",
            AID_UNPLEDGE => "aid_unpledge",
            AID_CONTACT => "aid_contact",
            CHECKPOINT => "checkpoint",
            _ => "unknown",
        }
    }

    /// The family of a kind by its range: `roll`, `assemblies`, `documents`, `polls`, `aid`,
    /// `housekeeping`, or `unknown`.
    pub fn family(kind: u16) -> &'static str {
        if ROLL.contains(&kind) {
            "roll"
        } else if ASSEMBLIES.contains(&kind) {
            "assemblies"
        } else if DOCUMENTS.contains(&kind) {
            "documents"
        } else if POLLS.contains(&kind) {
            "polls"
        } else if AID.contains(&kind) {
            "aid"
        } else if HOUSEKEEPING.contains(&kind) {
            "housekeeping"
        } else {
            "unknown"
        }
    }

    /// True if `kind` is a roll op this node knows.
    pub fn is_roll(kind: u16) -> bool {
        ROLL_KINDS.contains(&kind)
    }

    /// The lane a known kind must be written in (`None`: either lane, or unknown).
    pub fn lane_of(kind: u16) -> Option<Lane> {
        match kind {
            FOUND | ADMIT | REMOVE | GRANT | REVOKE | CERTIFY_DEVICE | REVOKE_DEVICE
            | PUBLIC_NAME | SET_ACCESS => Some(Lane::Public),
            SET_NAME | SET_CONSTITUENCY | SET_CONTRIBUTION => Some(Lane::Members),
            _ => None,
        }
    }
}

/// Standing in the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Standing {
    /// A member: votes, takes part in assemblies.
    Member,
    /// A guest: reads public spaces, never votes.
    Guest,
}

/// A role a member can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Admits and removes members, manages the roll.
    Steward,
    /// Runs an assembly, opens and closes its polls.
    Convener,
    /// Coordinates the mutual-aid board: may change or close any member's offer or request.
    Coordinator,
}

impl Role {
    /// `steward`, `convener` or `coordinator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Steward => "steward",
            Role::Convener => "convener",
            Role::Coordinator => "coordinator",
        }
    }
}

/// How often a pledged contribution is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Period {
    /// Every month.
    Month,
    /// Every quarter.
    Quarter,
    /// Every year.
    Year,
}

/// A pledged contribution: a record, not a payment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Contribution {
    /// An amount in minor units (pence) per period.
    Pledge {
        /// Minor units per period.
        amount_minor: u64,
        /// The period.
        period: Period,
    },
    /// Waived for hardship.
    HardshipWaiver,
}

/// The genesis of a hub, written by the founder's first device with `seq` 1 and no deps, in
/// the public lane. (The founder's name follows in a members-lane [`SetName`].)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The hub's name.
    pub name: String,
    /// The founder's member key; the hub id is `hub_id(founder, nonce)`.
    pub founder: MemberId,
    /// Random bytes making the hub id unique.
    pub nonce: [u8; 16],
    /// The [`PROTOCOL`] version of the founding node.
    pub protocol: u16,
    /// The founder's member-key signature certifying the authoring device.
    pub device_certificate: Certificate,
}

/// A member key's signature over `("moot/device/v1\0" || hub || device)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Certificate(#[serde(with = "signature_bytes")] pub [u8; 64]);

mod signature_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let bytes: &[u8] = <&[u8]>::deserialize(d)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::invalid_length(bytes.len(), &"64 bytes"))
    }
}

const CERT_DOMAIN: &[u8] = b"moot/device/v1\0";
const HUB_DOMAIN: &[u8] = b"moot/hub/v1\0";

fn certificate_message(hub: &HubId, device: &DeviceId) -> Vec<u8> {
    let mut message = CERT_DOMAIN.to_vec();
    message.extend_from_slice(&hub.0);
    message.extend_from_slice(&device.to_bytes());
    message
}

impl Certificate {
    /// The member key `member` certifies `device` for `hub`.
    pub fn issue(member: &SecretKey, hub: &HubId, device: &DeviceId) -> Self {
        Certificate(member.sign(&certificate_message(hub, device)))
    }

    /// True if `member` certified `device` for `hub`.
    pub fn verify(&self, member: &MemberId, hub: &HubId, device: &DeviceId) -> bool {
        member.verify(&certificate_message(hub, device), &self.0)
    }
}

/// The id of the hub founded by `founder` with `nonce`.
pub fn hub_id(founder: &MemberId, nonce: &[u8; 16]) -> HubId {
    let mut hasher = Sha256::new();
    hasher.update(HUB_DOMAIN);
    hasher.update(founder.to_bytes());
    hasher.update(nonce);
    HubId(hasher.finalize().into())
}

/// Admit (or re-admit, or change the standing of) a member or guest. Stewards only. Public:
/// the name and other personal data follow in members-lane ops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admit {
    /// The member key admitted.
    pub member: MemberId,
    /// Member or guest.
    pub standing: Standing,
}

/// The last accepted sequence number of one device in each lane (chains are per lane).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct LaneCut {
    /// Last accepted `seq` in the public lane.
    pub public: u64,
    /// Last accepted `seq` in the members lane.
    pub members: u64,
}

impl LaneCut {
    /// The last accepted `seq` in `lane`.
    pub fn get(&self, lane: Lane) -> u64 {
        match lane {
            Lane::Public => self.public,
            Lane::Members => self.members,
        }
    }
}

/// Remove a member or guest. Stewards only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remove {
    /// Who is removed.
    pub member: MemberId,
    /// For each of their devices, the last sequence number in each lane the remover accepts.
    /// Their ops beyond it that do not causally follow this removal are invalid (this stops a
    /// removed member from back-dating ops). Devices not listed are cut at 0.
    pub cuts: Vec<(DeviceId, LaneCut)>,
}

/// Grant a role. Stewards only; roles go to members, not guests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChange {
    /// Whose role.
    pub member: MemberId,
    /// Which role.
    pub role: Role,
}

/// Revoke a role. Stewards only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRole {
    /// Whose role.
    pub member: MemberId,
    /// Which role.
    pub role: Role,
    /// For each of the member's devices, the last sequence number in each lane the revoker
    /// accepts, as in [`Remove::cuts`]: their ops beyond it that rest on the revoked grant and
    /// do not causally follow this revocation are invalid (without it, an ex-officer could go
    /// on opening polls by never naming the revocation). Devices not listed are cut at 0.
    /// `None`: a revocation written before revocations carried cuts, which cuts nothing.
    pub cuts: Option<Vec<(DeviceId, LaneCut)>>,
}

/// Certify a device for a member. Carries the member key's certificate, so the new device can
/// write it itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifyDevice {
    /// The member.
    pub member: MemberId,
    /// The device.
    pub device: DeviceId,
    /// The member key's certificate for the device.
    pub certificate: Certificate,
}

/// Revoke a device (lost or stolen). By a device of the same member, or a steward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeDevice {
    /// The device.
    pub device: DeviceId,
    /// The last sequence numbers of the device accepted (see [`Remove::cuts`]).
    pub cut: LaneCut,
}

/// A member's own public display name (`None` withdraws it). By the member themself. Without
/// one, guests see a member only as a pseudonymous key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicName {
    /// Whose name (the author's own member).
    pub member: MemberId,
    /// The name shown to guests.
    pub name: Option<String>,
}

/// A person's name on the roll (members lane). By a steward, or by the member themself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetName {
    /// Whose name.
    pub member: MemberId,
    /// The name.
    pub name: String,
}

/// Who may receive the hub's ops from its nodes (public lane; stewards only). A public hub
/// (the default) gives guests and unknown peers its public lane; a members-only hub gives
/// unknown peers nothing at all — not its roll, not its ops — and guests the public lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAccess {
    /// True: members-only.
    pub members_only: bool,
}

/// A member's constituency (members lane). Stewards only: it decides membership of a
/// constituency society, and so who may vote in its polls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetConstituency {
    /// Whose constituency.
    pub member: MemberId,
    /// The constituency (`None` clears it).
    pub constituency: Option<String>,
}

/// A member's pledged contribution (members lane). By a steward, or by a member (not a guest)
/// for themself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetContribution {
    /// Whose contribution.
    pub member: MemberId,
    /// The pledge or waiver (`None` clears it).
    pub contribution: Option<Contribution>,
}

/// What an assembly is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AssemblyKind {
    /// Anyone on the roll may join or leave (guests too, in a public one; they never vote).
    WorkingGroup,
    /// Members are seated and unseated by its conveners.
    Committee,
    /// Members join or leave.
    Society,
}

impl AssemblyKind {
    /// `working-group`, `committee` or `society`.
    pub fn as_str(self) -> &'static str {
        match self {
            AssemblyKind::WorkingGroup => "working-group",
            AssemblyKind::Committee => "committee",
            AssemblyKind::Society => "society",
        }
    }
}

/// Which assembly: one created by an op, or one of the automatic societies every member
/// belongs to (members-only, convened by the hub's conveners and stewards).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AssemblyRef {
    /// Created by the [`CreateAssembly`] op with this id.
    Created(OpId),
    /// The Activism Society: every member.
    Activism,
    /// The Policy Society: every member.
    Policy,
    /// The Society of a constituency: every member whose constituency it is.
    Constituency(String),
}

/// Create an assembly. Working groups: any member; committees and societies: a steward or a
/// convener. The author becomes its first convener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateAssembly {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: AssemblyKind,
}

/// Appoint (`convener: true`) or dismiss a convener of a created assembly. By a steward or a
/// convener of the assembly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Convener {
    /// The assembly's [`CreateAssembly`] op.
    pub assembly: OpId,
    /// Who.
    pub member: MemberId,
    /// Appointed, or dismissed.
    pub convener: bool,
}

/// Join (`joined: true`) or leave a working group or a (created) society, by the person
/// themself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// The assembly's [`CreateAssembly`] op.
    pub assembly: OpId,
    /// Joined, or left.
    pub joined: bool,
}

/// Seat (`seated: true`) or unseat a member on a committee. By a convener of the committee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// The committee's [`CreateAssembly`] op.
    pub assembly: OpId,
    /// Who.
    pub member: MemberId,
    /// Seated, or unseated.
    pub seated: bool,
}

/// Most options a poll may have (each ballot scores every one).
pub const MAX_POLL_OPTIONS: usize = 64;
/// Most returning or station officers a poll may name.
pub const MAX_OFFICERS: usize = 64;
/// Longest poll question, in bytes.
pub const MAX_QUESTION_BYTES: usize = 1000;
/// The highest score.
pub const MAX_SCORE: u8 = 5;

/// Create a poll in an assembly. By a convener of the assembly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatePoll {
    /// Whose poll.
    pub assembly: AssemblyRef,
    /// The question.
    pub question: String,
    /// The options, in ballot order (2 to [`MAX_POLL_OPTIONS`], distinct).
    pub options: Vec<String>,
    /// Winners to elect: 1 for STAR, more for Bloc STAR.
    pub seats: u16,
    /// Returning officers (members who may close the poll); empty: the author.
    pub officers: Vec<MemberId>,
    /// Station officers (who may close a polling station at a branch meeting).
    pub stations: Vec<MemberId>,
    /// Ballots needed for the result to stand, if any.
    pub quorum: Option<u32>,
    /// Advisory opening time (seconds since the Unix epoch): shown, never enforced.
    pub opens_at: Option<u64>,
    /// Advisory closing time: shown, never enforced (only a signed close settles a poll).
    pub closes_at: Option<u64>,
}

/// Open a poll: fixes the electorate — the assembly's members at this op's causal position —
/// by its size and a hash of the sorted member ids, which every node recomputes and must
/// match; the op's id is the tiebreak seed. By a convener of the assembly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenPoll {
    /// The poll's [`CreatePoll`] op.
    pub poll: OpId,
    /// How many members the electorate has.
    pub electorate: u32,
    /// [`electorate_hash`] of the sorted member ids.
    pub electorate_hash: [u8; 32],
}

/// A ballot: a score from 0 to [`MAX_SCORE`] for every option, and a revision (the highest
/// counts). Written by a device of the voter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    /// The [`OpenPoll`] op it is cast under.
    pub open: OpId,
    /// The voter's member id (the author's member), as bytes: ballots are the high-volume
    /// kind, and a key's curve point is not needed to compare it.
    pub member: [u8; 32],
    /// Re-casting raises it; the highest revision counts.
    pub revision: u32,
    /// One score per option, in the poll's option order.
    pub scores: Vec<u8>,
}

/// A station officer closes their polling station: the poll's ballots in this op's causal past
/// are that station's (a branch meeting that voted offline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseStation {
    /// The [`OpenPoll`] op.
    pub open: OpId,
}

/// A returning officer closes the poll: exactly the ballots in this op's causal past count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosePoll {
    /// The [`OpenPoll`] op.
    pub open: OpId,
}

const ELECTORATE_DOMAIN: &[u8] = b"moot/electorate/v1\0";

/// The hash an [`OpenPoll`] records: SHA-256 over a domain tag and the member ids, which must
/// be sorted ascending and distinct.
pub fn electorate_hash<'a>(sorted: impl IntoIterator<Item = &'a [u8; 32]>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(ELECTORATE_DOMAIN);
    for id in sorted {
        hasher.update(id);
    }
    hasher.finalize().into()
}

/// Names many ops at once (a housekeeping op with no effect): when an op would need more
/// dependencies than the envelope allows, checkpoints gather them first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {}

/// Longest comment, stance reason, amendment text or aid description, in bytes.
pub const MAX_PROSE_BYTES: usize = 4000;
/// Longest automerge cursor an amendment anchors to, in bytes.
pub const MAX_CURSOR_BYTES: usize = 128;
/// Longest sealed contact detail, in bytes (a version byte, an ephemeral key, at most
/// 512 bytes of contact and a tag).
pub const MAX_SEALED_BYTES: usize = 600;

/// A proposal in an assembly: its title, and the first change of its document (the creator
/// change: it creates the document's root objects, and only it may). The op's id is the
/// document's id. By a member; in the assembly's lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateProposal {
    /// Whose proposal.
    pub assembly: AssemblyRef,
    /// Its title.
    pub title: String,
    /// The document's first automerge change (uncompressed change chunk): creates the root
    /// `text` object and inserts the first draft. Its actor is the author device.
    pub change: Vec<u8>,
}

/// One automerge change to a document. Valid only if the change passes the pre-scan
/// (uncompressed, bounded op count, no extra bytes), its actor is the author device, its seq
/// follows the device's previous change to the document (named in the op's deps), every
/// automerge dependency is a change of the same document named in the op's deps, and it
/// touches no root object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocChange {
    /// The document: its creator op ([`CreateProposal`]).
    pub doc: OpId,
    /// The automerge change chunk.
    pub change: Vec<u8>,
}

/// A comment on a proposal, or a reply to a comment. By a member; names the proposal (and
/// the comment it answers) in its deps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// The proposal's [`CreateProposal`] op.
    pub proposal: OpId,
    /// The comment answered, if a reply.
    pub parent: Option<OpId>,
    /// The text.
    pub text: String,
}

/// Where a member stands on a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StanceKind {
    /// Agrees.
    Agree,
    /// Agrees, with concerns.
    Concerns,
    /// Objects: consensus cannot be declared while this stands.
    Object,
    /// Blocks: consensus cannot be declared while this stands.
    Block,
}

impl StanceKind {
    /// `agree`, `concerns`, `object` or `block`.
    pub fn as_str(self) -> &'static str {
        match self {
            StanceKind::Agree => "agree",
            StanceKind::Concerns => "concerns",
            StanceKind::Object => "object",
            StanceKind::Block => "block",
        }
    }

    /// True for an objection or a block.
    pub fn stops_consensus(self) -> bool {
        matches!(self, StanceKind::Object | StanceKind::Block)
    }
}

/// A member's stance on a proposal; their highest revision counts (a new stance goes one
/// higher). By a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stance {
    /// The proposal's [`CreateProposal`] op.
    pub proposal: OpId,
    /// Raised by each new stance of the member; the highest counts.
    pub revision: u32,
    /// The stance.
    pub stance: StanceKind,
    /// Why.
    pub reason: String,
}

/// A proposed amendment: replace the text between two anchors (automerge cursors, stable under
/// concurrent edits) with new text. By a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amend {
    /// The proposal's [`CreateProposal`] op.
    pub proposal: OpId,
    /// Cursor at the start of the range.
    pub from: String,
    /// Cursor at the end of the range (exclusive).
    pub to: String,
    /// The text the range held when the amendment was written (shown to readers).
    pub original: String,
    /// The replacement.
    pub replacement: String,
}

/// An amendment accepted or rejected, by the proposer or a convener of the assembly. An
/// accepted amendment is applied by a [`DocChange`] of the same author that follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveAmendment {
    /// The [`Amend`] op.
    pub amendment: OpId,
    /// Accepted, or rejected.
    pub accepted: bool,
}

/// How a proposal ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Adopted by consensus: refused while an objection or block stands in the op's past.
    Adopted,
    /// Sent to a vote: the poll (a [`CreatePoll`] in the proposal's assembly) decides.
    SentToVote {
        /// The poll's [`CreatePoll`] op.
        poll: OpId,
    },
    /// Withdrawn.
    Withdrawn,
}

/// A proposal's outcome, by its proposer or a convener of its assembly; one per proposal (a
/// second in its past is refused; concurrent ones are flagged, the lower op id stands).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decide {
    /// The proposal's [`CreateProposal`] op.
    pub proposal: OpId,
    /// The outcome.
    pub outcome: Outcome,
}

/// Offer or request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AidKind {
    /// Something offered.
    Offer,
    /// Something asked for.
    Request,
}

impl AidKind {
    /// `offer` or `request`.
    pub fn as_str(self) -> &'static str {
        match self {
            AidKind::Offer => "offer",
            AidKind::Request => "request",
        }
    }
}

/// What an offer or request says: everything its author may edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidDetails {
    /// Short title.
    pub title: String,
    /// Longer description.
    pub description: String,
    /// Category (matched case- and accent-insensitively).
    pub category: String,
    /// Area (a postcode district, a constituency…).
    pub area: Option<String>,
    /// Advisory start of the time window (seconds since the Unix epoch).
    pub from: Option<u64>,
    /// Advisory end of the time window.
    pub until: Option<u64>,
    /// How many, where it makes sense.
    pub quantity: Option<u32>,
}

/// Where a passed-on gift came from: the fulfilled item and the fulfilment that ended it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarded {
    /// The fulfilled item's [`AidItem`] op.
    pub item: OpId,
    /// The [`AidUpdate`] op that fulfilled it.
    pub fulfilment: OpId,
}

/// An offer or a request on the mutual-aid board. By a member, in the lane they choose
/// (public: guests can read it). A gift passed on names the fulfilled item it came from;
/// only its recipient may pass it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidItem {
    /// Offer or request.
    pub kind: AidKind,
    /// What it says.
    pub details: AidDetails,
    /// Pay it forward: the gift this passes on.
    pub forwarded: Option<Forwarded>,
}

/// A change to an item, by its author or a coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AidChange {
    /// New details (the highest revision stands).
    Edit {
        /// Raised by each edit; the highest stands.
        revision: u32,
        /// The details.
        details: AidDetails,
    },
    /// Met by this pledge.
    Fulfil {
        /// The [`AidPledge`] op.
        pledge: OpId,
    },
    /// Taken off the board.
    Withdraw,
    /// No longer current.
    Expire,
}

/// An item changed. Names the item (and the pledge it fulfils) in its deps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidUpdate {
    /// The [`AidItem`] op.
    pub item: OpId,
    /// The change.
    pub change: AidChange,
}

/// A pledge to meet an item (to take up an offer, or to give what a request asks), by a member
/// other than its author, with the pledger's contact sealed to the item's author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidPledge {
    /// The [`AidItem`] op.
    pub item: OpId,
    /// How many, where it makes sense.
    pub quantity: Option<u32>,
    /// A note to the item's author (readable by everyone who can read the item).
    pub note: String,
    /// The pledger's contact detail, sealed to the item author's member key (empty: none).
    pub contact: Vec<u8>,
}

/// A pledge withdrawn, by the pledger only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidUnpledge {
    /// The [`AidPledge`] op.
    pub pledge: OpId,
}

/// The item's author answers a pledge with their contact detail, sealed to the pledger's
/// member key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AidContact {
    /// The [`AidPledge`] op.
    pub pledge: OpId,
    /// The contact, sealed to the pledger.
    pub contact: Vec<u8>,
}

/// The automerge change a stored proposal or document-change op carries, decoded without the
/// pre-scan: for ops this node already accepted (their change passed it on arrival). `None`
/// for other kinds or bytes that do not decode.
pub fn stored_change(kind: u16, bytes: &[u8]) -> Option<Vec<u8>> {
    match kind {
        kind::CREATE_PROPOSAL => decode::<CreateProposal>(kind, bytes).ok().map(|p| p.change),
        kind::DOC_CHANGE => decode::<DocChange>(kind, bytes).ok().map(|c| c.change),
        _ => None,
    }
}

/// [`stored_change`] with its document: `None` for a proposal's creator op (it is its own
/// document), the document's id for a document change.
pub fn stored_doc_change(kind: u16, bytes: &[u8]) -> Option<(Option<OpId>, Vec<u8>)> {
    match kind {
        kind::CREATE_PROPOSAL => decode::<CreateProposal>(kind, bytes)
            .ok()
            .map(|p| (None, p.change)),
        kind::DOC_CHANGE => decode::<DocChange>(kind, bytes)
            .ok()
            .map(|c| (Some(c.doc), c.change)),
        _ => None,
    }
}

/// A decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Genesis.
    Found(Box<Found>),
    /// Admission.
    Admit(Admit),
    /// Removal.
    Remove(Remove),
    /// Role granted.
    Grant(RoleChange),
    /// Role revoked.
    Revoke(RevokeRole),
    /// Device certified.
    CertifyDevice(CertifyDevice),
    /// Device revoked.
    RevokeDevice(RevokeDevice),
    /// Public display name.
    PublicName(PublicName),
    /// Name on the roll.
    SetName(SetName),
    /// Constituency.
    SetConstituency(SetConstituency),
    /// Pledged contribution.
    SetContribution(SetContribution),
    /// Who may receive the hub.
    SetAccess(SetAccess),
    /// An assembly created.
    CreateAssembly(CreateAssembly),
    /// A convener appointed or dismissed.
    Convener(Convener),
    /// An assembly joined or left.
    Join(Join),
    /// A committee seat.
    Seat(Seat),
    /// A poll created.
    CreatePoll(Box<CreatePoll>),
    /// A poll opened.
    OpenPoll(OpenPoll),
    /// A ballot.
    Ballot(Ballot),
    /// A polling station closed.
    CloseStation(CloseStation),
    /// A poll closed.
    ClosePoll(ClosePoll),
    /// A proposal (and its document) created.
    CreateProposal(CreateProposal),
    /// A document changed.
    DocChange(DocChange),
    /// A comment.
    Comment(Comment),
    /// A stance.
    Stance(Stance),
    /// An amendment proposed.
    Amend(Amend),
    /// An amendment accepted or rejected.
    ResolveAmendment(ResolveAmendment),
    /// A proposal's outcome.
    Decide(Decide),
    /// An offer or request.
    AidItem(Box<AidItem>),
    /// An offer or request changed.
    AidUpdate(Box<AidUpdate>),
    /// A pledge.
    AidPledge(AidPledge),
    /// A pledge withdrawn.
    AidUnpledge(AidUnpledge),
    /// A contact answered to a pledge.
    AidContact(AidContact),
    /// Housekeeping: gathers dependencies.
    Checkpoint(Checkpoint),
    /// A kind this node does not know: kept, passed on, not applied.
    Unknown(u16),
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The bytes are not a valid body of the kind.
    #[error("body of kind {kind} does not decode: {message}")]
    Decode {
        /// The kind.
        kind: u16,
        /// The decoder's message.
        message: String,
    },
    /// A text field is longer than [`MAX_TEXT_BYTES`] or a list longer than its limit.
    #[error("body of kind {0} exceeds a field limit")]
    Limit(u16),
    /// The automerge change a body carries fails the pre-scan.
    #[error("body of kind {kind} carries a refused automerge change: {error}")]
    Change {
        /// The kind.
        kind: u16,
        /// Why.
        error: moot_doc::PrescanError,
    },
}

fn decode<'a, T: Deserialize<'a>>(kind: u16, bytes: &'a [u8]) -> Result<T, BodyError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| BodyError::Decode {
        kind,
        message: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(BodyError::Decode {
            kind,
            message: format!("{} trailing bytes", rest.len()),
        });
    }
    Ok(value)
}

fn text_ok(text: &str) -> bool {
    text.len() <= MAX_TEXT_BYTES
}

fn prose_ok(text: &str) -> bool {
    text.len() <= MAX_PROSE_BYTES
}

fn details_ok(d: &AidDetails) -> bool {
    text_ok(&d.title)
        && prose_ok(&d.description)
        && text_ok(&d.category)
        && d.area.as_deref().is_none_or(text_ok)
}

impl Body {
    /// Decodes a body of `kind` from `bytes`.
    pub fn decode(kind: u16, bytes: &[u8]) -> Result<Body, BodyError> {
        let body = match kind {
            kind::FOUND => Body::Found(decode(kind, bytes)?),
            kind::ADMIT => Body::Admit(decode(kind, bytes)?),
            kind::REMOVE => Body::Remove(decode(kind, bytes)?),
            kind::GRANT => Body::Grant(decode(kind, bytes)?),
            kind::REVOKE => Body::Revoke(match decode::<RevokeRole>(kind, bytes) {
                Ok(revoke) => revoke,
                // Written before revocations carried cuts: the member and the role alone,
                // cutting nothing, as then.
                Err(error) => match decode::<RoleChange>(kind, bytes) {
                    Ok(old) => RevokeRole {
                        member: old.member,
                        role: old.role,
                        cuts: None,
                    },
                    Err(_) => return Err(error),
                },
            }),
            kind::CERTIFY_DEVICE => Body::CertifyDevice(decode(kind, bytes)?),
            kind::REVOKE_DEVICE => Body::RevokeDevice(decode(kind, bytes)?),
            kind::PUBLIC_NAME => Body::PublicName(decode(kind, bytes)?),
            kind::SET_NAME => Body::SetName(decode(kind, bytes)?),
            kind::SET_CONSTITUENCY => Body::SetConstituency(decode(kind, bytes)?),
            kind::SET_ACCESS => Body::SetAccess(decode(kind, bytes)?),
            kind::SET_CONTRIBUTION => Body::SetContribution(decode(kind, bytes)?),
            kind::CREATE_ASSEMBLY => Body::CreateAssembly(decode(kind, bytes)?),
            kind::CONVENER => Body::Convener(decode(kind, bytes)?),
            kind::JOIN => Body::Join(decode(kind, bytes)?),
            kind::SEAT => Body::Seat(decode(kind, bytes)?),
            kind::CREATE_POLL => Body::CreatePoll(decode(kind, bytes)?),
            kind::OPEN_POLL => Body::OpenPoll(decode(kind, bytes)?),
            kind::BALLOT => Body::Ballot(decode(kind, bytes)?),
            kind::CLOSE_STATION => Body::CloseStation(decode(kind, bytes)?),
            kind::CLOSE_POLL => Body::ClosePoll(decode(kind, bytes)?),
            kind::CREATE_PROPOSAL => Body::CreateProposal(decode(kind, bytes)?),
            kind::DOC_CHANGE => Body::DocChange(decode(kind, bytes)?),
            kind::COMMENT => Body::Comment(decode(kind, bytes)?),
            kind::STANCE => Body::Stance(decode(kind, bytes)?),
            kind::AMEND => Body::Amend(decode(kind, bytes)?),
            kind::RESOLVE_AMENDMENT => Body::ResolveAmendment(decode(kind, bytes)?),
            kind::DECIDE => Body::Decide(decode(kind, bytes)?),
            kind::AID_ITEM => Body::AidItem(decode(kind, bytes)?),
            kind::AID_UPDATE => Body::AidUpdate(decode(kind, bytes)?),
            kind::AID_PLEDGE => Body::AidPledge(decode(kind, bytes)?),
            kind::AID_UNPLEDGE => Body::AidUnpledge(decode(kind, bytes)?),
            kind::AID_CONTACT => Body::AidContact(decode(kind, bytes)?),
            kind::CHECKPOINT => Body::Checkpoint(decode(kind, bytes)?),
            other => return Ok(Body::Unknown(other)),
        };
        let within_limits = match &body {
            Body::Found(f) => text_ok(&f.name),
            Body::Remove(r) => r.cuts.len() <= MAX_CUTS,
            Body::Revoke(r) => r.cuts.as_ref().is_none_or(|c| c.len() <= MAX_CUTS),
            Body::PublicName(p) => p.name.as_deref().is_none_or(text_ok),
            Body::SetName(n) => text_ok(&n.name),
            Body::SetConstituency(c) => c.constituency.as_deref().is_none_or(text_ok),
            Body::CreateAssembly(a) => text_ok(&a.name),
            Body::CreatePoll(p) => {
                let assembly_ok = match &p.assembly {
                    AssemblyRef::Constituency(c) => text_ok(c),
                    _ => true,
                };
                assembly_ok
                    && p.question.len() <= MAX_QUESTION_BYTES
                    && p.options.len() <= MAX_POLL_OPTIONS
                    && p.options.iter().all(|o| text_ok(o))
                    && p.officers.len() <= MAX_OFFICERS
                    && p.stations.len() <= MAX_OFFICERS
            }
            Body::CreateProposal(p) => {
                text_ok(&p.title)
                    && match &p.assembly {
                        AssemblyRef::Constituency(c) => text_ok(c),
                        _ => true,
                    }
            }
            Body::Comment(c) => prose_ok(&c.text),
            Body::Stance(s) => prose_ok(&s.reason),
            Body::Amend(a) => {
                a.from.len() <= MAX_CURSOR_BYTES
                    && a.to.len() <= MAX_CURSOR_BYTES
                    && prose_ok(&a.original)
                    && prose_ok(&a.replacement)
            }
            Body::AidItem(i) => details_ok(&i.details),
            Body::AidUpdate(u) => match &u.change {
                AidChange::Edit { details, .. } => details_ok(details),
                _ => true,
            },
            Body::AidPledge(p) => prose_ok(&p.note) && p.contact.len() <= MAX_SEALED_BYTES,
            Body::AidContact(c) => c.contact.len() <= MAX_SEALED_BYTES,
            Body::Ballot(b) => b.scores.len() <= MAX_POLL_OPTIONS,
            _ => true,
        };
        let change = match &body {
            Body::CreateProposal(p) => Some(&p.change),
            Body::DocChange(c) => Some(&c.change),
            _ => None,
        };
        if let Some(change) = change
            && let Err(error) = moot_doc::prescan(change, &moot_doc::Limits::default())
        {
            return Err(BodyError::Change { kind, error });
        }
        if within_limits {
            Ok(body)
        } else {
            Err(BodyError::Limit(kind))
        }
    }

    /// The kind and encoded bytes of a known body (`None` for [`Body::Unknown`]).
    pub fn encode(&self) -> Option<(u16, Vec<u8>)> {
        let encoded = match self {
            Body::Found(b) => (kind::FOUND, postcard::to_allocvec(b)),
            Body::Admit(b) => (kind::ADMIT, postcard::to_allocvec(b)),
            Body::Remove(b) => (kind::REMOVE, postcard::to_allocvec(b)),
            Body::Grant(b) => (kind::GRANT, postcard::to_allocvec(b)),
            Body::Revoke(b) => (kind::REVOKE, postcard::to_allocvec(b)),
            Body::CertifyDevice(b) => (kind::CERTIFY_DEVICE, postcard::to_allocvec(b)),
            Body::RevokeDevice(b) => (kind::REVOKE_DEVICE, postcard::to_allocvec(b)),
            Body::PublicName(b) => (kind::PUBLIC_NAME, postcard::to_allocvec(b)),
            Body::SetName(b) => (kind::SET_NAME, postcard::to_allocvec(b)),
            Body::SetConstituency(b) => (kind::SET_CONSTITUENCY, postcard::to_allocvec(b)),
            Body::SetAccess(b) => (kind::SET_ACCESS, postcard::to_allocvec(b)),
            Body::SetContribution(b) => (kind::SET_CONTRIBUTION, postcard::to_allocvec(b)),
            Body::CreateAssembly(b) => (kind::CREATE_ASSEMBLY, postcard::to_allocvec(b)),
            Body::Convener(b) => (kind::CONVENER, postcard::to_allocvec(b)),
            Body::Join(b) => (kind::JOIN, postcard::to_allocvec(b)),
            Body::Seat(b) => (kind::SEAT, postcard::to_allocvec(b)),
            Body::CreatePoll(b) => (kind::CREATE_POLL, postcard::to_allocvec(b)),
            Body::OpenPoll(b) => (kind::OPEN_POLL, postcard::to_allocvec(b)),
            Body::Ballot(b) => (kind::BALLOT, postcard::to_allocvec(b)),
            Body::CloseStation(b) => (kind::CLOSE_STATION, postcard::to_allocvec(b)),
            Body::ClosePoll(b) => (kind::CLOSE_POLL, postcard::to_allocvec(b)),
            Body::CreateProposal(b) => (kind::CREATE_PROPOSAL, postcard::to_allocvec(b)),
            Body::DocChange(b) => (kind::DOC_CHANGE, postcard::to_allocvec(b)),
            Body::Comment(b) => (kind::COMMENT, postcard::to_allocvec(b)),
            Body::Stance(b) => (kind::STANCE, postcard::to_allocvec(b)),
            Body::Amend(b) => (kind::AMEND, postcard::to_allocvec(b)),
            Body::ResolveAmendment(b) => (kind::RESOLVE_AMENDMENT, postcard::to_allocvec(b)),
            Body::Decide(b) => (kind::DECIDE, postcard::to_allocvec(b)),
            Body::AidItem(b) => (kind::AID_ITEM, postcard::to_allocvec(b)),
            Body::AidUpdate(b) => (kind::AID_UPDATE, postcard::to_allocvec(b)),
            Body::AidPledge(b) => (kind::AID_PLEDGE, postcard::to_allocvec(b)),
            Body::AidUnpledge(b) => (kind::AID_UNPLEDGE, postcard::to_allocvec(b)),
            Body::AidContact(b) => (kind::AID_CONTACT, postcard::to_allocvec(b)),
            Body::Checkpoint(b) => (kind::CHECKPOINT, postcard::to_allocvec(b)),
            Body::Unknown(_) => return None,
        };
        // Encoding plain structs into a Vec cannot fail.
        let (kind, bytes) = encoded;
        bytes.ok().map(|bytes| (kind, bytes))
    }

    /// Checks the signatures a body carries (device certificates), which do not depend on any
    /// state: done once per op, when it arrives.
    pub fn check_certificates(&self, hub: &HubId, author: &DeviceId) -> bool {
        self.certificate(hub, author)
            .is_none_or(|(member, message, signature)| member.verify(&message, &signature))
    }

    /// The device certificate the body carries, if any, as the signature to check: the signer
    /// (a genesis's founder, a device certification's member), the message it must have
    /// signed (for `hub` and the device: a genesis certifies its `author`), and the signature.
    pub fn certificate(
        &self,
        hub: &HubId,
        author: &DeviceId,
    ) -> Option<(MemberId, Vec<u8>, [u8; 64])> {
        match self {
            Body::Found(found) => Some((
                found.founder,
                certificate_message(hub, author),
                found.device_certificate.0,
            )),
            Body::CertifyDevice(c) => Some((
                c.member,
                certificate_message(hub, &c.device),
                c.certificate.0,
            )),
            _ => None,
        }
    }

    /// The body's kind.
    pub fn kind(&self) -> u16 {
        match self {
            Body::Found(_) => kind::FOUND,
            Body::Admit(_) => kind::ADMIT,
            Body::Remove(_) => kind::REMOVE,
            Body::Grant(_) => kind::GRANT,
            Body::Revoke(_) => kind::REVOKE,
            Body::CertifyDevice(_) => kind::CERTIFY_DEVICE,
            Body::RevokeDevice(_) => kind::REVOKE_DEVICE,
            Body::PublicName(_) => kind::PUBLIC_NAME,
            Body::SetName(_) => kind::SET_NAME,
            Body::SetConstituency(_) => kind::SET_CONSTITUENCY,
            Body::SetAccess(_) => kind::SET_ACCESS,
            Body::SetContribution(_) => kind::SET_CONTRIBUTION,
            Body::CreateAssembly(_) => kind::CREATE_ASSEMBLY,
            Body::Convener(_) => kind::CONVENER,
            Body::Join(_) => kind::JOIN,
            Body::Seat(_) => kind::SEAT,
            Body::CreatePoll(_) => kind::CREATE_POLL,
            Body::OpenPoll(_) => kind::OPEN_POLL,
            Body::Ballot(_) => kind::BALLOT,
            Body::CloseStation(_) => kind::CLOSE_STATION,
            Body::ClosePoll(_) => kind::CLOSE_POLL,
            Body::CreateProposal(_) => kind::CREATE_PROPOSAL,
            Body::DocChange(_) => kind::DOC_CHANGE,
            Body::Comment(_) => kind::COMMENT,
            Body::Stance(_) => kind::STANCE,
            Body::Amend(_) => kind::AMEND,
            Body::ResolveAmendment(_) => kind::RESOLVE_AMENDMENT,
            Body::Decide(_) => kind::DECIDE,
            Body::AidItem(_) => kind::AID_ITEM,
            Body::AidUpdate(_) => kind::AID_UPDATE,
            Body::AidPledge(_) => kind::AID_PLEDGE,
            Body::AidUnpledge(_) => kind::AID_UNPLEDGE,
            Body::AidContact(_) => kind::AID_CONTACT,
            Body::Checkpoint(_) => kind::CHECKPOINT,
            Body::Unknown(kind) => *kind,
        }
    }

    /// True for roll ops: bodies resolved together by the seniority and cut rules (the explicit
    /// list [`kind::ROLL_KINDS`]).
    pub fn is_roll(&self) -> bool {
        kind::is_roll(self.kind())
    }

    /// The lane this body must be written in (`None`: either).
    pub fn lane(&self) -> Option<Lane> {
        kind::lane_of(self.kind())
    }
}
