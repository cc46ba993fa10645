//! Open a store holding 100,000 ops and derive the roll (the node's start-up path).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use moot_node::Node;

fn bench(c: &mut Criterion) {
    let (hub, ops) = moot_state::sample::history(1_000, 100_000 - 2 - 3_000);
    let dir = tempfile::tempdir().unwrap();
    {
        let node = Node::open(dir.path()).unwrap();
        node.import_hub(&hub, "Sample hub", &ops).unwrap();
    }
    let mut group = c.benchmark_group("node");
    group.sample_size(10);
    group.bench_function("open_store_100k_ops_and_derive_roll", |b| {
        b.iter(|| {
            let node = Node::open(dir.path()).unwrap();
            let roll = node.replica(&hub).unwrap().roll();
            assert_eq!(roll.members.len(), 1_001);
            roll
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
