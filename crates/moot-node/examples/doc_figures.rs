//! Documents on a node, against automerge in the same run: a fresh node takes in 100 proposals
//! × 1,000 edits from their signed ops (signatures checked, every op validated at its causal
//! position, stored) and builds every document from its ops, against automerge applying the
//! same changes unsigned. Then, in a second process (`--reads DIR`), a node holding them
//! serves reads — every proposal shown, its document materialised from its snapshot — and
//! its peak resident memory is printed.
//!
//! `cargo run --release -p moot-node --example doc_figures -- --proposals 100 --edits 1000 --data DIR`
//! `cargo run --release -p moot-node --example doc_figures -- --reads DIR`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Instant;

use moot_node::Node;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn reads(dir: &std::path::Path) {
    let node = Node::open(dir).unwrap();
    let hub = node.hub(None).unwrap();
    let start = Instant::now();
    let mut replica = node.replica(&hub).unwrap();
    let load = start.elapsed();
    println!("after hub load: peak RSS {:.1} MB", peak_rss_mb());
    let ids = replica.proposal_ids();
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..2 {
        for id in &ids {
            bytes += node
                .proposal_view_in(&hub, &mut replica, id)
                .unwrap()
                .text
                .len();
        }
    }
    let shown = start.elapsed();
    println!(
        "reads: hub load {load:.2?}; {} proposals shown twice in {shown:.2?} ({:.2?} each, {bytes} bytes of text); peak RSS {:.1} MB",
        ids.len(),
        shown / (2 * ids.len().max(1) as u32),
        peak_rss_mb()
    );
}

fn main() {
    let (mut proposals, mut edits, mut members) = (100usize, 1000usize, 20usize);
    let mut data: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || args.next().and_then(|n| n.parse().ok()).expect("a number");
        match arg.as_str() {
            "--proposals" => proposals = number(),
            "--edits" => edits = number(),
            "--members" => members = number(),
            "--data" => data = args.next().map(PathBuf::from),
            "--reads" => return reads(&args.next().map(PathBuf::from).expect("--reads DIR")),
            other => panic!("unknown argument {other:?}"),
        }
    }
    let start = Instant::now();
    let sample = moot_state::sample::doc_history(members, proposals, edits);
    println!(
        "built: {} setup ops, {} proposal ops ({} changes) in {:.2?}",
        sample.setup.len(),
        sample.ops.len(),
        sample.changes.iter().map(Vec::len).sum::<usize>(),
        start.elapsed()
    );
    // Baseline: automerge applying each document's changes, unsigned, in one batch.
    let start = Instant::now();
    for changes in &sample.changes {
        moot_doc::baseline::automerge_apply(changes).unwrap();
    }
    let baseline = start.elapsed();

    let temp = tempfile::tempdir().unwrap();
    let dir = data.unwrap_or_else(|| temp.path().join("node"));
    let _ = std::fs::remove_dir_all(&dir);
    let node = Node::open(&dir).unwrap();
    node.init_with_keys(
        "Founder",
        moot_state::sample::key(1, 0),
        moot_state::sample::key(2, 0),
    )
    .unwrap();
    node.import_hub(&sample.hub, "Sample deliberation hub", &sample.setup)
        .unwrap();
    node.use_hub(&sample.hub).unwrap();
    let start = Instant::now();
    let mut replica = node.replica(&sample.hub).unwrap();
    let stored = node.ingest(&sample.hub, &mut replica, &sample.ops).unwrap();
    let ingest = start.elapsed();
    // Every document was built and snapshotted by ingest (it took in >= 64 changes of each);
    // opening them now reads the snapshots (timed apart, below).
    let start = Instant::now();
    let mut text = 0;
    for id in &sample.proposals {
        let m = node
            .materialise(&sample.hub, &mut replica, id, false)
            .unwrap();
        assert!(m.excluded.is_empty());
        text += m.doc.text().len();
    }
    let build = start.elapsed();
    let ours = ingest;
    println!(
        "automerge, unsigned: {baseline:.2?}; this node from signed ops (verify + validate + store + every document built and snapshotted): {ours:.2?} ({stored} ops): {:.2}x; then every document opened from its snapshot {build:.2?} ({text} bytes of text)",
        ours.as_secs_f64() / baseline.as_secs_f64()
    );
    // The parts: saving every document's snapshot, and opening each from it.
    let mut docs = Vec::new();
    let start = Instant::now();
    for id in &sample.proposals {
        docs.push(
            node.materialise(&sample.hub, &mut replica, id, false)
                .unwrap()
                .doc,
        );
    }
    let reopen = start.elapsed();
    let start = Instant::now();
    let saved: usize = docs.iter().map(|d| d.save().len()).sum();
    let save = start.elapsed();
    println!(
        "parts: opening all from their snapshots {reopen:.2?}; saving all ({saved} bytes) {save:.2?}"
    );
    println!("data in {}", dir.display());
    drop(node);
    if temp.path().exists() && dir.starts_with(temp.path()) {
        reads(&dir);
    }
}
