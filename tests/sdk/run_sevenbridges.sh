#!/usr/bin/env bash
# Checks labcat's /v2 surface against the real Seven Bridges Python client (PyPI
# `sevenbridges-python`), and the curl example of the Cavatica seed (PATCH a file's metadata).
#
#   tests/sdk/run_sevenbridges.sh [path/to/labcat]      (default: target/debug/labcat)
#
# Builds nothing: give it a built binary. It starts `labcat serve` on a fresh embedded
# database in a temporary directory under /tmp, creates API keys for the users alice and
# bob with `labcat keys create`, and runs tests/sdk/sevenbridges_check.py (which creates
# entries over the native API and drives `sevenbridges.Api(url=<labcat>/v2, ...)`) in a
# virtualenv with the client installed. The server, its PostgreSQL cluster and the
# temporary directory are removed at the end, whether the check passed or not.
#
# Environment:
#   LABCAT_SDK_PORT   port to listen on (default 18081; a free one is picked if it is taken)
#   SEVENBRIDGES_VENV virtualenv to use or create (default target/sbg-venv)
set -euo pipefail

SEVENBRIDGES_VERSION=2.11.2

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
binary=${1:-$root/target/debug/labcat}
case $binary in
    /*) ;;
    *) binary=$PWD/$binary ;;
esac
if [[ ! -x $binary ]]; then
    echo "run_sevenbridges: no labcat binary at $binary (run 'cargo build' first)" >&2
    exit 2
fi
venv=${SEVENBRIDGES_VENV:-$root/target/sbg-venv}

log() { echo "run_sevenbridges: $*" >&2; }

# --- Python virtualenv with the SDK ------------------------------------------------------
venv_ready() {
    [[ -x $venv/bin/python ]] &&
        "$venv/bin/python" - "$SEVENBRIDGES_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
import sevenbridges  # noqa: F401  (the import itself must work)
sys.exit(0 if version("sevenbridges-python") == sys.argv[1] else 1)
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
    log "creating $venv with sevenbridges-python==$SEVENBRIDGES_VERSION"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "sevenbridges-python==$SEVENBRIDGES_VERSION"
    venv_ready || { log "sevenbridges-python did not install into $venv"; exit 2; }
fi
python=$venv/bin/python

# The seed's example is a curl command; run it as curl.
if ! command -v curl >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing curl with apt-get"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y curl
    else
        log "curl is needed (Debian: apt-get install curl)"
        exit 2
    fi
fi

# --- a throwaway labcat ------------------------------------------------------------------
# shellcheck source=../support/live_labcat.sh
source "$root/tests/support/live_labcat.sh"
LIVE_LOG_NAME=run_sevenbridges
LIVE_PORT=${LABCAT_SDK_PORT:-18081}
live_labcat_start "$binary"
url=$LABCAT_URL/
alice_key=$(live_labcat_keys_create --user alice --name sevenbridges-check)
bob_key=$(live_labcat_keys_create --user bob --name sevenbridges-check --scopes read,write)

log "running tests/sdk/sevenbridges_check.py"
LABCAT_URL=$url ALICE_KEY=$alice_key BOB_KEY=$bob_key \
    "$python" "$root/tests/sdk/sevenbridges_check.py"

# The seed's curl example as written there, with only the host, token and file id
# swapped: the answer must be the file's full metadata, old keys and the new one.
log "running the seed's curl example against /v2"
file_id=$("$python" - "${url}data_entries" "$alice_key" <<'EOF'
import sys, requests
body = {"raw_name": "seed.bam", "char_source_type": "xps",
        "metadata": {"library_id": "12345", "platform": "my_platform"}}
response = requests.post(sys.argv[1], json=body, headers={"X-API-KEY": sys.argv[2]}, timeout=30)
response.raise_for_status()
print(response.json()["data_id"])
EOF
)
answer=$(curl --data '{"foo": "bar"}' -s -H "X-SBG-Auth-Token: $alice_key" \
    -H "content-type: application/json" -X PATCH "${url}v2/files/$file_id/metadata")
"$python" - "$answer" <<'EOF'
import json, sys
expected = {"library_id": "12345", "platform": "my_platform", "foo": "bar"}
answer = json.loads(sys.argv[1])
if answer != expected:
    sys.exit(f"FAIL the seed's curl example: expected {expected}, got {answer}")
print("ok   the seed's curl example returns the file's full metadata", flush=True)
EOF
