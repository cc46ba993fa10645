//! Importing a bundle against validating the same ops from a local file, in the same run: a
//! hub whose founder admits N members (each certifying a device), a STAR poll opened in the
//! Activism Society, and one ballot per member — about 3N ops — written to a bundle file.
//! Baseline: the file read and every op checked (signature, rules) in a fresh replica.
//! Measured: `Node::import_bundle` on a fresh node — the same, plus the digest, storing
//! everything in one transaction, and the views.
//!
//! `cargo run --release -p moot-node --example bundle_figures -- --voters 33334 --runs 3`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use moot_node::Node;
use moot_state::{Limits, Replica, Retain};

fn main() {
    let (mut voters, mut runs) = (33_334usize, 3usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || args.next().and_then(|n| n.parse().ok()).expect("a number");
        match arg.as_str() {
            "--voters" => voters = number(),
            "--runs" => runs = number(),
            other => panic!("unknown argument {other:?}"),
        }
    }
    let sample = moot_state::sample::poll_history(voters);
    let ops: Vec<&Vec<u8>> = sample.setup.iter().chain(&sample.ballots).collect();
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("hub.bundle");
    let header = moot_bundle::Header {
        hub: sample.hub.0,
        lanes: moot_bundle::Lanes::ALL,
    };
    let mut writer = moot_bundle::Writer::new(
        std::io::BufWriter::new(std::fs::File::create(&file).unwrap()),
        &header,
    )
    .unwrap();
    let op_bytes: usize = ops.iter().map(|o| o.len()).sum();
    for op in &ops {
        writer.op(op).unwrap();
    }
    writer.finish().unwrap();
    let file_bytes = std::fs::metadata(&file).unwrap().len();
    println!(
        "{} ops, {op_bytes} op bytes, bundle {file_bytes} bytes ({:.3}x)",
        ops.len(),
        file_bytes as f64 / op_bytes as f64
    );
    let mut ratios = Vec::new();
    for run in 0..runs {
        // Baseline: read the file, check every op in a fresh replica.
        let start = Instant::now();
        let bytes = std::fs::read(&file).unwrap();
        let (_, read) = moot_bundle::read_all(&bytes[..], usize::MAX).unwrap();
        let mut replica = Replica::new(
            sample.hub,
            Limits {
                retain: Retain::IndexOnly,
                ..Limits::default()
            },
        );
        for chunk in read.chunks(4096) {
            for insertion in replica.insert_batch(chunk) {
                assert!(insertion.outcome.kept().is_some());
            }
        }
        let validate = start.elapsed();
        drop(replica);
        let dir = temp.path().join(format!("node{run}"));
        let node = Node::open(&dir).unwrap();
        node.init("Reader", None).unwrap();
        let start = Instant::now();
        let imported = node.import_bundle(&file, &mut |_, _| {}).unwrap();
        let import = start.elapsed();
        assert_eq!(imported.new_ops as usize, ops.len());
        let ratio = import.as_secs_f64() / validate.as_secs_f64();
        println!(
            "run {}: validate from the file {validate:.2?}; import {import:.2?} ({ratio:.2}x)",
            run + 1
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!("median: {:.2}x", ratios[ratios.len() / 2]);
}
