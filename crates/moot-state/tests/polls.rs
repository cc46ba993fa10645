//! Assemblies and STAR polls: a whole meeting, every attack the issue names (each rejected with
//! its typed reason and no state change), stations that add up, concurrent closes and opens,
//! and replicas that agree whatever order the ops arrive in.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::polls::*;
use common::*;
use moot_crypto::{Lane, OpId, SecretKey};
use moot_star::{Ballots, Config, Counts, Seed, tally};
use moot_state::body::{
    AssemblyKind, AssemblyRef, Ballot, ClosePoll, CloseStation, CreateAssembly, CreatePoll, Join,
    OpenPoll, Seat, SetConstituency,
};
use moot_state::poll::{Exclusion, Flag, PollStage};
use moot_state::{Body, Denied, Limits, Outcome, Reason, Replica, Role, Standing};
use proptest::prelude::*;

fn create_group(replica: &mut Replica, by: &Person, lane: Lane) -> OpId {
    write(
        replica,
        &by.device,
        lane,
        Body::CreateAssembly(CreateAssembly {
            name: "Transport".into(),
            kind: AssemblyKind::WorkingGroup,
        }),
        &[],
    )
}

fn join_group(replica: &mut Replica, who: &Person, assembly: OpId, lane: Lane) -> OpId {
    write(
        replica,
        &who.device,
        lane,
        Body::Join(Join {
            assembly,
            joined: true,
        }),
        &[assembly],
    )
}

fn poll_body(assembly: AssemblyRef, officers: Vec<&Person>, stations: Vec<&Person>) -> Body {
    Body::CreatePoll(Box::new(CreatePoll {
        assembly,
        question: "Which campaign first?".into(),
        options: vec!["Buses".into(), "Bikes".into(), "Trams".into()],
        seats: 1,
        officers: officers.iter().map(|p| p.member.public()).collect(),
        stations: stations.iter().map(|p| p.member.public()).collect(),
        quorum: Some(3),
        opens_at: None,
        closes_at: None,
    }))
}

fn open(replica: &mut Replica, by: &Person, poll: OpId, lane: Lane) -> Result<OpId, Reason> {
    let (electorate, electorate_hash) = replica.electorate_now(&poll, lane).unwrap();
    try_write(
        replica,
        &by.device,
        lane,
        Body::OpenPoll(OpenPoll {
            poll,
            electorate,
            electorate_hash,
        }),
        &[poll],
    )
}

fn ballot(who: &Person, open: OpId, revision: u32, scores: &[u8]) -> Body {
    Body::Ballot(Ballot {
        open,
        member: who.member.public().to_bytes(),
        revision,
        scores: scores.to_vec(),
    })
}

fn vote(
    replica: &mut Replica,
    who: &Person,
    open: OpId,
    revision: u32,
    scores: &[u8],
) -> Result<OpId, Reason> {
    try_write(
        replica,
        &who.device,
        Lane::Members,
        ballot(who, open, revision, scores),
        &[open],
    )
}

/// A members-only working group with Ann, Ben, Dee and Cy; a poll by Cy with Fay as returning
/// officer and Dee as station officer, opened.
fn open_poll(h: &mut Hall) -> (OpId, OpId, OpId) {
    let (group, poll) = create_poll(h);
    let opened = open(&mut h.replica, &h.cy, poll, Lane::Members).unwrap();
    (group, poll, opened)
}

/// [`open_poll`]'s group and poll, not opened yet (ops are deterministic: every hall made
/// this way holds the same ops).
fn create_poll(h: &mut Hall) -> (OpId, OpId) {
    let group = create_group(&mut h.replica, &h.cy, Lane::Members);
    for p in [&h.ann, &h.ben, &h.dee, &h.cy] {
        join_group(&mut h.replica, p, group, Lane::Members);
    }
    let poll = write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        poll_body(AssemblyRef::Created(group), vec![&h.fay], vec![&h.dee]),
        &[group],
    );
    (group, poll)
}

fn denied(result: Result<OpId, Reason>) -> Denied {
    match result {
        Err(Reason::Unauthorized(denied)) => denied,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn a_whole_meeting_counts_the_latest_ballots_with_the_open_as_seed() {
    let mut h = hall();
    let (_, poll, opened) = open_poll(&mut h);
    let info = h.replica.poll(&poll).unwrap();
    assert_eq!(info.stage, PollStage::Open);
    assert_eq!(info.electorate, Some(4));
    vote(&mut h.replica, &h.ann, opened, 1, &[5, 1, 0]).unwrap();
    vote(&mut h.replica, &h.ben, opened, 1, &[0, 5, 3]).unwrap();
    // Ann changes her mind: the re-cast replaces her first ballot.
    vote(&mut h.replica, &h.ann, opened, 2, &[1, 5, 0]).unwrap();
    // Dee closes the station: the ballots so far are the branch meeting's.
    let station = write(
        &mut h.replica,
        &h.dee.device,
        Lane::Members,
        Body::CloseStation(CloseStation { open: opened }),
        &[opened],
    );
    vote(&mut h.replica, &h.cy, opened, 1, &[2, 4, 5]).unwrap();
    let close = write(
        &mut h.replica,
        &h.fay.device,
        Lane::Members,
        Body::ClosePoll(ClosePoll { open: opened }),
        &[opened],
    );
    // After the close, a ballot is refused.
    assert_eq!(
        denied(vote(&mut h.replica, &h.dee, opened, 1, &[5, 5, 5])),
        Denied::PollClosed
    );
    let count = h.replica.count_poll(&poll).unwrap().unwrap();
    assert_eq!(count.info.stage, PollStage::Closed);
    assert_eq!(count.info.close, Some(close));
    assert_eq!(count.counted.len(), 3);
    assert_eq!(count.excluded.len(), 1);
    assert_eq!(count.excluded[0].reason, Exclusion::Superseded);
    assert_eq!(count.seed, opened.0);
    assert!(count.flags.is_empty(), "{:?}", count.flags);
    assert_eq!(count.quorum_met, Some(true));
    // The station holds Ann's second ballot and Ben's; Cy's came after.
    assert_eq!(count.stations.len(), 1);
    assert_eq!(count.stations[0].close, station);
    assert_eq!(count.stations[0].summary.ballot_count(), 2);
    assert_eq!(count.rest.ballot_count(), 1);
    // The result is moot-star's on the final ballots with the poll's seed.
    let mut ballots = Ballots::new(count.info.options.clone()).unwrap();
    for row in [[1, 5, 0], [0, 5, 3], [2, 4, 5]] {
        ballots.push(&row).unwrap();
    }
    let config = Config {
        seats: 1,
        seed: Seed(opened.0),
    };
    let expected = tally(&ballots.counts(), &config).unwrap();
    let got = tally(&count.total, &config).unwrap();
    assert_eq!(got, expected);
    assert_eq!(got.winner_names(), vec!["Bikes"]);
}

#[test]
fn stations_and_the_rest_add_up_to_the_total() {
    let mut h = hall();
    let (_, poll, opened) = open_poll(&mut h);
    // Two branch meetings offline, each with its own station officer (Dee; and Dee again
    // later), then the returning officer merges them.
    let mut branch = Replica::new(h.replica.hub(), Limits::default());
    sync(&h.replica, &mut branch);
    vote(&mut branch, &h.ann, opened, 1, &[5, 0, 1]).unwrap();
    vote(&mut branch, &h.ben, opened, 1, &[3, 4, 0]).unwrap();
    write(
        &mut branch,
        &h.dee.device,
        Lane::Members,
        Body::CloseStation(CloseStation { open: opened }),
        &[opened],
    );
    vote(&mut h.replica, &h.cy, opened, 1, &[0, 0, 5]).unwrap();
    sync(&branch, &mut h.replica);
    vote(&mut h.replica, &h.dee, opened, 1, &[4, 4, 4]).unwrap();
    write(
        &mut h.replica,
        &h.fay.device,
        Lane::Members,
        Body::ClosePoll(ClosePoll { open: opened }),
        &[opened],
    );
    let count = h.replica.count_poll(&poll).unwrap().unwrap();
    assert_eq!(count.counted.len(), 4);
    let mut sum = count.rest.clone();
    for station in &count.stations {
        sum.merge(&station.summary).unwrap();
    }
    assert_eq!(sum, count.total);
    assert_eq!(count.stations[0].summary.ballot_count(), 2);
}

#[test]
fn ballots_outside_the_close_are_excluded_and_concurrent_closes_flagged() {
    let mut h = hall();
    let (_, poll, opened) = open_poll(&mut h);
    let mut other = Replica::new(h.replica.hub(), Limits::default());
    sync(&h.replica, &mut other);
    vote(&mut h.replica, &h.ann, opened, 1, &[5, 0, 0]).unwrap();
    vote(&mut h.replica, &h.ben, opened, 1, &[5, 0, 0]).unwrap();
    // On the other laptop Cy votes, and Fay closes there without having seen Ann's and Ben's.
    vote(&mut other, &h.cy, opened, 1, &[0, 5, 0]).unwrap();
    let close_other = write(
        &mut other,
        &h.fay.device,
        Lane::Members,
        Body::ClosePoll(ClosePoll { open: opened }),
        &[opened],
    );
    let mut merged = Replica::new(h.replica.hub(), Limits::default());
    sync(&h.replica, &mut merged);
    sync(&other, &mut merged);
    let count = merged.count_poll(&poll).unwrap().unwrap();
    assert_eq!(count.info.close, Some(close_other));
    // Ann's and Ben's ballots are not in the close's past.
    let outside: Vec<_> = count
        .excluded
        .iter()
        .filter(|e| e.reason == Exclusion::OutsideClose)
        .collect();
    assert_eq!(outside.len(), 2);
    assert_eq!(count.counted.len(), 1);
    assert_eq!(count.quorum_met, Some(false));
    assert!(count.flags.iter().any(|f| matches!(
        f,
        Flag::QuorumNotMet {
            quorum: 3,
            counted: 1
        }
    )));
}

#[test]
fn two_returning_officers_closing_concurrently_the_fuller_close_stands_and_both_are_flagged() {
    let mut h = hall();
    let group = create_group(&mut h.replica, &h.cy, Lane::Members);
    for p in [&h.ann, &h.ben] {
        join_group(&mut h.replica, p, group, Lane::Members);
    }
    let poll = write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        poll_body(AssemblyRef::Created(group), vec![&h.fay, &h.dee], vec![]),
        &[group],
    );
    let opened = open(&mut h.replica, &h.cy, poll, Lane::Members).unwrap();
    let mut other = Replica::new(h.replica.hub(), Limits::default());
    sync(&h.replica, &mut other);
    vote(&mut h.replica, &h.ann, opened, 1, &[5, 0, 0]).unwrap();
    vote(&mut h.replica, &h.ben, opened, 1, &[5, 1, 0]).unwrap();
    let full = write(
        &mut h.replica,
        &h.fay.device,
        Lane::Members,
        Body::ClosePoll(ClosePoll { open: opened }),
        &[opened],
    );
    let empty = write(
        &mut other,
        &h.dee.device,
        Lane::Members,
        Body::ClosePoll(ClosePoll { open: opened }),
        &[opened],
    );
    for order in [[&h.replica, &other], [&other, &h.replica]] {
        let mut merged = Replica::new(h.replica.hub(), Limits::default());
        sync(order[0], &mut merged);
        sync(order[1], &mut merged);
        let count = merged.count_poll(&poll).unwrap().unwrap();
        assert_eq!(count.info.close, Some(full));
        assert_eq!(count.counted.len(), 2);
        assert!(
            count
                .flags
                .contains(&Flag::CompetingCloses(vec![full, empty]))
        );
    }
}

#[test]
fn the_same_revision_twice_is_an_equivocation_resolved_by_lower_id_and_flagged() {
    let mut h = hall();
    let (_, poll, opened) = open_poll(&mut h);
    let mut other = Replica::new(h.replica.hub(), Limits::default());
    sync(&h.replica, &mut other);
    // Ann's second device casts revision 1 differently, offline.
    let ann2 = SecretKey::from_seed([203; 32]);
    let hub = h.replica.hub();
    other
        .write(
            &ann2,
            &Body::CertifyDevice(moot_state::body::CertifyDevice {
                member: h.ann.member.public(),
                device: ann2.public(),
                certificate: moot_state::body::Certificate::issue(
                    &h.ann.member,
                    &hub,
                    &ann2.public(),
                ),
            }),
        )
        .unwrap();
    let b = write(
        &mut other,
        &ann2,
        Lane::Members,
        ballot(&h.ann, opened, 1, &[0, 0, 5]),
        &[opened],
    );
    let a = vote(&mut h.replica, &h.ann, opened, 1, &[5, 0, 0]).unwrap();
    sync(&other, &mut h.replica);
    let count = h.replica.count_poll(&poll).unwrap().unwrap();
    let (first, second) = if a < b { (a, b) } else { (b, a) };
    assert_eq!(count.counted, vec![first]);
    assert_eq!(count.excluded.len(), 1);
    assert_eq!(count.excluded[0].ballot, second);
    assert_eq!(count.excluded[0].reason, Exclusion::Equivocation);
    assert!(count.flags.contains(&Flag::Equivocation {
        member: h.ann.member.public(),
        ballots: vec![first, second],
    }));
}

/// Each attack is refused with its reason, and the replica is unchanged.
fn refused_without_change(
    h: &mut Hall,
    poll: &OpId,
    attempt: impl FnOnce(&mut Replica) -> Result<OpId, Reason>,
) -> Denied {
    let before_len = h.replica.len();
    let before = h.replica.count_poll(poll).map(|c| c.unwrap());
    let result = attempt(&mut h.replica);
    assert_eq!(h.replica.len(), before_len, "nothing is kept");
    let after = h.replica.count_poll(poll).map(|c| c.unwrap());
    assert_eq!(before, after, "the poll is unchanged");
    denied(result)
}

#[test]
fn a_ballot_for_another_member_is_refused() {
    let mut h = hall();
    let (_, poll, opened) = open_poll(&mut h);
    let ann = h.ann.member.public();
    let dev = h.ben.device.clone();
    let reason = refused_without_change(&mut h, &poll, |r| {
        let body = Body::Ballot(Ballot {
            open: opened,
            member: ann.to_bytes(),
            revision: 9,
            scores: vec![5, 5, 5],
        });
        try_write(r, &dev, Lane::Members, body, &[opened])
    });
    assert_eq!(reason, Denied::NotYours);
}

#[test]
fn a_ballot_outside_the_electorate_is_refused() {
    let mut h = hall();
    // Fay never joined the working group; Gus is a guest.
    let (group, poll, opened) = open_poll(&mut h);
    let fay = person(1);
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| vote(r, &fay, opened, 1, &[1, 2, 3])),
        Denied::NotInElectorate
    );
    // Joining after the open does not enter the electorate.
    join_group(&mut h.replica, &fay, group, Lane::Members);
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| vote(r, &fay, opened, 1, &[1, 2, 3])),
        Denied::NotInElectorate
    );
}

#[test]
fn a_ballot_for_a_poll_not_yet_open_is_refused() {
    let mut h = hall();
    let group = create_group(&mut h.replica, &h.cy, Lane::Members);
    join_group(&mut h.replica, &h.ann, group, Lane::Members);
    let poll = write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        poll_body(AssemblyRef::Created(group), vec![], vec![]),
        &[group],
    );
    let ann = person(3);
    let reason = refused_without_change(&mut h, &poll, |r| vote(r, &ann, poll, 1, &[1, 2, 3]));
    assert_eq!(reason, Denied::PollNotOpen);
    // An open on another laptop, not in the ballot's past, does not open it here either.
    let mut other = Replica::new(h.replica.hub(), Limits::default());
    sync(&h.replica, &mut other);
    let opened = open(&mut other, &h.cy, poll, Lane::Members).unwrap();
    let ballot_op = h
        .replica
        .draft(
            &ann.device.public(),
            Lane::Members,
            &ballot(&ann, opened, 1, &[1, 2, 3]),
            &[],
        )
        .unwrap()
        .sign(&h.replica.hub(), &ann.device)
        .unwrap();
    let mut fresh = Replica::new(h.replica.hub(), Limits::default());
    sync(&other, &mut fresh);
    match fresh.insert(ballot_op.bytes()).outcome {
        Outcome::Rejected(r) => assert_eq!(r.reason, Reason::Unauthorized(Denied::PollNotOpen)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn closes_by_non_officers_are_refused() {
    let mut h = hall();
    let (_, poll, opened) = open_poll(&mut h);
    let ann = h.ann.device.clone();
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| try_write(
            r,
            &ann,
            Lane::Members,
            Body::ClosePoll(ClosePoll { open: opened }),
            &[opened]
        )),
        Denied::NotReturningOfficer
    );
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| try_write(
            r,
            &ann,
            Lane::Members,
            Body::CloseStation(CloseStation { open: opened }),
            &[opened]
        )),
        Denied::NotStationOfficer
    );
    // Ann may not open it again either (she does not convene), nor may Cy open it twice.
    let cy = person(2);
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| open(r, &cy, poll, Lane::Members)),
        Denied::AlreadyOpen
    );
}

#[test]
fn a_guest_cannot_write_in_a_members_only_assembly() {
    let mut h = hall();
    let (group, poll, _) = open_poll(&mut h);
    let gus = h.gus.device.clone();
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| try_write(
            r,
            &gus,
            Lane::Members,
            Body::Join(Join {
                assembly: group,
                joined: true
            }),
            &[group]
        )),
        Denied::GuestNotAllowed
    );
}

#[test]
fn a_guest_may_join_a_public_working_group_but_never_votes() {
    let mut h = hall();
    let group = create_group(&mut h.replica, &h.cy, Lane::Public);
    join_group(&mut h.replica, &h.gus, group, Lane::Public);
    join_group(&mut h.replica, &h.ann, group, Lane::Public);
    let poll = write(
        &mut h.replica,
        &h.cy.device,
        Lane::Public,
        poll_body(AssemblyRef::Created(group), vec![], vec![]),
        &[group],
    );
    open(&mut h.replica, &h.cy, poll, Lane::Public).unwrap();
    assert_eq!(h.replica.poll(&poll).unwrap().electorate, Some(1));
    // Members-lane ops may not name a public assembly's lane wrongly.
    let assemblies = h.replica.assemblies();
    let created = assemblies
        .iter()
        .find(|a| a.assembly == AssemblyRef::Created(group))
        .unwrap();
    assert_eq!(created.members, vec![h.ann.member.public()]);
}

#[test]
fn a_member_cannot_change_their_constituency_to_enter_a_society_poll() {
    let mut h = hall();
    for p in [&h.ann, &h.ben] {
        h.replica
            .write(
                &h.fay.device,
                &Body::SetConstituency(SetConstituency {
                    member: p.member.public(),
                    constituency: Some("Riverside".into()),
                }),
            )
            .unwrap();
    }
    let society = AssemblyRef::Constituency("Riverside".into());
    let poll = write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        poll_body(society, vec![], vec![]),
        &[],
    );
    // Dee tries to move herself into Riverside: only stewards set constituencies.
    let dee = h.dee.device.clone();
    let dee_member = h.dee.member.public();
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| try_write(
            r,
            &dee,
            Lane::Members,
            Body::SetConstituency(SetConstituency {
                member: dee_member,
                constituency: Some("Riverside".into()),
            }),
            &[]
        )),
        Denied::NotSteward
    );
    let opened = open(&mut h.replica, &h.cy, poll, Lane::Members).unwrap();
    assert_eq!(h.replica.poll(&poll).unwrap().electorate, Some(2));
    // A steward moving her after the open does not put her in this poll's electorate.
    h.replica
        .write(
            &h.fay.device,
            &Body::SetConstituency(SetConstituency {
                member: dee_member,
                constituency: Some("Riverside".into()),
            }),
        )
        .unwrap();
    let dee_person = person(5);
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| vote(
            r,
            &dee_person,
            opened,
            1,
            &[1, 1, 1]
        )),
        Denied::NotInElectorate
    );
    vote(&mut h.replica, &h.ann, opened, 1, &[1, 1, 1]).unwrap();
}

#[test]
fn an_open_with_a_false_electorate_is_refused() {
    let mut h = hall();
    let group = create_group(&mut h.replica, &h.cy, Lane::Members);
    join_group(&mut h.replica, &h.ann, group, Lane::Members);
    let poll = write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        poll_body(AssemblyRef::Created(group), vec![], vec![]),
        &[group],
    );
    let (_, hash) = h.replica.electorate_now(&poll, Lane::Members).unwrap();
    let cy = h.cy.device.clone();
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| try_write(
            r,
            &cy,
            Lane::Members,
            Body::OpenPoll(OpenPoll {
                poll,
                electorate: 2,
                electorate_hash: hash
            }),
            &[poll]
        )),
        Denied::ElectorateMismatch {
            claimed: 2,
            actual: 1
        }
    );
    // Only a convener opens: Ann is not one.
    let ann = person(3);
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| open(r, &ann, poll, Lane::Members)),
        Denied::NotConvener
    );
}

#[test]
fn bad_scores_and_non_conveners_are_refused() {
    let mut h = hall();
    let (group, poll, opened) = open_poll(&mut h);
    let ann = person(3);
    for scores in [&[1u8, 2][..], &[1, 2, 6], &[1, 2, 3, 4]] {
        assert_eq!(
            refused_without_change(&mut h, &poll, |r| vote(r, &ann, opened, 1, scores)),
            Denied::BadScores
        );
    }
    // A committee seat by a non-convener.
    let committee = write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        Body::CreateAssembly(CreateAssembly {
            name: "Exec".into(),
            kind: AssemblyKind::Committee,
        }),
        &[],
    );
    let ben = h.ben.member.public();
    let ann_dev = h.ann.device.clone();
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| try_write(
            r,
            &ann_dev,
            Lane::Members,
            Body::Seat(Seat {
                assembly: committee,
                member: ben,
                seated: true
            }),
            &[committee]
        )),
        Denied::NotConvener
    );
    // Ann may not create a committee, and may not join one.
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| try_write(
            r,
            &ann_dev,
            Lane::Members,
            Body::CreateAssembly(CreateAssembly {
                name: "Mine".into(),
                kind: AssemblyKind::Committee,
            }),
            &[]
        )),
        Denied::NotStewardOrConvener
    );
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| try_write(
            r,
            &ann_dev,
            Lane::Members,
            Body::Join(Join {
                assembly: committee,
                joined: true
            }),
            &[committee]
        )),
        Denied::NotJoinable
    );
    // A public op about a members-only assembly is refused.
    assert_eq!(
        refused_without_change(&mut h, &poll, |r| try_write(
            r,
            &ann_dev,
            Lane::Public,
            Body::Join(Join {
                assembly: group,
                joined: true
            }),
            &[]
        )),
        Denied::NoSuchAssembly
    );
}

#[test]
fn a_committee_votes_by_its_seats() {
    let mut h = hall();
    let committee = write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        Body::CreateAssembly(CreateAssembly {
            name: "Exec".into(),
            kind: AssemblyKind::Committee,
        }),
        &[],
    );
    for p in [&h.ann, &h.ben] {
        let member = p.member.public();
        write(
            &mut h.replica,
            &h.cy.device,
            Lane::Members,
            Body::Seat(Seat {
                assembly: committee,
                member,
                seated: true,
            }),
            &[committee],
        );
    }
    let ben = h.ben.member.public();
    write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        Body::Seat(Seat {
            assembly: committee,
            member: ben,
            seated: false,
        }),
        &[committee],
    );
    let poll = write(
        &mut h.replica,
        &h.cy.device,
        Lane::Members,
        poll_body(AssemblyRef::Created(committee), vec![], vec![]),
        &[committee],
    );
    let opened = open(&mut h.replica, &h.cy, poll, Lane::Members).unwrap();
    assert_eq!(h.replica.poll(&poll).unwrap().electorate, Some(1));
    vote(&mut h.replica, &h.ann, opened, 1, &[1, 2, 3]).unwrap();
    let ben = person(4);
    assert_eq!(
        denied(vote(&mut h.replica, &ben, opened, 1, &[1, 2, 3])),
        Denied::NotInElectorate
    );
}

/// A meeting with concurrency: two laptops, ballots on both, a station close on one, re-casts,
/// an equivocation, then the close. Every op, returned in order of writing.
fn busy_history() -> (OpId, Vec<Vec<u8>>, Replica) {
    let mut h = hall();
    let (_, poll, opened) = open_poll(&mut h);
    let mut laptop = Replica::new(h.replica.hub(), Limits::default());
    sync(&h.replica, &mut laptop);
    vote(&mut laptop, &h.ann, opened, 1, &[5, 0, 1]).unwrap();
    // Ben votes on the laptop with a device of his there, and again on his phone (below)
    // with the same revision: an equivocation.
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
    vote(&mut laptop, &bens_laptop, opened, 1, &[3, 4, 0]).unwrap();
    vote(&mut laptop, &h.ann, opened, 2, &[4, 0, 1]).unwrap();
    write(
        &mut laptop,
        &h.dee.device,
        Lane::Members,
        Body::CloseStation(CloseStation { open: opened }),
        &[opened],
    );
    vote(&mut h.replica, &h.cy, opened, 1, &[0, 0, 5]).unwrap();
    vote(&mut h.replica, &h.ben, opened, 1, &[0, 4, 4]).unwrap();
    sync(&laptop, &mut h.replica);
    vote(&mut h.replica, &h.cy, opened, 2, &[1, 0, 5]).unwrap();
    write(
        &mut h.replica,
        &h.fay.device,
        Lane::Members,
        Body::ClosePoll(ClosePoll { open: opened }),
        &[opened],
    );
    // A late ballot on the laptop, outside the close.
    vote(&mut laptop, &h.dee, opened, 1, &[2, 2, 2]).unwrap();
    sync(&laptop, &mut h.replica);
    let ops = h
        .replica
        .op_ids()
        .iter()
        .map(|id| h.replica.op_bytes(id).unwrap().to_vec())
        .collect();
    (poll, ops, h.replica)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn replicas_receiving_the_ops_in_any_order_show_identical_polls(seed in any::<u64>()) {
        let (poll, mut ops, mut reference) = busy_history();
        let expected_polls = reference.polls();
        let expected = reference.count_poll(&poll).unwrap().unwrap();
        // Ann (revision 2), Ben (two different revision-1 ballots: an equivocation), Cy
        // (revision 2); Dee's ballot came after the close.
        prop_assert_eq!(expected.counted.len(), 3);
        let equivocations = expected
            .flags
            .iter()
            .filter(|f| matches!(f, Flag::Equivocation { member: _, ballots: _ }))
            .count();
        prop_assert_eq!(equivocations, 1);
        prop_assert!(expected.excluded.iter().any(|e| e.reason == Exclusion::OutsideClose));
        prop_assert_eq!(expected.stations.len(), 1);
        // A deterministic shuffle from the seed (and a duplicate of everything).
        let mut state = seed | 1;
        for i in (1..ops.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ops.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut replica = Replica::new(reference.hub(), Limits::default());
        for _ in 0..2 {
            loop {
                let before = replica.len();
                for op in &ops {
                    replica.insert(op);
                }
                if replica.len() == before {
                    break;
                }
            }
        }
        prop_assert_eq!(replica.len(), reference.len());
        prop_assert_eq!(replica.polls(), expected_polls);
        prop_assert_eq!(replica.count_poll(&poll).unwrap().unwrap(), expected);
    }
}

#[test]
fn a_close_names_the_chains_it_must_follow_not_every_members_roll_ops() {
    // 200 members whose only ops are roll ops (their admission and device certificate): those
    // are in the past of the roll heads, which every op names; only the ballots' chains need
    // naming. (Naming every tip made a close in a 10,000-member hub take 18 s.)
    let mut h = hall();
    let others: Vec<Person> = (0..200u8).map(|i| person(20u8.wrapping_add(i))).collect();
    for p in &others {
        join(&mut h.replica, &h.fay, p, Standing::Member);
    }
    let (_, poll, opened) = open_poll(&mut h);
    vote(&mut h.replica, &h.ann, opened, 1, &[1, 2, 3]).unwrap();
    vote(&mut h.replica, &h.ben, opened, 1, &[3, 2, 1]).unwrap();
    let written = h
        .replica
        .write_covering(
            &h.fay.device,
            Lane::Members,
            &Body::ClosePoll(ClosePoll { open: opened }),
            &[opened],
        )
        .unwrap();
    assert_eq!(written.len(), 1, "no checkpoints needed");
    let count = h.replica.count_poll(&poll).unwrap().unwrap();
    assert_eq!(count.counted.len(), 2);
}

#[test]
fn ops_of_kinds_this_version_cannot_judge_do_not_block_a_close() {
    // A guest writes ops of kinds this version does not know (one of the roll family, one
    // not), and a voter follows her ballot with one: a close follows everything held, and
    // naming those would hold it for an upgrade, so any guest could keep every poll open.
    let mut h = hall();
    let (_, poll, opened) = open_poll(&mut h);
    vote(&mut h.replica, &h.ann, opened, 1, &[1, 2, 3]).unwrap();
    vote(&mut h.replica, &h.ben, opened, 1, &[3, 2, 1]).unwrap();
    insert_future(&mut h.replica, &h.gus.device, Lane::Public, 0x00FE);
    insert_future(&mut h.replica, &h.dee.device, Lane::Public, 0x0371);
    insert_future(&mut h.replica, &h.ann.device, Lane::Members, 0x0371);
    let close = try_write(
        &mut h.replica,
        &h.fay.device,
        Lane::Members,
        Body::ClosePoll(ClosePoll { open: opened }),
        &[opened],
    )
    .unwrap();
    assert_eq!(
        h.replica.verdict(&close),
        Some(moot_state::Verdict::Accepted)
    );
    let count = h.replica.count_poll(&poll).unwrap().unwrap();
    assert_eq!(count.info.stage, PollStage::Closed);
    // Ann's ballot, behind her newer-kind op, is in the close's past and counts.
    assert_eq!(count.counted.len(), 2);
    // And Fay's chain is not frozen: her next op is judged.
    let next = h
        .replica
        .write_in(
            &h.fay.device,
            Lane::Members,
            &Body::Checkpoint(moot_state::body::Checkpoint {}),
            &[],
        )
        .unwrap()[0];
    assert_eq!(
        h.replica.verdict(&next),
        Some(moot_state::Verdict::Accepted)
    );
}

#[test]
fn an_open_that_sorts_first_but_has_no_close_does_not_undo_a_close() {
    let mut h = hall();
    let (_, poll) = create_poll(&mut h);
    let opened = open(&mut h.replica, &h.cy, poll, Lane::Members).unwrap();
    vote(&mut h.replica, &h.ann, opened, 1, &[5, 1, 0]).unwrap();
    vote(&mut h.replica, &h.ben, opened, 1, &[0, 5, 3]).unwrap();
    let close = write(
        &mut h.replica,
        &h.fay.device,
        Lane::Members,
        Body::ClosePoll(ClosePoll { open: opened }),
        &[opened],
    );
    let before = h.replica.count_poll(&poll).unwrap().unwrap();
    assert_eq!(before.info.stage, PollStage::Closed);
    // The convener, after seeing the result, writes another open of the same poll that does
    // not follow the first (back-dated), tried until its id sorts before the first's.
    let late = (0..64)
        .find_map(|tries| {
            let mut other = hall();
            assert_eq!(create_poll(&mut other).1, poll);
            for _ in 0..tries {
                other
                    .replica
                    .write_in(
                        &other.cy.device,
                        Lane::Members,
                        &Body::Checkpoint(moot_state::body::Checkpoint {}),
                        &[],
                    )
                    .unwrap();
            }
            let late = open(&mut other.replica, &other.cy, poll, Lane::Members).unwrap();
            (late < opened).then_some((late, other))
        })
        .expect("an open sorting first");
    sync(&late.1.replica, &mut h.replica);
    assert!(h.replica.holds(&late.0));
    let after = h.replica.count_poll(&poll).unwrap().unwrap();
    assert_eq!(after.info.stage, PollStage::Closed);
    assert_eq!(after.info.open, Some(opened));
    assert_eq!(after.info.close, Some(close));
    assert_eq!(after.counted.len(), 2);
    assert_eq!(after.seed, before.seed);
    assert!(
        after
            .flags
            .contains(&Flag::CompetingOpens(vec![opened, late.0])),
        "{:?}",
        after.flags
    );
}

/// A hall where Ben holds the hub's convener role (so he convenes every assembly, Cy's
/// included), with Cy's group and poll in `lane`, not opened. Deterministic, as `hall` is.
fn hall_with_ben_convening(lane: Lane) -> (Hall, OpId) {
    let mut h = hall();
    let group = create_group(&mut h.replica, &h.cy, lane);
    for p in [&h.ann, &h.ben, &h.dee, &h.cy] {
        join_group(&mut h.replica, p, group, lane);
    }
    let poll = write(
        &mut h.replica,
        &h.cy.device,
        lane,
        poll_body(AssemblyRef::Created(group), vec![&h.fay], vec![&h.dee]),
        &[group],
    );
    h.replica
        .write(&h.fay.device, &grant_body(&h.ben, Role::Convener))
        .unwrap();
    (h, poll)
}

/// Fay's revocation of Ben's convener role, accepting his ops up to what `replica` holds.
fn revoke_ben(h: &mut Hall) -> OpId {
    let body = revoke_body(&h.replica, &h.ben, Role::Convener);
    h.replica.write(&h.fay.device, &body).unwrap()
}

/// A convener whose role is revoked cannot go on opening polls by never naming the revocation:
/// an open resting on the revoked grant, beyond the revocation's cut and not following it,
/// counts for nothing (in either lane: a public open is resolved with the public roll, a
/// members-lane one against it). An open the steward had seen when revoking still counts,
/// though the revocation does not follow it either.
#[test]
fn a_revoked_convener_cannot_open_a_poll_by_not_following_the_revocation() {
    for lane in [Lane::Members, Lane::Public] {
        // Ben, on a laptop that never hears of the revocation, opens the poll afterwards.
        let (mut h, poll) = hall_with_ben_convening(lane);
        let (mut laptop, same_poll) = hall_with_ben_convening(lane);
        assert_eq!(poll, same_poll);
        let revocation = revoke_ben(&mut h);
        let late = open(&mut laptop.replica, &laptop.ben, poll, lane).unwrap();
        sync(&laptop.replica, &mut h.replica);
        assert!(h.replica.holds(&late), "{lane:?}");
        assert_eq!(
            h.replica.validity(&late),
            Some(Err(Denied::BeyondCut)),
            "{lane:?}"
        );
        let info = h.replica.poll(&poll).unwrap();
        assert_eq!(info.open, None, "{lane:?}");
        assert_eq!(info.stage, PollStage::Created, "{lane:?}");
        // Fay (a steward: she convenes every assembly) can still open it, following Ben's
        // open: one that does not count in her open's past does not make the poll open there.
        let opened = open(&mut h.replica, &h.fay, poll, lane).unwrap();
        assert_eq!(
            h.replica.poll(&poll).unwrap().open,
            Some(opened),
            "{lane:?}"
        );
        // The laptop, once it hears of the revocation, agrees.
        sync(&h.replica, &mut laptop.replica);
        assert!(laptop.replica.holds(&revocation));
        assert_eq!(
            laptop.replica.validity(&late),
            Some(Err(Denied::BeyondCut)),
            "{lane:?}"
        );
        assert_eq!(
            laptop.replica.poll(&poll).unwrap().open,
            Some(opened),
            "{lane:?}"
        );

        // Ben opened before the revocation, and Fay had his open when she revoked.
        let (mut h, poll) = hall_with_ben_convening(lane);
        let (mut laptop, _) = hall_with_ben_convening(lane);
        let seen = open(&mut laptop.replica, &laptop.ben, poll, lane).unwrap();
        sync(&laptop.replica, &mut h.replica);
        revoke_ben(&mut h);
        assert_eq!(h.replica.validity(&seen), Some(Ok(())), "{lane:?}");
        let info = h.replica.poll(&poll).unwrap();
        assert_eq!(info.open, Some(seen), "{lane:?}");
        assert_eq!(info.stage, PollStage::Open, "{lane:?}");
    }
}
