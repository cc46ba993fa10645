//! Loads a hub from a data directory the way every command does and prints what it costs: wall
//! time, ops, the replica's per-op index in bytes, and the process's resident memory before and
//! after (Linux `/proc/self/status`).
//!
//! `cargo run --release -p moot-node --example load_figures -- --data DIR`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Instant;

use moot_node::Node;

/// A `/proc/self/status` field in kB (0 where there is none).
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut data: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => data = args.next().map(PathBuf::from),
            other => panic!("unknown argument {other:?}; usage: --data DIR"),
        }
    }
    let data = data.expect("--data DIR");
    let before = status_kb("VmRSS:");
    let node = Node::open(&data).unwrap();
    let hub = node.hub(None).unwrap();
    let start = Instant::now();
    let mut replica = node.replica(&hub).unwrap();
    let loaded = start.elapsed();
    let roll = replica.roll();
    let ops = replica.len();
    println!(
        "loaded {ops} ops ({} on the roll) in {loaded:.2?}; index {} bytes = {:.1} bytes/op; \
         RSS {} kB before, {} kB after, peak {} kB",
        roll.members.len(),
        replica.index_bytes(),
        replica.index_bytes() as f64 / ops.max(1) as f64,
        before,
        status_kb("VmRSS:"),
        status_kb("VmHWM:"),
    );
}
