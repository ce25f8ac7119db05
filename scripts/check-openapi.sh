#!/usr/bin/env bash
# The management API's OpenAPI document, checked three ways (CI runs this from scripts/test.sh):
#   1. docs/openapi.json is what the code generates (`crmflow openapi`); the test
#      `the_committed_document_is_what_the_code_generates` (tests/tests/api) checks it too;
#   2. it is a valid OpenAPI 3.1 document (openapi-spec-validator);
#   3. schemathesis, with all its checks (its default), runs against `crmflow serve`: no 5xx,
#      every response conforms to the document (status, content type, headers, schema), valid
#      requests are accepted and invalid ones refused (scripts/schemathesis.toml says which
#      answers are right for requests valid by the document that the API still refuses).
# Regenerate the document after changing a route or a type it describes:
#   cargo run -q -p crmflow-cli -- openapi > docs/openapi.json
# Tools: scripts/python-tools.sh api (pinned), and curl. SCHEMATHESIS_MAX_EXAMPLES bounds the run
# (default 15 examples per operation and phase: about a minute on two cores). One worker: with
# several, hypothesis parses lambdas' source in threads, which this Python (3.11) can fail at
# ("AST constructor recursion depth mismatch", a CPython bug) as a runtime error of the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/python-tools.sh api
cargo build -q -p crmflow-cli
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
crmflow="$target_dir/debug/crmflow"

generated=$(mktemp)
log=$(mktemp)
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -f "$generated" "$log"
}
trap cleanup EXIT

"$crmflow" openapi >"$generated"
if ! diff -q docs/openapi.json "$generated" >/dev/null; then
    diff -u docs/openapi.json "$generated" | head -40 >&2
    echo "check-openapi.sh: docs/openapi.json is not what the code generates; run:" >&2
    echo "    cargo run -q -p crmflow-cli -- openapi > docs/openapi.json" >&2
    exit 1
fi
.venv/bin/openapi-spec-validator docs/openapi.json

# A server on a free loopback port with a known key, stopped on exit whatever happens.
key="cfk_schemathesis_$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
CRMFLOW_API_KEY="$key" "$crmflow" serve --port 0 --automations examples >"$log" 2>&1 &
server=$!
url=""
for _ in $(seq 1 100); do
    url=$(sed -n 's|^crmflow API on \(http://[^ ]*\)/api/v1 .*|\1|p' "$log")
    [ -n "$url" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$url" ] || { echo "check-openapi.sh: crmflow serve did not start" >&2; cat "$log" >&2; exit 1; }

# Runs to read, complete and cancel: the sample events, posted through the API (the document's
# links lead schemathesis from a list of runs to each run's operations).
while IFS= read -r event; do
    [ -n "$event" ] || continue
    status=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $key" \
        -H 'Content-Type: application/json' -d "$event" "$url/api/v1/events")
    [ "$status" = 202 ] || { echo "check-openapi.sh: POST /api/v1/events answered $status: $event" >&2; exit 1; }
done <events/examples.jsonl
sleep 1

.venv/bin/st --no-color --config-file scripts/schemathesis.toml run "$url/api/v1/openapi.json" \
    --header "Authorization: Bearer $key" \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-15}" \
    --seed 1
