//! Review of assemblies and polls at their causal position: a restored replica counts as the
//! original did, and regressions for the bugs the review found (each failed before its fix).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::polls::*;
use common::*;
use moot_crypto::{Authentic, Lane, OpId, SecretKey, SignedOp};
use moot_state::body::{
    AssemblyKind, AssemblyRef, Ballot, Checkpoint, ClosePoll, CloseStation, Convener,
    CreateAssembly, CreatePoll, Join, OpenPoll, Seat,
};
use moot_state::poll::{Exclusion, Flag};
use moot_state::{Body, Denied, Limits, Reason, Replica, Retain, Role, Standing, Verdict};

fn group(replica: &mut Replica, by: &Person, kind: AssemblyKind) -> OpId {
    write(
        replica,
        &by.device,
        Lane::Members,
        Body::CreateAssembly(CreateAssembly {
            name: "Transport".into(),
            kind,
        }),
        &[],
    )
}

fn join_group(replica: &mut Replica, who: &Person, assembly: OpId) -> OpId {
    write(
        replica,
        &who.device,
        Lane::Members,
        Body::Join(Join {
            assembly,
            joined: true,
        }),
        &[assembly],
    )
}

fn create_poll(assembly: AssemblyRef, options: &[&str], officers: &[&Person]) -> Body {
    Body::CreatePoll(Box::new(CreatePoll {
        assembly,
        question: "Which campaign first?".into(),
        options: options.iter().map(|o| o.to_string()).collect(),
        seats: 1,
        officers: officers.iter().map(|p| p.member.public()).collect(),
        stations: vec![],
        quorum: Some(2),
        opens_at: None,
        closes_at: None,
    }))
}

fn open(replica: &mut Replica, by: &Person, poll: OpId) -> Result<OpId, Reason> {
    let (electorate, electorate_hash) = replica.electorate_now(&poll, Lane::Members).unwrap();
    try_write(
        replica,
        &by.device,
        Lane::Members,
        Body::OpenPoll(OpenPoll {
            poll,
            electorate,
            electorate_hash,
        }),
        &[poll],
    )
}

fn vote(
    replica: &mut Replica,
    device: &SecretKey,
    who: &Person,
    open: OpId,
    revision: u32,
    scores: &[u8],
) -> OpId {
    write(
        replica,
        device,
        Lane::Members,
        Body::Ballot(Ballot {
            open,
            member: who.member.public().to_bytes(),
            revision,
            scores: scores.to_vec(),
        }),
        &[open],
    )
}

fn close(replica: &mut Replica, by: &Person, open: OpId) -> OpId {
    write(
        replica,
        &by.device,
        Lane::Members,
        Body::ClosePoll(ClosePoll { open }),
        &[open],
    )
}

const OPTIONS: [&str; 3] = ["Buses", "Bikes", "Trams"];

/// A members-only working group (Ann, Ben, Dee, Cy) with a poll by Cy, Fay returning
/// officer, Dee station officer, opened by Cy.
fn open_poll(h: &mut Hall) -> (OpId, OpId, OpId) {
    let group = group(&mut h.replica, &h.cy, AssemblyKind::WorkingGroup);
    for p in [&h.ann, &h.ben, &h.dee, &h.cy] {
        join_group(&mut h.replica, p, group);
    }
    let mut body = create_poll(AssemblyRef::Created(group), &OPTIONS, &[&h.fay]);
    if let Body::CreatePoll(p) = &mut body {
        p.stations = vec![h.dee.member.public()];
    }
    let poll = write(&mut h.replica, &h.cy.device, Lane::Members, body, &[group]);
    let opened = open(&mut h.replica, &h.cy, poll).unwrap();
    (group, poll, opened)
}

/// Everything the replica shows of assemblies and polls.
#[derive(Debug, PartialEq)]
struct Shown {
    polls: Vec<moot_state::poll::PollInfo>,
    assemblies: Vec<moot_state::poll::AssemblyInfo>,
    counts: Vec<Option<moot_state::poll::PollCount>>,
    ballots: usize,
}

fn shown(replica: &mut Replica, polls: &[OpId]) -> Shown {
    Shown {
        polls: replica.polls(),
        assemblies: replica.assemblies(),
        counts: polls
            .iter()
            .map(|p| replica.count_poll(p).map(|c| c.unwrap()))
            .collect(),
        ballots: replica.ballot_count(),
    }
}

/// A meeting with concurrency on two laptops: a working-group poll with ballots on both, a
/// station close, re-casts, an equivocation, the close and a late ballot; and an Activism
/// Society poll opened twice concurrently, with ballots under both opens, still open.
fn busy_history() -> (Vec<OpId>, Replica) {
    let mut h = hall();
    let (_, poll, opened) = open_poll(&mut h);
    let society = write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        create_poll(AssemblyRef::Activism, &OPTIONS, &[]),
        &[],
    );
    let mut laptop = Replica::new(h.replica.hub(), Limits::default());
    sync(&h.replica, &mut laptop);
    let open_a = open(&mut h.replica, &h.cy, society).unwrap();
    let open_b = open(&mut laptop, &h.fay, society).unwrap();
    vote(&mut laptop, &h.ann.device, &h.ann, opened, 1, &[5, 0, 1]);
    let bens_laptop = Person {
        member: h.ben.member.clone(),
        device: SecretKey::from_seed([204; 32]),
    };
    laptop
        .write(
            &bens_laptop.device,
            &certify_body(&h.replica.hub(), &bens_laptop),
        )
        .unwrap();
    vote(
        &mut laptop,
        &bens_laptop.device,
        &h.ben,
        opened,
        1,
        &[3, 4, 0],
    );
    vote(&mut laptop, &h.ann.device, &h.ann, opened, 2, &[4, 0, 1]);
    vote(&mut laptop, &h.ann.device, &h.ann, open_b, 1, &[1, 1, 1]);
    write(
        &mut laptop,
        &h.dee.device,
        Lane::Members,
        Body::CloseStation(CloseStation { open: opened }),
        &[opened],
    );
    vote(&mut h.replica, &h.cy.device, &h.cy, opened, 1, &[0, 0, 5]);
    vote(&mut h.replica, &h.ben.device, &h.ben, opened, 1, &[0, 4, 4]);
    vote(&mut h.replica, &h.ben.device, &h.ben, open_a, 1, &[2, 2, 2]);
    sync(&laptop, &mut h.replica);
    vote(&mut h.replica, &h.cy.device, &h.cy, opened, 2, &[1, 0, 5]);
    close(&mut h.replica, &h.fay, opened);
    vote(&mut laptop, &h.dee.device, &h.dee, opened, 1, &[2, 2, 2]);
    vote(&mut laptop, &h.dee.device, &h.dee, open_b, 1, &[0, 5, 0]);
    sync(&laptop, &mut h.replica);
    (vec![poll, society], h.replica)
}

/// Delivers `ops` (in the order given, again until nothing changes) into an index-only replica,
/// collecting what it hands over to store, in acceptance order: what a node stores.
fn deliver_keeping(replica: &mut Replica, ops: &[Vec<u8>]) -> Vec<(Authentic<SignedOp>, Verdict)> {
    let hub = replica.hub();
    let mut kept = Vec::new();
    loop {
        let before = replica.len();
        for bytes in ops {
            let op = SignedOp::decode(bytes).unwrap().authenticate(&hub).unwrap();
            kept.extend(replica.insert_authentic(op).kept);
        }
        if replica.len() == before {
            break;
        }
    }
    kept
}

fn lean(hub: moot_crypto::HubId) -> Replica {
    Replica::new(
        hub,
        Limits {
            retain: Retain::IndexOnly,
            ..Limits::default()
        },
    )
}

#[test]
fn a_restored_replica_counts_every_poll_as_the_original() {
    let (polls, mut original) = busy_history();
    let expected = shown(&mut original, &polls);
    // The history is what it should be: the working-group poll closed with a station, a
    // re-cast, an equivocation and a late ballot; the society poll with competing opens.
    let count = expected.counts[0].as_ref().unwrap();
    assert_eq!(count.counted.len(), 3);
    assert_eq!(count.stations.len(), 1);
    assert!(
        count
            .excluded
            .iter()
            .any(|e| e.reason == Exclusion::OutsideClose)
    );
    assert!(
        count
            .flags
            .iter()
            .any(|f| matches!(f, Flag::Equivocation { .. }))
    );
    let society = expected.counts[1].as_ref().unwrap();
    assert!(
        society
            .flags
            .iter()
            .any(|f| matches!(f, Flag::CompetingOpens(_)))
    );
    assert!(
        society
            .excluded
            .iter()
            .any(|e| e.reason == Exclusion::OtherOpen)
    );
    let hub = original.hub();
    let mut ops: Vec<Vec<u8>> = original
        .op_ids()
        .iter()
        .map(|id| original.op_bytes(id).unwrap().to_vec())
        .collect();
    // Several arrival orders: in id order (most ops before their dependencies) and reversed,
    // so acceptance order differs from writing order.
    for round in 0..2 {
        if round == 1 {
            ops.reverse();
        }
        let mut node = lean(hub);
        let stored = deliver_keeping(&mut node, &ops);
        assert_eq!(stored.len(), ops.len());
        assert_eq!(shown(&mut node, &polls), expected);
        // The node restarts: it restores what it stored, in acceptance order.
        let mut restored = lean(hub);
        for (op, verdict) in stored {
            let id = op.id();
            assert_eq!(restored.restore(op, verdict), Ok(verdict), "op {id:?}");
        }
        assert_eq!(restored.len(), original.len());
        assert_eq!(shown(&mut restored, &polls), expected);
        for p in [&polls[0], &polls[1]] {
            for m in [3u8, 4, 5] {
                let member = person(m).member.public();
                assert_eq!(
                    restored.latest_revision(p, &member),
                    original.latest_revision(p, &member)
                );
            }
        }
        // And it goes on the same: a later ballot and close, written after the restart.
        let mut after = Replica::new(hub, Limits::default());
        sync(&original, &mut after);
        let info = after.poll(&polls[1]).unwrap();
        let ben = person(4);
        let ballot = vote(
            &mut after,
            &ben.device,
            &ben,
            info.open.unwrap(),
            2,
            &[5, 5, 0],
        );
        let cy = person(2);
        let closed = close(&mut after, &cy, info.open.unwrap());
        let mut later = vec![after.op_bytes(&ballot).unwrap().to_vec()];
        for id in after.op_ids() {
            if !original.holds(&id) && id != ballot {
                later.push(after.op_bytes(&id).unwrap().to_vec());
            }
        }
        let now = shown(&mut after, &polls);
        assert_eq!(now.counts[1].as_ref().unwrap().info.close, Some(closed));
        for bytes in &later {
            restored.insert(bytes);
        }
        // The close's past is walked through dependency numbers kept by both paths.
        assert_eq!(shown(&mut restored, &polls), now);
    }
}

/// Options that `moot-star` cannot count (the same name by its fold, or a blank one) make a
/// poll that can never be counted: refused when created, as `BadPoll`.
#[test]
fn a_poll_whose_options_moot_star_refuses_is_refused() {
    let mut h = hall();
    for options in [
        &["Buses", "buses", "Trams"][..],
        &["Buses", " Buses", "Trams"],
        &["Ｂｕｓｅｓ", "Buses"],
        &["\u{200B}", "Buses"],
        &["Buses", "\u{2800}"],
    ] {
        let result = try_write(
            &mut h.replica,
            &h.cy.device,
            Lane::Members,
            create_poll(AssemblyRef::Activism, options, &[]),
            &[],
        );
        assert_eq!(
            result,
            Err(Reason::Unauthorized(Denied::BadPoll)),
            "{options:?}"
        );
    }
    // What such a poll did before: accepted, opened, and then never counted.
    assert!(h.replica.polls().is_empty());
}

/// A device whose chain forked (a phone restored from a backup) and went on writing on the
/// shorter branch: the returning officer's close, written to follow everything held, must
/// hold that branch too.
#[test]
fn a_close_covers_both_branches_of_a_forked_chain() {
    let mut h = hall();
    let (group, poll, opened) = open_poll(&mut h);
    let mut phone = Replica::new(h.replica.hub(), Limits::default());
    sync(&h.replica, &mut phone);
    // On the restored phone: a note, then her ballot.
    phone
        .write_in(
            &h.ann.device,
            Lane::Members,
            &Body::Checkpoint(Checkpoint {}),
            &[],
        )
        .unwrap();
    let ballot = vote(&mut phone, &h.ann.device, &h.ann, opened, 1, &[5, 0, 0]);
    // On the hall's copy of her chain: three other ops at the same positions and beyond.
    join_group(&mut h.replica, &h.ann, group);
    for _ in 0..2 {
        h.replica
            .write_in(
                &h.ann.device,
                Lane::Members,
                &Body::Checkpoint(Checkpoint {}),
                &[],
            )
            .unwrap();
    }
    sync(&phone, &mut h.replica);
    assert_eq!(h.replica.equivocations().len(), 1, "the chain forked");
    vote(&mut h.replica, &h.ben.device, &h.ben, opened, 1, &[0, 5, 0]);
    close(&mut h.replica, &h.fay, opened);
    let count = h.replica.count_poll(&poll).unwrap().unwrap();
    assert!(
        count.counted.contains(&ballot),
        "held when the poll closed, yet {:?}",
        count.excluded
    );
}

/// Sam is a steward, Cy a member; Sam's offline copy of the hall.
fn hall_with_steward_sam() -> (Hall, Person, Replica) {
    let mut h = hall();
    let sam = person(7);
    join(&mut h.replica, &h.fay, &sam, Standing::Member);
    h.replica
        .write(&h.fay.device, &grant_body(&sam, Role::Steward))
        .unwrap();
    let mut sams_copy = Replica::new(h.replica.hub(), Limits::default());
    sync(&h.replica, &mut sams_copy);
    (h, sam, sams_copy)
}

fn merged_both_ways(a: &Replica, b: &Replica) -> [Replica; 2] {
    let mut ab = Replica::new(a.hub(), Limits::default());
    sync(a, &mut ab);
    sync(b, &mut ab);
    let mut ba = Replica::new(a.hub(), Limits::default());
    sync(b, &mut ba);
    sync(a, &mut ba);
    [ab, ba]
}

/// The validity rule (an op counts only if the roll facts its authorization used are
/// accepted) holds for polls too: a poll created by a convener whose role was granted by a
/// steward removed concurrently does not count, as an admission by such a steward does not.
#[test]
fn a_poll_resting_on_a_convener_role_granted_by_a_concurrently_removed_steward_does_not_count() {
    let (mut h, sam, mut sams_copy) = hall_with_steward_sam();
    let ann = &h.ann;
    // Offline, Sam makes Ann a convener; she creates and opens an Activism Society poll, and
    // Ben votes.
    let grant = sams_copy
        .write(&sam.device, &grant_body(ann, Role::Convener))
        .unwrap();
    let poll = write(
        &mut sams_copy,
        &ann.device,
        Lane::Members,
        create_poll(AssemblyRef::Activism, &OPTIONS, &[]),
        &[],
    );
    let opened = open(&mut sams_copy, ann, poll).unwrap();
    vote(&mut sams_copy, &h.ben.device, &h.ben, opened, 1, &[5, 0, 0]);
    assert!(sams_copy.count_poll(&poll).is_some());
    // Meanwhile Fay removes Sam, accepting none of his offline ops.
    let removal = remove_body(&h.replica, &sam);
    h.replica.write(&h.fay.device, &removal).unwrap();
    for mut merged in merged_both_ways(&h.replica, &sams_copy) {
        assert_eq!(merged.validity(&grant), Some(Err(Denied::RemovedAuthor)));
        assert_eq!(
            merged.validity(&poll),
            Some(Err(Denied::UnacceptedFact(grant)))
        );
        assert!(merged.polls().is_empty(), "{:?}", merged.polls());
        assert_eq!(merged.count_poll(&poll), None);
    }
}

/// The same for a convener appointed in an assembly by a steward removed concurrently.
#[test]
fn a_poll_resting_on_an_appointment_by_a_concurrently_removed_steward_does_not_count() {
    let (mut h, sam, mut sams_copy) = hall_with_steward_sam();
    let group = group(&mut h.replica, &h.fay, AssemblyKind::WorkingGroup);
    join_group(&mut h.replica, &h.ben, group);
    sync(&h.replica, &mut sams_copy);
    let ann = &h.ann;
    let appointment = write(
        &mut sams_copy,
        &sam.device,
        Lane::Members,
        Body::Convener(Convener {
            assembly: group,
            member: ann.member.public(),
            convener: true,
        }),
        &[group],
    );
    let poll = write(
        &mut sams_copy,
        &ann.device,
        Lane::Members,
        create_poll(AssemblyRef::Created(group), &OPTIONS, &[]),
        &[group],
    );
    open(&mut sams_copy, ann, poll).unwrap();
    assert!(sams_copy.count_poll(&poll).is_some());
    let removal = remove_body(&h.replica, &sam);
    h.replica.write(&h.fay.device, &removal).unwrap();
    for mut merged in merged_both_ways(&h.replica, &sams_copy) {
        assert_eq!(merged.validity(&appointment), Some(Err(Denied::BeyondCut)));
        assert_eq!(
            merged.validity(&poll),
            Some(Err(Denied::UnacceptedFact(appointment)))
        );
        assert!(merged.polls().is_empty(), "{:?}", merged.polls());
    }
}

/// A seat on a members-only committee by a steward removed concurrently (beyond the removal's
/// cut) does not count: a poll opened where both are known does not have the seated member in
/// its electorate — as for a public committee, where the roll of the open's past denies it.
#[test]
fn a_seat_beyond_a_removal_cut_is_not_in_the_electorate() {
    let (mut h, sam, mut sams_copy) = hall_with_steward_sam();
    let committee = group(&mut h.replica, &h.cy, AssemblyKind::Committee);
    write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        Body::Seat(Seat {
            assembly: committee,
            member: h.ann.member.public(),
            seated: true,
        }),
        &[committee],
    );
    sync(&h.replica, &mut sams_copy);
    let seat = write(
        &mut sams_copy,
        &sam.device,
        Lane::Members,
        Body::Seat(Seat {
            assembly: committee,
            member: h.ben.member.public(),
            seated: true,
        }),
        &[committee],
    );
    let removal = remove_body(&h.replica, &sam);
    h.replica.write(&h.fay.device, &removal).unwrap();
    sync(&sams_copy, &mut h.replica);
    assert_eq!(h.replica.validity(&seat), Some(Err(Denied::BeyondCut)));
    let poll = write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        create_poll(AssemblyRef::Created(committee), &OPTIONS, &[]),
        &[committee],
    );
    // What the node shows as the committee's members is what the open must record.
    let members = h
        .replica
        .assemblies()
        .into_iter()
        .find(|a| a.assembly == AssemblyRef::Created(committee))
        .unwrap()
        .members;
    assert_eq!(members, vec![h.ann.member.public()]);
    open(&mut h.replica, &h.cy, poll).unwrap();
    assert_eq!(h.replica.poll(&poll).unwrap().electorate, Some(1));
}

/// A ballot names the open it is cast under, so its check needs no walk through the roll ops
/// written since the open; one that reaches the open only through another op (here its own
/// previous ballot) is still judged by the walk (`tests/polls.rs` has the refusals).
#[test]
fn a_ballot_reaching_its_open_only_through_another_op_is_judged_by_its_past() {
    let mut h = hall();
    let (_, poll, opened) = open_poll(&mut h);
    // Roll ops written after the open (names set by the steward).
    for i in 0..20 {
        h.replica
            .write(&h.fay.device, &name_body(&h.ben, &format!("Ben {i}")))
            .unwrap();
    }
    vote(&mut h.replica, &h.ann.device, &h.ann, opened, 1, &[5, 0, 0]);
    let recast = try_write(
        &mut h.replica,
        &h.ann.device,
        Lane::Members,
        Body::Ballot(Ballot {
            open: opened,
            member: h.ann.member.public().to_bytes(),
            revision: 2,
            scores: vec![0, 5, 0],
        }),
        &[],
    )
    .unwrap();
    let draft = h
        .replica
        .draft(
            &h.ann.device.public(),
            Lane::Members,
            &Body::Checkpoint(Checkpoint {}),
            &[],
        )
        .unwrap();
    assert!(!draft.deps.contains(&opened) && draft.prev == Some(recast));
    let count = h.replica.count_poll(&poll).unwrap().unwrap();
    assert_eq!(count.counted, vec![recast]);
}
