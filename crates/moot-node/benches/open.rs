//! Open a store holding 100,000 ops and derive the roll (the node's start-up path).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use moot_crypto::SignedOp;
use moot_node::Node;

fn bench(c: &mut Criterion) {
    let (hub, ops) = moot_state::sample::history(1_000, 97_999);
    let dir = tempfile::tempdir().unwrap();
    {
        let node = Node::open(dir.path()).unwrap();
        let decoded: Vec<SignedOp> = ops.iter().map(|b| SignedOp::decode(b).unwrap()).collect();
        for chunk in decoded.chunks(1_000) {
            let refs: Vec<&SignedOp> = chunk.iter().collect();
            node.store().unwrap().put_ops(&hub, &refs).unwrap();
        }
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
