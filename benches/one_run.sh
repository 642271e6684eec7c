#!/usr/bin/env bash
# One compare_load run against one permitsync relay, with the CPU time the
# relay and the load tool used: for measuring one change quickly (use
# benches/compare.sh for medians and the other servers).
#
#   benches/one_run.sh [PERMITSYNC_BINARY]
#   D=50 N=200 C=2 EXT=1 benches/one_run.sh target/release/permitsync
#
# D devices x N documents x C changes (50 x 40 x 10 by default); EXT=1 adds
# the permitsync client with the feed extension. Prints the load tool's lines,
# its CPU time, and the relay's user and system CPU seconds read from
# /proc/<pid>/stat before it is stopped. Results go to COMPARE_OUT
# (/tmp/one_run.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/permitsync}
[ -x "$bin" ] || cargo build --release --bin permitsync >&2
load=$(cargo bench --no-run --bench compare_load --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*/compare_load-[^"]*"' | tail -n 1 | cut -d'"' -f4)
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
RUST_LOG=warn "$bin" --data "$dir/data" serve --listen 127.0.0.1:0 \
    --max-requests-per-second 0 --max-connections-per-address 1000000 >"$dir/log" 2>&1 &
pid=$!
addr=""
for _ in $(seq 1 100); do
    addr=$(sed -n 's|^listening on http://||p' "$dir/log" | head -n 1)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { cat "$dir/log" >&2; exit 1; }
# GNU time reports the load tool's CPU; without it the run is only timed
timer=(/usr/bin/time -f "load tool: %U s user, %S s system, %e s wall")
[ -x /usr/bin/time ] || timer=()
"${timer[@]}" env \
    COMPARE_URL="ws://$addr/v1/sync" COMPARE_PID="$pid" COMPARE_SYSTEM=one-run \
    COMPARE_EXT="${EXT:-0}" COMPARE_DEVICES="${D:-50}" COMPARE_DOCS="${N:-40}" \
    COMPARE_CHANGES="${C:-10}" COMPARE_EDITS=20 COMPARE_OUT="${COMPARE_OUT:-/tmp/one_run.jsonl}" \
    "$load" --bench 2>&1 | grep "compare:\|load tool"
ticks=$(getconf CLK_TCK)
awk -v t="$ticks" '{printf "relay: %.1f s user, %.1f s system\n", $14/t, $15/t}' "/proc/$pid/stat"
