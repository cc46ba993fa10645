//! Typed op bodies: the op `kind` says which, the body bytes are its postcard encoding.
//!
//! Kinds are never reused. A kind this node does not know (written by a newer node) decodes to
//! [`Body::Unknown`]: the op is kept and passed on, its author's standing is checked, and it is
//! not applied. A known kind whose bytes do not decode is malformed and rejected.

use moot_crypto::{HubId, PublicKey, SecretKey};
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

/// Op kinds of the roll family.
pub mod kind {
    /// [`super::Found`]: the genesis of a hub.
    pub const FOUND: u16 = 1;
    /// [`super::Admit`].
    pub const ADMIT: u16 = 2;
    /// [`super::Remove`].
    pub const REMOVE: u16 = 3;
    /// [`super::RoleChange`] granting a role.
    pub const GRANT: u16 = 4;
    /// [`super::RoleChange`] revoking a role.
    pub const REVOKE: u16 = 5;
    /// [`super::CertifyDevice`].
    pub const CERTIFY_DEVICE: u16 = 6;
    /// [`super::RevokeDevice`].
    pub const REVOKE_DEVICE: u16 = 7;
    /// [`super::Update`].
    pub const UPDATE: u16 = 8;
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

/// The genesis of a hub, written by the founder's first device with `seq` 1 and no deps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The hub's name.
    pub name: String,
    /// The founder's member key; the hub id is `hub_id(founder, nonce)`.
    pub founder: MemberId,
    /// The founder's display name.
    pub founder_name: String,
    /// Random bytes making the hub id unique.
    pub nonce: [u8; 16],
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

/// Admit (or re-admit, or change the standing of) a member or guest. Stewards only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admit {
    /// The member key admitted.
    pub member: MemberId,
    /// Display name.
    pub name: String,
    /// Member or guest.
    pub standing: Standing,
    /// Their constituency, if any.
    pub constituency: Option<String>,
    /// Their pledged contribution, if recorded.
    pub contribution: Option<Contribution>,
}

/// Remove a member or guest. Stewards only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remove {
    /// Who is removed.
    pub member: MemberId,
    /// For each of their devices, the last sequence number the remover accepts. Their ops
    /// beyond it that do not causally follow this removal are invalid (this stops a removed
    /// member from back-dating ops). Devices not listed are cut at 0.
    pub cuts: Vec<(DeviceId, u64)>,
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
    /// The last sequence number of the device accepted (see [`Remove::cuts`]).
    pub cut: u64,
}

/// Change a member's constituency or contribution. By a steward, or by a member for themself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Whose record.
    pub member: MemberId,
    /// New constituency (`Some(None)` clears it).
    pub constituency: Option<Option<String>>,
    /// New contribution (`Some(None)` clears it).
    pub contribution: Option<Option<Contribution>>,
}

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
    /// Record updated.
    Update(Update),
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
            kind::UPDATE => Body::Update(decode(kind, bytes)?),
            other => return Ok(Body::Unknown(other)),
        };
        let within_limits = match &body {
            Body::Found(f) => text_ok(&f.name) && text_ok(&f.founder_name),
            Body::Admit(a) => text_ok(&a.name) && a.constituency.as_deref().is_none_or(text_ok),
            Body::Remove(r) => r.cuts.len() <= MAX_CUTS,
            Body::Update(u) => u
                .constituency
                .as_ref()
                .is_none_or(|c| c.as_deref().is_none_or(text_ok)),
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
            Body::Update(b) => (kind::UPDATE, postcard::to_allocvec(b)),
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

    /// True for bodies that change the roll (and so take part in roll resolution).
    pub fn is_roll(&self) -> bool {
        !matches!(self, Body::Unknown(_))
    }
}
