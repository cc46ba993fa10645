//! Replicas that receive the same ops in any order, with duplicates, end with identical state:
//! the same roll, the same verdict on every op, the same equivocation evidence. Histories mix
//! concurrent removals with the admissions, certifications and grants of the removed (so ops
//! rest on roll facts the resolution may not accept), ops of unknown kinds in both lanes and
//! of the roll family, and known ops that cite them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use moot_crypto::OpId;
use moot_state::body::{
    Checkpoint, PublicName, RevokeDevice, RevokeRole, SetConstituency, SetContribution,
};
use moot_state::{Body, Lane, Limits, Replica, Retain, Role, Standing};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Act {
    Admit { by: u8, who: u8, guest: bool },
    Certify { who: u8 },
    Remove { by: u8, who: u8 },
    Grant { by: u8, who: u8, steward: bool },
    Revoke { by: u8, who: u8, steward: bool },
    Constituency { by: u8, who: u8 },
    Name { by: u8, who: u8 },
    PublicName { by: u8 },
    Contribution { by: u8, who: u8 },
    RevokeDevice { by: u8, who: u8 },
    Future { by: u8, public: bool },
    FutureRoll { by: u8 },
    Note { by: u8, public: bool },
    Cite { by: u8 },
    Fork { by: u8, who: u8 },
}

#[derive(Debug, Clone)]
enum Step {
    Write { replica: usize, act: Act },
    Sync { from: usize, to: usize },
}

const PEOPLE: u8 = 5;

fn act() -> impl Strategy<Value = Act> {
    let p = 1u8..=PEOPLE;
    // Who acts: often a steward (the founder, or the people granted the role early), so that
    // removals race with the admissions, certifications and grants of the removed.
    let by = || prop_oneof![2 => Just(1u8), 2 => 2u8..=3, 1 => 1u8..=PEOPLE];
    prop_oneof![
        3 => (by(), p.clone(), any::<bool>()).prop_map(|(by, who, guest)| Act::Admit { by, who, guest }),
        3 => p.clone().prop_map(|who| Act::Certify { who }),
        1 => (by(), p.clone()).prop_map(|(by, who)| Act::Remove { by, who }),
        2 => (by(), p.clone(), any::<bool>()).prop_map(|(by, who, steward)| Act::Grant { by, who, steward }),
        1 => (by(), p.clone(), any::<bool>()).prop_map(|(by, who, steward)| Act::Revoke { by, who, steward }),
        1 => (by(), p.clone()).prop_map(|(by, who)| Act::Constituency { by, who }),
        1 => (by(), p.clone()).prop_map(|(by, who)| Act::Name { by, who }),
        1 => by().prop_map(|by| Act::PublicName { by }),
        1 => (by(), p.clone()).prop_map(|(by, who)| Act::Contribution { by, who }),
        1 => (by(), p.clone()).prop_map(|(by, who)| Act::RevokeDevice { by, who }),
        1 => (by(), any::<bool>()).prop_map(|(by, public)| Act::Future { by, public }),
        1 => p.clone().prop_map(|by| Act::FutureRoll { by }),
        3 => (p.clone(), any::<bool>()).prop_map(|(by, public)| Act::Note { by, public }),
        1 => p.clone().prop_map(|by| Act::Cite { by }),
        1 => (by(), p.clone()).prop_map(|(by, who)| Act::Fork { by, who }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0usize..3, act()).prop_map(|(replica, act)| Step::Write { replica, act }),
        1 => (0usize..3, 0usize..3).prop_map(|(from, to)| Step::Sync { from, to }),
    ]
}

fn body_of(replica: &Replica, act: &Act) -> (u8, Body) {
    let hub = replica.hub();
    match act {
        Act::Admit { by, who, guest } => {
            let standing = if *guest {
                Standing::Guest
            } else {
                Standing::Member
            };
            (*by, admit_body(&person(*who), "p", standing))
        }
        Act::Certify { who } => (*who, certify_body(&hub, &person(*who))),
        Act::Remove { by, who } => (*by, remove_body(replica, &person(*who))),
        Act::Grant { by, who, steward } => (
            *by,
            grant_body(
                &person(*who),
                if *steward {
                    Role::Steward
                } else {
                    Role::Convener
                },
            ),
        ),
        Act::Revoke { by, who, steward } => (
            *by,
            Body::Revoke(RevokeRole {
                member: person(*who).member.public(),
                role: if *steward {
                    Role::Steward
                } else {
                    Role::Convener
                },
                cuts: Some(Vec::new()),
            }),
        ),
        Act::Constituency { by, who } => (
            *by,
            Body::SetConstituency(SetConstituency {
                member: person(*who).member.public(),
                constituency: Some("North".into()),
            }),
        ),
        Act::Name { by, who } => (*by, name_body(&person(*who), "renamed")),
        Act::PublicName { by } => (
            *by,
            Body::PublicName(PublicName {
                member: person(*by).member.public(),
                name: Some(format!("P{by}")),
            }),
        ),
        Act::Contribution { by, who } => (
            *by,
            Body::SetContribution(SetContribution {
                member: person(*who).member.public(),
                contribution: None,
            }),
        ),
        Act::RevokeDevice { by, who } => {
            let device = person(*who).device.public();
            let cut = replica.lane_cut(&device);
            (*by, Body::RevokeDevice(RevokeDevice { device, cut }))
        }
        Act::Future { by, .. }
        | Act::FutureRoll { by }
        | Act::Note { by, .. }
        | Act::Cite { by }
        | Act::Fork { by, .. } => (*by, Body::Checkpoint(Checkpoint {})),
    }
}

fn run(steps: &[Step]) -> Vec<Replica> {
    let founder = person(1);
    let mut replicas = vec![founded(&founder)];
    for _ in 0..2 {
        let mut r = Replica::new(replicas[0].hub(), Limits::default());
        sync(&replicas[0], &mut r);
        replicas.push(r);
    }
    for step in steps {
        match step {
            Step::Write { replica, act } => {
                let r = &mut replicas[*replica];
                let (by, body) = body_of(r, act);
                let device = person(by).device;
                let lane_of = |public: bool| if public { Lane::Public } else { Lane::Members };
                match act {
                    Act::Future { .. } | Act::FutureRoll { .. } => {
                        let (lane, kind) = match act {
                            Act::Future { public, .. } => (lane_of(*public), 0x0377),
                            _ => (Lane::Public, 0x00F0),
                        };
                        let mut draft = future_draft(r, &device, lane, kind);
                        draft.body = vec![by; 5];
                        let op = draft.sign(&r.hub(), &device).unwrap();
                        r.insert_authentic(op);
                    }
                    Act::Note { public, .. } => {
                        let _ = r.write_in(&device, lane_of(*public), &body, &[]);
                    }
                    Act::Cite { .. } => {
                        // A known op naming the newest op of a kind this version does not know.
                        let unknown = r
                            .op_ids()
                            .into_iter()
                            .filter(|id| r.op(id).is_some_and(|op| op.kind() >= 0x00F0))
                            .max();
                        if let Some(target) = unknown {
                            let _ = r.write_in(&device, Lane::Members, &body, &[target]);
                        }
                    }
                    Act::Fork { who, .. } => {
                        // Two different ops from the same chain position.
                        let hub = r.hub();
                        let first = draft(
                            r,
                            &device,
                            &admit_body(&person(*who), "a", Standing::Member),
                        );
                        let second = draft(
                            r,
                            &device,
                            &admit_body(&person(*who), "fork", Standing::Guest),
                        );
                        let second = moot_crypto::Draft {
                            body: second.body,
                            kind: second.kind,
                            ..first.clone()
                        };
                        r.insert_authentic(first.sign(&hub, &device).unwrap());
                        r.insert_authentic(second.sign(&hub, &device).unwrap());
                    }
                    _ => {
                        let _ = r.write(&device, &body);
                    }
                }
            }
            Step::Sync { from, to } => {
                if from != to {
                    let (a, b) = if from < to {
                        let (left, right) = replicas.split_at_mut(*to);
                        (&left[*from], &mut right[0])
                    } else {
                        let (left, right) = replicas.split_at_mut(*from);
                        (&right[0], &mut left[*to])
                    };
                    sync(a, b);
                }
            }
        }
    }
    replicas
}

/// Everything observable about a replica's derived state.
fn observe(
    replica: &mut Replica,
) -> (
    moot_state::Roll,
    BTreeMap<OpId, Result<(), moot_state::Denied>>,
    Vec<moot_state::Equivocation>,
) {
    (
        replica.roll(),
        replica.validities(),
        replica.equivocations(),
    )
}

/// Inserts `ops` in the order given, and again while that still changes anything: ops whose
/// dependencies are missing are not always held (their author may not be on the roll yet), so,
/// as a sync protocol would, the sender offers them again.
fn deliver(replica: &mut Replica, ops: &[Vec<u8>]) {
    loop {
        let before = replica.len();
        for bytes in ops {
            replica.insert(bytes);
        }
        if replica.len() == before {
            break;
        }
    }
}

/// [`deliver`], collecting what the replica hands over to store, in acceptance order.
fn deliver_keeping(
    replica: &mut Replica,
    ops: &[Vec<u8>],
) -> Vec<(
    moot_crypto::Authentic<moot_crypto::SignedOp>,
    moot_state::Verdict,
)> {
    let hub = replica.hub();
    let mut kept = Vec::new();
    loop {
        let before = replica.len();
        for bytes in ops {
            let op = moot_crypto::SignedOp::decode(bytes).unwrap();
            if let Ok(op) = op.authenticate(&hub) {
                kept.extend(replica.insert_authentic(op).kept);
            }
        }
        if replica.len() == before {
            break;
        }
    }
    kept
}

fn shuffled(mut ops: Vec<Vec<u8>>, seed: u64) -> Vec<Vec<u8>> {
    let mut state = seed | 1;
    for i in (1..ops.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ops.swap(i, (state % (i as u64 + 1)) as usize);
    }
    ops
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn same_ops_in_any_order_give_the_same_state(
        steps in proptest::collection::vec(step(), 10..60),
        seeds in proptest::collection::vec(any::<u64>(), 3),
    ) {
        let replicas = run(&steps);
        let hub = replicas[0].hub();
        // The union of everything any replica accepted.
        let mut union: BTreeMap<OpId, Vec<u8>> = BTreeMap::new();
        for r in &replicas {
            for id in r.op_ids() {
                union.insert(id, r.op_bytes(&id).unwrap().to_vec());
            }
        }
        let all: Vec<Vec<u8>> = union.values().cloned().collect();

        let mut reference = Replica::new(hub, Limits::default());
        deliver(&mut reference, &all);
        prop_assert_eq!(reference.len(), all.len(), "every op is accepted once its past is present");
        let expected = observe(&mut reference);
        if std::env::var_os("MOOT_STATS").is_some() {
            let mut counts = BTreeMap::new();
            for v in expected.1.values() {
                *counts.entry(format!("{v:?}")).or_insert(0) += 1;
            }
            eprintln!("STATS {counts:?}");
        }

        for seed in seeds {
            // A random order, with every op sent twice.
            let mut twice = all.clone();
            twice.extend(all.iter().cloned());
            let mut replica = Replica::new(hub, Limits::default());
            deliver(&mut replica, &shuffled(twice, seed));
            prop_assert_eq!(replica.pending_len(), 0);
            prop_assert_eq!(&observe(&mut replica), &expected);
        }
        // A replica that keeps only its compact index (op bytes on disk) reaches the same
        // state; so does one restored, as a node loads, from the ops it kept and their
        // verdicts in acceptance order.
        let mut lean = Replica::new(hub, Limits { retain: Retain::IndexOnly, ..Limits::default() });
        let stored = deliver_keeping(&mut lean, &all);
        prop_assert_eq!(stored.len(), all.len());
        prop_assert_eq!(&observe(&mut lean), &expected);
        let mut restored = Replica::new(hub, Limits { retain: Retain::IndexOnly, ..Limits::default() });
        for (op, verdict) in stored {
            let id = op.id();
            prop_assert_eq!(restored.restore(op, verdict), Ok(verdict), "op {:?}", id);
        }
        prop_assert_eq!(&observe(&mut restored), &expected);

        // Lanes: a guest's replica, fed only the public lane, accepts every public op and
        // reaches the same verdict on each as a member's replica holding both lanes.
        let public: Vec<Vec<u8>> = all
            .iter()
            .filter(|b| moot_crypto::SignedOp::decode(b).unwrap().lane() == Lane::Public)
            .cloned()
            .collect();
        let mut guest = Replica::new(hub, Limits::default());
        deliver(&mut guest, &public);
        prop_assert_eq!(guest.len(), public.len(), "the public lane is causally closed");
        let guest_view = guest.validities();
        for (id, verdict) in &guest_view {
            prop_assert_eq!(Some(verdict), expected.1.get(id), "op {:?}", id);
        }
        // And the same public facts: standing, roles, devices; no personal data.
        let (full, guest_roll) = (expected.0.clone(), guest.roll());
        for (member, record) in full.members.iter() {
            let seen = guest_roll.members.get(member).cloned();
            prop_assert!(seen.is_some());
            let seen = seen.unwrap();
            prop_assert_eq!(seen.status, record.status);
            prop_assert_eq!(&seen.roles, &record.roles);
            prop_assert_eq!(&seen.public_name, &record.public_name);
            prop_assert!(seen.name.is_empty() && seen.constituency.is_none());
        }
        prop_assert_eq!(guest_roll.devices.clone(), full.devices.clone());
        // The public roll (what a node judges peers' lanes by) has the same standing, roles,
        // devices and access as the whole roll.
        let public_roll = reference.public_roll();
        for (member, record) in full.members.iter() {
            let seen = public_roll.members.get(member).cloned();
            prop_assert!(seen.is_some());
            let seen = seen.unwrap();
            prop_assert_eq!(seen.status, record.status);
            prop_assert_eq!(&seen.roles, &record.roles);
        }
        prop_assert_eq!(public_roll.members.len(), full.members.len());
        prop_assert_eq!(public_roll.devices.clone(), full.devices.clone());
        prop_assert_eq!(public_roll.members_only, full.members_only);
        // Replicas that synced everything agree too.
        let mut merged = Replica::new(hub, Limits::default());
        for r in &replicas {
            sync(r, &mut merged);
        }
        prop_assert_eq!(&observe(&mut merged), &expected);
    }
}
