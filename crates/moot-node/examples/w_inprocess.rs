//! Workload W (the automerge-repo reference's shape: 100 proposals of 1,000 typing edits,
//! 10,000 ballots, 1,000 offers) synced from a loaded node into a fresh one **in process**:
//! two sync engines over the two nodes' real redb stores, every op's signature checked and
//! validated and stored by the receiver, no network. A preview of the networked benchmark
//! (issue 11's `sync_workload`), which adds libp2p on loopback.
//!
//! `cargo run --release -p moot-node --example w_inprocess -- [--voters N] [--edits N]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use moot_node::Node;

fn main() {
    let (mut voters, mut edits) = (10_000usize, 1_000usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || args.next().and_then(|n| n.parse().ok()).expect("a number");
        match arg.as_str() {
            "--voters" => voters = number(),
            "--edits" => edits = number(),
            other => panic!("unknown argument {other:?}"),
        }
    }
    let start = Instant::now();
    let w = moot_state::sample::workload(voters, 100, edits, 1_000, 0x57_2d_76_31);
    let op_bytes: usize = w.ops.iter().map(Vec::len).sum();
    println!(
        "built W: {} ops, {op_bytes} op bytes in {:.2?}",
        w.ops.len(),
        start.elapsed()
    );
    let temp = tempfile::tempdir().unwrap();
    let loaded = Node::open(&temp.path().join("a")).unwrap();
    loaded.init("A", None).unwrap();
    loaded.import_hub(&w.hub, "W", &w.ops).unwrap();
    // The fresh node knows the hub from its genesis only (as after `hub join`).
    let genesis = temp.path().join("genesis.bundle");
    {
        let header = moot_bundle::Header {
            hub: w.hub.0,
            lanes: moot_bundle::Lanes::ALL,
        };
        let mut writer = moot_bundle::Writer::new(Vec::new(), &header).unwrap();
        writer.op(&w.ops[0]).unwrap();
        std::fs::write(&genesis, writer.finish().unwrap()).unwrap();
    }
    let fresh = Node::open(&temp.path().join("b")).unwrap();
    fresh.init("B", None).unwrap();
    fresh.import_bundle(&genesis, &mut |_, _| {}).unwrap();
    let start = Instant::now();
    let synced = fresh.sync_with(&loaded, &w.hub).unwrap();
    let converge = start.elapsed();
    assert_eq!(synced.here.new_ops as usize, w.ops.len() - 1);
    println!(
        "converged in {:.2?}: {} ops taken in (signatures, validation, redb); wire {} bytes = {:.4}x op bytes",
        converge,
        synced.here.new_ops,
        synced.wire_bytes,
        synced.wire_bytes as f64 / op_bytes as f64
    );
}
