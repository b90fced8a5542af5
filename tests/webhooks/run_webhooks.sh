#!/usr/bin/env bash
# Webhook deliveries of a real labcat, verified with the `standardwebhooks` package
# (tests/webhooks/webhook_check.py): retries, a restart with deliveries pending, and two
# instances on one database delivering each event once.
#
#   tests/webhooks/run_webhooks.sh [path/to/labcat]      (default: target/debug/labcat)
#
# Builds nothing. Installs the package into a venv under target/ at the version pinned here.
set -euo pipefail

STANDARDWEBHOOKS_VERSION=1.3.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
binary=${1:-$root/target/debug/labcat}
case $binary in
    /*) ;;
    *) binary=$PWD/$binary ;;
esac
venv=${WEBHOOK_VENV:-$root/target/webhook-venv}
log() { echo "run_webhooks: $*" >&2; }

if [[ ! -x $binary ]]; then
    log "no labcat binary at $binary (run 'cargo build' first)"
    exit 2
fi

venv_ready() {
    [[ -x $venv/bin/python ]] &&
        "$venv/bin/python" - "$STANDARDWEBHOOKS_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import standardwebhooks.webhooks  # noqa: F401
sys.exit(0 if version("standardwebhooks") == sys.argv[1] else 1)
PY
}
if ! venv_ready; then
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
    log "creating $venv with standardwebhooks==$STANDARDWEBHOOKS_VERSION"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
    venv_ready || { log "standardwebhooks did not install into $venv"; exit 2; }
fi

# Under /tmp: as root the embedded cluster runs as `postgres`, which must reach it.
work=$(mktemp -d /tmp/labcat-webhooks.XXXXXXXX)
chmod 755 "$work"
cleanup() {
    local status=$?
    set +e
    # The check stops its labcat instances, even when it fails; a cluster left behind goes
    # here.
    local pidfile=$work/db/data/postmaster.pid
    for _ in $(seq 100); do
        [[ -e $pidfile ]] || break
        sleep 0.1
    done
    [[ -e $pidfile ]] && kill -INT "$(head -n1 "$pidfile")" 2>/dev/null && sleep 2
    if [[ $status -ne 0 ]]; then
        for err in "$work"/*.err; do
            [[ -e $err ]] || continue
            log "$(basename "$err") ends with:"
            tail -n 20 "$err" >&2
        done
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
"$venv/bin/python" "$root/tests/webhooks/webhook_check.py" "$binary" "$work"
