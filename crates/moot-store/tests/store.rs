//! The store's tables: several hubs, lookups by id and by chain, forks kept, duplicates
//! skipped, and the keystore, view and config tables.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_crypto::{Draft, HubId, OpId, SecretKey, SignedOp};
use moot_store::{Store, StoreError};

fn op(hub: &HubId, key: &SecretKey, seq: u64, prev: Option<OpId>, body: &[u8]) -> SignedOp {
    op_in(hub, key, moot_crypto::Lane::Public, seq, prev, body)
}

#[test]
fn hubs_chains_ids_forks_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moot.redb");
    let (a, b) = (HubId([1; 32]), HubId([2; 32]));
    let alice = SecretKey::from_seed([1; 32]);
    let bob = SecretKey::from_seed([2; 32]);
    let a1 = op(&a, &alice, 1, None, b"a1");
    let a2 = op(&a, &alice, 2, Some(a1.id()), b"a2");
    let a2_fork = op(&a, &alice, 2, Some(a1.id()), b"a2, the other version");
    let b1 = op(&b, &bob, 1, None, b"b1");
    {
        let store = Store::open(&path).unwrap();
        store.put_ops(&a, &[&a1, &a2]).unwrap();
        store.put_ops(&b, &[&b1]).unwrap();
        store.put_ops(&a, &[&a2, &a2_fork, &a1]).unwrap(); // duplicates skipped, fork kept
        store.put_hub(&a, b"hub a").unwrap();
    }
    // Everything survives reopening.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.op_count(&a).unwrap(), 3);
    assert_eq!(store.op_count(&b).unwrap(), 1);
    assert_eq!(store.total_ops().unwrap(), 4);
    let hubs = store.hubs().unwrap();
    assert_eq!(hubs.len(), 2);
    assert_eq!(hubs.iter().find(|(h, _)| *h == a).unwrap().1, b"hub a");
    for op in [&a1, &a2, &a2_fork] {
        assert_eq!(store.op(&a, &op.id()).unwrap().as_deref(), Some(op.bytes()));
        assert_eq!(store.op(&b, &op.id()).unwrap(), None, "hubs are separate");
    }
    assert_eq!(store.op(&b, &b1.id()).unwrap().as_deref(), Some(b1.bytes()));
    let chain = store
        .chain(&a, &alice.public(), moot_crypto::Lane::Public)
        .unwrap();
    assert_eq!(chain.len(), 3);
    assert_eq!(chain[0], (1, a1.id()));
    let mut forks: Vec<OpId> = chain[1..]
        .iter()
        .map(|(s, id)| {
            assert_eq!(*s, 2);
            *id
        })
        .collect();
    forks.sort();
    let mut expected = vec![a2.id(), a2_fork.id()];
    expected.sort();
    assert_eq!(forks, expected);
    assert!(
        store
            .chain(&b, &alice.public(), moot_crypto::Lane::Public)
            .unwrap()
            .is_empty()
    );
    // Loading returns the exact ops in acceptance order.
    let loaded: Vec<OpId> = store.load_ops(&a).unwrap().iter().map(|o| o.id()).collect();
    assert_eq!(loaded, vec![a1.id(), a2.id(), a2_fork.id()]);
    assert_eq!(store.ops(&a).unwrap()[2], a2_fork.bytes());
}

/// The id index keeps new entries in a small recent part and moves them into its main part in
/// bulk (at 8,192 ops and then at every quarter more); duplicates are found through the chain
/// index. Across those moves, every op is found by id, a duplicate of an op whose id entry is
/// in either part (or repeated in the same batch) is skipped, and a fork of such an op is kept
/// and marked.
#[test]
fn ids_duplicates_and_forks_across_the_id_index_moves() {
    use moot_crypto::Lane;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moot.redb");
    let hub = HubId([7; 32]);
    let keys: Vec<SecretKey> = (0..3u8)
        .map(|i| SecretKey::from_seed([40 + i; 32]))
        .collect();
    // 3 chains of 7,000: 21,000 ops in batches of 700: the recent part moves at 8,400 ops and
    // at 16,800, and holds the last 4,200.
    let mut chains: Vec<Vec<SignedOp>> = vec![Vec::new(); keys.len()];
    for seq in 1..=7_000u64 {
        for (key, chain) in keys.iter().zip(chains.iter_mut()) {
            let prev = chain.last().map(SignedOp::id);
            chain.push(op(&hub, key, seq, prev, &seq.to_le_bytes()));
        }
    }
    let all: Vec<&SignedOp> = (0..7_000)
        .flat_map(|i| chains.iter().map(move |c| &c[i]))
        .collect();
    let store = Store::open(&path).unwrap();
    for batch in all.chunks(700) {
        store.put_ops(&hub, batch).unwrap();
    }
    assert_eq!(store.op_count(&hub).unwrap(), 21_000);
    // Every op is found by id, wherever its entry is now.
    for op in all.iter().step_by(97).chain(all.last()) {
        assert_eq!(
            store.op(&hub, &op.id()).unwrap().as_deref(),
            Some(op.bytes())
        );
    }
    // One batch: an early op (main part), a late one (recent part), the same new op twice, and
    // a fork of an early op and of a late one.
    let early = all[5];
    let late = all[20_990];
    let fresh = op(&hub, &keys[0], 7_001, Some(chains[0][6_999].id()), b"new");
    let fork_early = op(&hub, &keys[1], 2, Some(chains[1][0].id()), b"other");
    let fork_late = op(&hub, &keys[2], 6_999, Some(chains[2][6_997].id()), b"other");
    store
        .put_ops(
            &hub,
            &[early, &fresh, late, &fork_early, &fresh, &fork_late, early],
        )
        .unwrap();
    assert_eq!(
        store.op_count(&hub).unwrap(),
        21_003,
        "duplicates are skipped"
    );
    drop(store);
    let store = Store::open(&path).unwrap();
    for op in [early, late, &fresh, &fork_early, &fork_late] {
        assert_eq!(
            store.op(&hub, &op.id()).unwrap().as_deref(),
            Some(op.bytes())
        );
    }
    let heads = store.heads(&hub).unwrap();
    let of = |key: &SecretKey| {
        let mut h: Vec<(u64, OpId)> = heads
            .iter()
            .filter(|h| h.device == key.public() && h.lane == Lane::Public)
            .map(|h| (h.seq, h.id))
            .collect();
        h.sort();
        h
    };
    assert_eq!(of(&keys[0]), vec![(7_001, fresh.id())]);
    // A forked chain's heads: every op no other op of it continues (the fork has no successor).
    let mut expected = vec![(2, fork_early.id()), (7_000, chains[1][6_999].id())];
    expected.sort();
    assert_eq!(of(&keys[1]), expected);
    let mut expected = vec![(6_999, fork_late.id()), (7_000, chains[2][6_999].id())];
    expected.sort();
    assert_eq!(of(&keys[2]), expected);
    // The same batches again add nothing.
    for batch in all.chunks(1_300) {
        store.put_ops(&hub, batch).unwrap();
    }
    assert_eq!(store.op_count(&hub).unwrap(), 21_003);
}

#[test]
fn views_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("moot.redb")).unwrap();
    let hub = HubId([3; 32]);
    store.put_view(&hub, "roll", b"view bytes").unwrap();
    store.put_config("default_hub", &hub.0).unwrap();
    assert_eq!(
        store.view(&hub, "roll").unwrap().as_deref(),
        Some(&b"view bytes"[..])
    );
    assert_eq!(store.view(&hub, "other").unwrap(), None);
    assert_eq!(
        store.config("default_hub").unwrap().as_deref(),
        Some(&hub.0[..])
    );
    assert_eq!(store.config("missing").unwrap(), None);
}

#[test]
fn a_file_that_is_not_a_store_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moot.redb");
    std::fs::write(&path, b"definitely not a redb file, just some bytes").unwrap();
    let error = Store::open(&path).err().unwrap();
    assert!(matches!(error, StoreError::Damaged { .. }), "{error}");
    assert!(error.to_string().contains("moot.redb"), "{error}");
}

#[test]
fn an_empty_or_truncated_file_is_damage_not_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moot.redb");
    let hub = HubId([3; 32]);
    {
        let store = Store::open(&path).unwrap();
        store.put_config("default_hub", &hub.0).unwrap();
    }
    let whole = std::fs::read(&path).unwrap();
    for len in [0, 1, 100, whole.len() / 2] {
        std::fs::write(&path, &whole[..len]).unwrap();
        let error = Store::open(&path).err().unwrap();
        assert!(
            matches!(error, StoreError::Damaged { .. }),
            "{len}: {error}"
        );
        // Left as it was: not replaced by a fresh store.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len as u64);
    }
}

#[cfg(unix)]
#[test]
fn a_new_store_is_readable_only_by_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moot.redb");
    Store::open(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

fn op_in(
    hub: &HubId,
    key: &SecretKey,
    lane: moot_crypto::Lane,
    seq: u64,
    prev: Option<OpId>,
    body: &[u8],
) -> SignedOp {
    Draft {
        lane,
        seq,
        prev,
        deps: vec![],
        kind: 5,
        body: body.to_vec(),
    }
    .sign(hub, key)
    .unwrap()
    .into_inner()
}

#[test]
fn reads_for_sync_heads_chain_ranges_batches_and_verdicts() {
    use moot_crypto::Lane;
    use moot_store::Head;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("moot.redb")).unwrap();
    let hub = HubId([4; 32]);
    let alice = SecretKey::from_seed([1; 32]);
    let bob = SecretKey::from_seed([2; 32]);
    // Alice: a public chain of 5, a members chain of 2 that forks at seq 2 and goes on one
    // branch to seq 3. Bob: one public op.
    let mut public = Vec::new();
    let mut prev = None;
    for seq in 1..=5 {
        let op = op_in(&hub, &alice, Lane::Public, seq, prev, &[seq as u8]);
        prev = Some(op.id());
        public.push(op);
    }
    let m1 = op_in(&hub, &alice, Lane::Members, 1, None, b"m1");
    let m2a = op_in(&hub, &alice, Lane::Members, 2, Some(m1.id()), b"m2a");
    let m2b = op_in(&hub, &alice, Lane::Members, 2, Some(m1.id()), b"m2b");
    let m3a = op_in(&hub, &alice, Lane::Members, 3, Some(m2a.id()), b"m3a");
    let b1 = op_in(&hub, &bob, Lane::Public, 1, None, b"b1");
    let mut all: Vec<(&SignedOp, u8)> = public.iter().map(|o| (o, 0)).collect();
    all.extend([(&m1, 0), (&m2a, 0), (&m2b, 1), (&m3a, 2), (&b1, 0)]);
    store.put_kept(&hub, &all).unwrap();

    // Heads: every tip, the forked branch that stopped included.
    let mut expected = vec![
        Head {
            device: alice.public(),
            lane: Lane::Public,
            seq: 5,
            id: public[4].id(),
        },
        Head {
            device: alice.public(),
            lane: Lane::Members,
            seq: 2,
            id: m2b.id(),
        },
        Head {
            device: alice.public(),
            lane: Lane::Members,
            seq: 3,
            id: m3a.id(),
        },
        Head {
            device: bob.public(),
            lane: Lane::Public,
            seq: 1,
            id: b1.id(),
        },
    ];
    expected.sort();
    let mut heads = store.heads(&hub).unwrap();
    heads.sort();
    assert_eq!(heads, expected);

    // A chain range, bounded.
    let range = store
        .chain_range(&hub, &alice.public(), Lane::Public, 2..=4, 10)
        .unwrap();
    let seqs: Vec<u64> = range.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![2, 3, 4]);
    assert_eq!(range[0].1, public[1].bytes());
    assert_eq!(
        store
            .chain_range(&hub, &alice.public(), Lane::Public, 1..=5, 2)
            .unwrap()
            .len(),
        2
    );
    let members = store
        .chain_range(&hub, &alice.public(), Lane::Members, 2..=2, 10)
        .unwrap();
    assert_eq!(members.len(), 2, "both sides of the fork");

    // The whole hub as a stream of bounded batches, in acceptance order.
    let mut streamed = Vec::new();
    let mut position = 0;
    loop {
        let batch = store.ops_from(&hub, position, 3).unwrap();
        assert!(batch.len() <= 3);
        let Some((last, _)) = batch.last() else { break };
        position = last + 1;
        streamed.extend(batch.into_iter().map(|(_, bytes)| bytes));
    }
    let written: Vec<Vec<u8>> = all.iter().map(|(o, _)| o.bytes().to_vec()).collect();
    assert_eq!(streamed, written);

    // Verdicts are stored with the ops, and can be changed (after an upgrade).
    let verdicts: Vec<u8> = store
        .load_from(&hub, 0, 100)
        .unwrap()
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(verdicts, vec![0, 0, 0, 0, 0, 0, 0, 1, 2, 0]);
    store
        .set_verdicts(&hub, &[(m2b.id(), 0), (m3a.id(), 1)])
        .unwrap();
    let verdicts: Vec<u8> = store
        .load_from(&hub, 0, 100)
        .unwrap()
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(verdicts, vec![0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    assert_eq!(
        store.op(&hub, &m3a.id()).unwrap().as_deref(),
        Some(m3a.bytes())
    );
}

/// A store at `path` holding one device's chain of `count` ops with 200-byte bodies.
fn write_chain(path: &std::path::Path, hub: &HubId, count: u64) {
    let key = SecretKey::from_seed([5; 32]);
    let store = Store::open(path).unwrap();
    let mut prev = None;
    let mut ops = Vec::new();
    for seq in 1..=count {
        let o = op(hub, &key, seq, prev, &[7u8; 200]);
        prev = Some(o.id());
        ops.push(o);
    }
    let refs: Vec<&SignedOp> = ops.iter().collect();
    store.put_ops(hub, &refs).unwrap();
}

#[test]
fn a_clean_close_is_recorded_and_any_later_change_to_the_file_is_checked_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moot.redb");
    let hub = HubId([5; 32]);
    write_chain(&path, &hub, 400);
    moot_store::mark_closed(&path);
    let stamp = dir.path().join("moot.redb.closed");
    assert!(stamp.exists());
    {
        // Open: the record is removed while the store is in use (a crash now means a full
        // check next time).
        let store = Store::open(&path).unwrap();
        assert!(!stamp.exists());
        assert_eq!(store.op_count(&hub).unwrap(), 400);
    }
    moot_store::mark_closed(&path);
    // Flipped bytes after a clean close change the file's times: the full check runs and
    // reports the damage instead of trusting the record.
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for i in 0..64 {
        bytes[len / 4 + i * 997 % (len / 2)] ^= 0x55;
    }
    std::fs::write(&path, &bytes).unwrap();
    match Store::open(&path) {
        Err(moot_store::StoreError::Damaged { .. }) => {}
        Err(other) => panic!("expected damage, got {other}"),
        Ok(_) => panic!("a damaged file must not open after a clean-close record"),
    }
    // Moved aside as the error says, the damaged file leaves room for a new, empty store: the
    // stale stamp does not make it look deleted.
    std::fs::rename(&path, dir.path().join("moot.redb.damaged")).unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.op_count(&hub).unwrap(), 0);
}

#[test]
fn a_store_deleted_after_a_clean_close_is_reported_missing_not_recreated_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moot.redb");
    let hub = HubId([5; 32]);
    write_chain(&path, &hub, 3);
    moot_store::mark_closed(&path);
    std::fs::remove_file(&path).unwrap();
    match Store::open(&path) {
        Err(StoreError::Missing {
            path: missing,
            stamp,
        }) => {
            assert_eq!(missing, path);
            assert_eq!(stamp, dir.path().join("moot.redb.closed"));
        }
        Err(other) => panic!("expected a missing store, got {other}"),
        Ok(_) => panic!("a deleted store must not come back empty"),
    }
    assert!(!path.exists(), "nothing is created");
    // Deleting the stamp, as the message says, starts again with an empty store.
    std::fs::remove_file(dir.path().join("moot.redb.closed")).unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.op_count(&hub).unwrap(), 0);
}

#[test]
fn a_store_reached_through_a_symlink_is_still_checked_after_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("elsewhere.redb");
    let path = dir.path().join("moot.redb");
    let hub = HubId([5; 32]);
    write_chain(&real, &hub, 400);
    std::os::unix::fs::symlink(&real, &path).unwrap();
    drop(Store::open(&path).unwrap());
    moot_store::mark_closed(&path);
    let mut bytes = std::fs::read(&real).unwrap();
    let len = bytes.len();
    for i in 0..64 {
        bytes[len / 4 + i * 997 % (len / 2)] ^= 0x55;
    }
    std::fs::write(&real, &bytes).unwrap();
    match Store::open(&path) {
        Err(moot_store::StoreError::Damaged { .. }) => {}
        Err(other) => panic!("expected damage, got {other}"),
        Ok(_) => panic!("a damaged file opened through the symlink"),
    }
}
