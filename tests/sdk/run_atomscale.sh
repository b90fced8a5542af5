#!/usr/bin/env bash
# Checks labcat against the real Atomscale Python SDK (PyPI `atomscale`).
#
#   tests/sdk/run_atomscale.sh [path/to/labcat]      (default: target/debug/labcat)
#
# Builds nothing: give it a built binary. It starts `labcat serve` on a fresh embedded
# database in a temporary directory under /tmp, creates API keys for the users alice and
# bob with `labcat keys create`, and runs tests/sdk/atomscale_search.py (which creates
# entries for both over HTTP and checks what `atomscale.Client.search()` returns) in a
# virtualenv with the SDK installed. The server, its PostgreSQL cluster and the temporary
# directory are removed at the end, whether the check passed or not.
#
# Environment:
#   LABCAT_SDK_PORT   port to listen on (default 18080; a free one is picked if it is taken)
#   ATOMSCALE_VENV    virtualenv to use or create (default target/sdk-venv)
set -euo pipefail

ATOMSCALE_VERSION=0.21.10

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
binary=${1:-$root/target/debug/labcat}
case $binary in
    /*) ;;
    *) binary=$PWD/$binary ;;
esac
if [[ ! -x $binary ]]; then
    echo "run_atomscale: no labcat binary at $binary (run 'cargo build' first)" >&2
    exit 2
fi
venv=${ATOMSCALE_VENV:-$root/target/sdk-venv}

log() { echo "run_atomscale: $*" >&2; }

# --- Python virtualenv with the SDK ------------------------------------------------------
venv_ready() {
    [[ -x $venv/bin/python ]] &&
        "$venv/bin/python" - "$ATOMSCALE_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
import atomscale  # noqa: F401  (the import itself must work)
sys.exit(0 if version("atomscale") == sys.argv[1] else 1)
EOF
}

if ! venv_ready; then
    # Debian ships python3 without venv/ensurepip; install them when we can.
    if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
            log "installing python3 and python3-venv with apt-get"
            apt-get update
            DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv
        else
            log "python3 with the venv module is needed (Debian: apt-get install python3-venv)"
            exit 2
        fi
    fi
    log "creating $venv with atomscale==$ATOMSCALE_VERSION"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "atomscale==$ATOMSCALE_VERSION"
    venv_ready || { log "atomscale did not install into $venv"; exit 2; }
fi
python=$venv/bin/python

# --- a throwaway labcat ------------------------------------------------------------------
# shellcheck source=../support/live_labcat.sh
source "$root/tests/support/live_labcat.sh"
LIVE_LOG_NAME=run_atomscale
LIVE_PORT=${LABCAT_SDK_PORT:-18080}
live_labcat_start "$binary"
url=$LABCAT_URL/
alice_key=$(live_labcat_keys_create --user alice --name atomscale-sdk-check)
bob_key=$(live_labcat_keys_create --user bob --name atomscale-sdk-check --scopes read,write)

log "running tests/sdk/atomscale_search.py"
LABCAT_URL=$url ALICE_KEY=$alice_key BOB_KEY=$bob_key ADMIN_KEY=$ADMIN_KEY \
    "$python" "$root/tests/sdk/atomscale_search.py"
