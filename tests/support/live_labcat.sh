# Sourced, not run: starts a throwaway `labcat serve` for a check that needs a live server.
#
#   source tests/support/live_labcat.sh
#   live_labcat_start path/to/labcat [extra env assignments...]
#
# It runs on a fresh embedded database in a temporary directory under /tmp (as
# tests/sdk/run_atomscale.sh does) and sets:
#   LABCAT_URL   http://127.0.0.1:<port> (no trailing slash)
#   ADMIN_KEY    the admin key the first start prints
#   LIVE_WORK    the temporary directory (serve.out/serve.err are in it)
# An EXIT trap stops the server and its PostgreSQL cluster and removes the directory,
# whether the check passed or not. `live_labcat_keys_create ARGS...` runs
# `labcat keys create ARGS...` against the same database and prints the secret.

live_log() { echo "${LIVE_LOG_NAME:-live_labcat}: $*" >&2; }

live_port_free() {
    python3 - "$1" <<'EOF'
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

# python3 rather than curl: a fresh machine may not have curl.
live_healthy() {
    python3 - "$LABCAT_URL/healthz" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

live_labcat_cleanup() {
    local status=$?
    set +e
    if [[ -n ${LIVE_PID:-} ]] && kill -0 "$LIVE_PID" 2>/dev/null; then
        # SIGTERM: labcat finishes in-flight requests, then stops its PostgreSQL cluster.
        kill -TERM "$LIVE_PID"
        for _ in $(seq 300); do
            kill -0 "$LIVE_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$LIVE_PID" 2>/dev/null; then
            live_log "labcat did not stop within 30 s; killing it"
            kill -KILL "$LIVE_PID"
        fi
        wait "$LIVE_PID" 2>/dev/null
    fi
    local pidfile=${LIVE_WORK:-/nonexistent}/db/data/postmaster.pid
    for _ in $(seq 300); do
        [[ -e $pidfile ]] || break
        sleep 0.1
    done
    if [[ -e $pidfile ]]; then
        local postmaster
        postmaster=$(head -n1 "$pidfile")
        live_log "PostgreSQL ($postmaster) still running after labcat exited; stopping it"
        kill -INT "$postmaster" 2>/dev/null
        sleep 2
    fi
    if [[ $status -ne 0 && -n ${LIVE_WORK:-} ]]; then
        live_log "failed; labcat's stderr ends with:"
        tail -n 20 "$LIVE_WORK/serve.err" >&2 2>/dev/null
    fi
    [[ -n ${LIVE_WORK:-} ]] && rm -rf "$LIVE_WORK"
    exit "$status"
}

live_labcat_start() {
    local binary=$1
    shift
    case $binary in
        /*) ;;
        *) binary=$PWD/$binary ;;
    esac
    if [[ ! -x $binary ]]; then
        live_log "no labcat binary at $binary (run 'cargo build' first)"
        exit 2
    fi
    LIVE_BINARY=$binary
    local port=${LIVE_PORT:-0}
    if [[ $port == 0 ]] || ! live_port_free "$port"; then
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    fi
    LABCAT_URL=http://127.0.0.1:$port
    # Under /tmp, not the caller's home: as root the cluster runs as `postgres`, which must
    # be able to reach the data directory.
    LIVE_WORK=$(mktemp -d /tmp/labcat-live.XXXXXXXX)
    chmod 755 "$LIVE_WORK"
    trap live_labcat_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # Always the embedded database: ignore any database the caller has configured.
    LIVE_ENV=(env -u DATABASE_URL -u LABCAT_CONFIG -u LABCAT__DATABASE__URL
        "LABCAT__DATABASE__DATA_DIR=$LIVE_WORK/db" "$@")
    live_log "starting $binary serve on $LABCAT_URL"
    # env execs labcat, so $! is labcat's own pid and SIGTERM reaches it.
    "${LIVE_ENV[@]}" "$binary" serve --addr "127.0.0.1:$port" \
        >"$LIVE_WORK/serve.out" 2>"$LIVE_WORK/serve.err" &
    LIVE_PID=$!
    local attempt
    for attempt in $(seq 120); do
        if ! kill -0 "$LIVE_PID" 2>/dev/null; then
            live_log "labcat serve exited during start-up"
            exit 1
        fi
        live_healthy && break
        if [[ $attempt -eq 120 ]]; then
            live_log "labcat did not answer $LABCAT_URL/healthz within 60 s"
            exit 1
        fi
        sleep 0.5
    done
    # The first start on an empty embedded database prints an admin key.
    ADMIN_KEY=$(grep -oE 'lc_[A-Za-z0-9]{40}' "$LIVE_WORK/serve.out" | head -n1 || true)
    if [[ -z $ADMIN_KEY ]]; then
        live_log "labcat serve printed no admin key on a fresh database; its stdout was:"
        cat "$LIVE_WORK/serve.out" >&2
        exit 1
    fi
    export LABCAT_URL ADMIN_KEY
}

live_labcat_keys_create() {
    local key
    key=$("${LIVE_ENV[@]}" "$LIVE_BINARY" keys create "$@" 2>>"$LIVE_WORK/keys.err")
    if [[ ! $key =~ ^lc_[A-Za-z0-9]{40}$ ]]; then
        live_log "labcat keys create printed '$key', not a key; stderr:"
        cat "$LIVE_WORK/keys.err" >&2
        exit 1
    fi
    echo "$key"
}
