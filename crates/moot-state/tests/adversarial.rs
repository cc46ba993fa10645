//! One test per trust requirement: each bad op is rejected (or does not count) with its typed
//! reason, and the valid state is unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moot_crypto::op::MAX_OP_BYTES;
use moot_crypto::{DecodeError, Draft, SignedOp};
use moot_state::body::Update;
use moot_state::{
    Body, Denied, Insertion, Limits, Outcome, Reason, Rejection, Replica, Role, Standing, Status,
};

fn rejected(outcome: &Outcome) -> &Reason {
    match outcome {
        Outcome::Rejected(rejection) => &rejection.reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn self_update(who: &Person) -> Body {
    Body::Update(Update {
        member: who.member.public(),
        constituency: Some(Some("Riverside North".into())),
        contribution: None,
    })
}

#[test]
fn the_founder_is_the_first_steward() {
    let fay = person(1);
    let mut replica = founded(&fay);
    let roll = replica.roll();
    let record = roll.member(&fay.member.public()).unwrap();
    assert_eq!(record.status, Status::Member);
    assert!(record.roles.contains(&Role::Steward));
    assert_eq!(roll.hub_name, "Riverside Branch");
}

#[test]
fn forged_signature_is_rejected() {
    let fay = person(1);
    let ann = person(2);
    let mut replica = founded(&fay);
    let before = replica.roll();
    let draft = replica
        .draft(
            &fay.device.public(),
            &admit_body(&ann, "Ann", Standing::Member),
        )
        .unwrap();
    let op = draft.sign(&replica.hub(), &fay.device).unwrap();
    let mut bytes = op.bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let insertion = replica.insert(&bytes);
    assert_eq!(rejected(&insertion.outcome), &Reason::BadSignature);
    assert_eq!(replica.roll(), before);
}

#[test]
fn unknown_key_is_rejected() {
    let fay = person(1);
    let stranger = person(9);
    let mut replica = founded(&fay);
    let before = replica.roll();
    let error = replica
        .write(
            &stranger.device,
            &admit_body(&stranger, "Me", Standing::Member),
        )
        .unwrap_err();
    assert_eq!(error.reason, Reason::Unauthorized(Denied::UnknownDevice));
    assert_eq!(replica.roll(), before);
}

#[test]
fn non_steward_admitting_is_rejected() {
    let fay = person(1);
    let ann = person(2);
    let bob = person(3);
    let mut replica = founded(&fay);
    join(&mut replica, &fay, &ann, Standing::Member);
    let before = replica.roll();
    let error = replica
        .write(&ann.device, &admit_body(&bob, "Bob", Standing::Member))
        .unwrap_err();
    assert_eq!(error.reason, Reason::Unauthorized(Denied::NotSteward));
    assert_eq!(replica.roll(), before);
}

#[test]
fn guest_acting_as_member_is_rejected() {
    let fay = person(1);
    let gus = person(4);
    let bob = person(3);
    let mut replica = founded(&fay);
    join(&mut replica, &fay, &gus, Standing::Guest);
    let before = replica.roll();
    let error = replica.write(&gus.device, &self_update(&gus)).unwrap_err();
    assert_eq!(error.reason, Reason::Unauthorized(Denied::GuestNotAllowed));
    let error = replica
        .write(&gus.device, &admit_body(&bob, "Bob", Standing::Member))
        .unwrap_err();
    assert_eq!(error.reason, Reason::Unauthorized(Denied::NotSteward));
    let error = replica
        .write(&fay.device, &grant_body(&gus, Role::Convener))
        .unwrap_err();
    assert_eq!(error.reason, Reason::Unauthorized(Denied::RoleForGuest));
    assert_eq!(replica.roll(), before);
}

#[test]
fn removed_member_writing_after_removal_is_rejected() {
    let fay = person(1);
    let ann = person(2);
    let mut replica = founded(&fay);
    join(&mut replica, &fay, &ann, Standing::Member);
    replica.write(&ann.device, &self_update(&ann)).unwrap();
    let removal = remove_body(&replica, &ann);
    replica.write(&fay.device, &removal).unwrap();
    let before = replica.roll();
    assert_eq!(
        before.member(&ann.member.public()).unwrap().status,
        Status::Removed
    );
    let error = replica.write(&ann.device, &self_update(&ann)).unwrap_err();
    assert_eq!(error.reason, Reason::Unauthorized(Denied::RemovedAuthor));
    assert_eq!(replica.roll(), before);
}

#[test]
fn removed_member_back_dating_does_not_count() {
    // Ann keeps a copy of the hub from before her removal and writes there, claiming not to
    // have seen it. Her op is valid at its causal position, but it is beyond the removal's cut.
    let fay = person(1);
    let ann = person(2);
    let mut hall = founded(&fay);
    join(&mut hall, &fay, &ann, Standing::Member);
    let mut anns_copy = founded(&fay);
    sync(&hall, &mut anns_copy);
    hall.write(&fay.device, &remove_body(&hall, &ann)).unwrap();

    // A non-roll op (a kind from the future) and a roll op, both back-dated.
    let draft = anns_copy
        .draft(&ann.device.public(), &self_update(&ann))
        .unwrap();
    let update = draft.sign(&anns_copy.hub(), &ann.device).unwrap();
    anns_copy.insert_authentic(update.clone());
    let mut future = anns_copy
        .draft(&ann.device.public(), &self_update(&ann))
        .unwrap();
    future.kind = 900;
    future.body = b"from a newer node".to_vec();
    let future = future.sign(&anns_copy.hub(), &ann.device).unwrap();
    anns_copy.insert_authentic(future.clone());

    let before = hall.roll();
    sync(&anns_copy, &mut hall);
    assert!(matches!(
        hall.validity(&update.id()),
        Some(Err(Denied::RemovedAuthor))
    ));
    assert!(matches!(
        hall.validity(&future.id()),
        Some(Err(Denied::BeyondCut))
    ));
    assert_eq!(
        hall.roll(),
        before,
        "nothing Ann back-dated changed the roll"
    );
}

#[test]
fn op_with_missing_dependencies_waits_then_applies() {
    let fay = person(1);
    let ann = person(2);
    let mut source = founded(&fay);
    let admit = source
        .write(&fay.device, &admit_body(&ann, "Ann", Standing::Member))
        .unwrap();
    let certify = source
        .write(&ann.device, &certify_body(&source.hub(), &ann))
        .unwrap();

    let mut replica = Replica::new(source.hub(), Limits::default());
    let genesis = *source
        .op_ids()
        .iter()
        .find(|id| **id != admit && **id != certify)
        .unwrap();
    // Newest first: both wait.
    let outcome = replica.insert(source.op_bytes(&certify).unwrap()).outcome;
    assert!(matches!(outcome, Outcome::Pending { .. }), "{outcome:?}");
    let outcome = replica.insert(source.op_bytes(&admit).unwrap()).outcome;
    assert!(matches!(outcome, Outcome::Pending { .. }), "{outcome:?}");
    assert_eq!(replica.pending_len(), 2);
    let before = replica.roll();
    assert!(before.members.is_empty(), "waiting ops change nothing");
    let insertion = replica.insert(source.op_bytes(&genesis).unwrap());
    assert_eq!(insertion.outcome, Outcome::Accepted(genesis));
    assert_eq!(
        insertion.released,
        vec![Outcome::Accepted(admit), Outcome::Accepted(certify)]
    );
    assert_eq!(replica.pending_len(), 0);
    assert_eq!(replica.roll(), source.roll());
}

#[test]
fn pending_ops_are_bounded() {
    let fay = person(1);
    let mut source = founded(&fay);
    let mut ops = Vec::new();
    for n in 10..20u8 {
        ops.push(
            source
                .write(&fay.device, &admit_body(&person(n), "x", Standing::Guest))
                .unwrap(),
        );
    }
    let limits = Limits {
        max_pending: 3,
        ..Limits::default()
    };
    let mut replica = Replica::new(source.hub(), limits);
    for (i, id) in ops.iter().enumerate() {
        let outcome = replica.insert(source.op_bytes(id).unwrap()).outcome;
        if i < 3 {
            assert!(matches!(outcome, Outcome::Pending { .. }));
        } else {
            assert_eq!(rejected(&outcome), &Reason::PendingFull);
        }
    }
    // A full buffer is not a verdict: the same op is accepted once its dependencies are in.
    sync(&source, &mut replica);
    assert_eq!(replica.roll(), source.roll());
}

#[test]
fn replayed_op_is_a_quiet_no_op() {
    let fay = person(1);
    let ann = person(2);
    let mut replica = founded(&fay);
    let id = replica
        .write(&fay.device, &admit_body(&ann, "Ann", Standing::Member))
        .unwrap();
    let bytes = replica.op_bytes(&id).unwrap().to_vec();
    let before = replica.roll();
    for _ in 0..3 {
        assert_eq!(replica.insert(&bytes).outcome, Outcome::Duplicate(id));
    }
    assert_eq!(replica.len(), 2);
    assert_eq!(replica.roll(), before);
}

#[test]
fn equivocation_is_kept_as_evidence_and_flagged() {
    let fay = person(1);
    let ann = person(2);
    let bob = person(3);
    let mut replica = founded(&fay);
    let a = replica
        .draft(
            &fay.device.public(),
            &admit_body(&ann, "Ann", Standing::Member),
        )
        .unwrap();
    let b = Draft {
        body: replica
            .draft(
                &fay.device.public(),
                &admit_body(&bob, "Bob", Standing::Member),
            )
            .unwrap()
            .body,
        ..a.clone()
    };
    let a = a.sign(&replica.hub(), &fay.device).unwrap();
    let b = b.sign(&replica.hub(), &fay.device).unwrap();
    replica.insert_authentic(a.clone());
    replica.insert_authentic(b.clone());
    let forks = replica.equivocations();
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0].device, fay.device.public());
    assert_eq!(forks[0].seq, 2);
    let mut both = vec![a.id(), b.id()];
    both.sort();
    assert_eq!(forks[0].ops, both);
}

#[test]
fn malformed_and_truncated_bytes_are_rejected() {
    let fay = person(1);
    let mut replica = founded(&fay);
    let before = replica.roll();
    let genesis = *replica.op_ids().iter().next().unwrap();
    let bytes = replica.op_bytes(&genesis).unwrap().to_vec();
    let outcome = replica.insert(&bytes[..bytes.len() / 2]).outcome;
    assert!(matches!(
        rejected(&outcome),
        Reason::Malformed(DecodeError::Truncated { .. })
    ));
    let outcome = replica.insert(b"not an op at all").outcome;
    assert!(matches!(rejected(&outcome), Reason::Malformed(_)));
    // A known kind whose body does not decode.
    let mut draft = replica
        .draft(
            &fay.device.public(),
            &admit_body(&person(2), "x", Standing::Member),
        )
        .unwrap();
    draft.body = vec![0xff; 3];
    let op = draft.sign(&replica.hub(), &fay.device).unwrap();
    let outcome = replica.insert(op.bytes()).outcome;
    assert!(matches!(rejected(&outcome), Reason::MalformedBody(_)));
    assert_eq!(replica.roll(), before);
}

#[test]
fn oversized_op_is_rejected() {
    let fay = person(1);
    let mut replica = founded(&fay);
    let before = replica.roll();
    let outcome = replica.insert(&vec![1u8; MAX_OP_BYTES + 1]).outcome;
    assert_eq!(
        rejected(&outcome),
        &Reason::Malformed(DecodeError::TooLarge(MAX_OP_BYTES + 1))
    );
    assert_eq!(replica.roll(), before);
}

#[test]
fn an_unknown_kind_from_a_newer_node_is_kept_and_passed_on() {
    let fay = person(1);
    let mut replica = founded(&fay);
    let mut draft = replica
        .draft(&fay.device.public(), &self_update(&fay))
        .unwrap();
    draft.kind = 4242;
    draft.body = b"a body this version cannot read".to_vec();
    let op = draft.sign(&replica.hub(), &fay.device).unwrap();
    let outcome = replica.insert(op.bytes()).outcome;
    assert_eq!(outcome, Outcome::Accepted(op.id()));
    assert_eq!(replica.op_bytes(&op.id()), Some(op.bytes()));
    let valid = replica.validity(&op.id()).unwrap().unwrap();
    assert_eq!(valid.body(), &Body::Unknown(4242));
    let decoded = SignedOp::decode(replica.op_bytes(&op.id()).unwrap()).unwrap();
    assert_eq!(decoded.kind(), 4242);
}

#[test]
fn concurrent_mutual_removal_is_won_by_the_senior_steward() {
    let fay = person(1);
    let sam = person(2);
    let mo = person(3);
    let mut hall = founded(&fay);
    join(&mut hall, &fay, &sam, Standing::Member);
    hall.write(&fay.device, &grant_body(&sam, Role::Steward))
        .unwrap();
    join(&mut hall, &fay, &mo, Standing::Member);
    hall.write(&fay.device, &grant_body(&mo, Role::Steward))
        .unwrap();
    let mut mos_copy = Replica::new(hall.hub(), Limits::default());
    sync(&hall, &mut mos_copy);
    // Offline, each removes the other.
    let sam_removes_mo = hall.write(&sam.device, &remove_body(&hall, &mo)).unwrap();
    let mo_removes_sam = mos_copy
        .write(&mo.device, &remove_body(&mos_copy, &sam))
        .unwrap();
    // Merged either way round, Sam (steward before Mo) wins.
    for (a, b) in [(&hall, &mos_copy), (&mos_copy, &hall)] {
        let mut merged = Replica::new(hall.hub(), Limits::default());
        sync(a, &mut merged);
        sync(b, &mut merged);
        assert!(merged.validity(&sam_removes_mo).unwrap().is_ok());
        assert_eq!(
            merged.validity(&mo_removes_sam).unwrap().map(drop),
            Err(Denied::RemovedAuthor)
        );
        let roll = merged.roll();
        assert_eq!(
            roll.member(&mo.member.public()).unwrap().status,
            Status::Removed
        );
        assert_eq!(
            roll.member(&sam.member.public()).unwrap().status,
            Status::Member
        );
        assert!(roll.is_steward(&sam.member.public()));
    }
}

#[test]
fn back_dated_roll_op_by_a_removed_steward_waits_for_the_removal_and_fails() {
    // Mo is removed; from an old copy he admits a friend. However many of the members'
    // own ops the removal follows, Mo's back-dated admission is judged after it.
    let fay = person(1);
    let mo = person(3);
    let friend = person(5);
    let mut hall = founded(&fay);
    join(&mut hall, &fay, &mo, Standing::Member);
    hall.write(&fay.device, &grant_body(&mo, Role::Steward))
        .unwrap();
    let mut old_copy = Replica::new(hall.hub(), Limits::default());
    sync(&hall, &mut old_copy);
    for n in 10..14u8 {
        join(&mut hall, &fay, &person(n), Standing::Member);
    }
    hall.write(&fay.device, &remove_body(&hall, &mo)).unwrap();
    let admission = old_copy
        .write(&mo.device, &admit_body(&friend, "Friend", Standing::Member))
        .unwrap();
    sync(&old_copy, &mut hall);
    assert_eq!(
        hall.validity(&admission).unwrap().map(drop),
        Err(Denied::RemovedAuthor)
    );
    assert!(hall.roll().member(&friend.member.public()).is_none());
}

#[test]
fn batch_insertion_gives_the_same_outcomes_as_one_by_one() {
    let fay = person(1);
    let mut source = founded(&fay);
    for n in 10..30u8 {
        join(&mut source, &fay, &person(n), Standing::Member);
    }
    let mut ops: Vec<Vec<u8>> = source
        .op_ids()
        .iter()
        .map(|id| source.op_bytes(id).unwrap().to_vec())
        .collect();
    let last = ops[5].len() - 1;
    ops[5][last] ^= 1;
    ops.push(ops[7].clone());
    ops.push(b"junk".to_vec());
    let mut one_by_one = Replica::new(source.hub(), Limits::default());
    let expected: Vec<Insertion> = ops.iter().map(|b| one_by_one.insert(b)).collect();
    let mut batched = Replica::new(source.hub(), Limits::default());
    let got = batched.insert_batch(&ops);
    assert_eq!(got, expected);
    assert_eq!(batched.roll(), one_by_one.roll());
    assert!(matches!(
        got[5].outcome,
        Outcome::Rejected(Rejection {
            reason: Reason::BadSignature,
            ..
        })
    ));
}

#[test]
fn contributions_and_constituencies_are_recorded_and_members_update_their_own() {
    use moot_state::body::{Admit, Contribution, Period};
    let fay = person(1);
    let ann = person(2);
    let mut replica = founded(&fay);
    let pledge = Contribution::Pledge {
        amount_minor: 200,
        period: Period::Quarter,
    };
    replica
        .write(
            &fay.device,
            &Body::Admit(Admit {
                member: ann.member.public(),
                name: "Ann".into(),
                standing: Standing::Member,
                constituency: Some("Riverside South".into()),
                contribution: Some(pledge.clone()),
            }),
        )
        .unwrap();
    replica
        .write(&ann.device, &certify_body(&replica.hub(), &ann))
        .unwrap();
    let record = replica.roll().member(&ann.member.public()).unwrap().clone();
    assert_eq!(record.contribution, Some(pledge));
    assert_eq!(record.constituency.as_deref(), Some("Riverside South"));
    // Ann records a hardship waiver for herself; she may not change Fay's record.
    let waiver = Body::Update(Update {
        member: ann.member.public(),
        constituency: None,
        contribution: Some(Some(Contribution::HardshipWaiver)),
    });
    replica.write(&ann.device, &waiver).unwrap();
    assert_eq!(
        replica
            .roll()
            .member(&ann.member.public())
            .unwrap()
            .contribution,
        Some(Contribution::HardshipWaiver)
    );
    let error = replica.write(&ann.device, &self_update(&fay)).unwrap_err();
    assert_eq!(error.reason, Reason::Unauthorized(Denied::NotYours));
}
