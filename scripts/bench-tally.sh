#!/usr/bin/env bash
# End-to-end benchmark of `moot tally` on a 1,000,000 x 5 ballot CSV, against the Python
# `starvote` 2.1.6 CLI on a star.vote-format copy of the same ballots, in the same run.
# Prints wall times (best of N for moot, one run for starvote), the speed-up and peak memory.
#
#   bash scripts/bench-tally.sh            # 1,000,000 ballots
#   BALLOTS=100000 bash scripts/bench-tally.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BALLOTS="${BALLOTS:-1000000}"
RUNS="${RUNS:-5}"
OUT="${OUT:-bench-out}"
mkdir -p "$OUT"

cargo build --release --quiet --bin moot
MOOT="${CARGO_TARGET_DIR:-target}/release/moot"

# Ballots: seeded, so every run measures the same file. Scores are skewed per option so the
# election is not an exact tie (starvote's CLI is run without a tiebreaker).
python3 - "$BALLOTS" "$OUT" <<'PY'
import random, sys
n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(2026)
names = ["Ada", "Ben", "Cara", "Dev", "Eli"]
weights = [(1, 1, 1, 2, 3, 4), (2, 2, 2, 2, 2, 2), (4, 3, 2, 1, 1, 1), (1, 2, 3, 3, 2, 1), (3, 1, 1, 1, 1, 3)]
cum = [list(__import__("itertools").accumulate(w)) for w in weights]
with open(f"{out}/ballots.csv", "w") as plain, open(f"{out}/ballots-starvote.csv", "w") as sv:
    plain.write(",".join(names) + "\n")
    sv.write("voterID,voteTime,pollID," + ",".join(names) + "\n")
    scores = range(6)
    for i in range(n):
        row = ",".join(str(rng.choices(scores, cum_weights=c)[0]) for c in cum)
        plain.write(row + "\n")
        sv.write(f"{i},0,p,{row}\n")
PY

if [ ! -x "$OUT/venv/bin/python" ]; then
  python3 -m venv "$OUT/venv"
  "$OUT/venv/bin/pip" install --quiet starvote==2.1.6
fi

now() { date +%s.%N; }
best=""
for _ in $(seq "$RUNS"); do
  start=$(now)
  "$MOOT" tally "$OUT/ballots.csv" --json > "$OUT/moot.json"
  end=$(now)
  t=$(echo "$end - $start" | bc -l)
  if [ -z "$best" ] || (( $(echo "$t < $best" | bc -l) )); then best=$t; fi
done
/usr/bin/time -v "$MOOT" tally "$OUT/ballots.csv" --json 2> "$OUT/moot.time" > /dev/null
rss_kb=$(grep 'Maximum resident set size' "$OUT/moot.time" | awk '{print $NF}')

start=$(now)
"$OUT/venv/bin/python" -m starvote -m star -t none "$OUT/ballots-starvote.csv" > "$OUT/starvote.txt"
end=$(now)
sv_time=$(echo "$end - $start" | bc -l)

moot_winner=$(python3 -c "import json,sys; print(json.load(open('$OUT/moot.json'))['winners'][0])")
sv_winner=$(grep -A1 'Winner\]' "$OUT/starvote.txt" | tail -1 | tr -d ' ')
csv_mb=$(du -m "$OUT/ballots.csv" | cut -f1)

printf 'ballots: %s x 5 options (%s MB CSV)\n' "$BALLOTS" "$csv_mb"
printf 'moot tally (best of %s):   %.3f s, peak RSS %.1f MB, winner %s\n' "$RUNS" "$best" "$(echo "$rss_kb / 1024" | bc -l)" "$moot_winner"
printf 'starvote 2.1.6 CLI:       %.3f s, winner %s\n' "$sv_time" "$sv_winner"
printf 'speed-up: %.0fx\n' "$(echo "$sv_time / $best" | bc -l)"
[ "$moot_winner" = "$sv_winner" ] || { echo "winners differ!" >&2; exit 1; }
