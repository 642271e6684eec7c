#!/usr/bin/env bash
# The test suite: unit, integration, property and doc tests.
# Installs what the tests need first (Node.js and the npm packages of the
# JavaScript interop and browser tests, Debian's Chromium); each step does
# nothing when its tool is already there.
# PROPTEST_CASES raises the number of convergence cases (default 500).
set -euo pipefail
cd "$(dirname "$0")/.."
node_bin=$(./scripts/ensure-node.sh)
if [ -n "$node_bin" ]; then
    export PATH="$node_bin:$PATH"
fi
./scripts/install-js-deps.sh
if [ "${PERMITSYNC_SKIP_BROWSER:-0}" != 1 ]; then
    ./scripts/install-browser.sh
fi
cargo test --all-targets
cargo test --doc
