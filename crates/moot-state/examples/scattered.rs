//! An insider's ops that each name many old roll ops scattered along a long chain of roll ops:
//! what each costs to validate (the frontier of its past is the maximal set of those it names).
//! `cargo run --release -p moot-state --example scattered -- MEMBERS OPS`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use moot_crypto::{Lane, OpId};
use moot_state::body::Checkpoint;
use moot_state::{Body, Limits, Replica};

fn main() {
    let mut args = std::env::args().skip(1);
    let members: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let ops: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(200);
    // A hub of `members` admissions and certifications, written one after another: a chain of
    // roll ops 2 × members long.
    let sample = moot_state::sample::poll_history(members);
    let mut replica = Replica::new(sample.hub, Limits::default());
    replica.insert_batch(&sample.setup);
    let roll: Vec<OpId> = replica
        .op_ids()
        .into_iter()
        .filter(|id| {
            replica
                .op(id)
                .is_some_and(|op| moot_state::body::kind::is_roll(op.kind()))
        })
        .collect();
    let insider = moot_state::sample::key(2, 1);
    let start = Instant::now();
    for i in 0..ops {
        // 31 roll ops spread over the whole chain (ids are random, so this is a spread).
        let refs: Vec<OpId> = (0..31)
            .map(|k| roll[(i * 7919 + k * roll.len() / 31) % roll.len()])
            .collect();
        replica
            .write_in(
                &insider,
                Lane::Members,
                &Body::Checkpoint(Checkpoint {}),
                &refs,
            )
            .unwrap();
    }
    let elapsed = start.elapsed();
    println!(
        "{ops} ops each naming 31 scattered roll ops of {}: {elapsed:.2?} ({:.2?} per op)",
        roll.len(),
        elapsed / ops as u32
    );
}
