//! Issue 11's speed benchmark: workload W (the automerge-repo reference's shape: 100 proposals
//! of 1 creation + 1,000 typing edits, 10,000 signed ballots, 1,000 offers; built as signed ops
//! from a seed by `moot_state::sample::workload`) synced between **real nodes on loopback**:
//! `moot-net` (libp2p TCP + Noise + Yamux) over real redb stores, each node started as `moot
//! serve` starts it (`Node::start_net`, views brought up to date once arrivals settle).
//!
//! ```sh
//! cargo run --release --example sync_workload -- --json [--runs N] [--samples N] [--data DIR]
//! ```
//!
//! - `converge_ms`: a fresh node (its own process: an empty store with the hub recorded, as
//!   after `hub join`) dials the loaded node, from the dial until its store holds every op of
//!   W (each signature checked, each op validated and stored). Median over `--runs`.
//! - `wire_bytes`: the sync frames both ways during that sync (the receiver's engine counters).
//! - `peak_rss_kb`: the receiving process's VmHWM, read after the sync and its settle.
//! - `one_op_ms`: median over `--samples` of: a comment written on the loaded node until the
//!   connected peer (holding W) has stored it.
//! - `ten_nodes_ms`: median over `--samples` of: a comment written on node 0 until all of 10
//!   nodes hold it; the 10 nodes (each holding W) are connected in a ring (node i to i+1, so
//!   an op crosses up to 5 hops).
//! - `idle_rss_kb`: the receiving process's VmRSS, idle 3 s after it converged (a node serving
//!   W).
//!
//! Exactly those keys. On stderr besides: the floors, what no receiver can skip, each alone in
//! the same run (batch-verifying the signatures of W's ops, decoded beforehand, on all cores;
//! storing them in a fresh store, a durable transaction per frame's worth of ops, one thread).
//!
//! The receiving node runs in a child process: this binary re-executed with the hidden
//! `--receiver DIR ADDR HUB OPS`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moot_crypto::{HubId, OpId};
use moot_node::Node;
use moot_node::serve::{NetEvent, NetOptions, Running, SETTLE, SharedOps};
use moot_state::sample;
use moot_sync::OpStore as _;
use serde_json::json;
use tokio::sync::mpsc;

/// The seed of W (as `w_inprocess`).
const SEED: u64 = 0x57_2d_76_31;
/// Nodes in the propagation test.
const NODES: usize = 10;

fn main() {
    // `SYNC_WORKLOAD_LOG=moot_net=debug` (an `EnvFilter`) logs the nodes' frames to stderr.
    if let Ok(filter) = std::env::var("SYNC_WORKLOAD_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--receiver") {
        return receiver(&args[1..]);
    }
    let mut json_out = false;
    let (mut runs, mut samples, mut voters, mut edits) = (3usize, 40usize, 10_000usize, 1_000);
    let mut gap_ms = 300u64;
    let mut data: Option<PathBuf> = None;
    let mut cache: Option<PathBuf> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut number = || {
            it.next()
                .and_then(|n| n.parse::<usize>().ok())
                .expect("a number")
        };
        match arg.as_str() {
            "--json" => json_out = true,
            "--runs" => runs = number(),
            "--samples" => samples = number(),
            "--voters" => voters = number(),
            "--edits" => edits = number(),
            "--gap-ms" => gap_ms = number() as u64,
            "--data" => data = Some(it.next().expect("a directory").into()),
            "--cache" => cache = Some(PathBuf::from(it.next().expect("a file"))),
            other => panic!("unknown argument {other:?}"),
        }
    }
    let temp = tempfile::tempdir().unwrap();
    let base = data.unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&base).unwrap();

    let start = Instant::now();
    let w = match &cache {
        Some(path) => cached_workload(path, voters, edits),
        None => sample::workload(voters, 100, edits, 1_000, SEED),
    };
    let ops = w.ops.len();
    let op_bytes: usize = w.ops.iter().map(Vec::len).sum();
    eprintln!(
        "built W: {ops} ops, {op_bytes} op bytes in {:.2?}",
        start.elapsed()
    );

    let (verify_floor_ms, store_floor_ms) = match floors(&w.hub, &w.ops, &base.join("floor")) {
        Ok(floors) => floors,
        Err(error) => {
            eprintln!("measuring the floors: {error}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "floors: batch-verifying W alone {verify_floor_ms:.0} ms (all cores); \
         storing W alone {store_floor_ms:.0} ms (one thread, frames of {FLOOR_FRAME} ops)"
    );

    // The loaded node: the founder (member key(1, 0), device key(2, 0)).
    let dir = |i: usize| base.join(format!("node{i}"));
    let start = Instant::now();
    {
        let a = Node::open(&dir(0)).unwrap();
        a.init_with_keys("A", sample::key(1, 0), sample::key(2, 0))
            .unwrap();
        a.import_hub(&w.hub, "W", &w.ops).unwrap();
    }
    eprintln!("loaded node 0 in {:.2?}", start.elapsed());
    // Nodes 1..10 hold W too: copies of the loaded store, each with its own member's keys
    // (members 1..9 of W, each with a certified device).
    for i in 1..NODES {
        std::fs::create_dir_all(dir(i)).unwrap();
        for file in ["moot.redb", "moot.redb.closed"] {
            let from = dir(0).join(file);
            if from.exists() {
                std::fs::copy(&from, dir(i).join(file)).unwrap();
            }
        }
        let node = Node::open(&dir(i)).unwrap();
        node.init_with_keys(&format!("N{i}"), sample::key(1, i), sample::key(2, i))
            .unwrap();
    }
    let comment_on = w.proposals[0];
    let hub = w.hub;
    drop(w);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // A hunt for a stalled heads exchange: `SYNC_WORKLOAD_HUNT=N` starts nodes 0 and 1 N
    // times, connects them and times one op between them (and nothing else).
    if let Some(rounds) = std::env::var("SYNC_WORKLOAD_HUNT")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        runtime.block_on(async move {
            for round in 0..rounds {
                let mut nodes = start_nodes(&base, hub, 2).await;
                connect_first_two(&nodes).await;
                let ms = propagate(&mut nodes[..2], comment_on, 1, 0).await;
                eprintln!("hunt round {round}: one op in {ms:.2} ms");
                for node in nodes {
                    node.stop().await;
                }
            }
        });
        return;
    }
    let figures = runtime.block_on(async move {
        let mut nodes = start_nodes(&base, hub, 2).await;
        let addr0 = nodes[0].addr.clone();

        // 1. Converge: fresh receivers in their own processes dial node 0.
        let mut converge = Vec::new();
        let mut last = serde_json::Value::Null;
        for run in 0..runs {
            let rdir = base.join(format!("receiver{run}"));
            {
                // Member 100 + run, with its certified device: it receives both lanes.
                let node = Node::open(&rdir).unwrap();
                node.init_with_keys("R", sample::key(1, 100 + run), sample::key(2, 100 + run))
                    .unwrap();
                node.prepare_join(&hub).unwrap();
            }
            let cpu_before = cpu_ms();
            let figures = run_receiver(&rdir, &addr0, &hub, ops);
            eprintln!(
                "run {}: {figures}; sending process CPU {:.0} ms",
                run + 1,
                cpu_ms() - cpu_before
            );
            converge.push(figures["converge_ms"].as_f64().unwrap());
            last = figures;
        }

        // 2. One op to a connected peer.
        connect_first_two(&nodes).await;
        let one_op = propagate(&mut nodes[..2], comment_on, samples, gap_ms).await;

        // 3. Ten nodes in a ring.
        nodes.extend(start_nodes_from(&base, hub, 2, NODES).await);
        let mut edges = Vec::new();
        for i in 2..NODES {
            nodes[i]
                .running
                .dial(&[nodes[i - 1].addr.clone()])
                .await
                .unwrap();
            edges.push((i, i - 1));
        }
        nodes[0]
            .running
            .dial(&[nodes[NODES - 1].addr.clone()])
            .await
            .unwrap();
        edges.push((0, NODES - 1));
        wait_connected(&nodes, &edges).await;
        let ten = propagate(&mut nodes, comment_on, samples, gap_ms).await;
        for node in nodes {
            node.stop().await;
        }
        (median(&mut converge), converge, last, one_op, ten)
    });
    let (converge_ms, converge_runs, last, one_op, ten) = figures;
    let out = json!({
        "ops": ops,
        "op_bytes": op_bytes,
        "converge_ms": round(converge_ms),
        "wire_bytes": last["wire_bytes"],
        "peak_rss_kb": last["peak_rss_kb"],
        "one_op_ms": round(one_op),
        "ten_nodes_ms": round(ten),
        "idle_rss_kb": last["idle_rss_kb"],
    });
    eprintln!(
        "converge runs (ms): {:?}; wire/op bytes {:.4}x; ten nodes in a ring",
        converge_runs.iter().map(|m| round(*m)).collect::<Vec<_>>(),
        last["wire_bytes"].as_f64().unwrap_or(0.0) / op_bytes as f64
    );
    if json_out {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out).unwrap());
    }
}

/// Ops per transaction when storing W alone: a full frame's worth, as the receiver stores a
/// frame.
const FLOOR_FRAME: usize = moot_sync::wire::MAX_OPS_PER_MESSAGE;

/// The two parts of a sync no receiver can skip, each alone, in this run: batch-verifying the
/// signatures of W's ops, decoded beforehand (on all cores, as the receiver's workers do), and
/// storing them in a fresh store (one durable transaction per frame's worth, one thread).
/// Milliseconds.
fn floors(hub: &HubId, ops: &[Vec<u8>], dir: &Path) -> Result<(f64, f64), String> {
    let decoded = ops
        .iter()
        .map(|b| moot_crypto::SignedOp::decode(b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("an op of W does not decode: {e}"))?;
    let start = Instant::now();
    let verified = moot_crypto::authenticate_batch(hub, decoded);
    let verify_ms = start.elapsed().as_secs_f64() * 1e3;
    let verified = verified
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("an op of W does not verify: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let store = moot_store::Store::open(&dir.join("moot.redb")).map_err(|e| e.to_string())?;
    let start = Instant::now();
    for frame in verified.chunks(FLOOR_FRAME) {
        let refs: Vec<(&moot_crypto::SignedOp, u8)> =
            frame.iter().map(|op| (op.get(), 0)).collect();
        store.put_kept(hub, &refs).map_err(|e| e.to_string())?;
    }
    let store_ms = start.elapsed().as_secs_f64() * 1e3;
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
    Ok((verify_ms, store_ms))
}

/// W from `path` if it holds W of this shape, else built and written there (building W signs
/// 131,463 ops and types 100,000 edits: half a minute).
fn cached_workload(path: &Path, voters: usize, edits: usize) -> sample::Workload {
    let tag = format!("W {voters} {edits} {SEED}\n");
    if let Ok(bytes) = std::fs::read(path)
        && let Some(rest) = bytes.strip_prefix(tag.as_bytes())
    {
        let mut parts = rest.split_at(64);
        let hub = HubId(parts.0[..32].try_into().unwrap());
        let proposal = OpId(parts.0[32..].try_into().unwrap());
        let mut ops = Vec::new();
        while parts.1.len() >= 4 {
            let len = u32::from_le_bytes(parts.1[..4].try_into().unwrap()) as usize;
            ops.push(parts.1[4..4 + len].to_vec());
            parts.1 = &parts.1[4 + len..];
        }
        return sample::Workload {
            hub,
            ops,
            proposals: vec![proposal],
            poll: OpId([0; 32]),
        };
    }
    let w = sample::workload(voters, 100, edits, 1_000, SEED);
    let mut bytes = tag.into_bytes();
    bytes.extend_from_slice(&w.hub.0);
    bytes.extend_from_slice(&w.proposals[0].0);
    for op in &w.ops {
        bytes.extend_from_slice(&(op.len() as u32).to_le_bytes());
        bytes.extend_from_slice(op);
    }
    std::fs::write(path, bytes).unwrap();
    w
}

fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// A running node of the benchmark and when it stored ops (sent by its event task).
struct BenchNode {
    running: Arc<Running>,
    addr: String,
    stored: mpsc::UnboundedReceiver<Instant>,
    task: tokio::task::JoinHandle<()>,
}

impl BenchNode {
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        if let Ok(running) = Arc::try_unwrap(self.running) {
            running.stop().await.unwrap();
        }
    }
}

async fn start_nodes(base: &Path, hub: HubId, count: usize) -> Vec<BenchNode> {
    start_nodes_from(base, hub, 0, count).await
}

async fn start_nodes_from(base: &Path, hub: HubId, from: usize, to: usize) -> Vec<BenchNode> {
    let mut nodes = Vec::new();
    for i in from..to {
        let node = Arc::new(Node::open(&base.join(format!("node{i}"))).unwrap());
        let signer = node.signer(None, None).unwrap();
        let options = NetOptions {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            ..NetOptions::default()
        };
        let running = Arc::new(node.start_net(hub, &signer, &options).unwrap());
        let addr = format!(
            "{}/p2p/{}",
            running.handle.listen_addrs().await.unwrap()[0],
            running.node_id
        );
        let (tx, stored) = mpsc::unbounded_channel();
        let task = tokio::spawn(settle_loop(Arc::clone(&running), Some(tx)));
        nodes.push(BenchNode {
            running,
            addr,
            stored,
            task,
        });
    }
    nodes
}

/// What `moot serve` does with its events: once ops have arrived, the views and lanes are
/// brought up to date `SETTLE` later. Each `Stored` is also reported on `stored`.
async fn settle_loop(running: Arc<Running>, stored: Option<mpsc::UnboundedSender<Instant>>) {
    let mut events = running.handle.subscribe().await.unwrap();
    let mut settle: Option<tokio::time::Instant> = None;
    loop {
        let settled = async {
            match settle {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = settled => {
                settle = None;
                running.took_in().await.unwrap();
            }
            event = events.recv() => match event {
                Ok(NetEvent::Stored { .. }) => {
                    if let Some(tx) = &stored {
                        let _ = tx.send(Instant::now());
                    }
                    settle.get_or_insert(tokio::time::Instant::now() + SETTLE);
                }
                Ok(NetEvent::Misbehaved { peer, reason }) => panic!("{peer} misbehaved: {reason}"),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            },
        }
    }
}

/// Node 1 dials node 0; returns once both hold the session and their heads are exchanged.
async fn connect_first_two(nodes: &[BenchNode]) {
    nodes[1]
        .running
        .dial(std::slice::from_ref(&nodes[0].addr))
        .await
        .unwrap();
    wait_connected(&nodes[..2], &[(1, 0)]).await;
}

/// Waits until every edge `(i, j)` has a session on both sides, and a little more for the
/// heads exchange to finish.
async fn wait_connected(nodes: &[BenchNode], edges: &[(usize, usize)]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut peers = Vec::new();
        for node in nodes {
            peers.push(node.running.handle.stats().await.unwrap().peers);
        }
        let id = |i: usize| nodes[i].running.node_id.clone();
        let up = edges.iter().all(|&(i, j)| {
            peers[i].iter().any(|p| p.to_string() == id(j))
                && peers[j].iter().any(|p| p.to_string() == id(i))
        });
        if up {
            break;
        }
        assert!(Instant::now() < deadline, "the nodes did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
}

/// Median time from a comment written on `nodes[0]` until every other node stored it.
async fn propagate(nodes: &mut [BenchNode], proposal: OpId, samples: usize, gap_ms: u64) -> f64 {
    let writer = Arc::clone(&nodes[0].running);
    let device = sample::key(2, 0);
    let mut times = Vec::new();
    for n in 0..samples {
        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
        for node in nodes[1..].iter_mut() {
            while node.stored.try_recv().is_ok() {}
        }
        let text = format!("comment {n} on the first proposal");
        let device = device.clone();
        let start = Instant::now();
        let written = writer
            .handle
            .with_state(move |replica, store: &mut SharedOps| {
                let body = moot_state::Body::Comment(moot_state::body::Comment {
                    proposal,
                    parent: None,
                    text,
                });
                let ops = replica
                    .write_ops(&device, moot_state::Lane::Members, &body, &[proposal])
                    .map_err(|r| r.reason.to_string())?;
                let kept: Vec<_> = ops
                    .iter()
                    .filter_map(|op| replica.verdict(&op.id()).map(|v| (op.get(), v)))
                    .collect();
                store.put_kept(&kept).map_err(|e| e.to_string())?;
                Ok::<usize, String>(kept.len())
            })
            .await
            .unwrap();
        assert_eq!(written, Ok(1), "the comment was not written");
        let mut last = start;
        for node in nodes[1..].iter_mut() {
            let at = tokio::time::timeout(Duration::from_secs(10), node.stored.recv())
                .await
                .expect("the op did not arrive within 10 s")
                .expect("the node stopped");
            last = last.max(at);
        }
        times.push((last - start).as_secs_f64() * 1e3);
    }
    eprintln!(
        "{} nodes: min {:.2} ms, max {:.2} ms over {samples} samples",
        nodes.len(),
        times.iter().copied().fold(f64::INFINITY, f64::min),
        times.iter().copied().fold(0.0, f64::max)
    );
    median(&mut times)
}

/// Runs one receiver process; returns its JSON figures.
fn run_receiver(dir: &Path, addr: &str, hub: &HubId, ops: usize) -> serde_json::Value {
    let exe = std::env::current_exe().unwrap();
    // A profiler to run the receiver under, e.g. `SYNC_WORKLOAD_WRAP="heaptrack -o FILE"`.
    let wrap = std::env::var("SYNC_WORKLOAD_WRAP").unwrap_or_default();
    let mut wrap = wrap.split_whitespace();
    let mut command = match wrap.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(wrap).arg(exe);
            command
        }
        None => Command::new(exe),
    };
    let mut child = command
        .arg("--receiver")
        .arg(dir)
        .arg(addr)
        .arg(hub.to_string())
        .arg(ops.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // The JSON line (a profiler wrapping the receiver may print lines of its own).
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    while !line.starts_with('{') {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "the receiver failed: {status}");
    serde_json::from_str(&line).unwrap()
}

/// CPU time of this process so far (user + system), from `/proc/self/stat`.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime are the 12th and
    // 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) * 10.0
}

fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The receiving node: `--receiver DIR ADDR HUB OPS`. Prints one JSON line.
fn receiver(args: &[String]) {
    let [dir, addr, hub, ops] = args else {
        panic!("--receiver DIR ADDR HUB OPS");
    };
    let hub = moot_node::parse_hub_id(hub).expect("a hub id");
    let ops: u64 = ops.parse().expect("an op count");
    let node = Arc::new(Node::open(Path::new(dir)).unwrap());
    let signer = node.signer(None, None).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let figures = runtime.block_on(async move {
        let options = NetOptions {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            ..NetOptions::default()
        };
        let running = Arc::new(node.start_net(hub, &signer, &options).unwrap());
        let (tx, mut stored) = mpsc::unbounded_channel();
        let task = tokio::spawn(settle_loop(Arc::clone(&running), Some(tx)));
        // Let the settle loop subscribe before anything arrives.
        tokio::time::sleep(Duration::from_millis(50)).await;
        eprintln!(
            "receiver: {} kB resident before the sync",
            proc_status_kb("VmRSS:")
        );
        let start = Instant::now();
        running.dial(std::slice::from_ref(addr)).await.unwrap();
        let deadline = start + Duration::from_secs(300);
        loop {
            let held = running
                .handle
                .with_state(|_, store: &mut SharedOps| store.end())
                .await
                .unwrap();
            if held >= ops {
                break;
            }
            assert!(Instant::now() < deadline, "no convergence: {held} of {ops}");
            // Wake on the next store (or check again after a while).
            let _ = tokio::time::timeout(Duration::from_millis(500), stored.recv()).await;
        }
        let converge = start.elapsed();
        let stats = running.handle.stats().await.unwrap();
        eprintln!(
            "receiver: converged in {converge:.2?} using {:.0} ms of CPU; engine {:?}",
            cpu_ms(),
            stats.engine
        );
        // Idle: the settle runs, then nothing happens.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let idle = proc_status_kb("VmRSS:");
        let peak = proc_status_kb("VmHWM:");
        let (spare, index) = running
            .handle
            .with_state(|replica, _: &mut SharedOps| (replica.spare_bytes(), replica.index_bytes()))
            .await
            .unwrap_or_default();
        eprintln!(
            "receiver: idle {idle} kB resident, {} kB of live heap; op index {} kB, spare capacity {} kB",
            moot_node::memory::heap_in_use().unwrap_or(0) / 1024,
            index / 1024,
            spare / 1024
        );
        // `SYNC_WORKLOAD_SMAPS=FILE` copies the receiver's memory map at the idle reading (where
        // the resident pages are: heap arenas, large blocks, code).
        if let Some(path) = std::env::var_os("SYNC_WORKLOAD_SMAPS")
            && let Ok(maps) = std::fs::read("/proc/self/smaps")
        {
            let _ = std::fs::write(path, maps);
        }
        // `SYNC_WORKLOAD_COPY_TO=DIR` copies the receiver's data directory there at the idle
        // reading (to measure a node that starts on W's store).
        if let Some(to) = std::env::var_os("SYNC_WORKLOAD_COPY_TO") {
            let to = Path::new(&to);
            let _ = std::fs::create_dir_all(to);
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let _ = std::fs::copy(entry.path(), to.join(entry.file_name()));
            }
        }
        // `SYNC_WORKLOAD_IDLE_TRAFFIC=SECS`: the sync frames' bytes (both ways, the receiver's
        // engine counters) while the two nodes stay connected and idle for SECS after the idle
        // reading, printed every 10 s (stderr only): what the periodic resync costs a quiet
        // connection.
        if let Some(secs) = std::env::var("SYNC_WORKLOAD_IDLE_TRAFFIC")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        {
            let bytes = |e: &moot_sync::Stats| e.bytes_sent + e.bytes_received;
            let from = bytes(&running.handle.stats().await.unwrap().engine);
            let mut last = from;
            for step in 1..=secs.div_ceil(10) {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let now = bytes(&running.handle.stats().await.unwrap().engine);
                eprintln!(
                    "receiver: idle traffic {} s after the idle reading: {} bytes in all, {} in the last 10 s",
                    step * 10,
                    now - from,
                    now - last
                );
                last = now;
            }
        }
        // `SYNC_WORKLOAD_REST=1`: a second reading once the node is at rest as `moot serve` puts
        // it (no ops taken in for `REST_AFTER`: `Running::rest`), the peers' first resyncs (30
        // and 60 s after the connection) having come and gone meanwhile. On stderr only: the issue's idle figure stays the one
        // above.
        if std::env::var_os("SYNC_WORKLOAD_REST").is_some() {
            tokio::time::sleep(moot_node::serve::REST_AFTER.saturating_sub(Duration::from_secs(3)))
                .await;
            let rested = running.rest().await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            eprintln!(
                "receiver: at rest ({} s after converging, points let go: {rested}) {} kB \
                 resident, {} kB of live heap",
                moot_node::serve::REST_AFTER.as_secs() + 1,
                proc_status_kb("VmRSS:"),
                moot_node::memory::heap_in_use().unwrap_or(0) / 1024,
            );
        }
        // `SYNC_WORKLOAD_EXIT_AT_IDLE=1` ends the receiver right here, so that a heap profiler
        // wrapping it (`SYNC_WORKLOAD_WRAP`) reports what is live at the idle reading as leaked.
        if std::env::var_os("SYNC_WORKLOAD_EXIT_AT_IDLE").is_some() {
            println!("{}", json!({"converge_ms": converge.as_secs_f64() * 1e3, "wire_bytes": stats.engine.bytes_sent + stats.engine.bytes_received, "peak_rss_kb": peak, "idle_rss_kb": idle}));
            std::process::exit(0);
        }
        task.abort();
        let _ = task.await;
        if let Ok(running) = Arc::try_unwrap(running) {
            running.stop().await.unwrap();
        }
        json!({
            "converge_ms": converge.as_secs_f64() * 1e3,
            "wire_bytes": stats.engine.bytes_sent + stats.engine.bytes_received,
            "peak_rss_kb": peak,
            "idle_rss_kb": idle,
        })
    });
    println!("{figures}");
}
