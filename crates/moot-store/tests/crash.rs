//! Crash consistency: a child process writes ops and acknowledges each committed batch on stdout;
//! it is killed with SIGKILL at a random moment, 50 times. After each kill the store must open,
//! and every acknowledged op must be present, intact, authentic and in its chain.
//!
//! Runs without the libtest harness: the same binary is the writer when `MOOT_CRASH_WRITER`
//! names a store path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use moot_crypto::{Draft, HubId, OpId, SecretKey, SignedOp};
use moot_store::Store;

const HUB: HubId = HubId([42; 32]);
const KILLS: usize = 50;

fn device() -> SecretKey {
    SecretKey::from_seed([17; 32])
}

/// The child: append ops to the device's chain forever, acknowledging each durable batch.
fn writer(path: &Path) {
    let store = Store::open(path).unwrap();
    let key = device();
    let chain = store
        .chain(&HUB, &key.public(), moot_crypto::Lane::Public)
        .unwrap();
    let (mut seq, mut prev) = chain.last().map_or((0, None), |(s, id)| (*s, Some(*id)));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut batch_size = 1;
    loop {
        let mut batch = Vec::new();
        for _ in 0..batch_size {
            seq += 1;
            let body = format!("op {seq} {}", "x".repeat((seq % 200) as usize)).into_bytes();
            let op = Draft {
                lane: moot_crypto::Lane::Public,
                seq,
                prev,
                deps: vec![],
                kind: 100,
                body,
            }
            .sign(&HUB, &key)
            .unwrap();
            prev = Some(op.id());
            batch.push(op.into_inner());
        }
        let refs: Vec<&SignedOp> = batch.iter().collect();
        store.put_ops(&HUB, &refs).unwrap();
        // Acknowledged only now that the transaction has committed.
        for op in &batch {
            writeln!(out, "{}", op.id()).unwrap();
        }
        out.flush().unwrap();
        batch_size = batch_size % 4 + 1;
    }
}

fn parse_id(line: &str) -> OpId {
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&line[2 * i..2 * i + 2], 16).unwrap();
    }
    OpId(bytes)
}

/// SplitMix64, seeded from the clock but printed, so a failure can be replayed with MOOT_CRASH_SEED.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn check(path: &Path, acked: &BTreeSet<OpId>) {
    let store = Store::open(path).unwrap();
    let ops = store.load_ops(&HUB).unwrap();
    let held: BTreeSet<OpId> = ops.iter().map(|o| o.id()).collect();
    let missing: Vec<&OpId> = acked.difference(&held).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged ops lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    // Every stored op is authentic, and the chain is continuous from 1 with no gaps or forks.
    let chain = store
        .chain(&HUB, &device().public(), moot_crypto::Lane::Public)
        .unwrap();
    assert_eq!(chain.len(), ops.len());
    for (i, (seq, id)) in chain.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "chain continuous");
        let bytes = store.op(&HUB, id).unwrap().unwrap();
        let op = SignedOp::decode(&bytes)
            .unwrap()
            .authenticate(&HUB)
            .unwrap();
        let expected_prev = (i > 0).then(|| chain[i - 1].1);
        assert_eq!(op.prev(), expected_prev, "prev links the chain");
    }
}

fn main() {
    if let Ok(path) = std::env::var("MOOT_CRASH_WRITER") {
        writer(&PathBuf::from(path));
        return;
    }
    let seed = std::env::var("MOOT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash: seed {seed} (set MOOT_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let dir = std::env::temp_dir().join(format!("moot-crash-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("moot.redb");
    let mut acked = BTreeSet::new();
    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("MOOT_CRASH_WRITER", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Kill after a random number of acknowledgements (0..40), or a time limit.
        let kill_after = rng.next() % 40;
        let (sender, receiver) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) if line.len() == 64 => {
                        if sender.send(parse_id(&line)).is_err() {
                            break;
                        }
                    }
                    _ => break,
                }
            }
        });
        let started = Instant::now();
        let mut seen = 0;
        while seen < kill_after && started.elapsed() < Duration::from_secs(10) {
            match receiver.recv_timeout(Duration::from_millis(50)) {
                Ok(id) => {
                    acked.insert(id);
                    seen += 1;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => break,
            }
        }
        // SIGKILL, mid-write more often than not.
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        // Lines printed before the kill were acknowledged too.
        acked.extend(receiver.try_iter());
        check(&path, &acked);
        if round % 10 == 9 {
            println!(
                "crash: {} kills, {} acknowledged ops intact",
                round + 1,
                acked.len()
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    println!("crash: {KILLS} passed, 0 failed");
}
