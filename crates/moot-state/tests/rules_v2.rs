//! The trust layer's v2 rules, each built as an attack or a hard case and checked in both merge
//! orders: an op counts only if the roll facts its authorization used are accepted by the
//! resolved roll; lanes; kinds this node does not know; caller-chosen dependencies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moot_crypto::OpId;
use moot_state::body::{Checkpoint, kind};
use moot_state::{Body, Denied, Lane, Limits, Outcome, Reason, Replica, Role, Standing};

fn note() -> Body {
    Body::Checkpoint(Checkpoint {})
}

/// Both merge orders of two replicas' ops into fresh replicas.
fn merged_both_ways(a: &Replica, b: &Replica) -> [Replica; 2] {
    let mut ab = Replica::new(a.hub(), Limits::default());
    sync(a, &mut ab);
    sync(b, &mut ab);
    let mut ba = Replica::new(a.hub(), Limits::default());
    sync(b, &mut ba);
    sync(a, &mut ba);
    [ab, ba]
}

fn verdict(replica: &mut Replica, id: &OpId) -> Result<(), Denied> {
    replica.validity(id).expect("op is held").map(drop)
}

/// Fay founds; Sam is a steward. Returns (hall, sam's offline copy).
fn hall_with_steward_sam() -> (Replica, Replica, Person, Person) {
    let fay = person(1);
    let sam = person(2);
    let mut hall = founded(&fay);
    join(&mut hall, &fay, &sam, Standing::Member);
    hall.write(&fay.device, &grant_body(&sam, Role::Steward))
        .unwrap();
    let mut sams_copy = Replica::new(hall.hub(), Limits::default());
    sync(&hall, &mut sams_copy);
    (hall, sams_copy, fay, sam)
}

#[test]
fn an_admission_by_a_concurrently_removed_steward_does_not_count_nor_what_rests_on_it() {
    let (mut hall, mut sams_copy, fay, sam) = hall_with_steward_sam();
    let ann = person(3);
    // Offline, Sam admits Ann, Ann's device joins and writes a non-roll op.
    let admission = sams_copy
        .write(&sam.device, &admit_body(&ann, "Ann", Standing::Member))
        .unwrap();
    let certification = sams_copy
        .write(&ann.device, &certify_body(&sams_copy.hub(), &ann))
        .unwrap();
    let anns_note = sams_copy.write(&ann.device, &note()).unwrap();
    // Valid where it was written: Sam was a steward there.
    assert_eq!(verdict(&mut sams_copy, &anns_note), Ok(()));
    // Meanwhile Fay removes Sam, accepting none of his offline ops.
    hall.write(&fay.device, &remove_body(&hall, &sam)).unwrap();
    for mut merged in merged_both_ways(&hall, &sams_copy) {
        assert_eq!(verdict(&mut merged, &admission), Err(Denied::RemovedAuthor));
        // Her device's self-certification rested on the admission too.
        assert_eq!(
            verdict(&mut merged, &certification),
            Err(Denied::NoSuchMember)
        );
        let unaccepted = verdict(&mut merged, &anns_note);
        assert!(
            unaccepted == Err(Denied::UnacceptedFact(admission))
                || unaccepted == Err(Denied::UnacceptedFact(certification)),
            "{unaccepted:?}"
        );
        assert!(merged.roll().member(&ann.member.public()).is_none());
    }
}

#[test]
fn a_device_certified_by_a_concurrently_removed_steward_does_not_count() {
    let (mut hall, _, fay, sam) = hall_with_steward_sam();
    let ann = person(3);
    // Fay admits Ann (this fact stands); Sam certifies Ann's device for her, offline.
    hall.write(&fay.device, &admit_body(&ann, "Ann", Standing::Member))
        .unwrap();
    let mut sams_copy = Replica::new(hall.hub(), Limits::default());
    sync(&hall, &mut sams_copy);
    let certification = sams_copy
        .write(&sam.device, &certify_body(&sams_copy.hub(), &ann))
        .unwrap();
    let anns_note = sams_copy.write(&ann.device, &note()).unwrap();
    assert_eq!(verdict(&mut sams_copy, &anns_note), Ok(()));
    hall.write(&fay.device, &remove_body(&hall, &sam)).unwrap();
    for mut merged in merged_both_ways(&hall, &sams_copy) {
        assert_eq!(
            verdict(&mut merged, &certification),
            Err(Denied::RemovedAuthor)
        );
        assert_eq!(
            verdict(&mut merged, &anns_note),
            Err(Denied::UnacceptedFact(certification))
        );
        let roll = merged.roll();
        assert!(roll.member_of(&ann.device.public()).is_none());
        assert!(
            roll.member(&ann.member.public()).is_some(),
            "her admission stands"
        );
    }
}

#[test]
fn a_role_granted_by_a_concurrently_removed_steward_does_not_count() {
    let (mut hall, mut sams_copy, fay, sam) = hall_with_steward_sam();
    let mo = person(4);
    let ann = person(3);
    // Mo is a member; offline, Sam makes Mo a steward and Mo admits Ann, who writes a note.
    join(&mut hall, &fay, &mo, Standing::Member);
    sync(&hall, &mut sams_copy);
    let grant = sams_copy
        .write(&sam.device, &grant_body(&mo, Role::Steward))
        .unwrap();
    let admission = sams_copy
        .write(&mo.device, &admit_body(&ann, "Ann", Standing::Member))
        .unwrap();
    sams_copy
        .write(&ann.device, &certify_body(&sams_copy.hub(), &ann))
        .unwrap();
    let anns_note = sams_copy.write(&ann.device, &note()).unwrap();
    hall.write(&fay.device, &remove_body(&hall, &sam)).unwrap();
    for mut merged in merged_both_ways(&hall, &sams_copy) {
        assert_eq!(verdict(&mut merged, &grant), Err(Denied::RemovedAuthor));
        assert_eq!(verdict(&mut merged, &admission), Err(Denied::NotSteward));
        assert_eq!(
            verdict(&mut merged, &anns_note),
            Err(Denied::UnacceptedFact(admission))
        );
        assert!(!merged.roll().is_steward(&mo.member.public()));
    }
}

#[test]
fn mutation_check_the_fact_rule_is_what_stops_the_hole() {
    // Without the rule, Ann's note would count: every check at its causal position passed,
    // and no cut names Ann's device. This is the hole the rule closes.
    let (mut hall, mut sams_copy, fay, sam) = hall_with_steward_sam();
    let ann = person(3);
    sams_copy
        .write(&sam.device, &admit_body(&ann, "Ann", Standing::Member))
        .unwrap();
    sams_copy
        .write(&ann.device, &certify_body(&sams_copy.hub(), &ann))
        .unwrap();
    let anns_note = sams_copy.write(&ann.device, &note()).unwrap();
    hall.write(&fay.device, &remove_body(&hall, &sam)).unwrap();
    let [mut merged, _] = merged_both_ways(&hall, &sams_copy);
    // Accepted at its causal position (not rejected, not beyond a cut)...
    assert!(merged.rejection(&anns_note).is_none());
    assert!(merged.op(&anns_note).is_some());
    // ...and yet it does not count, only because of the fact it rests on.
    assert!(matches!(
        verdict(&mut merged, &anns_note),
        Err(Denied::UnacceptedFact(_))
    ));
}

#[test]
fn known_kinds_must_be_in_their_lane() {
    let fay = person(1);
    let ann = person(2);
    let mut replica = founded(&fay);
    let mut wrong = draft(
        &replica,
        &fay.device,
        &admit_body(&ann, "Ann", Standing::Member),
    );
    wrong.lane = Lane::Members;
    wrong.seq = 1;
    wrong.prev = None;
    let op = wrong.sign(&replica.hub(), &fay.device).unwrap();
    let outcome = replica.insert(op.bytes()).outcome;
    assert!(matches!(
        outcome,
        Outcome::Rejected(ref r) if r.reason == Reason::WrongLane { kind: kind::ADMIT, expected: Lane::Public }
    ));
    // Names are personal data: members lane only.
    let mut public_name = draft(&replica, &fay.device, &name_body(&fay, "Fay"));
    public_name.lane = Lane::Public;
    public_name.deps.clear();
    public_name.seq = 2;
    public_name.prev = replica
        .chain_head(&fay.device.public(), Lane::Public)
        .map(|h| h.1);
    let op = public_name.sign(&replica.hub(), &fay.device).unwrap();
    assert!(matches!(
        replica.insert(op.bytes()).outcome,
        Outcome::Rejected(ref r) if matches!(r.reason, Reason::WrongLane { .. })
    ));
}

#[test]
fn a_public_op_may_not_depend_on_a_members_op_and_chains_are_per_lane() {
    let fay = person(1);
    let mut replica = founded(&fay);
    let members_note = replica
        .write_in(&fay.device, Lane::Members, &note(), &[])
        .unwrap()[0];
    // Chains are per lane: the members lane starts at 1, the public lane goes on.
    assert_eq!(
        replica
            .chain_head(&fay.device.public(), Lane::Members)
            .unwrap()
            .0,
        1
    );
    assert_eq!(
        replica
            .chain_head(&fay.device.public(), Lane::Public)
            .unwrap()
            .0,
        1
    );
    // The draft API refuses the dependency...
    assert!(
        replica
            .draft(&fay.device.public(), Lane::Public, &note(), &[members_note])
            .is_err()
    );
    // ...and a hand-made op that names it anyway is rejected.
    let mut bad = replica
        .draft(&fay.device.public(), Lane::Public, &note(), &[])
        .unwrap();
    bad.deps.push(members_note);
    let op = bad.sign(&replica.hub(), &fay.device).unwrap();
    assert!(matches!(
        replica.insert(op.bytes()).outcome,
        Outcome::Rejected(ref r) if r.reason == Reason::LaneDependency(members_note)
    ));
    // A members op may depend on public ones.
    let public_note = replica
        .write_in(&fay.device, Lane::Public, &note(), &[])
        .unwrap()[0];
    assert!(
        replica
            .write_in(&fay.device, Lane::Members, &note(), &[public_note])
            .is_ok()
    );
}

#[test]
fn a_known_op_citing_an_unsupported_op_is_held_for_an_upgrade() {
    let fay = person(1);
    let mut replica = founded(&fay);
    // A newer version's op (polls family) in the public lane.
    let future = insert_future(&mut replica, &fay.device, Lane::Public, 0x0371);
    // A known op that names it among its deps (refers to it) is held, not judged.
    let cite = replica
        .draft(&fay.device.public(), Lane::Members, &note(), &[future.id()])
        .unwrap()
        .sign(&replica.hub(), &fay.device)
        .unwrap();
    assert_eq!(
        replica.insert(cite.bytes()).outcome,
        Outcome::NeedsUpgrade(cite.id())
    );
    assert_eq!(verdict(&mut replica, &cite.id()), Err(Denied::NeedsUpgrade));
    // Following it in the chain (`prev`) is not referring to it: Fay's next public op is judged,
    // so one newer-kind op does not freeze a steward's chain on older nodes.
    let next = replica
        .write_in(&fay.device, Lane::Public, &note(), &[])
        .unwrap()[0];
    assert_eq!(replica.op(&next).unwrap().prev(), Some(future.id()));
    assert_eq!(verdict(&mut replica, &next), Ok(()));
}

#[test]
fn everything_after_an_unknown_roll_change_is_held_for_an_upgrade() {
    let fay = person(1);
    let ann = person(2);
    let mut replica = founded(&fay);
    // A roll-family kind this version does not know: its effect on the roll is unknowable.
    insert_future(&mut replica, &fay.device, Lane::Public, 0x00F3);
    // Fay's next public op follows it in her chain: held, not judged (and not rejected).
    let after = replica
        .draft(
            &fay.device.public(),
            Lane::Public,
            &admit_body(&ann, "Ann", Standing::Member),
            &[],
        )
        .unwrap()
        .sign(&replica.hub(), &fay.device)
        .unwrap();
    assert_eq!(
        replica.insert(after.bytes()).outcome,
        Outcome::NeedsUpgrade(after.id())
    );
    assert!(replica.roll().member(&ann.member.public()).is_none());
    // Ops that do not follow it are judged as usual.
    let members = replica
        .write_in(&fay.device, Lane::Members, &note(), &[])
        .unwrap()[0];
    assert_eq!(verdict(&mut replica, &members), Ok(()));
}

#[test]
fn deps_are_the_chain_the_roll_heads_and_the_ops_referred_to() {
    let fay = person(1);
    let ann = person(2);
    let mut replica = founded(&fay);
    join(&mut replica, &fay, &ann, Standing::Member);
    // Many member notes: none of them is a roll head.
    let mut last = None;
    for _ in 0..40 {
        last = Some(
            replica
                .write_in(&ann.device, Lane::Members, &note(), &[])
                .unwrap()[0],
        );
    }
    let heads = replica.roll_heads(Lane::Members);
    assert_eq!(heads.len(), 1);
    let cited = last.unwrap();
    let draft = replica
        .draft(&fay.device.public(), Lane::Members, &note(), &[cited])
        .unwrap();
    let mut expected = vec![heads[0], cited];
    expected.sort();
    assert_eq!(draft.deps, expected);
    assert_eq!(draft.prev, None, "Fay's first members-lane op");
}

#[test]
fn many_concurrent_roll_heads_are_gathered_by_checkpoints() {
    let fay = person(1);
    let mut hall = founded(&fay);
    let people: Vec<Person> = (10..60u8).map(person).collect();
    for p in &people {
        hall.write(&fay.device, &admit_body(p, "p", Standing::Member))
            .unwrap();
    }
    // Each device announces its certificate from its own copy: 50 concurrent roll heads.
    let base = {
        let mut r = Replica::new(hall.hub(), Limits::default());
        sync(&hall, &mut r);
        r
    };
    for p in &people {
        let mut copy = Replica::new(base.hub(), Limits::default());
        sync(&base, &mut copy);
        copy.write(&p.device, &certify_body(&copy.hub(), p))
            .unwrap();
        sync(&copy, &mut hall);
    }
    assert_eq!(hall.roll_heads(Lane::Public).len(), 50);
    let written = hall
        .write_in(
            &fay.device,
            Lane::Public,
            &grant_body(&people[0], Role::Convener),
            &[],
        )
        .unwrap();
    assert!(written.len() > 1, "checkpoints came first");
    let grant = *written.last().unwrap();
    assert_eq!(verdict(&mut hall, &grant), Ok(()));
    assert_eq!(hall.roll_heads(Lane::Public), vec![grant]);
    for id in &written {
        let deps = hall.op(id).unwrap().deps().len();
        assert!(deps <= moot_crypto::op::MAX_DEPS);
    }
}

#[test]
fn personal_data_follows_causal_order_and_the_senior_steward_wins_a_tie() {
    let (mut hall, mut sams_copy, fay, sam) = hall_with_steward_sam();
    let ann = person(3);
    join(&mut hall, &fay, &ann, Standing::Member);
    sync(&hall, &mut sams_copy);
    // In sequence: the later name stands, whoever wrote it.
    hall.write(&fay.device, &name_body(&ann, "Ann")).unwrap();
    sync(&hall, &mut sams_copy);
    sams_copy
        .write(&sam.device, &name_body(&ann, "Ann B."))
        .unwrap();
    sync(&sams_copy, &mut hall);
    assert_eq!(
        hall.roll().member(&ann.member.public()).unwrap().name,
        "Ann B."
    );
    // Concurrently (offline): Fay, the senior steward, wins in either merge order.
    let (mut a, mut b) = (hall, sams_copy);
    sync(&a, &mut b);
    a.write(&fay.device, &name_body(&ann, "Ann (Fay)")).unwrap();
    b.write(&sam.device, &name_body(&ann, "Ann (Sam)")).unwrap();
    for mut merged in merged_both_ways(&a, &b) {
        assert_eq!(
            merged.roll().member(&ann.member.public()).unwrap().name,
            "Ann (Fay)"
        );
    }
}

#[test]
fn personal_data_by_a_removed_steward_counts_up_to_the_cut_only() {
    let (mut hall, mut sams_copy, fay, sam) = hall_with_steward_sam();
    let ann = person(3);
    join(&mut hall, &fay, &ann, Standing::Member);
    sync(&hall, &mut sams_copy);
    // Sam renames Ann, and Fay sees it before removing him: it stands.
    let seen = sams_copy
        .write(&sam.device, &name_body(&ann, "Ann (seen)"))
        .unwrap();
    sync(&sams_copy, &mut hall);
    hall.write(&fay.device, &remove_body(&hall, &sam)).unwrap();
    // Offline, Sam renames her again: beyond the removal's cut, it does not count.
    let unseen = sams_copy
        .write(&sam.device, &name_body(&ann, "Ann (unseen)"))
        .unwrap();
    for mut merged in merged_both_ways(&hall, &sams_copy) {
        assert_eq!(verdict(&mut merged, &seen), Ok(()));
        assert_eq!(verdict(&mut merged, &unseen), Err(Denied::BeyondCut));
        assert_eq!(
            merged.roll().member(&ann.member.public()).unwrap().name,
            "Ann (seen)"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Random bytes as the body of every kind, known or not, never panic the decoder: a typed
    /// error, a decoded body within its limits, or an unknown kind.
    #[test]
    fn body_decoding_never_panics(
        kind in proptest::prelude::any::<u16>(),
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
    ) {
        let _ = Body::decode(kind, &bytes);
        for known in moot_state::body::kind::ROLL_KINDS {
            let _ = Body::decode(known, &bytes);
        }
        let _ = Body::decode(moot_state::body::kind::CHECKPOINT, &bytes);
    }
}

#[test]
fn every_known_kind_round_trips_and_a_flipped_byte_is_refused_or_another_body() {
    // Mutations of real bodies: each decodes to an error or to a body (never a panic), and a
    // body that decodes re-encodes to the same bytes (one encoding per body).
    let fay = person(1);
    let hub = hub_of(&fay);
    let bodies = vec![
        found_body(&fay),
        admit_body(&fay, "", Standing::Member),
        name_body(&fay, "Fay"),
        certify_body(&hub, &fay),
        grant_body(&fay, Role::Convener),
        note(),
    ];
    for body in bodies {
        let (kind, bytes) = body.encode().unwrap();
        assert_eq!(Body::decode(kind, &bytes).unwrap(), body);
        for i in 0..bytes.len() {
            for flip in [1u8, 0x80, 0xff] {
                let mut mutated = bytes.clone();
                mutated[i] ^= flip;
                if let Ok(decoded) = Body::decode(kind, &mutated) {
                    let (_, again) = decoded.encode().unwrap();
                    assert_eq!(again, mutated, "kind {kind}: one encoding per body");
                }
            }
            let _ = Body::decode(kind, &bytes[..i]);
        }
    }
}
