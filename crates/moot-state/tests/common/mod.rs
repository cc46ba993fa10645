//! Test fixtures: people with member and device keys, a founded hub, and replica syncing.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_crypto::{Draft, HubId, Lane, SecretKey};
use moot_state::body::{
    Admit, Certificate, CertifyDevice, Found, PROTOCOL, Remove, RoleChange, SetName, hub_id,
};
use moot_state::{Body, Limits, Replica, Role, Standing};

/// Someone with a member key and one device key.
pub struct Person {
    pub member: SecretKey,
    pub device: SecretKey,
}

pub fn person(n: u8) -> Person {
    Person {
        member: SecretKey::from_seed([n; 32]),
        device: SecretKey::from_seed([n.wrapping_add(100); 32]),
    }
}

pub const NONCE: [u8; 16] = [1; 16];

pub mod deliberation;
pub mod polls;

pub fn hub_of(founder: &Person) -> HubId {
    hub_id(&founder.member.public(), &NONCE)
}

pub fn found_body(founder: &Person) -> Body {
    let hub = hub_of(founder);
    Body::Found(Box::new(Found {
        name: "Riverside Branch".into(),
        founder: founder.member.public(),
        nonce: NONCE,
        protocol: PROTOCOL,
        device_certificate: Certificate::issue(&founder.member, &hub, &founder.device.public()),
    }))
}

/// A replica of a hub founded by `founder`.
pub fn founded(founder: &Person) -> Replica {
    let mut replica = Replica::new(hub_of(founder), Limits::default());
    replica
        .write(&founder.device, &found_body(founder))
        .unwrap();
    replica
}

/// An admission (public); the name goes in a separate members-lane op ([`name_body`]).
pub fn admit_body(who: &Person, _name: &str, standing: Standing) -> Body {
    Body::Admit(Admit {
        member: who.member.public(),
        standing,
    })
}

pub fn name_body(who: &Person, name: &str) -> Body {
    Body::SetName(SetName {
        member: who.member.public(),
        name: name.into(),
    })
}

/// A draft of `device`'s next op for `body`, in the body's lane (members for either-lane kinds),
/// naming the roll heads.
pub fn draft(replica: &Replica, device: &SecretKey, body: &Body) -> Draft {
    let lane = body.lane().unwrap_or(Lane::Members);
    replica.draft(&device.public(), lane, body, &[]).unwrap()
}

/// A draft of an op of a kind this version does not know, in `lane`.
pub fn future_draft(replica: &Replica, device: &SecretKey, lane: Lane, kind: u16) -> Draft {
    let mut draft = replica
        .draft(
            &device.public(),
            lane,
            &Body::Checkpoint(moot_state::body::Checkpoint {}),
            &[],
        )
        .unwrap();
    draft.kind = kind;
    draft.body = b"from a newer node".to_vec();
    draft
}

pub fn certify_body(hub: &HubId, who: &Person) -> Body {
    Body::CertifyDevice(CertifyDevice {
        member: who.member.public(),
        device: who.device.public(),
        certificate: Certificate::issue(&who.member, hub, &who.device.public()),
    })
}

/// `steward` admits `who`, and `who`'s device announces its certificate.
pub fn join(replica: &mut Replica, steward: &Person, who: &Person, standing: Standing) {
    let hub = replica.hub();
    replica
        .write(&steward.device, &admit_body(who, "someone", standing))
        .unwrap();
    replica
        .write(&who.device, &certify_body(&hub, who))
        .unwrap();
}

pub fn grant_body(who: &Person, role: Role) -> Body {
    Body::Grant(RoleChange {
        member: who.member.public(),
        role,
    })
}

/// Removal of `who` accepting their device's ops up to what `replica` holds.
pub fn remove_body(replica: &Replica, who: &Person) -> Body {
    let device = who.device.public();
    let cut = replica.lane_cut(&device);
    Body::Remove(Remove {
        member: who.member.public(),
        cuts: vec![(device, cut)],
    })
}

/// Revocation of `who`'s `role` accepting their device's ops up to what `replica` holds.
pub fn revoke_body(replica: &Replica, who: &Person, role: Role) -> Body {
    let device = who.device.public();
    Body::Revoke(moot_state::body::RevokeRole {
        member: who.member.public(),
        role,
        cuts: Some(vec![(device, replica.lane_cut(&device))]),
    })
}

/// Copies every op `from` holds into `to`, in id order (so often before their
/// dependencies), sending again what was refused for a full buffer until nothing changes, as a
/// sync protocol would.
pub fn sync(from: &Replica, to: &mut Replica) {
    loop {
        let before = to.len();
        for id in from.op_ids() {
            to.insert(from.op_bytes(&id).unwrap());
        }
        if to.len() == before {
            break;
        }
    }
}

/// Signs and inserts an op of a kind this version does not know, by `device` in `lane`, and
/// checks it is kept as unsupported.
pub fn insert_future(
    replica: &mut Replica,
    device: &SecretKey,
    lane: Lane,
    kind: u16,
) -> moot_crypto::Authentic<moot_crypto::SignedOp> {
    let op = future_draft(replica, device, lane, kind)
        .sign(&replica.hub(), device)
        .unwrap();
    assert_eq!(
        replica.insert(op.bytes()).outcome,
        moot_state::Outcome::Unsupported(op.id())
    );
    op
}
