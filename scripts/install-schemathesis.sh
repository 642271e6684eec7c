#!/usr/bin/env bash
# Install schemathesis (PyPI, a pinned version) for the REST API's property
# test (tests/openapi.rs), with the machine's python3 -m pip.
#
# Idempotent: does nothing when `schemathesis` of that version is on PATH.
set -euo pipefail

VERSION=4.32.5

if command -v schemathesis >/dev/null 2>&1 &&
    schemathesis --version 2>/dev/null | grep -q "$VERSION"; then
    echo "install-schemathesis: schemathesis $VERSION is installed"
    exit 0
fi

command -v python3 >/dev/null 2>&1 ||
    { echo "install-schemathesis: python3 is missing (needed for schemathesis)" >&2; exit 1; }

echo "install-schemathesis: installing schemathesis==$VERSION (PyPI)"
python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION"
# a pyenv python needs its shims refreshed to show the new script
if command -v pyenv >/dev/null 2>&1; then
    pyenv rehash || true
fi
hash -r
command -v schemathesis >/dev/null 2>&1 || {
    echo "install-schemathesis: installed, but schemathesis is not on PATH" >&2
    exit 1
}
