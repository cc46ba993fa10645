#!/usr/bin/env bash
# The web UI's reads on a large hub: workload W (131,463 ops, built by
# `examples/sync_workload.rs`, which keeps its loaded node under DATA/node0) served by
# `moot serve`; each page's API read timed with curl, the first (the hub loaded from the store)
# and then ROUNDS more (the kept replica brought up to date), in the same run. Prints the
# served node's resident memory after the reads and after they are given back (a minute
# unused, checked every 30 s).
#
#   bash scripts/bench-web-reads.sh        # DATA=/tmp/moot-web-reads ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."

DATA="${DATA:-/tmp/moot-web-reads}"
ROUNDS="${ROUNDS:-3}"
TARGET="${CARGO_TARGET_DIR:-target}"

cargo build --release --quiet --example sync_workload --bin moot
MOOT="$TARGET/release/moot"
if [ ! -d "$DATA/node0" ]; then
  "$TARGET/release/examples/sync_workload" --runs 1 --samples 3 --data "$DATA" > /dev/null
fi
NODE="$DATA/node0"
rm -f "$NODE/moot.sock"
OUT="$(mktemp)"
"$MOOT" --data "$NODE" --json serve --no-mdns --listen /ip4/127.0.0.1/tcp/0 --http 127.0.0.1:0 > "$OUT" 2> /dev/null &
PID=$!
trap 'kill -INT $PID 2> /dev/null || true; rm -f "$OUT" "$OUT.jar"' EXIT
for _ in $(seq 100); do
  [ -s "$OUT" ] && break
  sleep 0.2
done
OPEN="$(head -n 1 "$OUT" | python3 -c 'import json, sys; print(json.load(sys.stdin)["open"])')"
BASE="${OPEN%%\?*}"
curl -s -c "$OUT.jar" "${BASE}api/session?${OPEN#*\?}" > /dev/null
rss() { grep -E '^VmRSS' "/proc/$PID/status" | awk '{print $2 " kB"}'; }
echo "serving W: resident $(rss) (load: $(cut -d' ' -f1-3 /proc/loadavg))"
for round in $(seq 0 "$ROUNDS"); do
  for page in assemblies polls proposals activity aid; do
    t=$(curl -s -o /dev/null -b "$OUT.jar" -w '%{http_code} %{time_total}' "${BASE}api/$page")
    echo "round $round  GET /api/$page  $t s"
  done
done
echo "after the reads: resident $(rss)"
sleep 95
echo "a minute and a half later (the reads' replica given back): resident $(rss)"
