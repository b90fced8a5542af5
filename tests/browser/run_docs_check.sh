#!/usr/bin/env bash
# Opens /docs of a live labcat in headless Chromium (tests/browser/docs_check.mjs) and saves
# a screenshot to target/browser/docs.png.
#
#   tests/browser/run_docs_check.sh [path/to/labcat]      (default: target/debug/labcat)
#
# Builds nothing: give it a built binary. Uses Debian's Chromium (/usr/bin/chromium,
# installed with apt-get when missing and run as root) and playwright-core from npm at the
# version tests/browser/package-lock.json pins; no browser is downloaded.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
binary=${1:-$root/target/debug/labcat}
here=$root/tests/browser
LIVE_LOG_NAME=run_docs_check
log() { echo "run_docs_check: $*" >&2; }

if [[ ! -x /usr/bin/chromium ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing Debian's chromium with apt-get"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
    else
        log "Chromium is needed at /usr/bin/chromium (Debian: apt-get install chromium)"
        exit 2
    fi
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "node and npm are needed"
    exit 2
fi

# node_modules matches the lock file, or is installed afresh from it.
if ! (cd "$here" && npm ls --omit=dev >/dev/null 2>&1); then
    log "installing playwright-core with npm ci"
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

# shellcheck source=../support/live_labcat.sh
source "$root/tests/support/live_labcat.sh"
live_labcat_start "$binary"

LABCAT_URL=$LABCAT_URL SCREENSHOT=$root/target/browser/docs.png \
    node "$here/docs_check.mjs"
