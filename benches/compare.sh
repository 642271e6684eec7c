#!/usr/bin/env bash
# permitsync side by side with automerge-repo's JavaScript sync server and
# samod, on the same workloads (benches/compare_load.rs) and against the floor
# (benches/floor.rs). Installs and builds what it needs, then for each run
# starts every server afresh on 127.0.0.1 (a new temporary data directory),
# runs the load tool against it, stops it, and rotates the order of the
# systems from run to run. Prints medians and ratios as a Markdown table, then
# one line per target of issue 5 for scripts, e.g.
#   RESULT name=compare.ingest_vs_js value=3.82 unit=x target=>=10 met=no workload=50x40x10 ...
# (`grep '^RESULT'`; the format is in benches/loadkit/mod.rs, `result_line`).
#
#   benches/compare.sh            # 5 runs of each
#   COMPARE_RUNS=7 COMPARE_SYSTEMS="samod permitsync" benches/compare.sh
#   COMPARE_BEFORE=/tmp/permitsync-old COMPARE_SYSTEMS="before permitsync" benches/compare.sh
#
# The system `before` is another permitsync binary (COMPARE_BEFORE), for
# measuring a change against the build before it in the same run. The system
# `permitsync-pg` is the same relay with its store in PostgreSQL: each run
# starts a throwaway cluster (scripts/pg.sh; it installs PostgreSQL when
# absent) and runs `serve --database-url` on it, e.g.
#   COMPARE_SYSTEMS="permitsync permitsync-pg" benches/compare.sh
# The systems `permitsync-pg2` and `permitsync-pg3` are a cluster: 2 or 3
# relays (the same flags, each with its own --data directory) over one
# throwaway PostgreSQL database. The load tool gets their URLs separated by
# commas and spreads the devices over them round robin, so the followers of
# an edit sit on other relays (cross-relay edit-to-visibility); the server's
# CPU is the sum over the relays. For every permitsync-pg* system the load
# tool also reports the database's CPU, transactions and WAL syncs per change
# during the ingest, and this script the database's CPU over the whole run:
#   COMPARE_SYSTEMS="permitsync-pg permitsync-pg2 permitsync-pg3" benches/compare.sh
#
# COMPARE_TOKENS=1 runs permitsync (and `before`) with a tokens file, every
# device on one read-write token: the relay is then its tenant's authority
# and attests each upload (what issue 13 costs a relay).
#
# Workload size: COMPARE_DEVICES (50), COMPARE_DOCS (100 per device),
# COMPARE_CHANGES (20 per document), COMPARE_EDITS (50 per device),
# COMPARE_EDIT_MS (100). Raw results (one JSON line per run) go to
# benches/compare/results/<timestamp>.jsonl; COMPARE_RESULTS overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

runs=${COMPARE_RUNS:-5}
bench_token=compare-bench-token
# samod 0.16 does not finish the default workload in reasonable time (see
# docs/performance.md): give each measurement at most this long
export COMPARE_TIMEOUT=${COMPARE_TIMEOUT:-300}
read -r -a systems <<<"${COMPARE_SYSTEMS:-js samod permitsync floor}"
mkdir -p benches/compare/results
results=${COMPARE_RESULTS:-$root/benches/compare/results/$(date -u +%Y%m%dT%H%M%SZ).jsonl}

log() { echo "compare: $*" >&2; }

# --- install and build (only what the chosen systems need) -----------------
wants() { [[ " ${systems[*]} " == *" $1 "* ]]; }
nodebin=$(scripts/ensure-node.sh)
if [ -n "$nodebin" ]; then
    export PATH="$nodebin:$PATH"
fi
wants js && (
    cd benches/compare/js-server
    stamp=node_modules/.permitsync-lock-sha256
    want=$(sha256sum package-lock.json | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "npm ci in benches/compare/js-server"
        npm ci --no-audit --no-fund --ignore-scripts >&2
        echo "$want" >"$stamp"
    fi
)
log "building permitsync (release), samod-server (release) if asked for, the benches"
cargo build --release --bin permitsync >&2
if wants samod; then
    cargo build --release --manifest-path benches/compare/samod-server/Cargo.toml \
        --target-dir benches/compare/samod-server/target >&2
fi
bench_exe() {
    cargo bench --no-run --bench "$1" --message-format=json 2>/dev/null |
        grep -o "\"executable\":\"[^\"]*/$1-[^\"]*\"" | tail -n 1 | cut -d'"' -f4
}
load_bin=$(bench_exe compare_load)
floor_bin=$(bench_exe floor)
[ -x "$load_bin" ] && [ -x "$floor_bin" ] || {
    log "could not build the benches"
    exit 1
}

# --- servers -----------------------------------------------------------------
# the server's processes and addresses: one, or a cluster's relays
server_pids=()
server_addrs=()
server_dir=""
pg_dir=""
pg_url=""
stop_server() {
    local p
    for p in "${server_pids[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    server_pids=()
    server_addrs=()
    if [ -n "$server_dir" ]; then
        rm -rf "$server_dir"
        server_dir=""
    fi
    if [ -n "$pg_dir" ]; then
        scripts/pg.sh stop "$pg_dir" || true
        pg_dir=""
        pg_url=""
    fi
}
trap stop_server EXIT

# wait_listening SYSTEM PID LOG: appends the address PID prints to LOG to
# server_addrs, or ends the comparison if it does not start
wait_listening() {
    local addr
    for _ in $(seq 1 300); do
        addr=$(sed -n 's|^listening on http://||p' "$3" | head -n 1)
        if [ -n "$addr" ]; then
            server_addrs+=("$addr")
            return 0
        fi
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    log "$1 did not start:"
    cat "$3" >&2
    exit 1
}

# start_pg_relays SYSTEM N: a throwaway PostgreSQL and N relays over its
# database, started one after the other (the first applies the schema)
start_pg_relays() {
    # the cluster's owner must reach its directory: one of its own
    pg_dir=$(mktemp -d -t "compare-pg-XXXXXX")
    pg_url=$(scripts/pg.sh start "$pg_dir")
    local i out
    for i in $(seq 1 "$2"); do
        out="$server_dir/server$i.log"
        : >"$out"
        RUST_LOG=warn "${CARGO_TARGET_DIR:-target}/release/permitsync" --data "$server_dir/data$i" \
            serve --database-url "$pg_url" --listen 127.0.0.1:0 --max-requests-per-second 0 --max-connections-per-address 1000000 \
            >"$out" 2>&1 &
        server_pids+=("$!")
        wait_listening "$1" "$!" "$out"
    done
}

# start_server SYSTEM: sets server_pids and server_addrs
start_server() {
    server_dir=$(mktemp -d -t "compare-$1-XXXXXX")
    local out="$server_dir/server.log"
    # made before the server starts: the wait below reads it at once, and a
    # background server may not have opened it yet (under load, set -e
    # then ended the whole comparison)
    : >"$out"
    case "$1" in
    js)
        node benches/compare/js-server/server.mjs --listen 127.0.0.1:0 \
            --data "$server_dir/data" >"$out" 2>&1 &
        ;;
    samod)
        benches/compare/samod-server/target/release/samod-server --listen 127.0.0.1:0 \
            --data "$server_dir/data" >"$out" 2>&1 &
        ;;
    permitsync | before)
        local bin="${CARGO_TARGET_DIR:-target}/release/permitsync"
        [ "$1" = before ] && bin=${COMPARE_BEFORE:?set COMPARE_BEFORE to the binary to compare with}
        # every simulated device connects from 127.0.0.1 (an older binary
        # has no per-address limit to lift)
        local per_address=()
        if "$bin" serve --help | grep -q -- --max-connections-per-address; then
            per_address=(--max-connections-per-address 1000000)
        fi
        # COMPARE_TOKENS=1: every device syncs with one read-write token, so
        # the relay is its tenant's authority and attests every upload
        local tokens=()
        if [ "${COMPARE_TOKENS:-0}" = 1 ]; then
            printf '{"tokens": [{"token": "%s", "tenant": "bench", "device": "load", "mode": "read-write"}]}\n' \
                "$bench_token" >"$server_dir/tokens.json"
            tokens=(--tokens "$server_dir/tokens.json" --max-connections-per-token 1000000)
        fi
        RUST_LOG=warn "$bin" --data "$server_dir/data" serve \
            --listen 127.0.0.1:0 --max-requests-per-second 0 "${per_address[@]}" "${tokens[@]}" >"$out" 2>&1 &
        ;;
    permitsync-pg)
        # the cluster's owner must reach its directory: one of its own
        pg_dir=$(mktemp -d -t "compare-pg-XXXXXX")
        pg_url=$(scripts/pg.sh start "$pg_dir")
        RUST_LOG=warn "${CARGO_TARGET_DIR:-target}/release/permitsync" --data "$server_dir/data" \
            serve --database-url "$pg_url" --listen 127.0.0.1:0 --max-requests-per-second 0 --max-connections-per-address 1000000 \
            >"$out" 2>&1 &
        ;;
    permitsync-pg2 | permitsync-pg3)
        start_pg_relays "$1" "${1#permitsync-pg}"
        return 0
        ;;
    *)
        log "unknown system $1"
        exit 1
        ;;
    esac
    server_pids=("$!")
    wait_listening "$1" "$!" "$out"
}

# CPU seconds (user + system) the PostgreSQL of permitsync-pg* used so far:
# the postmaster, its live backends and the children it reaped
pg_cpu_seconds() {
    local pm pids
    pm=$(head -n 1 "$pg_dir/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
    pids="$pm $(pgrep -P "$pm" | tr '\n' ' ')"
    for p in $pids; do
        cat "/proc/$p/stat" 2>/dev/null || true
    done | awk -v t="$(getconf CLK_TCK)" -v pm="$pm" '
        { s += $14 + $15; if ($1 == pm) s += $16 + $17 }
        END { printf "%.2f\n", s / t }'
}

# --- runs --------------------------------------------------------------------
log "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
log "results: $results"
n=${#systems[@]}
for run in $(seq 1 "$runs"); do
    for k in $(seq 0 $((n - 1))); do
        sys=${systems[$(((k + run - 1) % n))]}
        log "run $run/$runs: $sys (load $(cut -d' ' -f1 /proc/loadavg))"
        if [ "$sys" = floor ]; then
            COMPARE_OUT="$results" "$floor_bin" --bench
            continue
        fi
        start_server "$sys"
        ext=0
        case "$sys" in permitsync | permitsync-pg* | before) ext=1 ;; esac
        # one URL per relay, separated by commas (the load tool's format)
        urls=()
        for addr in "${server_addrs[@]}"; do
            url="ws://$addr/v1/sync"
            if [ "${COMPARE_TOKENS:-0}" = 1 ]; then
                url="$url?token=$bench_token"
            fi
            urls+=("$url")
        done
        db_pid=""
        if [ -n "$pg_dir" ]; then
            db_pid=$(head -n 1 "$pg_dir/data/postmaster.pid")
        fi
        COMPARE_URL="$(IFS=,; echo "${urls[*]}")" COMPARE_PID="$(IFS=,; echo "${server_pids[*]}")" \
            COMPARE_DB_PID="$db_pid" COMPARE_DATABASE_URL="$pg_url" \
            COMPARE_SYSTEM="$sys" COMPARE_EXT="$ext" COMPARE_OUT="$results" \
            "$load_bin" --bench >/dev/null || log "run $run: $sys failed (see $results)"
        case "$sys" in permitsync-pg*)
            log "run $run: postgres used $(pg_cpu_seconds) s of CPU (whole run, all phases)"
            ;;
        esac
        stop_server
    done
done

echo
echo "Workload: ${COMPARE_DEVICES:-50} devices x ${COMPARE_DOCS:-100} documents x ${COMPARE_CHANGES:-20} changes;"
echo "$runs runs of each, alternating; $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p'))."
echo
COMPARE_SUMMARIZE="$results" "$load_bin" --bench
