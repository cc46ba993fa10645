//! Where the time of taking in ballots goes, without the store: the sample poll's setup is
//! inserted first, then its ballots are timed against batch-verifying their signatures alone.
//! `cargo run --release -p moot-state --example ballots -- VOTERS`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use moot_crypto::SignedOp;
use moot_state::{Limits, Replica, Retain};

fn main() {
    let voters: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let sample = moot_state::sample::poll_history(voters);
    let mut replica = Replica::new(
        sample.hub,
        Limits {
            retain: Retain::IndexOnly,
            ..Limits::default()
        },
    );
    let start = Instant::now();
    replica.insert_batch(&sample.setup);
    println!(
        "setup: {} ops in {:.2?}",
        sample.setup.len(),
        start.elapsed()
    );
    let decoded: Vec<SignedOp> = sample
        .ballots
        .iter()
        .map(|b| SignedOp::decode(b).unwrap())
        .collect();
    let start = Instant::now();
    let checked = moot_crypto::authenticate_batch(&sample.hub, decoded);
    let verify = start.elapsed();
    assert!(checked.iter().all(Result::is_ok));
    let mut copy = Replica::new(
        sample.hub,
        Limits {
            retain: Retain::IndexOnly,
            ..Limits::default()
        },
    );
    copy.insert_batch(&sample.setup);
    let start = Instant::now();
    for op in checked {
        copy.insert_authentic(op.unwrap());
    }
    println!(
        "validation alone (already verified): {:.2?}",
        start.elapsed()
    );
    let start = Instant::now();
    let inserted = replica.insert_batch(&sample.ballots);
    let insert = start.elapsed();
    assert!(inserted.iter().all(|i| i.outcome.kept().is_some()));
    let start = Instant::now();
    let count = replica.count_poll(&sample.poll).unwrap().unwrap();
    let counting = start.elapsed();
    assert_eq!(count.counted.len(), voters);
    println!(
        "{voters} ballots: batch verify {verify:.2?}; verify + validate {insert:.2?} ({:.2}x); count {counting:.2?}",
        insert.as_secs_f64() / verify.as_secs_f64()
    );
}
