//! Regressions from a review of the trust layer: each test first showed the problem (a
//! stranger's ops kept or costing memory, a rule applied one way to roll ops and another way to
//! other ops, a no-op re-admission voiding honest ops, a stored verdict believed for a stranger).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moot_crypto::{Draft, Lane, SecretKey};
use moot_state::body::{Checkpoint, kind};
use moot_state::{Body, Denied, Limits, Outcome, Reason, Replica, Role, Standing, Verdict};

fn note() -> Body {
    Body::Checkpoint(Checkpoint {})
}

fn stranger() -> SecretKey {
    SecretKey::from_seed([77; 32])
}

#[test]
fn a_stranger_citing_an_unsupported_op_is_not_kept() {
    let fay = person(1);
    let mut replica = founded(&fay);
    let future = insert_future(&mut replica, &fay.device, Lane::Public, 0x0371);
    for i in 0..50u8 {
        let (kind, body) = Body::Admit(moot_state::body::Admit {
            member: SecretKey::from_seed([i; 32]).public(),
            standing: Standing::Member,
        })
        .encode()
        .unwrap();
        let op = Draft {
            lane: Lane::Public,
            seq: 1,
            prev: None,
            deps: vec![future.id()],
            kind,
            body,
        }
        .sign(&replica.hub(), &stranger())
        .unwrap();
        let insertion = replica.insert(op.bytes());
        assert!(insertion.kept.is_empty(), "{:?}", insertion.outcome);
    }
    // A guest may not get a members-lane op kept by citing one either.
    let gus = person(5);
    join(&mut replica, &fay, &gus, Standing::Guest);
    let op = replica
        .draft(&gus.device.public(), Lane::Members, &note(), &[future.id()])
        .unwrap()
        .sign(&replica.hub(), &gus.device)
        .unwrap();
    assert!(matches!(
        replica.insert(op.bytes()).outcome,
        Outcome::Rejected(ref r) if r.reason == Reason::Unauthorized(Denied::GuestNotAllowed)
    ));
}

/// A hall with 64 concurrent roll heads (members self-certifying from the same past), and
/// those heads.
fn hall_with_many_heads() -> (Replica, Vec<moot_crypto::OpId>) {
    let fay = person(1);
    let mut hall = founded(&fay);
    let hub = hall.hub();
    let people: Vec<Person> = (0..64u8).map(|n| person(100 + n)).collect();
    for p in &people {
        hall.write(&fay.device, &admit_body(p, "p", Standing::Member))
            .unwrap();
    }
    let drafts: Vec<_> = people
        .iter()
        .map(|p| {
            hall.draft(
                &p.device.public(),
                Lane::Public,
                &certify_body(&hub, p),
                &[],
            )
            .unwrap()
            .sign(&hub, &p.device)
            .unwrap()
        })
        .collect();
    let mut certs = Vec::new();
    for op in &drafts {
        assert!(matches!(
            hall.insert(op.bytes()).outcome,
            Outcome::Accepted(_)
        ));
        certs.push(op.id());
    }
    certs.sort();
    (hall, certs)
}

/// 32 of `heads`, a different combination each call.
fn some_heads(heads: &[moot_crypto::OpId], x: &mut u64) -> Vec<moot_crypto::OpId> {
    let mut deps = std::collections::BTreeSet::new();
    while deps.len() < 32 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        deps.insert(heads[(*x % heads.len() as u64) as usize]);
    }
    deps.into_iter().collect()
}

#[test]
fn a_strangers_ops_naming_new_combinations_of_heads_cost_no_memory() {
    let (mut hall, certs) = hall_with_many_heads();
    let hub = hall.hub();
    let frontiers = hall.frontier_count();
    let mut x: u64 = 12345;
    for _ in 0..500 {
        let op = Draft {
            lane: Lane::Public,
            seq: 1,
            prev: None,
            deps: some_heads(&certs, &mut x),
            kind: kind::CHECKPOINT,
            body: vec![],
        }
        .sign(&hub, &stranger())
        .unwrap();
        assert!(matches!(
            hall.insert(op.bytes()).outcome,
            Outcome::Rejected(ref r) if r.reason == Reason::Unauthorized(Denied::UnknownDevice)
        ));
    }
    assert_eq!(
        hall.frontier_count(),
        frontiers,
        "no frontier interned for refused ops"
    );
    assert_eq!(hall.remembered_rejections(), 0);
}

#[test]
fn a_strangers_refusals_are_not_remembered() {
    let fay = person(1);
    let mut hall = founded(&fay);
    let hub = hall.hub();
    let genesis = *hall.op_ids().iter().next().unwrap();
    for i in 0..2_000u64 {
        // A broken chain or a bad signature, or a fresh key with no deps.
        let key = if i % 3 == 0 {
            let mut seed = [5u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            SecretKey::from_seed(seed)
        } else {
            stranger()
        };
        let (seq, prev) = if i % 3 == 0 {
            (1, None)
        } else {
            (2 + i, Some(genesis))
        };
        let op = Draft {
            lane: Lane::Public,
            seq,
            prev,
            deps: vec![],
            kind: kind::CHECKPOINT,
            body: vec![],
        }
        .sign(&hub, &key)
        .unwrap();
        let mut bytes = op.bytes().to_vec();
        if i % 3 == 1 {
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
        }
        assert!(matches!(hall.insert(&bytes).outcome, Outcome::Rejected(_)));
    }
    assert_eq!(hall.remembered_rejections(), 0);
}

#[test]
fn a_stored_op_by_a_stranger_is_refused_on_load_not_believed() {
    let fay = person(1);
    let hall = founded(&fay);
    let hub = hall.hub();
    let genesis = *hall.op_ids().iter().next().unwrap();
    let op = Draft {
        lane: Lane::Public,
        seq: 1,
        prev: None,
        deps: vec![genesis],
        kind: kind::CHECKPOINT,
        body: vec![],
    }
    .sign(&hub, &stranger())
    .unwrap();
    let mut loaded = Replica::new(hub, Limits::default());
    let stored_genesis = moot_crypto::SignedOp::decode(hall.op_bytes(&genesis).unwrap())
        .unwrap()
        .authenticate(&hub)
        .unwrap();
    loaded.restore(stored_genesis, Verdict::Accepted).unwrap();
    assert!(loaded.restore(op.clone(), Verdict::Accepted).is_err());
    assert_eq!(loaded.validity(&op.id()), None);
    // Held for an upgrade by an older version, it is refused when judged (not kept).
    assert!(loaded.restore(op, Verdict::NeedsUpgrade).is_err());
}

#[test]
fn roll_ops_are_held_to_the_fact_rule_like_every_other_op() {
    let fay = person(1);
    let sam = person(2);
    let ann = person(3);
    let mut hall = founded(&fay);
    join(&mut hall, &fay, &sam, Standing::Member);
    hall.write(&fay.device, &grant_body(&sam, Role::Steward))
        .unwrap();
    let mut sams = Replica::new(hall.hub(), Limits::default());
    sync(&hall, &mut sams);
    let bad_admit = sams
        .write(&sam.device, &admit_body(&ann, "Ann", Standing::Member))
        .unwrap();
    let cert = sams
        .write(&ann.device, &certify_body(&sams.hub(), &ann))
        .unwrap();
    let note_id = sams.write(&ann.device, &note()).unwrap();
    // Meanwhile Fay admits Ann too, and removes Sam.
    hall.write(&fay.device, &admit_body(&ann, "Ann", Standing::Member))
        .unwrap();
    hall.write(&fay.device, &remove_body(&hall, &sam)).unwrap();
    for (a, b) in [(&hall, &sams), (&sams, &hall)] {
        let mut merged = Replica::new(hall.hub(), Limits::default());
        sync(a, &mut merged);
        sync(b, &mut merged);
        assert!(merged.validity(&bad_admit).unwrap().is_err());
        // The certification and the note both rested on Sam's admission: neither counts.
        assert_eq!(
            merged.validity(&cert),
            Some(Err(Denied::UnacceptedFact(bad_admit)))
        );
        assert!(merged.validity(&note_id).unwrap().is_err());
        assert!(merged.roll().member_of(&ann.device.public()).is_none());
        assert!(
            merged.roll().member(&ann.member.public()).is_some(),
            "Fay's admission stands"
        );
    }
}

#[test]
fn a_no_op_readmission_by_a_removed_steward_leaves_honest_ops_counting() {
    let fay = person(1);
    let sam = person(2);
    let ann = person(3);
    let mut hall = founded(&fay);
    join(&mut hall, &fay, &sam, Standing::Member);
    hall.write(&fay.device, &grant_body(&sam, Role::Steward))
        .unwrap();
    join(&mut hall, &fay, &ann, Standing::Member);
    let mut sams = Replica::new(hall.hub(), Limits::default());
    sync(&hall, &mut sams);
    sams.write(&sam.device, &admit_body(&ann, "Ann", Standing::Member))
        .unwrap();
    let regrant = sams.write(&sam.device, &grant_body(&sam, Role::Convener));
    let ballot = sams.write(&ann.device, &note()).unwrap();
    hall.write(&fay.device, &remove_body(&hall, &sam)).unwrap();
    for (a, b) in [(&hall, &sams), (&sams, &hall)] {
        let mut merged = Replica::new(hall.hub(), Limits::default());
        sync(a, &mut merged);
        sync(b, &mut merged);
        assert_eq!(merged.validity(&ballot), Some(Ok(())));
    }
    let _ = regrant;
}

#[test]
fn a_strangers_genesis_costs_no_memory_either() {
    use moot_state::body::{Certificate, Found, PROTOCOL};
    let (mut hall, certs) = hall_with_many_heads();
    let hub = hall.hub();
    let frontiers = hall.frontier_count();
    let mut x: u64 = 777;
    for n in 0..200u8 {
        // Anyone can sign a genesis of their own (a valid certificate, another hub's id).
        let mut seed = [0xab; 32];
        seed[0] = n;
        let key = SecretKey::from_seed(seed);
        let (kind, body) = Body::Found(Box::new(Found {
            name: "Mine".into(),
            founder: key.public(),
            nonce: [n; 16],
            protocol: PROTOCOL,
            device_certificate: Certificate::issue(&key, &hub, &key.public()),
        }))
        .encode()
        .unwrap();
        let op = Draft {
            lane: Lane::Public,
            seq: 1,
            prev: None,
            deps: some_heads(&certs, &mut x),
            kind,
            body,
        }
        .sign(&hub, &key)
        .unwrap();
        let outcome = hall.insert(op.bytes()).outcome;
        assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
    }
    assert_eq!(hall.frontier_count(), frontiers, "no frontier interned");
    assert_eq!(hall.remembered_rejections(), 0);
}
