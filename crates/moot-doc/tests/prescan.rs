//! `prescan` against automerge as the oracle (every change automerge makes passes with
//! automerge's own view of it), against hostile bytes (every single-byte mutation and
//! truncation of real changes, random bytes, random splices: always `Ok` or a typed error,
//! never a panic), and against hand-built attacks, each with its typed error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Rng, actor, change_body, delete_columns, edit_script, make_chunk, split_chunk, uleb};
use moot_doc::{Limits, PrescanError, prescan};
use proptest::prelude::*;

/// Checks `bytes` the way a node would: prescan, and if it passes, automerge's parser must
/// agree on the hash and op count (its work is then bounded by the op limit).
fn scan_and_judge(bytes: &[u8]) -> Result<(), PrescanError> {
    let info = prescan(bytes, &Limits::default())?;
    assert!(info.ops <= Limits::default().max_ops);
    if let Ok(change) = automerge::Change::try_from(bytes) {
        assert_eq!(change.hash().0, info.hash);
        assert_eq!(change.len() as u64, info.ops);
        assert_eq!(change.seq(), info.seq);
    }
    Ok(())
}

/// A few real changes of different shapes: the creator, small edits, a multi-op edit, a
/// change by a second actor with deps, and a change with a long insert.
fn samples() -> Vec<Vec<u8>> {
    let (_, changes) = edit_script(3, 40, 3);
    let mut out = vec![changes[0].clone(), changes[1].clone(), changes[20].clone()];
    let mut biggest = changes.clone();
    biggest.sort_by_key(|c| std::cmp::Reverse(c.len()));
    out.push(biggest[0].clone());
    out.push(moot_doc::creator_change(&actor(9), &"long text 🎉 ".repeat(30)).unwrap());
    out
}

#[test]
fn automerge_changes_pass_with_automerge_s_view() {
    for seed in 1..6 {
        let (_, changes) = edit_script(seed, 60, 4);
        for bytes in &changes {
            let info = prescan(bytes, &Limits::default()).unwrap();
            let change = automerge::Change::try_from(&bytes[..]).unwrap();
            assert_eq!(info.hash, change.hash().0);
            assert_eq!(info.actor, change.actor_id().to_bytes());
            assert_eq!(info.seq, change.seq());
            assert_eq!(info.start_op, change.start_op().get());
            assert_eq!(info.ops, change.len() as u64);
            assert_eq!(info.max_op, change.max_op());
            let deps: Vec<[u8; 32]> = change.deps().iter().map(|h| h.0).collect();
            assert_eq!(info.deps, deps);
        }
        // Only the creator writes to the root.
        let roots: Vec<bool> = changes
            .iter()
            .map(|c| prescan(c, &Limits::default()).unwrap().touches_root)
            .collect();
        assert!(roots[0]);
        assert!(roots[1..].iter().all(|r| !r));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random edit scripts: prescan agrees with automerge on every field it reports.
    #[test]
    fn prescan_agrees_with_automerge(seed in any::<u64>(), n in 1usize..40, actors in 1usize..5) {
        let (doc, changes) = edit_script(seed, n, actors);
        for bytes in &changes {
            let info = prescan(bytes, &Limits::default()).unwrap();
            let change = automerge::Change::try_from(&bytes[..]).unwrap();
            prop_assert_eq!(info.hash, change.hash().0);
            prop_assert_eq!(&info.actor, &change.actor_id().to_bytes().to_vec());
            prop_assert_eq!(info.seq, change.seq());
            prop_assert_eq!(info.start_op, change.start_op().get());
            prop_assert_eq!(info.ops, change.len() as u64);
            prop_assert_eq!(info.max_op, change.max_op());
            let deps: Vec<[u8; 32]> = change.deps().iter().map(|h| h.0).collect();
            prop_assert_eq!(&info.deps, &deps);
        }
        prop_assert_eq!(changes.len(), doc.get_changes(&[]).len());
    }

    /// Random bytes, with or without a valid header and checksum around them.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), ty in 0u8..4) {
        let _ = scan_and_judge(&bytes);
        let _ = scan_and_judge(&make_chunk(ty, &bytes));
    }
}

#[test]
fn every_single_byte_mutation_and_truncation() {
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for sample in samples() {
        for len in 0..sample.len() {
            assert!(prescan(&sample[..len], &Limits::default()).is_err());
        }
        for i in 0..sample.len() {
            for v in [
                0x00,
                0x01,
                0x7f,
                0x80,
                0xff,
                sample[i] ^ 0x01,
                sample[i] ^ 0x40,
            ] {
                let mut m = sample.clone();
                m[i] = v;
                let r = scan_and_judge(&m);
                // Mutating the body past the checksum: re-checksummed, so the parser proper
                // sees the damage.
                let (ty, body) = split_chunk(&sample);
                let hdr = sample.len() - body.len();
                let r2 = if i >= hdr {
                    let mut b = body.clone();
                    b[i - hdr] = v;
                    scan_and_judge(&make_chunk(ty, &b))
                } else {
                    r.clone()
                };
                for r in [r, r2] {
                    let k = match r {
                        Ok(()) => "ok".to_string(),
                        Err(e) => format!("{e:?}")
                            .split([' ', '(', '{'])
                            .next()
                            .unwrap()
                            .to_string(),
                    };
                    *outcomes.entry(k).or_default() += 1;
                }
            }
        }
    }
    // The mutations reach more than the checksum.
    assert!(outcomes.len() > 4, "{outcomes:?}");
}

#[test]
fn random_splices_never_panic() {
    let samples = samples();
    let mut rng = Rng(0x5eed);
    for _ in 0..5_000 {
        let a = &samples[rng.below(samples.len() as u64) as usize];
        let b = &samples[rng.below(samples.len() as u64) as usize];
        let (ty, body_a) = split_chunk(a);
        let (_, body_b) = split_chunk(b);
        let cut_a = rng.below(body_a.len() as u64 + 1) as usize;
        let cut_b = rng.below(body_b.len() as u64 + 1) as usize;
        let mut body = body_a[..cut_a].to_vec();
        body.extend_from_slice(&body_b[cut_b..]);
        let _ = scan_and_judge(&make_chunk(ty, &body));
        let mut raw = a[..rng.below(a.len() as u64) as usize].to_vec();
        raw.extend_from_slice(&b[rng.below(b.len() as u64) as usize..]);
        let _ = scan_and_judge(&raw);
    }
}

#[test]
fn a_compressed_change_chunk_is_refused() {
    let bytes = moot_doc::creator_change(&actor(1), &"compress me ".repeat(100)).unwrap();
    let mut change = automerge::Change::try_from(&bytes[..]).unwrap();
    let compressed = change.bytes().to_vec();
    assert_eq!(compressed[8], 2, "automerge compressed it");
    assert!(compressed.len() < bytes.len());
    assert_eq!(
        prescan(&compressed, &Limits::default()),
        Err(PrescanError::Compressed)
    );
}

#[test]
fn a_deflated_column_is_refused() {
    let mut cols = delete_columns(3);
    cols[5].0 |= 0b1000;
    let body = change_body(&[], &actor(1), 2, 10, &cols);
    assert_eq!(
        prescan(&make_chunk(1, &body), &Limits::default()),
        Err(PrescanError::Compressed)
    );
}

#[test]
fn one_hundred_thousand_deletes_in_a_small_change_are_refused() {
    let body = change_body(&[[7; 32]], &actor(1), 2, 10, &delete_columns(100_000));
    let chunk = make_chunk(1, &body);
    assert!(chunk.len() < 160, "{} bytes", chunk.len());
    // automerge would walk all of them...
    let change = automerge::Change::try_from(&chunk[..]).unwrap();
    assert_eq!(change.len(), 100_000);
    // ...prescan stops at the limit.
    assert_eq!(
        prescan(&chunk, &Limits::default()),
        Err(PrescanError::TooManyOps { limit: 65_536 })
    );
    // The same shape under the limit passes, with the right count.
    let body = change_body(&[[7; 32]], &actor(1), 2, 10, &delete_columns(1_000));
    let info = prescan(&make_chunk(1, &body), &Limits::default()).unwrap();
    assert_eq!(
        (info.ops, info.max_op, info.touches_root),
        (1_000, 1_009, false)
    );
}

#[test]
fn a_huge_pred_group_is_refused() {
    let mut cols = delete_columns(3);
    cols[7].1 = common::run_u(3, 1 << 40);
    let body = change_body(&[], &actor(1), 2, 10, &cols);
    assert_eq!(
        prescan(&make_chunk(1, &body), &Limits::default()),
        Err(PrescanError::TooManyOps { limit: 65_536 })
    );
}

#[test]
fn extra_bytes_after_the_chunk_are_refused() {
    let mut bytes = moot_doc::creator_change(&actor(1), "x").unwrap();
    bytes.push(0);
    assert_eq!(
        prescan(&bytes, &Limits::default()),
        Err(PrescanError::ExtraBytes)
    );
    // A second chunk after the first, too.
    let mut two = moot_doc::creator_change(&actor(1), "x").unwrap();
    two.extend(moot_doc::creator_change(&actor(2), "y").unwrap());
    assert_eq!(
        prescan(&two, &Limits::default()),
        Err(PrescanError::ExtraBytes)
    );
}

#[test]
fn extra_bytes_inside_the_chunk_are_refused() {
    let bytes = moot_doc::creator_change(&actor(1), "x").unwrap();
    let (ty, mut body) = split_chunk(&bytes);
    body.extend_from_slice(b"hidden");
    let chunk = make_chunk(ty, &body);
    // automerge keeps them as the change's "extra bytes"...
    let change = automerge::Change::try_from(&chunk[..]).unwrap();
    assert_eq!(change.extra_bytes(), b"hidden");
    // ...we refuse them.
    assert_eq!(
        prescan(&chunk, &Limits::default()),
        Err(PrescanError::ExtraBytes)
    );
}

#[test]
fn a_document_chunk_is_not_a_change() {
    let mut doc =
        moot_doc::Document::from_creator(&moot_doc::creator_change(&actor(1), "x").unwrap())
            .unwrap();
    doc.edit(&actor(2), 1, 0, "y").unwrap();
    assert_eq!(
        prescan(&doc.save(), &Limits::default()),
        Err(PrescanError::NotAChange { chunk_type: 0 })
    );
}

#[test]
fn header_damage_has_its_own_errors() {
    let bytes = moot_doc::creator_change(&actor(1), "x").unwrap();
    let mut bad = bytes.clone();
    bad[0] ^= 1;
    assert_eq!(
        prescan(&bad, &Limits::default()),
        Err(PrescanError::BadMagic)
    );
    let mut bad = bytes.clone();
    bad[5] ^= 1;
    assert_eq!(
        prescan(&bad, &Limits::default()),
        Err(PrescanError::BadChecksum)
    );
    assert_eq!(
        prescan(&bytes[..bytes.len() - 1], &Limits::default()),
        Err(PrescanError::Truncated)
    );
    assert_eq!(
        prescan(&bytes[..3], &Limits::default()),
        Err(PrescanError::Truncated)
    );
    let small = Limits {
        max_change_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        prescan(&bytes, &small),
        Err(PrescanError::TooLarge { limit: 10 })
    );
}

#[test]
fn counts_past_their_limits_are_refused() {
    let deps: Vec<[u8; 32]> = (0..33u8).map(|i| [i; 32]).collect();
    let body = change_body(&deps, &actor(1), 2, 10, &delete_columns(2));
    assert_eq!(
        prescan(&make_chunk(1, &body), &Limits::default()),
        Err(PrescanError::TooManyDeps { limit: 32 })
    );
    let body = change_body(&[[2; 32], [1; 32]], &actor(1), 2, 10, &delete_columns(2));
    assert!(matches!(
        prescan(&make_chunk(1, &body), &Limits::default()),
        Err(PrescanError::Malformed(_))
    ));
    let body = change_body(&[], &[1; 65], 2, 10, &delete_columns(2));
    assert_eq!(
        prescan(&make_chunk(1, &body), &Limits::default()),
        Err(PrescanError::TooManyActors { limit: 64 })
    );
    let cols: Vec<(u32, Vec<u8>)> = (0..65u32)
        .map(|i| ((i + 20) << 4 | 2, Vec::new()))
        .collect();
    let body = change_body(&[], &actor(1), 2, 10, &cols);
    assert_eq!(
        prescan(&make_chunk(1, &body), &Limits::default()),
        Err(PrescanError::TooManyColumns { limit: 64 })
    );
    // Counters past u32::MAX.
    let body = change_body(&[], &actor(1), 2, u64::from(u32::MAX), &delete_columns(2));
    assert_eq!(
        prescan(&make_chunk(1, &body), &Limits::default()),
        Err(PrescanError::CounterOverflow)
    );
}

#[test]
fn columns_that_disagree_are_malformed() {
    let mut cols = delete_columns(5);
    cols[1].1 = common::run_u(4, 1);
    let body = change_body(&[], &actor(1), 2, 10, &cols);
    assert!(matches!(
        prescan(&make_chunk(1, &body), &Limits::default()),
        Err(PrescanError::Malformed(_))
    ));
    // Out of order columns.
    let mut cols = delete_columns(5);
    cols.swap(0, 1);
    let body = change_body(&[], &actor(1), 2, 10, &cols);
    assert!(matches!(
        prescan(&make_chunk(1, &body), &Limits::default()),
        Err(PrescanError::Malformed(_))
    ));
    // A literal run claiming more values than the column holds.
    let mut cols = delete_columns(5);
    let mut lit = Vec::new();
    common::sleb(-5, &mut lit);
    uleb(1, &mut lit);
    cols[1].1 = lit;
    let body = change_body(&[], &actor(1), 2, 10, &cols);
    assert!(matches!(
        prescan(&make_chunk(1, &body), &Limits::default()),
        Err(PrescanError::Malformed(_))
    ));
}
