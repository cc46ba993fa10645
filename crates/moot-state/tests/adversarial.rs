//! One test per trust requirement: each bad op is rejected (or does not count) with its typed
//! reason, and the valid state is unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moot_crypto::op::MAX_OP_BYTES;
use moot_crypto::{DecodeError, Draft};
use moot_state::Lane;
use moot_state::body::{Contribution, SetConstituency, SetContribution};
use moot_state::{
    Body, Denied, Insertion, Limits, Outcome, Reason, Rejection, Replica, Role, Source, Standing,
    Status,
};

fn rejected(outcome: &Outcome) -> &Reason {
    match outcome {
        Outcome::Rejected(rejection) => &rejection.reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// A members-lane change of `who`'s own record (allowed for members, not guests).
fn self_update(who: &Person) -> Body {
    Body::SetContribution(SetContribution {
        member: who.member.public(),
        contribution: Some(Contribution::HardshipWaiver),
    })
}

#[test]
fn the_founder_is_the_first_steward() {
    let fay = person(1);
    let mut replica = founded(&fay);
    let roll = replica.roll();
    let record = roll.member(&fay.member.public()).unwrap();
    assert_eq!(record.status, Status::Member);
    assert!(record.roles.contains_key(&Role::Steward));
    assert_eq!(roll.hub_name, "Riverside Branch");
}

#[test]
fn forged_signature_is_rejected() {
    let fay = person(1);
    let ann = person(2);
    let mut replica = founded(&fay);
    let before = replica.roll();
    let draft = draft(
        &replica,
        &fay.device,
        &admit_body(&ann, "Ann", Standing::Member),
    );
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
fn a_removed_member_forking_under_the_cut_has_nothing_from_the_fork_counted() {
    // The cut accepts Ann's ops up to a sequence number. With a copy of the hub that lacks
    // her last op, she writes a second op at that very number, not following her removal: a
    // fork under the cut. The sequence number cannot tell which of the two the cut meant, so
    // neither counts (a ballot so written would otherwise replace her counted one).
    let fay = person(1);
    let ann = person(2);
    let mut hall = founded(&fay);
    join(&mut hall, &fay, &ann, Standing::Member);
    let checkpoint = Body::Checkpoint(moot_state::body::Checkpoint {});
    let early = hall
        .write_in(&ann.device, Lane::Members, &checkpoint, &[])
        .unwrap()[0];
    let mut anns_copy = founded(&fay);
    sync(&hall, &mut anns_copy);
    let seen = hall
        .write_in(&ann.device, Lane::Members, &checkpoint, &[])
        .unwrap()[0];
    // Another op than the hall's at that number: it also names an older op of the hub.
    let heads = anns_copy.roll_heads(Lane::Members);
    let older = anns_copy
        .op_ids()
        .into_iter()
        .find(|id| *id != early && !heads.contains(id))
        .unwrap();
    let fork = anns_copy
        .write_in(&ann.device, Lane::Members, &checkpoint, &[older])
        .unwrap()[0];
    assert_ne!(seen, fork);
    assert_eq!(
        hall.op(&seen).unwrap().seq(),
        anns_copy.op(&fork).unwrap().seq()
    );
    hall.write(&fay.device, &remove_body(&hall, &ann)).unwrap();
    sync(&anns_copy, &mut hall);
    assert!(hall.holds(&fork));
    assert_eq!(hall.validity(&fork), Some(Err(Denied::ForkedUnderCut)));
    assert_eq!(hall.validity(&seen), Some(Err(Denied::ForkedUnderCut)));
    // What came before the fork is not in doubt.
    assert_eq!(hall.validity(&early), Some(Ok(())));
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

    // A public roll op (her public display name), a members-lane roll op (personal data)
    // and a non-roll op (a checkpoint), all back-dated.
    let public_name = Body::PublicName(moot_state::body::PublicName {
        member: ann.member.public(),
        name: Some("Ann of Riverside".into()),
    });
    let public_name = draft(&anns_copy, &ann.device, &public_name)
        .sign(&anns_copy.hub(), &ann.device)
        .unwrap();
    anns_copy.insert_authentic(public_name.clone());
    let update = draft(&anns_copy, &ann.device, &self_update(&ann))
        .sign(&anns_copy.hub(), &ann.device)
        .unwrap();
    anns_copy.insert_authentic(update.clone());
    let checkpoint = Body::Checkpoint(moot_state::body::Checkpoint {});
    let future = draft(&anns_copy, &ann.device, &checkpoint)
        .sign(&anns_copy.hub(), &ann.device)
        .unwrap();
    anns_copy.insert_authentic(future.clone());

    let before = hall.roll();
    sync(&anns_copy, &mut hall);
    // The public roll op waits for the removal in the roll's resolution, and fails there.
    assert!(matches!(
        hall.validity(&public_name.id()),
        Some(Err(Denied::RemovedAuthor))
    ));
    // The others are beyond the removal's cut.
    assert!(matches!(
        hall.validity(&update.id()),
        Some(Err(Denied::BeyondCut))
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
    let bob = person(3);
    let mut source = founded(&fay);
    let genesis = *source.op_ids().iter().next().unwrap();
    let admit = source
        .write(&fay.device, &admit_body(&ann, "Ann", Standing::Member))
        .unwrap();
    let certify = source
        .write(&ann.device, &certify_body(&source.hub(), &ann))
        .unwrap();
    let next = source
        .write(&fay.device, &admit_body(&bob, "Bob", Standing::Guest))
        .unwrap();

    let mut replica = Replica::new(source.hub(), Limits::default());
    replica.insert(source.op_bytes(&genesis).unwrap());
    // Newest first. Fay is on the roll: her op waits for its dependencies.
    let outcome = replica.insert(source.op_bytes(&next).unwrap()).outcome;
    assert!(matches!(outcome, Outcome::Pending { .. }), "{outcome:?}");
    // Ann is not on the roll yet: her device's op is not held while it waits (a stranger
    // could fill memory that way), and the refusal is not remembered.
    let outcome = replica.insert(source.op_bytes(&certify).unwrap()).outcome;
    assert_eq!(rejected(&outcome), &Reason::NotHeld);
    assert_eq!(replica.rejection(&certify), None);
    assert_eq!(replica.pending_len(), 1);
    let before = replica.roll();
    assert_eq!(before.members.len(), 1, "waiting ops change nothing");
    let insertion = replica.insert(source.op_bytes(&admit).unwrap());
    assert_eq!(insertion.outcome, Outcome::Accepted(admit));
    assert!(
        insertion.released.is_empty(),
        "still waits for the certificate"
    );
    // Sent again once Ann is on the roll, the certificate is accepted and releases Fay's op.
    let insertion = replica.insert(source.op_bytes(&certify).unwrap());
    assert_eq!(insertion.outcome, Outcome::Accepted(certify));
    assert_eq!(insertion.released, vec![Outcome::Accepted(next)]);
    assert_eq!(replica.pending_len(), 0);
    assert_eq!(replica.roll(), source.roll());
}

/// Fay's admissions 1..n, each waiting for the one before (admission 0 is withheld).
fn waiting_chain(n: u8) -> (Replica, Replica, Vec<moot_crypto::OpId>) {
    let fay = person(1);
    let mut source = founded(&fay);
    let mut ops = Vec::new();
    for k in 0..n {
        ops.push(
            source
                .write(
                    &fay.device,
                    &admit_body(&person(10 + k), "x", Standing::Guest),
                )
                .unwrap(),
        );
    }
    let mut replica = Replica::new(
        source.hub(),
        Limits {
            max_pending: 3,
            ..Limits::default()
        },
    );
    let genesis = *source.op_ids().iter().find(|id| !ops.contains(id)).unwrap();
    replica.insert(source.op_bytes(&genesis).unwrap());
    (source, replica, ops)
}

#[test]
fn pending_ops_are_bounded_per_source() {
    use moot_state::Source;
    let (mut source, mut replica, ops) = waiting_chain(10);
    for (i, id) in ops.iter().enumerate().skip(1) {
        let outcome = replica
            .insert_from(Source(1), source.op_bytes(id).unwrap())
            .outcome;
        if i <= 3 {
            assert!(matches!(outcome, Outcome::Pending { .. }), "{outcome:?}");
        } else {
            assert_eq!(rejected(&outcome), &Reason::PendingFull);
        }
    }
    // Another source has its own allowance: one peer cannot use up another's.
    let outcome = replica
        .insert_from(Source(2), source.op_bytes(&ops[5]).unwrap())
        .outcome;
    assert!(matches!(outcome, Outcome::Pending { .. }), "{outcome:?}");
    // A source that goes away takes its waiting ops with it.
    replica.drop_source(Source(1));
    assert_eq!(replica.pending_len(), 1);
    assert_eq!(replica.pending_bytes(Source(1)), 0);
    // A full buffer is not a verdict: the same ops are accepted once their dependencies are in.
    sync(&source, &mut replica);
    assert_eq!(replica.roll(), source.roll());
    assert_eq!(replica.pending_len(), 0);
    assert_eq!(replica.pending_bytes(Source(2)), 0);
}

#[test]
fn pending_ops_are_bounded_in_bytes() {
    let (source, _, ops) = waiting_chain(6);
    let one = source.op_bytes(&ops[1]).unwrap().len();
    let mut replica = Replica::new(
        source.hub(),
        Limits {
            max_pending_bytes: 2 * one + one / 2,
            ..Limits::default()
        },
    );
    let genesis = *source.op_ids().iter().find(|id| !ops.contains(id)).unwrap();
    replica.insert(source.op_bytes(&genesis).unwrap());
    let outcomes: Vec<Outcome> = ops[1..5]
        .iter()
        .map(|id| replica.insert(source.op_bytes(id).unwrap()).outcome)
        .collect();
    assert!(matches!(outcomes[0], Outcome::Pending { .. }));
    assert!(matches!(outcomes[1], Outcome::Pending { .. }));
    assert_eq!(rejected(&outcomes[2]), &Reason::PendingFull);
    assert!(replica.pending_bytes(moot_state::Source::DEFAULT) <= 2 * one + one / 2);
}

#[test]
fn a_flood_from_a_stranger_is_not_held_and_an_honest_op_still_gets_in() {
    use moot_state::Source;
    let fay = person(1);
    let ann = person(2);
    let stranger = person(9);
    let mut source = founded(&fay);
    let genesis = *source.op_ids().iter().next().unwrap();
    join(&mut source, &fay, &ann, Standing::Member);
    let honest = source
        .write(&fay.device, &grant_body(&ann, Role::Convener))
        .unwrap();
    let mut replica = Replica::new(source.hub(), Limits::default());
    replica.insert(source.op_bytes(&genesis).unwrap());
    // 2,000 large ops from a key nobody certified, each naming a dependency nobody has.
    let mut flood = future_draft(&source, &stranger.device, Lane::Members, 0x0460);
    flood.body = vec![7; 32 * 1024];
    for n in 0..2_000u64 {
        let mut op = flood.clone();
        op.deps = vec![moot_crypto::OpId(
            moot_crypto::OpId([0; 32]).0.map(|_| (n % 200) as u8),
        )];
        op.seq = n + 2;
        op.prev = Some(moot_crypto::OpId([0xff; 32]));
        let op = op.sign(&source.hub(), &stranger.device).unwrap();
        let outcome = replica.insert_from(Source(66), op.bytes()).outcome;
        // No certificate here names the stranger's device: refused before any work.
        assert_eq!(
            rejected(&outcome),
            &Reason::Unauthorized(Denied::UnknownDevice)
        );
    }
    assert_eq!(replica.pending_len(), 0);
    assert_eq!(replica.pending_bytes(Source(66)), 0);
    assert_eq!(
        replica.remembered_rejections(),
        0,
        "strangers' refusals are not remembered"
    );
    // Fay's op arrives before the ops it depends on, from an honest peer: it waits, and is
    // accepted when they come.
    let outcome = replica
        .insert_from(Source(1), source.op_bytes(&honest).unwrap())
        .outcome;
    assert!(matches!(outcome, Outcome::Pending { .. }), "{outcome:?}");
    sync(&source, &mut replica);
    assert!(replica.validity(&honest).unwrap().is_ok());
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
    let a = draft(
        &replica,
        &fay.device,
        &admit_body(&ann, "Ann", Standing::Member),
    );
    let b = Draft {
        body: draft(
            &replica,
            &fay.device,
            &admit_body(&bob, "Bob", Standing::Member),
        )
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
    // Both branch ends are heads of the chain (what a sync engine sends as its heads), and the
    // op they continue is not.
    let heads: Vec<moot_crypto::OpId> = replica
        .chain_heads()
        .into_iter()
        .filter(|(device, lane, _, _)| *device == fay.device.public() && *lane == a.lane())
        .map(|(_, _, seq, id)| {
            assert_eq!(seq, 2);
            id
        })
        .collect();
    assert_eq!(heads, both);
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
    let mut bad = draft(
        &replica,
        &fay.device,
        &admit_body(&person(2), "x", Standing::Member),
    );
    bad.body = vec![0xff; 3];
    let op = bad.sign(&replica.hub(), &fay.device).unwrap();
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
fn an_unknown_kind_from_a_newer_node_is_kept_and_passed_on_never_applied() {
    let fay = person(1);
    let mut replica = founded(&fay);
    let before = replica.roll();
    let op = future_draft(&replica, &fay.device, Lane::Members, 0x0350)
        .sign(&replica.hub(), &fay.device)
        .unwrap();
    let outcome = replica.insert(op.bytes()).outcome;
    assert_eq!(outcome, Outcome::Unsupported(op.id()));
    assert_eq!(
        outcome.kept(),
        Some(op.id()),
        "kept, so it is stored and relayed"
    );
    assert_eq!(replica.op_bytes(&op.id()), Some(op.bytes()));
    assert!(matches!(
        replica.validity(&op.id()),
        Some(Err(Denied::Unsupported))
    ));
    assert_eq!(replica.roll(), before, "never applied");
}

#[test]
fn an_unknown_kind_still_has_its_author_and_lane_checked() {
    let fay = person(1);
    let gus = person(4);
    let stranger = person(9);
    let mut replica = founded(&fay);
    join(&mut replica, &fay, &gus, Standing::Guest);
    // A guest cannot write a members-lane op of any kind, known or not.
    let op = future_draft(&replica, &gus.device, Lane::Members, 0x0450)
        .sign(&replica.hub(), &gus.device)
        .unwrap();
    assert_eq!(
        rejected(&replica.insert(op.bytes()).outcome),
        &Reason::Unauthorized(Denied::GuestNotAllowed)
    );
    // In the public lane, a guest may.
    let op = future_draft(&replica, &gus.device, Lane::Public, 0x0450)
        .sign(&replica.hub(), &gus.device)
        .unwrap();
    assert_eq!(
        replica.insert(op.bytes()).outcome,
        Outcome::Unsupported(op.id())
    );
    // A stranger may not write at all.
    let op = future_draft(&replica, &stranger.device, Lane::Public, 0x0450)
        .sign(&replica.hub(), &stranger.device)
        .unwrap();
    assert_eq!(
        rejected(&replica.insert(op.bytes()).outcome),
        &Reason::Unauthorized(Denied::UnknownDevice)
    );
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
fn batch_runs_hand_over_every_outcome_in_order_and_stop_when_told() {
    // Twelve chunks of signature checks: more than can be checked ahead of validation.
    let (hub, ops) = moot_state::sample::history(20, 12 * moot_crypto::op::BATCH);
    let mut whole = Replica::new(hub, Limits::default());
    let expected = whole.insert_batch(&ops);
    let mut runs = Replica::new(hub, Limits::default());
    let mut got: Vec<Insertion> = Vec::new();
    let mut count = 0;
    runs.insert_batch_runs(Source::DEFAULT, &ops, &mut |run| {
        assert!(!run.is_empty(), "an empty run");
        count += 1;
        got.extend(run);
        true
    });
    assert!(count > 1, "one run for {} ops", ops.len());
    assert_eq!(got, expected);
    assert_eq!(runs.op_ids(), whole.op_ids());
    // Stopped after the first run: the ops after it are not inserted.
    let mut stopped = Replica::new(hub, Limits::default());
    let mut first: Vec<Insertion> = Vec::new();
    stopped.insert_batch_runs(Source::DEFAULT, &ops, &mut |run| {
        first.extend(run);
        false
    });
    assert!(
        !first.is_empty() && first.len() < ops.len(),
        "{} of {}",
        first.len(),
        ops.len()
    );
    assert_eq!(first[..], expected[..first.len()]);
    let held = stopped.op_ids();
    assert_eq!(
        held.len(),
        first.iter().filter(|i| i.outcome.kept().is_some()).count()
    );
    for bytes in &ops[first.len()..] {
        let id = moot_crypto::SignedOp::decode(bytes).unwrap().id();
        assert!(!held.contains(&id), "an op after the stop was inserted");
    }
}

#[test]
fn constituencies_are_set_by_stewards_only_and_contributions_by_members_for_themselves() {
    use moot_state::body::Period;
    let fay = person(1);
    let ann = person(2);
    let mut replica = founded(&fay);
    join(&mut replica, &fay, &ann, Standing::Member);
    let constituency = |who: &Person, c: &str| {
        Body::SetConstituency(SetConstituency {
            member: who.member.public(),
            constituency: Some(c.into()),
        })
    };
    replica
        .write(&fay.device, &constituency(&ann, "Riverside South"))
        .unwrap();
    let pledge = Contribution::Pledge {
        amount_minor: 200,
        period: Period::Quarter,
    };
    replica
        .write(
            &fay.device,
            &Body::SetContribution(SetContribution {
                member: ann.member.public(),
                contribution: Some(pledge.clone()),
            }),
        )
        .unwrap();
    let record = replica.roll().member(&ann.member.public()).unwrap().clone();
    assert_eq!(record.contribution, Some(pledge));
    assert_eq!(record.constituency.as_deref(), Some("Riverside South"));
    // Constituency decides who votes in a constituency society's polls: Ann may not move
    // herself.
    let before = replica.roll();
    let error = replica
        .write(&ann.device, &constituency(&ann, "Riverside North"))
        .unwrap_err();
    assert_eq!(error.reason, Reason::Unauthorized(Denied::NotSteward));
    assert_eq!(replica.roll(), before);
    // Ann records a hardship waiver for herself; she may not change Fay's record.
    replica.write(&ann.device, &self_update(&ann)).unwrap();
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

/// Device certifications arriving in a batch have their certificates checked beside their
/// signatures (on the batch's worker threads): a good one is accepted, one whose certificate
/// another member's key signed is refused with its reason, as when inserted alone.
#[test]
fn certificates_in_a_batch_are_checked_and_a_bad_one_is_refused() {
    let fay = person(1);
    let ann = person(2);
    let bob = person(3);
    let mut source = founded(&fay);
    let hub = source.hub();
    let genesis = *source.op_ids().iter().next().unwrap();
    let admit_ann = source
        .write(&fay.device, &admit_body(&ann, "Ann", Standing::Member))
        .unwrap();
    let admit_bob = source
        .write(&fay.device, &admit_body(&bob, "Bob", Standing::Member))
        .unwrap();
    let certify_ann = source
        .write(&ann.device, &certify_body(&hub, &ann))
        .unwrap();
    // Bob's device presents a certificate signed by Ann's member key, naming Bob as member.
    let forged = Body::CertifyDevice(moot_state::body::CertifyDevice {
        member: bob.member.public(),
        device: bob.device.public(),
        certificate: moot_state::body::Certificate::issue(&ann.member, &hub, &bob.device.public()),
    });
    let forged = draft(&source, &bob.device, &forged)
        .sign(&hub, &bob.device)
        .unwrap();
    let mut batch: Vec<Vec<u8>> = [genesis, admit_ann, admit_bob, certify_ann]
        .iter()
        .map(|id| source.op_bytes(id).unwrap().to_vec())
        .collect();
    batch.push(forged.bytes().to_vec());

    let mut replica = Replica::new(hub, Limits::default());
    let outcomes: Vec<Outcome> = replica
        .insert_batch(&batch)
        .into_iter()
        .map(|i| i.outcome)
        .collect();
    assert_eq!(outcomes[3], Outcome::Accepted(certify_ann));
    assert_eq!(
        rejected(&outcomes[4]),
        &Reason::Unauthorized(Denied::BadCertificate)
    );
    let roll = replica.roll();
    assert_eq!(
        roll.member_of(&ann.device.public()),
        Some(ann.member.public())
    );
    assert_eq!(roll.member_of(&bob.device.public()), None);
}

/// A revocation of a steward's role cuts like a removal: the ex-steward's roll ops beyond the
/// cut that do not follow it wait for it and are judged after it, even when the ex-steward is
/// the more senior (the founder), whose concurrent ops would otherwise go first.
#[test]
fn a_founder_whose_steward_role_is_revoked_cannot_admit_by_not_following_it() {
    let fay = person(1);
    let sam = person(2);
    let friend = person(5);
    let mut hall = founded(&fay);
    join(&mut hall, &fay, &sam, Standing::Member);
    hall.write(&fay.device, &grant_body(&sam, Role::Steward))
        .unwrap();
    let mut fays_laptop = Replica::new(hall.hub(), Limits::default());
    sync(&hall, &mut fays_laptop);
    let revocation = hall
        .write(&sam.device, &revoke_body(&hall, &fay, Role::Steward))
        .unwrap();
    // On a laptop that has not heard, Fay admits a friend, and sets her public name.
    let admission = fays_laptop
        .write(
            &fay.device,
            &admit_body(&friend, "Friend", Standing::Member),
        )
        .unwrap();
    let public_name = |name: &str| {
        Body::PublicName(moot_state::body::PublicName {
            member: fay.member.public(),
            name: Some(name.into()),
        })
    };
    let named_apart = fays_laptop.write(&fay.device, &public_name("Fay")).unwrap();
    for (a, b) in [(&hall, &fays_laptop), (&fays_laptop, &hall)] {
        let mut merged = Replica::new(hall.hub(), Limits::default());
        sync(a, &mut merged);
        sync(b, &mut merged);
        assert!(merged.validity(&revocation).unwrap().is_ok());
        assert!(merged.validity(&admission).unwrap().is_err());
        // The genesis is her admission as well as her steward grant: what does not need the
        // role still counts, then and afterwards.
        assert!(merged.validity(&named_apart).unwrap().is_ok());
        let later = merged.write(&fay.device, &public_name("Fay F.")).unwrap();
        assert!(merged.validity(&later).unwrap().is_ok());
        let roll = merged.roll();
        assert!(roll.member(&friend.member.public()).is_none());
        assert!(!roll.is_steward(&fay.member.public()));
    }
}

/// A revocation written before revocations carried cuts (the member and the role alone) still
/// decodes, and cuts nothing; bytes that are neither are refused.
#[test]
fn a_revocation_without_cuts_decodes_as_one_that_cuts_nothing() {
    use moot_state::body::{RevokeRole, RoleChange, kind};
    let fay = person(1);
    let old = postcard::to_allocvec(&RoleChange {
        member: fay.member.public(),
        role: Role::Convener,
    })
    .unwrap();
    match Body::decode(kind::REVOKE, &old).unwrap() {
        Body::Revoke(RevokeRole { member, role, cuts }) => {
            assert_eq!(member, fay.member.public());
            assert_eq!(role, Role::Convener);
            assert_eq!(cuts, None);
        }
        other => panic!("{other:?}"),
    }
    let mut longer = old.clone();
    longer.extend_from_slice(&[1, 0xff]);
    assert!(Body::decode(kind::REVOKE, &longer).is_err());
    assert!(Body::decode(kind::REVOKE, &old[..old.len() - 1]).is_err());
}
