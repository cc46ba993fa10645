//! The cost of taking in a poll's ballots, against the physical floor measured in the same run:
//! 100,000 signed ballots (one per voter, 100,000 voters in the Activism Society) verified,
//! validated at their causal position and stored with the poll's results view refreshed,
//! against batch-verifying their signatures alone. The hub (genesis, admissions,
//! certifications, the poll and its open) is stored first and loaded before the clock starts;
//! its load time is printed apart. Leaves the last run's data directory at `--data` for
//! `scripts/bench-poll.sh` (which times `moot poll results` on it).
//!
//! `cargo run --release -p moot-node --example poll_figures -- --voters 100000 --runs 3 --data DIR`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use moot_crypto::SignedOp;
use moot_node::Node;

fn main() {
    let mut voters: usize = 100_000;
    let mut runs: usize = 3;
    let mut data: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--voters" => {
                voters = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--voters N")
            }
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            "--data" => data = args.next().map(PathBuf::from),
            other => panic!("unknown argument {other:?}; usage: --voters N --runs N --data DIR"),
        }
    }
    let start = Instant::now();
    let sample = moot_state::sample::poll_history(voters);
    println!(
        "built: {} setup ops, {} ballots in {:.2?}",
        sample.setup.len(),
        sample.ballots.len(),
        start.elapsed()
    );
    let mut ratios = Vec::new();
    for run in 0..runs {
        let keep = run + 1 == runs;
        let temp = tempfile::tempdir().unwrap();
        let dir = match (&data, keep) {
            (Some(dir), true) => {
                let _ = std::fs::remove_dir_all(dir);
                dir.clone()
            }
            _ => temp.path().join("node"),
        };
        let node = Node::open(&dir).unwrap();
        node.init_with_keys(
            "Founder",
            moot_state::sample::key(1, 0),
            moot_state::sample::key(2, 0),
        )
        .unwrap();
        node.import_hub(&sample.hub, "Sample poll hub", &sample.setup)
            .unwrap();
        // The floor: the same signatures checked in Ed25519 batches on every core, and nothing
        // else (decoding the envelopes is not timed).
        let decoded: Vec<SignedOp> = sample
            .ballots
            .iter()
            .map(|b| SignedOp::decode(b).unwrap())
            .collect();
        let start = Instant::now();
        let checked = moot_crypto::authenticate_batch(&sample.hub, decoded);
        let verify = start.elapsed();
        assert!(checked.iter().all(Result::is_ok));
        drop(checked);
        // The same checks when the voters' device points are held already (as a node holds
        // those of the devices its roll certified): decoding and batch verification on every
        // core, with each point taken from a table instead of decompressed.
        let known = std::sync::Arc::new(moot_crypto::KnownPoints::new());
        for bytes in &sample.ballots {
            let op = SignedOp::decode(bytes).unwrap();
            let author = moot_crypto::PublicKey::from_bytes(&op.author().to_bytes()).unwrap();
            known.add(&author);
        }
        assert_eq!(known.points_held(), sample.ballots.len());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = sample.ballots.len().div_ceil(threads);
        let start = Instant::now();
        std::thread::scope(|scope| {
            for part in sample.ballots.chunks(per_thread) {
                let known = std::sync::Arc::clone(&known);
                scope.spawn(move || {
                    let mut parsed = moot_crypto::ParsedKeys::new(4096);
                    parsed.consult(Some(known));
                    for chunk in part.chunks(moot_crypto::op::BATCH) {
                        let ops: Vec<SignedOp> = chunk
                            .iter()
                            .map(|b| SignedOp::decode_with(b, |raw| parsed.parse(raw)).unwrap())
                            .collect();
                        let checked =
                            moot_crypto::authenticate_sequential_with(&sample.hub, ops, &parsed);
                        assert!(checked.iter().all(Result::is_ok));
                    }
                });
            }
        });
        let verify_known = start.elapsed();
        drop(known);
        let start = Instant::now();
        let mut replica = node.replica(&sample.hub).unwrap();
        let load = start.elapsed();
        let start = Instant::now();
        let stored = node
            .ingest(&sample.hub, &mut replica, &sample.ballots)
            .unwrap();
        let ingest = start.elapsed();
        // A running node keeps its replica; freeing it is not part of taking ballots in.
        drop(replica);
        assert_eq!(stored as usize, sample.ballots.len());
        let results = node.poll_results(&sample.hub, &sample.poll).unwrap();
        assert_eq!(results.counted as usize, sample.ballots.len());
        let ratio = ingest.as_secs_f64() / verify.as_secs_f64();
        ratios.push((ratio, verify, ingest));
        println!(
            "run {}: batch verify {:.2?}; verify + validate + store + views {:.2?} ({ratio:.2}x); hub load before it {:.2?}",
            run + 1,
            verify,
            ingest,
            load
        );
        println!(
            "  decode + batch verify with the devices' points held: {verify_known:.2?}; ingest against it: {:.2}x",
            ingest.as_secs_f64() / verify_known.as_secs_f64()
        );
        if keep {
            // The parts, alone: storing the ballots (already checked) in a store holding the
            // hub, in transactions of the same size as ingest's.
            let other = tempfile::tempdir().unwrap();
            let store_only = Node::open(&other.path().join("node")).unwrap();
            store_only
                .init_with_keys(
                    "Founder",
                    moot_state::sample::key(1, 0),
                    moot_state::sample::key(2, 0),
                )
                .unwrap();
            store_only
                .import_hub(&sample.hub, "Sample poll hub", &sample.setup)
                .unwrap();
            let ops: Vec<SignedOp> = sample
                .ballots
                .iter()
                .map(|b| SignedOp::decode(b).unwrap())
                .collect();
            let start = Instant::now();
            for chunk in ops.chunks(50_000) {
                let refs: Vec<(&SignedOp, u8)> = chunk.iter().map(|op| (op, 0)).collect();
                store_only
                    .store()
                    .unwrap()
                    .put_kept(&sample.hub, &refs)
                    .unwrap();
            }
            let store_alone = start.elapsed();
            println!(
                "storing the {} ballots alone (no checks): {store_alone:.2?}; this run's ingest \
                 against batch verify + storing alone: {:.2}x",
                ops.len(),
                ingest.as_secs_f64() / (verify + store_alone).as_secs_f64()
            );
            println!("poll {} in {}", sample.poll, dir.display());
        }
    }
    ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ratio, verify, ingest): (f64, Duration, Duration) = ratios[ratios.len() / 2];
    println!(
        "median of {runs}: {ratio:.2}x (batch verify {verify:.2?}, ingest {ingest:.2?}) for {} ballots",
        sample.ballots.len()
    );
}
