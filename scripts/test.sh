#!/usr/bin/env bash
# The test suite: unit, integration, property and doc tests.
# PROPTEST_CASES raises the number of convergence cases (default 500).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --all-targets
cargo test --doc
