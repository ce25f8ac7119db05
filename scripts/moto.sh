#!/usr/bin/env bash
# Local AWS for tests: a moto server (DynamoDB, SQS, SES v2) on 127.0.0.1.
#
#   eval "$(scripts/moto.sh start)"   # installs moto into .venv/ if needed, starts a server on a
#                                     # free port and prints `export AWS_ENDPOINT_URL=...`,
#                                     # fake credentials, AWS_REGION and MOTO_PID for eval
#   scripts/moto.sh stop              # stops $MOTO_PID, or every server this script started
#   scripts/moto.sh install           # only installs moto into .venv/
#   scripts/moto.sh status            # prints the endpoint of each running server
#
# Every `start` starts its own server, so parallel test scripts do not share (or stop) one.
# The virtualenv is .venv/ at the repository root; each server's pid, port and log live in
# target/moto/. Only `export` lines go to stdout; progress goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
state="$root/target/moto"
# moto 5 serves every service from one endpoint; pin the major version for stable behaviour.
moto_spec=${MOTO_SPEC:-'moto[server]>=5,<6'}

log() { printf 'moto.sh: %s\n' "$*" >&2; }

install() {
    if [ -x "$venv/bin/moto_server" ]; then
        return 0
    fi
    log "installing $moto_spec into $venv"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$moto_spec" >&2
}

free_port() {
    "$venv/bin/python" - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

answers() {
    # Any HTTP answer means the server is up (an error status included; /moto-api/data.json
    # would serialise every resource: slow once tests have created many).
    "$venv/bin/python" - "$1" <<'EOF'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2).read(1)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
EOF
}

# Is this pid a moto server (and not a recycled pid)?
is_moto() {
    [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q moto_server
}

start() {
    install
    mkdir -p "$state"
    local port endpoint pid
    port=${MOTO_PORT:-$(free_port)}
    endpoint="http://127.0.0.1:$port"
    # setsid + redirects: the server outlives the command substitution of
    # `eval "$(scripts/moto.sh start)"` and does not hold its stdout open.
    setsid "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state/$port.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$state/$port.pid"
    for _ in $(seq 1 150); do
        if answers "$endpoint"; then
            log "listening on $endpoint (pid $pid, log $state/$port.log)"
            cat <<EOF
export AWS_ENDPOINT_URL=$endpoint
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export MOTO_PID=$pid
EOF
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "moto_server exited; its log:"
            cat "$state/$port.log" >&2
            rm -f "$state/$port.pid"
            exit 1
        fi
        sleep 0.2
    done
    log "moto_server did not answer on $endpoint within 30 s"
    stop_pid "$pid"
    exit 1
}

stop_pid() {
    local pid=$1
    if is_moto "$pid"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        log "stopped pid $pid"
    fi
    grep -lx "$pid" "$state"/*.pid 2>/dev/null | xargs -r rm -f
}

stop() {
    if [ -n "${MOTO_PID:-}" ]; then
        stop_pid "$MOTO_PID"
        return 0
    fi
    local found=0
    for file in "$state"/*.pid; do
        [ -e "$file" ] || continue
        found=1
        stop_pid "$(cat "$file")"
    done
    [ "$found" = 1 ] || log "not running"
}

status() {
    local found=0
    for file in "$state"/*.pid; do
        [ -e "$file" ] || continue
        local port endpoint
        port=$(basename "$file" .pid)
        endpoint="http://127.0.0.1:$port"
        if is_moto "$(cat "$file")" && answers "$endpoint"; then
            echo "$endpoint"
            found=1
        fi
    done
    [ "$found" = 1 ] || { log "not running"; exit 1; }
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    install) install ;;
    status) status ;;
    *)
        echo "usage: $0 start|stop|install|status" >&2
        exit 2
        ;;
esac
