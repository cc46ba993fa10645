#!/usr/bin/env bash
# `moot proposal edit --body-file` rewriting a whole proposal, timed for each moot binary
# given, alternated (old new old new…): a proposal of N characters of words replaced by
# another N. Usage: bash scripts/bench-edit.sh BIN [BIN…] (e.g. two release builds).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 MOOT_BINARY [MOOT_BINARY…]" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import random, sys
words = ["hall", "roof", "winter", "members", "vote", "branch", "motion", "agree", "fund",
         "repair", "meeting", "notice"]
def text(n, seed):
    r = random.Random(seed)
    out = []
    while sum(len(w) + 1 for w in out) < n:
        out.append(r.choice(words))
    return " ".join(out)[:n]
for n in (20_000, 60_000):
    open(f"{sys.argv[1]}/a{n}", "w").write(text(n, 1))
    open(f"{sys.argv[1]}/b{n}", "w").write(text(n, 2))
PY
for round in 1 2; do
  for bin in "$@"; do
    data="$work/data-$round-$(basename "$bin")"
    "$bin" --data "$data" init --name Fay >/dev/null 2>&1
    "$bin" --data "$data" hub create Riverside >/dev/null 2>&1
    for n in 20000 60000; do
      id=$("$bin" --data "$data" --json proposal create --assembly activism --title T \
        --body-file "$work/a$n" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["proposal_id"])')
      start=$(date +%s.%N)
      set +e
      timeout 600 "$bin" --data "$data" --json proposal edit "$id" --body-file "$work/b$n" \
        >/dev/null 2>"$work/err"
      code=$?
      set -e
      end=$(date +%s.%N)
      printf '%s: %d characters rewritten in %.2f s (exit %d) %s\n' "$bin" "$n" \
        "$(echo "$end - $start" | bc)" "$code" "$(head -c 100 "$work/err")"
    done
  done
done
