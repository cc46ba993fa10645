//! Builds a store holding 100,000 ops (the sample history) and prints its size per op and the
//! per-op overhead beyond the body, then the time to open it and derive the roll.
//! `cargo run --release -p moot-node --example store_figures`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use moot_crypto::SignedOp;
use moot_node::{Node, STORE_FILE};

fn main() {
    for with_dependency in [true, false] {
        println!(
            "== member ops {} a dependency besides prev",
            if with_dependency { "with" } else { "without" }
        );
        measure(with_dependency);
    }
}

fn measure(with_dependency: bool) {
    // Without dependencies each member's ops follow only their own chain: 1,000 distinct
    // causal pasts, one roll each in the replica's cache.
    let members = 1_000;
    let (hub, ops) =
        moot_state::sample::history_with(members, 100_000 - 3 * members - 2, with_dependency);
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    node.store().unwrap(); // the store is opened (created) on first use
    let empty = std::fs::metadata(dir.path().join(STORE_FILE))
        .unwrap()
        .len();
    let decoded: Vec<SignedOp> = ops.iter().map(|b| SignedOp::decode(b).unwrap()).collect();
    let start = Instant::now();
    for chunk in decoded.chunks(1_000) {
        let refs: Vec<&SignedOp> = chunk.iter().collect();
        node.store().unwrap().put_ops(&hub, &refs).unwrap();
    }
    let write = start.elapsed();
    drop(node);
    let grown = std::fs::metadata(dir.path().join(STORE_FILE))
        .unwrap()
        .len()
        - empty;
    println!(
        "file growth before compaction: {:.0} bytes/op",
        grown as f64 / decoded.len() as f64
    );
    let mut store = moot_store::Store::open(&dir.path().join(STORE_FILE)).unwrap();
    store.compact().unwrap();
    drop(store);
    let size = std::fs::metadata(dir.path().join(STORE_FILE))
        .unwrap()
        .len()
        - empty;
    let bodies: usize = decoded.iter().map(|o| o.body().len()).sum();
    let envelopes: usize = decoded.iter().map(|o| o.bytes().len()).sum();
    let n = decoded.len() as f64;
    println!(
        "ops: {}; written in 100 transactions of 1,000 in {write:?}",
        decoded.len()
    );
    println!(
        "store growth after compaction: {size} bytes = {:.0} bytes/op; body {:.0} bytes/op; signed envelope {:.0} bytes/op",
        size as f64 / n,
        bodies as f64 / n,
        (envelopes - bodies) as f64 / n
    );
    println!(
        "overhead beyond the body: {:.0} bytes/op",
        (size as f64 - bodies as f64) / n
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let node = Node::open(dir.path()).unwrap();
        let roll = node.replica(&hub).unwrap().roll();
        times.push(start.elapsed());
        assert_eq!(roll.members.len(), members + 1);
    }
    times.sort();
    println!(
        "open + load 100,000 ops + derive the roll: min {:?}, median {:?}",
        times[0], times[2]
    );
}
