#!/usr/bin/env bash
# Issue 11's speed figures, beside the automerge-repo reference in the same invocation:
# ROUNDS rounds, each running automerge-repo's benchmark once (its W over a websocket on
# 127.0.0.1) and then ours once (`examples/sync_workload.rs`: W as signed ops between real
# nodes on loopback), alternately, so that both see the same machine. Prints every JSON line
# and a summary with the ratios the targets name.
#
#   bash scripts/bench-sync.sh            # ROUNDS=3 SAMPLES=40
#
# Needs Node >= 20 and npm for the reference (its run.sh installs its pinned packages into
# $TMPDIR/moot-automerge-repo-bench on the first run). REFERENCE= points at its directory.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-3}"
SAMPLES="${SAMPLES:-40}"
REFERENCE="${REFERENCE:-../shared/bench/automerge-repo}"
OUT="${OUT:-/tmp/moot-bench-sync}"
TARGET="${CARGO_TARGET_DIR:-target}"

cargo build --release --quiet --example sync_workload
OURS="$TARGET/release/examples/sync_workload"
mkdir -p "$OUT"
: > "$OUT/automerge.jsonl"
: > "$OUT/moot.jsonl"

for round in $(seq "$ROUNDS"); do
  echo "== round $round: automerge-repo (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  bash "$REFERENCE/run.sh" --runs 1 --inc 20 | tail -n 1 | tee -a "$OUT/automerge.jsonl"
  echo "== round $round: moot (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  # W is built once (half a minute) and cached.
  "$OURS" --json --runs 1 --samples "$SAMPLES" --cache "$OUT/w.bin" | tee -a "$OUT/moot.jsonl"
done

python3 - "$OUT/automerge.jsonl" "$OUT/moot.jsonl" <<'EOF'
import json, statistics, sys

reference = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ours = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
med = statistics.median
am_sync = [r["fullSync"]["syncMs"]["median"] for r in reference]
am_inc = [r["incremental"]["medianMs"] for r in reference]
am_rss = [r["rssMiB"]["bPeak"]["median"] for r in reference]
converge = [r["converge_ms"] for r in ours]
print()
print("round  automerge-repo sync  moot converge  speed-up")
for i, (a, m) in enumerate(zip(am_sync, converge), 1):
    print(f"{i:5}  {a:16.0f} ms  {m:10.0f} ms  {a / m:7.2f}x")
last = ours[-1]
wire = med(r["wire_bytes"] / r["op_bytes"] for r in ours)
rows = [
    ("converge (median of rounds)", f"{med(converge):.0f} ms",
     f"automerge-repo {med(am_sync):.0f} ms: {med(am_sync) / med(converge):.2f}x faster", ">= 2x"),
    ("wire bytes / op bytes", f"{wire:.4f}x", f"{last['wire_bytes']:,} for {last['op_bytes']:,}", "<= 1.15x"),
    ("receiver peak RSS", f"{med(r['peak_rss_kb'] for r in ours) / 1024:.1f} MiB",
     f"automerge-repo B {med(am_rss):.1f} MiB", "<= 72 MB"),
    ("one op to a connected peer", f"{med(r['one_op_ms'] for r in ours):.2f} ms",
     f"automerge-repo {med(am_inc):.1f} ms", "<= automerge-repo"),
    ("one op to all of 10 nodes (ring)", f"{med(r['ten_nodes_ms'] for r in ours):.2f} ms", "", "<= 500 ms"),
    ("idle RSS after sync", f"{med(r['idle_rss_kb'] for r in ours) / 1024:.1f} MiB", "", "<= 50 MB"),
]
print()
for name, value, beside, target in rows:
    print(f"{name:34} {value:>12}   target {target:18} {beside}")
EOF
