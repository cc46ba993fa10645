//! The hub's membership roll: members, guests, roles, devices, and the rules for who may
//! change what. [`Roll::authorize`] checks an op against a roll state without changing it;
//! [`Roll::apply`] applies an authorized roll op.

use std::collections::{BTreeMap, BTreeSet};

use imbl::OrdMap;

use moot_crypto::{HubId, OpId};

use crate::body::{Body, Contribution, DeviceId, MemberId, Role, Standing, hub_id};

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

/// One person on the roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// Display name.
    pub name: String,
    /// Member, guest or removed.
    pub status: Status,
    /// Roles held (empty unless a member).
    pub roles: BTreeSet<Role>,
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
    /// Revoked (lost or stolen)?
    pub revoked: bool,
}

/// A removal's or revocation's cut: ops of `device` with a higher sequence number that do not
/// causally follow `by` are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cut {
    /// The removal or revocation op.
    pub by: OpId,
    /// The last accepted sequence number of the cut device.
    pub last_seq: u64,
}

/// The last accepted sequence number per device, as a removal states it.
pub type DeviceCuts = BTreeMap<DeviceId, u64>;

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
    /// Everyone ever admitted, by member id.
    pub members: OrdMap<MemberId, MemberRecord>,
    /// Every certified device.
    pub devices: OrdMap<DeviceId, DeviceRecord>,
    /// Cuts by removed member: ops of their devices beyond a cut are invalid.
    pub member_cuts: OrdMap<MemberId, Vec<(Cut, DeviceCuts)>>,
    /// Cuts by revoked device.
    pub device_cuts: OrdMap<DeviceId, Vec<Cut>>,
    /// Stewards in order of seniority (the founder first).
    steward_order: OrdMap<MemberId, u64>,
    next_steward: u64,
}

/// What an op's author is on the roll.
struct Author<'a> {
    member: MemberId,
    record: &'a MemberRecord,
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
            .is_some_and(|r| r.status == Status::Member && r.roles.contains(&Role::Steward))
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
        })
    }

    fn steward(&self, device: &DeviceId) -> Result<Author<'_>, Denied> {
        let author = self.author(device)?;
        if author.record.status == Status::Member && author.record.roles.contains(&Role::Steward) {
            Ok(author)
        } else {
            Err(Denied::NotSteward)
        }
    }

    fn active_target(&self, member: &MemberId) -> Result<&MemberRecord, Denied> {
        match self.members.get(member) {
            Some(r) if r.status != Status::Removed => Ok(r),
            _ => Err(Denied::NoSuchMember),
        }
    }

    /// Checks whether `author` may write `body` in this state. Changes nothing. Signatures inside
    /// bodies (device certificates) are not re-checked here: they do not depend on the state,
    /// so the replica checks them once when the op arrives (`Body::check_certificates`).
    pub fn authorize(&self, hub: &HubId, author: &DeviceId, body: &Body) -> Result<(), Denied> {
        if let Body::Found(found) = body {
            if self.founder.is_some() {
                return Err(Denied::BadGenesis);
            }
            // The device certificate was checked once, on arrival (`Body::check_certificates`).
            let genuine = hub_id(&found.founder, &found.nonce) == *hub;
            return if genuine {
                Ok(())
            } else {
                Err(Denied::BadGenesis)
            };
        }
        if self.founder.is_none() {
            return Err(Denied::NotFounded);
        }
        match body {
            Body::Found(_) => Err(Denied::BadGenesis),
            Body::Admit(_) => self.steward(author).map(drop),
            Body::Remove(remove) => {
                self.steward(author)?;
                self.active_target(&remove.member).map(drop)
            }
            Body::Grant(change) => {
                self.steward(author)?;
                match self.active_target(&change.member)?.status {
                    Status::Member => Ok(()),
                    _ => Err(Denied::RoleForGuest),
                }
            }
            Body::Revoke(change) => {
                self.steward(author)?;
                if self
                    .active_target(&change.member)?
                    .roles
                    .contains(&change.role)
                {
                    Ok(())
                } else {
                    Err(Denied::NoSuchRole)
                }
            }
            Body::CertifyDevice(certify) => {
                self.active_target(&certify.member)?;
                // The certificate itself was checked once, on arrival.
                if self
                    .devices
                    .get(&certify.device)
                    .is_some_and(|d| d.member != certify.member || d.revoked)
                {
                    return Err(Denied::DeviceTaken);
                }
                // The new device may announce its own certificate; otherwise the author must
                // be the same member's device or a steward.
                if *author == certify.device {
                    return Ok(());
                }
                let by = self.author(author)?;
                if by.member == certify.member || self.steward(author).is_ok() {
                    Ok(())
                } else {
                    Err(Denied::NotYours)
                }
            }
            Body::RevokeDevice(revoke) => {
                let by = self.author(author)?;
                let owner = self
                    .devices
                    .get(&revoke.device)
                    .ok_or(Denied::UnknownDevice)?;
                if owner.member == by.member || self.steward(author).is_ok() {
                    Ok(())
                } else {
                    Err(Denied::NotYours)
                }
            }
            Body::Update(update) => {
                let by = self.author(author)?;
                self.active_target(&update.member)?;
                if self.steward(author).is_ok() {
                    Ok(())
                } else if by.member == update.member {
                    match by.record.status {
                        Status::Member => Ok(()),
                        _ => Err(Denied::GuestNotAllowed),
                    }
                } else {
                    Err(Denied::NotYours)
                }
            }
            Body::Unknown(_) => self.author(author).map(drop),
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
                        name: found.founder_name.clone(),
                        status: Status::Member,
                        roles: BTreeSet::from([Role::Steward]),
                        constituency: None,
                        contribution: None,
                    },
                );
                self.devices.insert(
                    *author,
                    DeviceRecord {
                        member: found.founder,
                        revoked: false,
                    },
                );
                self.steward_order.insert(found.founder, 0);
                self.next_steward = 1;
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
                        status,
                        roles: BTreeSet::new(),
                        constituency: None,
                        contribution: None,
                    });
                record.name = admit.name.clone();
                record.status = status;
                record.constituency = admit.constituency.clone();
                record.contribution = admit.contribution.clone();
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
                let cuts: BTreeMap<DeviceId, u64> = remove.cuts.iter().copied().collect();
                let mut list = self
                    .member_cuts
                    .get(&remove.member)
                    .cloned()
                    .unwrap_or_default();
                list.push((cut(0), cuts));
                self.member_cuts.insert(remove.member, list);
            }
            Body::Grant(change) => {
                if let Some(record) = self.members.get_mut(&change.member) {
                    record.roles.insert(change.role);
                }
                if change.role == Role::Steward && !self.steward_order.contains_key(&change.member)
                {
                    self.steward_order.insert(change.member, self.next_steward);
                    self.next_steward += 1;
                }
            }
            Body::Revoke(change) => {
                if let Some(record) = self.members.get_mut(&change.member) {
                    record.roles.remove(&change.role);
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
            Body::Update(update) => {
                if let Some(record) = self.members.get_mut(&update.member) {
                    if let Some(constituency) = &update.constituency {
                        record.constituency = constituency.clone();
                    }
                    if let Some(contribution) = &update.contribution {
                        record.contribution = contribution.clone();
                    }
                }
            }
            Body::Unknown(_) => {}
        }
    }

    /// The cuts that apply to ops by `device`: `(cut, last accepted seq of this device)`.
    pub fn cuts_for(&self, device: &DeviceId) -> Vec<(Cut, u64)> {
        let mut out = Vec::new();
        if let Some(cuts) = self.device_cuts.get(device) {
            out.extend(cuts.iter().map(|c| (*c, c.last_seq)));
        }
        if let Some(member) = self.member_of(device)
            && let Some(removals) = self.member_cuts.get(&member)
        {
            for (cut, devices) in removals {
                out.push((*cut, devices.get(device).copied().unwrap_or(0)));
            }
        }
        out
    }
}
