//! The points of certified devices, held by the replica and handed to the threads that check
//! signatures: ops are judged exactly as without them, the table holds only certified devices,
//! and a replica loaded from its store holds every point.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_crypto::SignedOp;
use moot_state::{Limits, Outcome, Reason, Replica, Verdict};

/// Whether each insertion was accepted, and the reason of each refusal.
fn verdicts(insertions: &[moot_state::Insertion]) -> Vec<Result<(), Reason>> {
    insertions
        .iter()
        .map(|insertion| match &insertion.outcome {
            Outcome::Accepted(_) => Ok(()),
            Outcome::Rejected(rejection) => Err(rejection.reason.clone()),
            other => panic!("unexpected outcome {other:?}"),
        })
        .collect()
}

#[test]
fn ballots_checked_with_the_devices_points_get_the_same_verdicts() {
    let sample = moot_state::sample::poll_history(300);
    let mut ballots = sample.ballots.clone();
    // Forge two ballots of certified devices: a signature byte, a score.
    let last = ballots[17].len() - 1;
    ballots[17][last] ^= 0x01;
    let len = ballots[250].len();
    ballots[250][len - 70] ^= 0x01;

    // Taken in as a peer's ops, on a thread that parsed no key before (this one built the
    // sample): the devices are known, their points not computed until a check needs them.
    let (mut synced, held_before_ballots) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut synced = Replica::new(sample.hub, Limits::default());
                synced.insert_batch(&sample.setup);
                let (_, held) = synced.known_devices();
                (synced, held)
            })
            .join()
            .unwrap()
    });
    let (devices, _) = synced.known_devices();
    assert_eq!(devices, 301, "the founder's device and 300 voters'");
    // None, or the founder's device's if a worker reached the founder's poll ops only after
    // the genesis was judged.
    assert!(held_before_ballots <= 1, "{held_before_ballots}");

    // Loaded from a store (the node's own ops, decoded on this thread): every point is held.
    let load = || {
        let mut loaded = Replica::new(sample.hub, Limits::default());
        for bytes in &sample.setup {
            let op = SignedOp::decode(bytes)
                .unwrap()
                .authenticate(&sample.hub)
                .unwrap();
            assert_eq!(loaded.restore(op, Verdict::Accepted), Ok(Verdict::Accepted));
        }
        loaded
    };
    let mut loaded = load();
    assert_eq!(loaded.known_devices(), (devices, devices));
    // A node at rest lets the points go and keeps the devices (a shed keeps them).
    let mut shed = load();
    shed.shed_caches();
    assert_eq!(shed.known_devices(), (devices, devices));
    assert!(shed.forget_points());
    assert_eq!(shed.known_devices(), (devices, 0));
    assert!(!shed.forget_points());

    // Each ballot alone, by a replica holding no point yet for its voter's device.
    let mut alone = Replica::new(sample.hub, Limits::default());
    alone.insert_batch(&sample.setup);
    let one_by_one: Vec<_> = ballots.iter().map(|b| alone.insert(b)).collect();
    let expected = verdicts(&one_by_one);
    assert_eq!(expected.iter().filter(|v| v.is_err()).count(), 2);
    assert_eq!(expected[17], Err(Reason::BadSignature));
    assert_eq!(expected[250], Err(Reason::BadSignature));

    assert_eq!(verdicts(&synced.insert_batch(&ballots)), expected);
    assert_eq!(verdicts(&loaded.insert_batch(&ballots)), expected);
    // The checks filled the points they needed (the 300 voters'); no key was added by a
    // ballot.
    assert_eq!(synced.known_devices(), (devices, held_before_ballots + 300));
    assert_eq!(loaded.known_devices(), (devices, devices));
    assert_eq!(synced.polls(), loaded.polls());
    // The shed replica computes again the points its checks need, with the same verdicts.
    assert_eq!(verdicts(&shed.insert_batch(&ballots)), expected);
    assert_eq!(shed.known_devices(), (devices, 300));
    assert_eq!(shed.polls(), loaded.polls());
}

/// A stranger's ops (a device no certificate names) are checked and refused without being
/// added: the table grows with the roll only.
#[test]
fn a_strangers_ops_add_nothing() {
    let sample = moot_state::sample::poll_history(20);
    let mut replica = Replica::new(sample.hub, Limits::default());
    replica.insert_batch(&sample.setup);
    let before = replica.known_devices();
    let stranger = moot_crypto::SecretKey::from_seed([200; 32]);
    let ops: Vec<Vec<u8>> = (1..=50u64)
        .map(|n| {
            moot_crypto::Draft {
                lane: moot_crypto::Lane::Public,
                seq: 1,
                prev: None,
                deps: vec![],
                kind: 1,
                body: n.to_le_bytes().to_vec(),
            }
            .sign(&sample.hub, &stranger)
            .unwrap()
            .bytes()
            .to_vec()
        })
        .collect();
    for insertion in replica.insert_batch(&ops) {
        assert!(
            matches!(insertion.outcome, Outcome::Rejected(_)),
            "{:?}",
            insertion.outcome
        );
    }
    assert_eq!(replica.known_devices(), before);
    assert!(!replica.names_device(&stranger.public()));
    for n in 0..=20 {
        let device = moot_state::sample::key(2, n).public();
        assert!(replica.names_device(&device), "device {n}");
    }
}
