#!/usr/bin/env bash
# A poll with 100,000 voters, in one run:
#  1. taking in its 100,000 signed ballots (verified, validated, stored, views refreshed)
#     against batch-verifying their signatures alone (examples/poll_figures, INGEST_RUNS runs);
#  2. `moot poll results` on that poll against a 10-ballot poll: mean wall time over RUNS runs
#     (after one warm-up run) and peak RSS (`/usr/bin/time`).
#
#   bash scripts/bench-poll.sh            # VOTERS=100000 RUNS=20 INGEST_RUNS=3
set -euo pipefail
cd "$(dirname "$0")/.."

VOTERS="${VOTERS:-100000}"
RUNS="${RUNS:-20}"
INGEST_RUNS="${INGEST_RUNS:-3}"
OUT="${OUT:-/tmp/moot-bench-poll}"
TARGET="${CARGO_TARGET_DIR:-target}"

cargo build --release --quiet --bin moot
cargo build --release --quiet -p moot-node --example poll_figures
MOOT="$TARGET/release/moot"
FIGURES="$TARGET/release/examples/poll_figures"

rm -rf "$OUT"
mkdir -p "$OUT"
"$FIGURES" --voters 10 --runs 1 --data "$OUT/small" > "$OUT/small.log"
echo "== taking in $VOTERS ballots"
"$FIGURES" --voters "$VOTERS" --runs "$INGEST_RUNS" --data "$OUT/large" | tee "$OUT/large.log"
small_poll=$(awk '/^poll /{print $2}' "$OUT/small.log")
large_poll=$(awk '/^poll /{print $2}' "$OUT/large.log")

measure() { # dir poll -> "mean_us peak_kb"
  "$MOOT" --data "$1" poll results "$2" --json > /dev/null # warm-up
  local start end peak=0 kb
  start=$(date +%s%N)
  for _ in $(seq "$RUNS"); do
    kb=$( { /usr/bin/time -f '%M' "$MOOT" --data "$1" poll results "$2" --json > /dev/null; } 2>&1 )
    [ "$kb" -gt "$peak" ] && peak=$kb
  done
  end=$(date +%s%N)
  echo "$(( (end - start) / RUNS / 1000 )) $peak"
}

echo "== moot poll results"
read -r small_us small_kb < <(measure "$OUT/small" "$small_poll")
read -r large_us large_kb < <(measure "$OUT/large" "$large_poll")
counted=$("$MOOT" --data "$OUT/large" poll results "$large_poll" --json | grep -o '"counted": *[0-9]*' | head -1)
printf '%-22s %12s %14s\n' poll "results (ms)" "peak RSS (MB)"
printf '%-22s %12.2f %14.1f\n' "10 ballots" "$(echo "$small_us/1000" | bc -l)" "$(echo "$small_kb/1024" | bc -l)"
printf '%-22s %12.2f %14.1f\n' "$VOTERS ballots" "$(echo "$large_us/1000" | bc -l)" "$(echo "$large_kb/1024" | bc -l)"
printf 'ratio (large / small): %.2fx   (%s)\n' "$(echo "$large_us/$small_us" | bc -l)" "$counted"
