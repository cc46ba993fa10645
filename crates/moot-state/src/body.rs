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

use moot_crypto::{HubId, Lane, PublicKey, SecretKey};
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
    /// [`super::Checkpoint`]: names many heads at once, so later ops can depend on all of
    /// them within the dependency limit. Either lane.
    pub const CHECKPOINT: u16 = 0x0F01;

    /// The kinds resolved as roll ops (seniority order, cuts). Only low-volume governance ops.
    pub const ROLL_KINDS: [u16; 11] = [
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
    ];

    /// True if `kind` is a roll op this node knows.
    pub fn is_roll(kind: u16) -> bool {
        ROLL_KINDS.contains(&kind)
    }

    /// The lane a known kind must be written in (`None`: either lane, or unknown).
    pub fn lane_of(kind: u16) -> Option<Lane> {
        match kind {
            FOUND | ADMIT | REMOVE | GRANT | REVOKE | CERTIFY_DEVICE | REVOKE_DEVICE
            | PUBLIC_NAME => Some(Lane::Public),
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
}

impl Role {
    /// `steward` or `convener`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Steward => "steward",
            Role::Convener => "convener",
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

/// Grant or revoke a role (by op kind). Stewards only; roles go to members, not guests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChange {
    /// Whose role.
    pub member: MemberId,
    /// Which role.
    pub role: Role,
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

/// Names many ops at once (a housekeeping op with no effect): when an op would need more
/// dependencies than the envelope allows, checkpoints gather them first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {}

/// A decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Genesis.
    Found(Found),
    /// Admission.
    Admit(Admit),
    /// Removal.
    Remove(Remove),
    /// Role granted.
    Grant(RoleChange),
    /// Role revoked.
    Revoke(RoleChange),
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

impl Body {
    /// Decodes a body of `kind` from `bytes`.
    pub fn decode(kind: u16, bytes: &[u8]) -> Result<Body, BodyError> {
        let body = match kind {
            kind::FOUND => Body::Found(decode(kind, bytes)?),
            kind::ADMIT => Body::Admit(decode(kind, bytes)?),
            kind::REMOVE => Body::Remove(decode(kind, bytes)?),
            kind::GRANT => Body::Grant(decode(kind, bytes)?),
            kind::REVOKE => Body::Revoke(decode(kind, bytes)?),
            kind::CERTIFY_DEVICE => Body::CertifyDevice(decode(kind, bytes)?),
            kind::REVOKE_DEVICE => Body::RevokeDevice(decode(kind, bytes)?),
            kind::PUBLIC_NAME => Body::PublicName(decode(kind, bytes)?),
            kind::SET_NAME => Body::SetName(decode(kind, bytes)?),
            kind::SET_CONSTITUENCY => Body::SetConstituency(decode(kind, bytes)?),
            kind::SET_CONTRIBUTION => Body::SetContribution(decode(kind, bytes)?),
            kind::CHECKPOINT => Body::Checkpoint(decode(kind, bytes)?),
            other => return Ok(Body::Unknown(other)),
        };
        let within_limits = match &body {
            Body::Found(f) => text_ok(&f.name),
            Body::Remove(r) => r.cuts.len() <= MAX_CUTS,
            Body::PublicName(p) => p.name.as_deref().is_none_or(text_ok),
            Body::SetName(n) => text_ok(&n.name),
            Body::SetConstituency(c) => c.constituency.as_deref().is_none_or(text_ok),
            _ => true,
        };
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
            Body::SetContribution(b) => (kind::SET_CONTRIBUTION, postcard::to_allocvec(b)),
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
        match self {
            Body::Found(found) => found.device_certificate.verify(&found.founder, hub, author),
            Body::CertifyDevice(c) => c.certificate.verify(&c.member, hub, &c.device),
            _ => true,
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
            Body::SetContribution(_) => kind::SET_CONTRIBUTION,
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
