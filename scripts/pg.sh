#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests and benchmarks (docs/cluster.md, "Running it").
#
#   scripts/pg.sh start DIR   start a cluster in DIR (created; must be absent or
#                             empty) on a free loopback port; prints its URL,
#                             postgres://permitsync@127.0.0.1:PORT/permitsync,
#                             on stdout once it accepts connections
#   scripts/pg.sh stop DIR    stop it and delete DIR
#   scripts/pg.sh url DIR     print the URL of the cluster running in DIR
#   scripts/pg.sh halt DIR    stop the server (fast shutdown), keeping DIR
#   scripts/pg.sh resume DIR  start a halted server again, on the same port
#
# Installs Debian's `postgresql` package (apt-get, non-interactive) when
# initdb and pg_ctl are not found, on PATH or in /usr/lib/postgresql/*/bin.
# PostgreSQL refuses to run as root: as root, the cluster runs as the system
# user `permitsync-pg` (created with `useradd -r` when missing); otherwise as
# the current user. Authentication is `trust`, on 127.0.0.1 only, and the
# Unix socket lives in DIR: nothing is reachable from outside this machine.
# Everything else goes to stderr.
set -euo pipefail

PG_USER_SYSTEM=permitsync-pg
DB_ROLE=permitsync
DB_NAME=permitsync
MARKER=.permitsync-pg

say() { echo "pg.sh: $*" >&2; }
die() { say "$*"; exit 1; }

usage() { die "usage: $0 start DIR | stop DIR | url DIR | halt DIR | resume DIR"; }

# The directory holding initdb and pg_ctl, installing PostgreSQL if needed.
find_bin() {
    local dir
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return
        fi
    done
    return 1
}

install_postgresql() {
    command -v apt-get >/dev/null 2>&1 ||
        die "initdb/pg_ctl not found and apt-get is not available: install PostgreSQL"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install postgresql"
        sudo=sudo
    fi
    say "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q >&2
    $sudo apt-get install -y -q --no-install-recommends postgresql >&2
}

pg_bin() {
    local bin
    if bin=$(find_bin); then
        echo "$bin"
        return
    fi
    install_postgresql
    bin=$(find_bin) || die "initdb/pg_ctl still missing after installing postgresql"
    echo "$bin"
}

# Run a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$PG_USER_SYSTEM" -- "$@"
    else
        "$@"
    fi
}

ensure_owner() {
    [ "$(id -u)" -eq 0 ] || return 0
    if ! id -u "$PG_USER_SYSTEM" >/dev/null 2>&1; then
        say "creating the system user $PG_USER_SYSTEM"
        useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$PG_USER_SYSTEM"
    fi
}

# A port nobody listens on (the start retries on another should it be taken
# in between).
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

url_of() {
    local dir=$1
    [ -f "$dir/port" ] || die "$dir holds no cluster started by this script"
    echo "postgres://$DB_ROLE@127.0.0.1:$(cat "$dir/port")/$DB_NAME"
}

start() {
    local dir=$1 bin port attempt
    bin=$(pg_bin)
    ensure_owner
    mkdir -p "$dir"
    [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
    dir=$(cd "$dir" && pwd)
    touch "$dir/$MARKER"
    chmod 0700 "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$PG_USER_SYSTEM" "$dir" "$dir/$MARKER"
        as_owner test -x "$(dirname "$dir")" ||
            die "$PG_USER_SYSTEM cannot reach $(dirname "$dir"): choose DIR under /tmp"
    fi
    as_owner "$bin/initdb" -D "$dir/data" -U "$DB_ROLE" --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" \
            start >&2; then
            echo "$port" >"$dir/port"
            break
        fi
        say "the server did not start on port $port (attempt $attempt); log:"
        tail -n 20 "$dir/server.log" >&2 || true
        [ "$attempt" -lt 5 ] || die "the server did not start"
    done
    # pg_ctl -w returns once the server accepts connections
    as_owner "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U "$DB_ROLE" -d postgres \
        -c "CREATE DATABASE $DB_NAME" >&2 ||
        die "cannot create the database $DB_NAME"
    say "PostgreSQL $("$bin/pg_ctl" --version | awk '{print $3}') running in $dir on 127.0.0.1:$port"
    url_of "$dir"
}

stop() {
    local dir=$1 bin
    [ -d "$dir" ] || { say "$dir is gone already"; return 0; }
    # never delete a directory this script did not make
    [ -f "$dir/$MARKER" ] || die "$dir was not made by this script; not touching it"
    if [ -f "$dir/data/postmaster.pid" ]; then
        bin=$(find_bin) || die "pg_ctl not found"
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 ||
            say "pg_ctl stop failed; deleting $dir all the same"
    fi
    rm -rf "$dir"
}

# Stop the server of DIR, keeping its data (a database "restart" for tests).
halt() {
    local dir=$1 bin
    [ -f "$dir/$MARKER" ] || die "$dir was not made by this script; not touching it"
    bin=$(find_bin) || die "pg_ctl not found"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2
}

# Start the halted server of DIR again, on the port it had.
resume() {
    local dir=$1 bin port
    [ -f "$dir/$MARKER" ] || die "$dir was not made by this script; not touching it"
    port=$(cat "$dir/port")
    bin=$(find_bin) || die "pg_ctl not found"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >&2
}

[ $# -eq 2 ] || usage
case "$1" in
    start) start "$2" ;;
    stop) stop "$2" ;;
    url) url_of "$2" ;;
    halt) halt "$2" ;;
    resume) resume "$2" ;;
    *) usage ;;
esac
