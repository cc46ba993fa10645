#!/usr/bin/env bash
# Peak memory of `moot tally` as the ballot count grows: writes seeded ballot CSVs of increasing
# size (a 1,000,000 x 5 block repeated) and reports wall time and peak RSS (`/usr/bin/time -v`)
# for each. Memory should stay flat: the reader streams ballots into counts.
#
#   bash scripts/bench-tally-memory.sh                 # 1, 10 and 50 blocks (10 MB .. 500 MB)
#   BLOCKS="1 100" bash scripts/bench-tally-memory.sh  # up to 1 GB
#   MOOT=/path/to/other/moot bash scripts/bench-tally-memory.sh   # measure another build
set -euo pipefail
cd "$(dirname "$0")/.."

BLOCKS="${BLOCKS:-1 10 50}"
OUT="${OUT:-/tmp/moot-bench-memory}"
mkdir -p "$OUT"

if [ -z "${MOOT:-}" ]; then
  cargo build --release --quiet --bin moot
  MOOT="${CARGO_TARGET_DIR:-target}/release/moot"
fi

# One seeded block of 1,000,000 rows, then files made of N copies of it.
if [ ! -s "$OUT/block.csv" ]; then
  python3 - "$OUT/block.csv" <<'PY'
import random, sys
rng = random.Random(2026)
with open(sys.argv[1], "w") as f:
    for _ in range(1_000_000):
        f.write(",".join(str(rng.randrange(6)) for _ in range(5)) + "\n")
PY
fi

printf '%-10s %-8s %-10s %-12s %s\n' ballots "CSV MB" "time s" "peak RSS MB" winner
for n in $BLOCKS; do
  file="$OUT/ballots-$n.csv"
  if [ ! -s "$file" ]; then
    echo "Ada,Ben,Cara,Dev,Eli" > "$file"
    for _ in $(seq "$n"); do cat "$OUT/block.csv" >> "$file"; done
  fi
  /usr/bin/time -v "$MOOT" tally "$file" --json 2> "$OUT/time-$n.txt" > "$OUT/out-$n.json"
  rss_kb=$(grep 'Maximum resident set size' "$OUT/time-$n.txt" | awk '{print $NF}')
  wall=$(grep 'Elapsed (wall clock)' "$OUT/time-$n.txt" | awk '{print $NF}')
  winner=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['winners'][0])" "$OUT/out-$n.json")
  printf '%-10s %-8s %-10s %-12.1f %s\n' "${n}000000" "$(du -m "$file" | cut -f1)" "$wall" \
    "$(echo "$rss_kb / 1024" | bc -l)" "$winner"
done
