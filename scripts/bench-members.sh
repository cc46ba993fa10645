#!/usr/bin/env bash
# `moot members` on a 110,000-op hub against a 10-op hub, in the same run: mean wall time over
# RUNS runs (after one warm-up run, which checks every page of a store it did not close itself)
# and peak RSS (`/usr/bin/time`). Then the full load of the large hub (`moot hub show` derives
# the roll from the ops) and the loaded index's bytes per op.
#
#   bash scripts/bench-members.sh            # OPS=110000 RUNS=20
set -euo pipefail
cd "$(dirname "$0")/.."

OPS="${OPS:-110000}"
RUNS="${RUNS:-20}"
OUT="${OUT:-/tmp/moot-bench-members}"
TARGET="${CARGO_TARGET_DIR:-target}"

cargo build --release --quiet --bin moot
cargo build --release --quiet -p moot-node --example sample_hub --example load_figures
MOOT="$TARGET/release/moot"

rm -rf "$OUT"
mkdir -p "$OUT"
"$TARGET/release/examples/sample_hub" --data "$OUT/small" --ops 10
"$TARGET/release/examples/sample_hub" --data "$OUT/large" --ops "$OPS"

measure() { # dir -> "mean_ms peak_kb"
  "$MOOT" --data "$1" members > /dev/null # warm-up
  local start end peak=0 kb
  start=$(date +%s%N)
  for _ in $(seq "$RUNS"); do
    kb=$( { /usr/bin/time -f '%M' "$MOOT" --data "$1" members > /dev/null; } 2>&1 )
    [ "$kb" -gt "$peak" ] && peak=$kb
  done
  end=$(date +%s%N)
  echo "$(( (end - start) / RUNS / 1000 )) $peak"
}

read -r small_us small_kb < <(measure "$OUT/small")
read -r large_us large_kb < <(measure "$OUT/large")
printf '%-22s %12s %14s\n' hub "members (ms)" "peak RSS (MB)"
printf '%-22s %12.2f %14.1f\n' "10 ops" "$(echo "$small_us/1000" | bc -l)" "$(echo "$small_kb/1024" | bc -l)"
printf '%-22s %12.2f %14.1f\n' "$OPS ops" "$(echo "$large_us/1000" | bc -l)" "$(echo "$large_kb/1024" | bc -l)"
printf 'ratio (large / small): %.2fx\n' "$(echo "$large_us/$small_us" | bc -l)"

echo "== full load of the large hub (what every write does)"
"$TARGET/release/examples/load_figures" --data "$OUT/large"
