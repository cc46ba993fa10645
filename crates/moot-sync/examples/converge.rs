//! Benchmark: two in-process engines converge on a hub of about 100k ops (admissions, device
//! certifications, a poll and its ballots), against validating the same ops from a local
//! buffer into a fresh replica; and wire bytes against op bytes.
//!
//! `cargo run --release -p moot-sync --example converge [voters]` (default 33,333 voters:
//! about 100k ops).

use std::time::Instant;

use moot_state::{Limits, Replica, Retain, sample};
use moot_sync::{Config, Engine, Lanes, MemoryStore, OpStore, PeerId, Role, SyncError};

fn main() -> Result<(), SyncError> {
    let voters: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(33_333);
    let built = Instant::now();
    let sample = sample::poll_history(voters);
    let mut ops = sample.setup.clone();
    ops.extend(sample.ballots.iter().cloned());
    let op_bytes: usize = ops.iter().map(Vec::len).sum();
    eprintln!(
        "{} ops ({} bytes) built in {:?}",
        ops.len(),
        op_bytes,
        built.elapsed()
    );
    let limits = Limits {
        retain: Retain::IndexOnly,
        ..Limits::default()
    };

    // Baseline: validate the ops from a local buffer into a fresh replica, and store them.
    let started = Instant::now();
    let mut local = Replica::new(sample.hub, limits);
    let mut local_store = MemoryStore::new();
    for insertion in local.insert_batch(&ops) {
        let kept: Vec<_> = insertion.kept.iter().map(|(o, v)| (o.get(), *v)).collect();
        local_store.put_kept(&kept)?;
    }
    let local_time = started.elapsed();
    assert_eq!(local.len(), ops.len());

    // The sender holds everything (loaded as the baseline did: not timed again).
    let mut a = local;
    let mut store_a = local_store;
    let mut b = Replica::new(sample.hub, limits);
    let mut store_b = MemoryStore::new();
    let config = Config {
        // One process: no pacing.
        max_send_bytes_per_window: usize::MAX,
        max_receive_bytes_per_window: usize::MAX,
        ..Config::default()
    };
    let mut ea = Engine::new(config);
    let mut eb = Engine::new(config);
    let started = Instant::now();
    ea.connect(0, PeerId(2), Role::Listener, Lanes::ALL)?;
    eb.connect(0, PeerId(1), Role::Dialer, Lanes::ALL)?;
    loop {
        let mut moved = false;
        while let Some(t) = ea.poll_transmit(0, &a, &store_a)? {
            eb.handle_frame(0, PeerId(1), &t.frame, &mut b, &mut store_b)?;
            moved = true;
        }
        while let Some(t) = eb.poll_transmit(0, &b, &store_b)? {
            ea.handle_frame(0, PeerId(2), &t.frame, &mut a, &mut store_a)?;
            moved = true;
        }
        if !moved {
            break;
        }
    }
    let sync_time = started.elapsed();
    assert_eq!(store_b.len(), ops.len());
    assert_eq!(a.op_ids(), b.op_ids());
    let (sa, sb) = (ea.stats(), eb.stats());
    let wire = sa.bytes_sent + sb.bytes_sent;
    println!(
        "ops: {}\nvalidate locally: {:.3} s\nsync two engines: {:.3} s ({:.2}x)\nwire bytes: {} / op bytes {} = {:.4}\nframes: {} + {}",
        ops.len(),
        local_time.as_secs_f64(),
        sync_time.as_secs_f64(),
        sync_time.as_secs_f64() / local_time.as_secs_f64(),
        wire,
        op_bytes,
        wire as f64 / op_bytes as f64,
        sa.frames_sent,
        sb.frames_sent,
    );
    Ok(())
}
