#!/usr/bin/env bash
# Runs the five Lambda functions locally with cargo-lambda against a moto server, and invokes
# each once with its sample event from events/lambda/ (not part of CI: the first invocation of
# each function compiles it). The api function gets API Gateway HTTP API (payload 2.0) requests:
# events/lambda/api.json (GET /api/v1/automations) and api-create-automation.json (POST of the
# seed's body), both with the samples' API key, which the local setup stores.
#
#   scripts/invoke-local.sh             # intake, evaluate, execute, resume, api
#   scripts/invoke-local.sh intake      # only these functions
#
# Steps: installs moto and cargo-lambda (scripts/python-tools.sh) if needed; starts a moto server on
# 127.0.0.1; creates a local deployment on it (table, queues, sender identity; the examples
# stored in the table) and writes the functions' environment to a file; starts
# `cargo lambda watch` on 127.0.0.1 with that environment; invokes; stops everything it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

scripts/moto.sh install
scripts/python-tools.sh lambda
lambda_bin=$(scripts/python-tools.sh path lambda)
export PATH="$lambda_bin:$root/.venv/bin:$PATH"

functions=("$@")
[ ${#functions[@]} -gt 0 ] || functions=(intake evaluate execute resume api simulate)

state=$(mktemp -d)
watch_pid=
cleanup() {
    if [ -n "$watch_pid" ]; then
        kill -- "-$watch_pid" 2>/dev/null || true
    fi
    scripts/moto.sh stop >/dev/null 2>&1 || true
    rm -rf "$state"
}
trap cleanup EXIT

eval "$(scripts/moto.sh start)"

echo "== local deployment on $AWS_ENDPOINT_URL" >&2
cargo run -q -p crmflow-tests --bin local-setup -- "$state/functions.env" crmflow-local >&2
cat "$state/functions.env" >&2

port=$("$root/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "== cargo lambda watch on 127.0.0.1:$port (log: $state/watch.log)" >&2
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" \
    --env-file "$state/functions.env" >"$state/watch.log" 2>&1 </dev/null &
watch_pid=$!
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        break
    fi
    sleep 0.2
done

for f in "${functions[@]}"; do
    samples=("events/lambda/$f.json")
    [ "$f" != api ] || samples+=(events/lambda/api-create-automation.json)
    for sample in "${samples[@]}"; do
        echo "== cargo lambda invoke $f --data-file $sample" >&2
        cargo lambda invoke "$f" --invoke-address 127.0.0.1 --invoke-port "$port" \
            --data-file "$sample"
        echo
    done
done

echo "== the functions' logs" >&2
grep -E '^\{' "$state/watch.log" | grep -v AWS_LAMBDA_MAX_CONCURRENCY >&2 || true
