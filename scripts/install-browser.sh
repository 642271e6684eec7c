#!/usr/bin/env bash
# Install Chromium for the dashboard's browser test (tests/dashboard.rs), from
# Debian's packages `chromium` and `chromium-driver` (and a font, so that
# screenshots show text).
#
# Idempotent: does nothing when /usr/bin/chromium is already there. Playwright's
# own browser download (`npx playwright install`) is not used: it fetches a
# browser build from outside the package registries, which this project's
# machines cannot reach. The test drives this Chromium with `playwright-core`.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) is installed"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 ||
    { echo "install-browser: $CHROMIUM is missing and apt-get is not available" >&2; exit 1; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
        { echo "install-browser: need root (or sudo) to install chromium" >&2; exit 1; }
    sudo=sudo
fi

echo "install-browser: installing chromium and chromium-driver (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core
[ -x "$CHROMIUM" ] || { echo "install-browser: $CHROMIUM still missing after the install" >&2; exit 1; }
echo "install-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed"
