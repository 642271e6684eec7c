#!/usr/bin/env bash
# What the backends of a permitsync-pg* run of benches/compare.sh are doing:
# samples pg_stat_activity (state and wait event of every client backend of
# the database `permitsync`) and pg_stat_database's commits and rollbacks
# every 0.1 s, for the throwaway PostgreSQL each run starts (found in
# compare.sh's log by its `pg.sh: PostgreSQL ... on 127.0.0.1:PORT` line).
#
#   benches/compare.sh 2>compare.log &
#   benches/pg_activity.sh sample compare.log $! >samples.txt
#   benches/pg_activity.sh summary samples.txt 26.4 38.1
#
# `sample LOG PID` runs until process PID (compare.sh) ends. `summary FILE
# SECS...` prints, for the Nth database of the file, the average number of
# backends in each state and wait event over the SECS[N] seconds after the
# first sample with an active backend (give each run's ingest wall time
# from the load tool's `compare: ingest ... in S s` line), and the commits
# and rollbacks in that window.
set -euo pipefail

psql=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | tail -n 1)

sample() {
    local log=$1 pid=$2 port seen=""
    while kill -0 "$pid" 2>/dev/null; do
        port=$(sed -n 's/^pg.sh: PostgreSQL .* on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log" | tail -n 1)
        if [ -z "$port" ]; then
            sleep 0.2
            continue
        fi
        if [ "$port" != "$seen" ]; then
            echo "== database on port $port"
            seen=$port
        fi
        # epoch|act|state|wait event|backends, and epoch|db|commits|rollbacks|0
        "$psql" -h 127.0.0.1 -p "$port" -U permitsync -d permitsync -Atq -c "
          SELECT extract(epoch FROM now())::bigint, 'act', state,
                 coalesce(wait_event_type, '-') || ':' || coalesce(wait_event, '-'), count(*)
            FROM pg_stat_activity
           WHERE datname = 'permitsync' AND pid <> pg_backend_pid()
             AND backend_type = 'client backend'
           GROUP BY 3, 4
          UNION ALL
          SELECT extract(epoch FROM now())::bigint, 'db', xact_commit::text, xact_rollback::text, 0
            FROM pg_stat_database WHERE datname = 'permitsync'" 2>/dev/null || true
        sleep 0.1
    done
}

summary() {
    local file=$1
    shift
    awk -F'|' -v secs="$*" '
        BEGIN { n = split(secs, win, " ") }
        /^== / { sec++; t0 = ""; next }
        sec == 0 || sec > n { next }
        $2 == "act" && t0 == "" && $3 == "active" { t0 = $1 }
        t0 == "" || $1 > t0 + win[sec] { next }
        $2 == "db" {
            samples[sec]++
            if (!(sec in c0)) { c0[sec] = $3; r0[sec] = $4 }
            c1[sec] = $3; r1[sec] = $4
        }
        $2 == "act" { k = sec SUBSEP $3 " " $4; busy[k] += $5; keys[k] = 1 }
        END {
            for (s = 1; s <= n && s <= sec; s++) {
                printf "%d\t0\tdatabase %d: %d samples over %s s; commits %d, rollbacks %d\n",
                    s, s, samples[s], win[s], c1[s] - c0[s], r1[s] - r0[s]
                for (k in keys) {
                    split(k, p, SUBSEP)
                    if (p[1] == s)
                        printf "%d\t1\t  %-45s %6.2f\n", s, p[2], busy[k] / samples[s]
                }
            }
        }' "$file" | sort -t "$(printf '\t')" -k1,1n -k2,2n -k3,3 | cut -f3-
}

case "${1:-}" in
sample) sample "$2" "$3" ;;
summary) summary "$2" "${@:3}" ;;
*)
    echo "usage: $0 sample COMPARE_LOG COMPARE_PID | summary SAMPLES SECS..." >&2
    exit 2
    ;;
esac
