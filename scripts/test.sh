#!/usr/bin/env bash
# The test suite: unit, integration, property and doc tests.
# Installs what the tests need first (Node.js and the npm packages of the
# JavaScript interop and browser tests, Debian's Chromium, Debian's
# PostgreSQL, schemathesis from PyPI); each step does nothing when its tool
# is already there.
# PROPTEST_CASES raises the number of convergence cases (default 500).
# PERMITSYNC_API_FUZZ=long runs the REST API's property test (tests/openapi.rs)
# with many more examples and its stateful phase (minutes instead of seconds).
#
# PostgreSQL: a throwaway cluster (scripts/pg.sh) runs for the tests and is
# stopped and deleted on exit; the tests find it in
# PERMITSYNC_TEST_DATABASE_URL. Set that variable to use a server of your own
# instead (the tests create and drop databases on it), or PERMITSYNC_SKIP_PG=1
# to skip the PostgreSQL tests (without either, they fail).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${PERMITSYNC_SKIP_PG:-0}" != 1 ] && [ -z "${PERMITSYNC_TEST_DATABASE_URL:-}" ]; then
    pg_dir=$(mktemp -d -t permitsync-pg.XXXXXX)
    trap './scripts/pg.sh stop "$pg_dir"' EXIT
    PERMITSYNC_TEST_DATABASE_URL=$(./scripts/pg.sh start "$pg_dir")
    export PERMITSYNC_TEST_DATABASE_URL
fi
node_bin=$(./scripts/ensure-node.sh)
if [ -n "$node_bin" ]; then
    export PATH="$node_bin:$PATH"
fi
./scripts/install-js-deps.sh
./scripts/install-schemathesis.sh
if [ "${PERMITSYNC_SKIP_BROWSER:-0}" != 1 ]; then
    ./scripts/install-browser.sh
fi
cargo test --all-targets
cargo test --doc
