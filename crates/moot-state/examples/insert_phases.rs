//! Times the phases of inserting 100,000 ops: decode, batch signature checks, validation.
//! `cargo run --release -p moot-state --example insert_phases`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use moot_crypto::{SignedOp, authenticate_batch};
use moot_state::{Limits, Replica};

fn main() {
    // MOOT_NO_DEPS=1: member ops follow only their own chain (1,000 distinct causal pasts).
    let with_dependency = std::env::var_os("MOOT_NO_DEPS").is_none();
    let (hub, ops) = moot_state::sample::history_with(1_000, 100_000 - 2 - 3_000, with_dependency);
    let start = Instant::now();
    let decoded: Vec<SignedOp> = ops.iter().map(|b| SignedOp::decode(b).unwrap()).collect();
    let decode = start.elapsed();
    let start = Instant::now();
    let authentic: Vec<_> = authenticate_batch(&hub, decoded)
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let verify = start.elapsed();
    let start = Instant::now();
    let mut replica = Replica::new(hub, Limits::default());
    for op in authentic {
        replica.insert_authentic(op);
    }
    let apply = start.elapsed();
    let start = Instant::now();
    let roll = replica.roll();
    let derive = start.elapsed();
    println!(
        "ops {} members {}: decode {decode:?}, verify (batched) {verify:?}, validate+apply {apply:?}, roll {derive:?}",
        replica.len(),
        roll.members.len()
    );
    let start = Instant::now();
    let mut replica = Replica::new(hub, Limits::default());
    replica.insert_batch(&ops);
    let roll = replica.roll();
    println!(
        "insert_batch + roll, end to end: {:?} ({} members)",
        start.elapsed(),
        roll.members.len()
    );
}
