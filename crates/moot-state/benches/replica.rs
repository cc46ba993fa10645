//! Verify and apply signed ops: 100,000 ops (1 genesis, 1,000 admissions and device
//! certifications, 97,999 member ops) from bytes, signatures checked in batches.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use moot_state::{Limits, Replica};

fn bench(c: &mut Criterion) {
    let (hub, ops) = moot_state::sample::history(1_000, 97_999);
    assert_eq!(ops.len(), 100_000);
    let mut group = c.benchmark_group("replica");
    group.sample_size(10);
    group.bench_function("verify_and_apply_100k_ops", |b| {
        b.iter_batched(
            || Replica::new(hub, Limits::default()),
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
