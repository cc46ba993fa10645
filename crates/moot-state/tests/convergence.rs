//! Replicas that receive the same ops in any order, with duplicates, end with identical state:
//! the same roll, the same verdict on every op, the same equivocation evidence.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use moot_crypto::OpId;
use moot_state::body::{RevokeDevice, RoleChange, Update};
use moot_state::{Body, Limits, Replica, Role, Standing};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Act {
    Admit { by: u8, who: u8, guest: bool },
    Certify { who: u8 },
    Remove { by: u8, who: u8 },
    Grant { by: u8, who: u8, steward: bool },
    Revoke { by: u8, who: u8, steward: bool },
    Update { by: u8, who: u8 },
    RevokeDevice { by: u8, who: u8 },
    Future { by: u8 },
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
    prop_oneof![
        3 => (p.clone(), p.clone(), any::<bool>()).prop_map(|(by, who, guest)| Act::Admit { by, who, guest }),
        3 => p.clone().prop_map(|who| Act::Certify { who }),
        1 => (p.clone(), p.clone()).prop_map(|(by, who)| Act::Remove { by, who }),
        2 => (p.clone(), p.clone(), any::<bool>()).prop_map(|(by, who, steward)| Act::Grant { by, who, steward }),
        1 => (p.clone(), p.clone(), any::<bool>()).prop_map(|(by, who, steward)| Act::Revoke { by, who, steward }),
        1 => (p.clone(), p.clone()).prop_map(|(by, who)| Act::Update { by, who }),
        1 => (p.clone(), p.clone()).prop_map(|(by, who)| Act::RevokeDevice { by, who }),
        1 => p.clone().prop_map(|by| Act::Future { by }),
        1 => (p.clone(), p.clone()).prop_map(|(by, who)| Act::Fork { by, who }),
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
            Body::Revoke(RoleChange {
                member: person(*who).member.public(),
                role: if *steward {
                    Role::Steward
                } else {
                    Role::Convener
                },
            }),
        ),
        Act::Update { by, who } => (
            *by,
            Body::Update(Update {
                member: person(*who).member.public(),
                constituency: Some(Some("North".into())),
                contribution: None,
            }),
        ),
        Act::RevokeDevice { by, who } => {
            let device = person(*who).device.public();
            let cut = replica.chain_head(&device).map_or(0, |(s, _)| s);
            (*by, Body::RevokeDevice(RevokeDevice { device, cut }))
        }
        Act::Future { by } | Act::Fork { by, .. } => (
            *by,
            Body::Update(Update {
                member: person(*by).member.public(),
                constituency: None,
                contribution: None,
            }),
        ),
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
                match act {
                    Act::Future { .. } => {
                        if let Some(mut draft) = r.draft(&device.public(), &body) {
                            draft.kind = 777;
                            draft.body = vec![by; 5];
                            let op = draft.sign(&r.hub(), &device).unwrap();
                            r.insert_authentic(op);
                        }
                    }
                    Act::Fork { who, .. } => {
                        // Two different ops from the same chain position.
                        let hub = r.hub();
                        let first = r.draft(&device.public(), &body).unwrap();
                        let second = r
                            .draft(
                                &device.public(),
                                &admit_body(&person(*who), "fork", Standing::Guest),
                            )
                            .unwrap();
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
        steps in proptest::collection::vec(step(), 5..40),
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
        for bytes in &all {
            reference.insert(bytes);
        }
        prop_assert_eq!(reference.len(), all.len(), "every op is accepted once its past is present");
        let expected = observe(&mut reference);

        for seed in seeds {
            // A random order, with every op sent twice.
            let mut twice = all.clone();
            twice.extend(all.iter().cloned());
            let mut replica = Replica::new(hub, Limits::default());
            for bytes in shuffled(twice, seed) {
                replica.insert(&bytes);
            }
            prop_assert_eq!(replica.pending_len(), 0);
            prop_assert_eq!(&observe(&mut replica), &expected);
        }
        // Replicas that synced everything agree too.
        let mut merged = Replica::new(hub, Limits::default());
        for r in &replicas {
            sync(r, &mut merged);
        }
        prop_assert_eq!(&observe(&mut merged), &expected);
    }
}
