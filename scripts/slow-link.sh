#!/usr/bin/env bash
# `moot hub join` over a shaped link: node A (a sample hub of OPS ops) in network namespace
# moot-sla, node B joining it from moot-slb, over a veth pair that `tc` limits to RATE each way.
# Needs root (namespaces, tc); nothing reaches a real interface. Prints how the join ended.
#
#   RATE=1mbit OPS=5000 bash scripts/slow-link.sh     # also e.g. RATE=256kbit, 128kbit, 64kbit
set -u
cd "$(dirname "$0")/.."
RATE="${RATE:-1mbit}"; OPS="${OPS:-5000}"; JOIN_TIMEOUT="${JOIN_TIMEOUT:-240}"
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin moot
cargo build --release --quiet -p moot-node --example sample_hub
MOOT="${MOOT:-$TARGET/release/moot}"
D=$(mktemp -d)
A=moot-sla; B=moot-slb
cleanup() { ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
ip netns add $A && ip netns add $B
ip link add msla type veth peer name mslb
ip link set msla netns $A; ip link set mslb netns $B
ip -n $A addr add 10.231.78.1/24 dev msla; ip -n $B addr add 10.231.78.2/24 dev mslb
for ns in $A $B; do ip -n $ns link set lo up; done
ip -n $A link set msla up; ip -n $B link set mslb up
ip netns exec $A tc qdisc add dev msla root tbf rate "$RATE" burst 16kb latency 5s
ip netns exec $B tc qdisc add dev mslb root tbf rate "$RATE" burst 16kb latency 5s
"$TARGET/release/examples/sample_hub" --data "$D/a" --ops "$OPS" > /dev/null
BID=$("$MOOT" --json --data "$D/b" init --name B 2>/dev/null \
  | python3 -c "import json,sys;print(json.load(sys.stdin)['member_id'])")
"$MOOT" --json --data "$D/a" member add "$BID" --name B > /dev/null
ip netns exec $A env RUST_LOG=moot_net=debug "$MOOT" --json --data "$D/a" serve --no-http --no-mdns \
  --listen /ip4/10.231.78.1/tcp/4001 > "$D/a.out" 2> "$D/a.err" &
APID=$!
for _ in $(seq 100); do grep -q ticket "$D/a.out" 2>/dev/null && break; sleep 0.2; done
TICKET=$(python3 -c "import json;print(json.loads(open('$D/a.out').readline())['ticket'])")
START=$(date +%s%N)
ip netns exec $B env RUST_LOG=moot_net=info "$MOOT" --json --data "$D/b" hub join "$TICKET" \
  --timeout "$JOIN_TIMEOUT" > "$D/b.out" 2> "$D/b.err"
CODE=$?
echo "rate $RATE, $OPS ops: join exit $CODE after $(( ($(date +%s%N) - START) / 1000000 )) ms: $(cat "$D/b.out") $(grep -h '"error"' "$D/b.err")"
echo "sessions cut short (frame not delivered): B $(grep -c 'not delivered' "$D/b.err"), A $(grep -c 'not delivered' "$D/a.err")"
kill -INT $APID; wait $APID
