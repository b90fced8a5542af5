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
port_free() {
    "$python" - "$1" <<'EOF'
import socket, sys
with socket.socket() as s:
    # As labcat binds (Rust's std sets SO_REUSEADDR): TIME_WAIT leftovers don't count.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
EOF
}
port=${LABCAT_SDK_PORT:-18081}
if ! port_free "$port"; then
    port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log "port ${LABCAT_SDK_PORT:-18081} is taken; using $port"
fi
url=http://127.0.0.1:$port/

# Under /tmp, not the caller's home: as root the cluster runs as `postgres`, which must be
# able to reach the data directory.
work=$(mktemp -d /tmp/labcat-sdk.XXXXXXXX)
chmod 755 "$work"
data_dir=$work/db
server_pid=

cleanup() {
    local status=$?
    set +e
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        # SIGTERM: labcat finishes in-flight requests, then stops its PostgreSQL cluster.
        kill -TERM "$server_pid"
        for _ in $(seq 300); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            log "labcat did not stop within 30 s; killing it"
            kill -KILL "$server_pid"
        fi
        wait "$server_pid" 2>/dev/null
    fi
    # The postmaster removes its pid file when it has shut down.
    local pidfile=$data_dir/data/postmaster.pid
    for _ in $(seq 300); do
        [[ -e $pidfile ]] || break
        sleep 0.1
    done
    if [[ -e $pidfile ]]; then
        local postmaster
        postmaster=$(head -n1 "$pidfile")
        log "PostgreSQL ($postmaster) still running after labcat exited; stopping it"
        kill -INT "$postmaster" 2>/dev/null
        sleep 2
    fi
    if [[ $status -ne 0 ]]; then
        log "failed; labcat's stderr ends with:"
        tail -n 20 "$work/serve.err" >&2 2>/dev/null
        if [[ -e $data_dir/postgres.log ]]; then
            log "postgres.log ends with:"
            tail -n 10 "$data_dir/postgres.log" >&2
        fi
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Always the embedded database: ignore any database the caller has configured.
labcat_env=(env -u DATABASE_URL -u LABCAT_CONFIG -u LABCAT__DATABASE__URL
    "LABCAT__DATABASE__DATA_DIR=$data_dir")

log "starting $binary serve on $url (data in $data_dir)"
# env execs labcat, so $! is labcat's own pid and SIGTERM reaches it.
"${labcat_env[@]}" "$binary" serve --addr "127.0.0.1:$port" \
    >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!

healthy() {
    "$python" - "${url}healthz" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}
for attempt in $(seq 120); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        log "labcat serve exited during start-up"
        exit 1
    fi
    healthy && break
    if [[ $attempt -eq 120 ]]; then
        log "labcat did not answer ${url}healthz within 60 s"
        exit 1
    fi
    sleep 0.5
done

# `keys create` attaches to the cluster the running server started.
alice_key=$("${labcat_env[@]}" "$binary" keys create --user alice --name sevenbridges-check 2>>"$work/keys.err")
bob_key=$("${labcat_env[@]}" "$binary" keys create --user bob --name sevenbridges-check --scopes read,write 2>>"$work/keys.err")
for key in "$alice_key" "$bob_key"; do
    if [[ ! $key =~ ^lc_[A-Za-z0-9]{40}$ ]]; then
        log "labcat keys create printed '$key', not a key; stderr:"
        cat "$work/keys.err" >&2
        exit 1
    fi
done

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
