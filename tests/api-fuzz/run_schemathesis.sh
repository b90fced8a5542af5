#!/usr/bin/env bash
# Property-based API tests: schemathesis against a live labcat, driven by the OpenAPI
# description the server itself serves at /openapi.json.
#
#   tests/api-fuzz/run_schemathesis.sh [path/to/labcat]   (default: target/debug/labcat)
#
# Builds nothing: give it a built binary. It starts `labcat serve` on a fresh embedded
# database (tests/support/live_labcat.sh), validates /openapi.json as OpenAPI 3.1 with
# openapi-spec-validator, creates a read+write key with `labcat keys create`, and runs every
# schemathesis phase (examples, coverage, fuzzing, stateful) with every check but the few
# that tests/api-fuzz/schemathesis.toml turns off (it says why), a fixed seed and a bounded
# number of examples. Reports (JUnit, NDJSON) go to target/schemathesis/.
#
# Environment:
#   FUZZ_VENV   virtualenv to use or create (default target/fuzz-venv)
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
SPEC_VALIDATOR_VERSION=0.9.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
binary=${1:-$root/target/debug/labcat}
venv=${FUZZ_VENV:-$root/target/fuzz-venv}
reports=$root/target/schemathesis
LIVE_LOG_NAME=run_schemathesis
log() { echo "run_schemathesis: $*" >&2; }

# --- Python virtualenv with schemathesis and the spec validator -------------------------
venv_ready() {
    [[ -x $venv/bin/python ]] &&
        "$venv/bin/python" - "$SCHEMATHESIS_VERSION" "$SPEC_VALIDATOR_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
ok = (version("schemathesis"), version("openapi-spec-validator")) == tuple(sys.argv[1:3])
sys.exit(0 if ok else 1)
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
    log "creating $venv with schemathesis==$SCHEMATHESIS_VERSION"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" "openapi-spec-validator==$SPEC_VALIDATOR_VERSION"
    venv_ready || { log "schemathesis did not install into $venv"; exit 2; }
fi

# --- a throwaway labcat --------------------------------------------------------------------
# shellcheck source=../support/live_labcat.sh
source "$root/tests/support/live_labcat.sh"
# Rate limits off: the fuzzer's bursts would otherwise be spent on 429s.
live_labcat_start "$binary" LABCAT__RATE_LIMIT__ENABLED=false
key=$(live_labcat_keys_create --user fuzz --name schemathesis --scopes read,write)

mkdir -p "$reports"
curl -fsS "$LABCAT_URL/openapi.json" -o "$reports/openapi.json"
log "validating /openapi.json"
"$venv/bin/openapi-spec-validator" "$reports/openapi.json"
version=$("$venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["openapi"])' "$reports/openapi.json")
if [[ $version != 3.1.* ]]; then
    log "/openapi.json is OpenAPI $version, not 3.1"
    exit 1
fi

log "running schemathesis $SCHEMATHESIS_VERSION"
status=0
"$venv/bin/schemathesis" --config-file "$root/tests/api-fuzz/schemathesis.toml" run \
    "$LABCAT_URL/openapi.json" \
    --header "X-API-KEY: $key" \
    --max-redirects 0 \
    --report junit,ndjson --report-dir "$reports" \
    --no-color || status=$?

# Whatever schemathesis decided, a 500 logged by the server is a failure.
if grep '"level":"ERROR"' "$LIVE_WORK/serve.err" | grep -v 'actix_http::h1::dispatcher' >&2; then
    log "labcat logged errors (above)"
    status=1
fi
exit "$status"
