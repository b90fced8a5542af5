#!/usr/bin/env bash
# Drives labcat's web UI (/ui) of a live labcat in headless Chromium (tests/browser/ui_check.mjs):
# sign in, search, edit and save, live updates, a conflict from a second browser, storage and
# network checks, axe-core on every page. Screenshots go to target/browser/ui-*.png.
#
#   tests/browser/run_ui_check.sh [path/to/labcat]      (default: target/debug/labcat)
#
# Builds nothing: give it a built binary. Uses Debian's Chromium (/usr/bin/chromium,
# installed with apt-get when missing and run as root), and playwright-core and axe-core from
# npm at the versions tests/browser/package-lock.json pins; no browser is downloaded.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
binary=${1:-$root/target/debug/labcat}
here=$root/tests/browser
LIVE_LOG_NAME=run_ui_check
log() { echo "run_ui_check: $*" >&2; }

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
    log "installing playwright-core and axe-core with npm ci"
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

# shellcheck source=../support/live_labcat.sh
source "$root/tests/support/live_labcat.sh"
live_labcat_start "$binary"
# Another user, whose entries the admin's pages must not show.
BOB_KEY=$(live_labcat_keys_create --user bob --scopes read,write)

LABCAT_URL=$LABCAT_URL ADMIN_KEY=$ADMIN_KEY BOB_KEY=$BOB_KEY SCREENSHOTS=$root/target/browser \
    node "$here/ui_check.mjs"
