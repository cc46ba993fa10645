//! Writes a sample hub through the real store into a data directory, so anyone can measure
//! `moot` on a hub of any size: a founder, 1 member per 100 ops (each admitted, named and with
//! a self-certified device), and filler ops of a kind this version does not interpret (stand-ins
//! for ballots and comments) written by the members in turn. The data directory's own member
//! key is the founder's, stored without a passphrase.
//!
//! `cargo run --release -p moot-node --example sample_hub -- --data DIR --ops N`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Instant;

use moot_node::Node;

fn main() {
    let mut data: Option<PathBuf> = None;
    let mut ops: usize = 110_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data" => data = args.next().map(PathBuf::from),
            "--ops" => ops = args.next().and_then(|n| n.parse().ok()).expect("--ops N"),
            other => panic!("unknown argument {other:?}; usage: --data DIR --ops N"),
        }
    }
    let data = data.expect("--data DIR");
    // Each member brings three roll ops (admission, name, device); the founder two.
    let members = (ops / 100).max(1);
    let roll_ops = 2 + 3 * members;
    let filler = ops.saturating_sub(roll_ops);
    let start = Instant::now();
    let (hub, history) = moot_state::sample::history(members, filler);
    let built = start.elapsed();
    let node = Node::open(&data).unwrap();
    node.init_with_keys(
        "Founder",
        moot_state::sample::key(1, 0),
        moot_state::sample::key(2, 0),
    )
    .unwrap();
    let start = Instant::now();
    let stored = node.import_hub(&hub, "Sample hub", &history).unwrap();
    println!(
        "hub {hub}: {stored} ops ({members} members) in {} (built in {built:.2?}, stored in {:.2?})",
        data.display(),
        start.elapsed()
    );
}
