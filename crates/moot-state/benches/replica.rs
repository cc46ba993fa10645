//! Verify and apply signed ops, against the physical floor measured in the same run: checking
//! the same signatures in Ed25519 batches and nothing else. 100,000 ops of the sample history
//! (a genesis, 1,000 members each admitted, named and with a self-certified device, and member
//! ops citing one another), read from bytes, into a replica that keeps only its index.
//!
//! `cargo bench -p moot-state --bench replica` — the ratio of the two medians is the figure
//! (target: verify + apply <= 1.3x batch verification alone).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use moot_crypto::SignedOp;
use moot_state::{Limits, Replica, Retain};

fn bench(c: &mut Criterion) {
    let members = 1_000;
    let (hub, ops) = moot_state::sample::history(members, 100_000 - 2 - 3 * members);
    assert_eq!(ops.len(), 100_000);
    let mut group = c.benchmark_group("replica");
    group.sample_size(10);
    group.bench_function("batch_verify_100k_ops", |b| {
        b.iter_batched(
            || {
                ops.iter()
                    .map(|bytes| SignedOp::decode(bytes).unwrap())
                    .collect::<Vec<_>>()
            },
            |decoded| {
                let checked = moot_crypto::authenticate_batch(&hub, black_box(decoded));
                assert!(checked.iter().all(Result::is_ok));
                checked.len()
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("decode_verify_and_apply_100k_ops", |b| {
        b.iter_batched(
            || {
                Replica::new(
                    hub,
                    Limits {
                        retain: Retain::IndexOnly,
                        ..Limits::default()
                    },
                )
            },
            |mut replica| {
                let results = replica.insert_batch(black_box(&ops));
                assert_eq!(replica.len(), 100_000);
                (replica.roll(), results.len())
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
