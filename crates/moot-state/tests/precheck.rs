//! The check pool: bounded in batches held, and its chunks what `check_chunk` makes of the
//! same ops. (Its own process: the bound is process-wide.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use moot_state::precheck::{MAX_PRECHECKS, MIN_PRECHECK_OPS, Precheck};
use moot_state::replica::check_chunk;
use moot_state::{Limits, Replica, sample};

#[test]
fn the_pool_holds_a_bounded_number_of_batches_and_checks_what_check_chunk_checks() {
    let (hub, ops) = sample::history(12, 1_400);
    let ops: Arc<[Vec<u8>]> = Arc::from(ops);

    // Up to the bound, then no more until one is let go of.
    let held: Vec<Precheck<Vec<u8>>> = (0..MAX_PRECHECKS)
        .map(|_| Precheck::start(hub, Arc::clone(&ops)).expect("room in the pool"))
        .collect();
    assert!(Precheck::start(hub, Arc::clone(&ops)).is_none());

    // A batch's chunks come in order, each as `check_chunk` makes it: inserting them gives the
    // replica that inserting the bytes gives.
    let mut from_pool = Replica::new(hub, Limits::default());
    let mut outcomes_pool = Vec::new();
    let mut chunks = held.into_iter();
    let first = chunks.next().unwrap();
    assert_eq!(first.ops().len(), ops.len());
    let mut sizes = Vec::new();
    let mut checked = first.chunks().inspect(|c| sizes.push(c.len()));
    from_pool.insert_checked_runs(moot_state::Source(1), &mut checked, &mut |run| {
        outcomes_pool.extend(run.into_iter().map(|i| format!("{:?}", i.outcome)));
        true
    });
    drop(checked);
    assert_eq!(sizes, [512, 512, ops.len() - 1_024]);
    let mut in_turn = Replica::new(hub, Limits::default());
    let mut outcomes_turn = Vec::new();
    in_turn.insert_batch_runs(moot_state::Source(1), &ops, &mut |run| {
        outcomes_turn.extend(run.into_iter().map(|i| format!("{:?}", i.outcome)));
        true
    });
    assert_eq!(outcomes_pool, outcomes_turn);
    assert_eq!(
        format!("{:?}", from_pool.roll()),
        format!("{:?}", in_turn.roll())
    );
    let mut keys = moot_crypto::ParsedKeys::new(16);
    assert_eq!(check_chunk(&hub, &ops[..700], &mut keys).len(), 700);

    // The first batch was used up and dropped: its place is free again at once (its jobs let
    // go of it before they report).
    let again = Precheck::start(hub, Arc::clone(&ops)).expect("the place given back");
    assert!(Precheck::start(hub, Arc::clone(&ops)).is_none());

    // Two batches dropped before they were used: their places come back once their queued
    // jobs have ended (at once: they check nothing).
    drop((again, chunks));
    let deadline = Instant::now() + Duration::from_secs(20);
    let fits: Arc<[Vec<u8>]> = Arc::from(ops[..MIN_PRECHECK_OPS].to_vec());
    let held: Vec<Precheck<Vec<u8>>> = (0..MAX_PRECHECKS)
        .map(|_| {
            loop {
                if let Some(one) = Precheck::start(hub, Arc::clone(&fits)) {
                    break one;
                }
                assert!(
                    Instant::now() < deadline,
                    "the places were never given back"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        })
        .collect();
    for one in held {
        assert_eq!(
            one.chunks().map(|c| c.len()).sum::<usize>(),
            MIN_PRECHECK_OPS
        );
    }
    // A batch too small to be worth the pool is left to its turn, room or not.
    let small: Arc<[Vec<u8>]> = Arc::from(ops[..MIN_PRECHECK_OPS - 1].to_vec());
    assert!(Precheck::start(hub, small).is_none());
    assert!(Precheck::start(hub, fits).is_some());
}
