#!/usr/bin/env bash
# Install the JavaScript interop harness's dependencies (tests/js) exactly as
# pinned in tests/js/package-lock.json, with `npm ci`.
#
# Idempotent: when tests/js/node_modules was installed from the same lock file
# (a stamp holding the lock file's SHA-256), nothing is done. Pass --force to
# reinstall anyway.
#
# Install scripts are not run (--ignore-scripts): the only dependency that has
# one is cbor-extract (an optional native speed-up of cbor-x), whose prebuilt
# binary ships as a package and loads without it; cbor-x falls back to pure
# JavaScript when it is absent.
set -euo pipefail
cd "$(dirname "$0")/../tests/js"

die() {
    echo "install-js-deps: $*" >&2
    exit 1
}

command -v node >/dev/null 2>&1 || die "node is not installed (Node.js >= 20 is needed for the JS interop tests)"
command -v npm >/dev/null 2>&1 || die "npm is not installed (it comes with Node.js >= 20)"

node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js >= 20 is needed, found $(node --version)"

[ -f package-lock.json ] || die "tests/js/package-lock.json is missing"

stamp=node_modules/.permitsync-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)

if [ "${1:-}" != "--force" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "install-js-deps: tests/js/node_modules is up to date"
    exit 0
fi

echo "install-js-deps: npm ci in tests/js (node $(node --version), npm $(npm --version 2>/dev/null))"
npm ci --no-audit --no-fund --ignore-scripts
echo "$want" >"$stamp"
echo "install-js-deps: done"
