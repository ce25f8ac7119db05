#!/usr/bin/env bash
# Cold-start benchmark of the six Lambda functions (a benchmark, not a test: CI does not run it).
#
#   scripts/bench-coldstart.sh                    # builds native release binaries, 15 starts each
#   scripts/bench-coldstart.sh --runs 31          # more starts
#   scripts/bench-coldstart.sh --bin-dir DIR      # takes DIR/{intake,evaluate,execute,resume,api,simulate,hello-lambda}
#
# Each start execs a binary against a fake Lambda Runtime API on 127.0.0.1 (Python, below) with
# the environment Lambda gives a function, and measures
#   - init: from the exec to the function's first `GET /2018-06-01/runtime/invocation/next`;
#   - first invocation: from handing out a sample event (events/lambda/<function>.json, one
#     record; for api an API Gateway request, GET /api/v1/automations with the samples' key, for simulate
#     POST /api/v1/automations/{id}/test of an example) to
#     the function's `POST /2018-06-01/runtime/invocation/<id>/response`.
# The process is then killed, and the next start is a new process. The baseline is
# hello-lambda (tests/hello-lambda), a hello-world lambda_runtime function built with the same
# release profile in the same cargo run. The binaries take turns (one start of each per round),
# so load from other work on the machine falls on all of them alike.
#
# The functions run against a moto server (scripts/moto.sh) holding a local deployment
# (local-setup). Each binary gets one unmeasured start first: it warms the page cache, and
# resume's first sweep on a fresh table reads a day of minute buckets. Measured invocations
# therefore meet a deployment that has seen the sample once (intake, evaluate and execute take
# their duplicate paths, which still read and write the table and queues).
#
# Prints the median (and min-max) per binary in ms and the ratio of each median to the
# hello-world's. The binaries are native (this machine's architecture), not the arm64 Lambda
# build: the figures compare the functions' start-up work with the runtime's, here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

runs=15
bin_dir=
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --bin-dir) bin_dir=$2; shift 2 ;;
        *)
            echo "usage: $0 [--runs N] [--bin-dir DIR]" >&2
            exit 2
            ;;
    esac
done

binaries=(hello-lambda intake evaluate execute resume api simulate)
if [ -z "$bin_dir" ]; then
    args=()
    for b in "${binaries[@]}"; do args+=(--bin "$b"); done
    echo "== cargo build --release ${args[*]}" >&2
    cargo build --release "${args[@]}"
    bin_dir=${CARGO_TARGET_DIR:-$root/target}/release
fi
for b in "${binaries[@]}"; do
    [ -x "$bin_dir/$b" ] || { echo "bench-coldstart.sh: no executable $bin_dir/$b" >&2; exit 1; }
done

# The functions' logs and environment file stay here after the run.
state=${CARGO_TARGET_DIR:-$root/target}/bench-coldstart
case "$state" in /*) ;; *) state="$root/$state" ;; esac
mkdir -p "$state"
rm -f "$state"/*.log
# Started from fresh copies, as Lambda starts a function from the files it unpacked: cargo's
# outputs are hard links into target/, and exec'ing those measured 0.6 to 0.9 ms slower per
# start for every binary (the same files, copied, in the same sitting).
rm -rf "$state/bin"
mkdir -p "$state/bin"
for b in "${binaries[@]}"; do cp "$bin_dir/$b" "$state/bin/$b"; done
bin_dir="$state/bin"
cleanup() {
    scripts/moto.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
eval "$(scripts/moto.sh start)"
echo "== local deployment on $AWS_ENDPOINT_URL" >&2
cargo run -q -p crmflow-tests --bin local-setup -- "$state/functions.env" crmflow-bench >&2

"$root/.venv/bin/python" - "$bin_dir" "$runs" "$state" "${binaries[@]}" <<'PY'
import http.server
import json
import os
import signal
import statistics
import sys
import threading
import time
import uuid

bin_dir, runs, state, binaries = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
NEXT = "/2018-06-01/runtime/invocation/next"

with open(os.path.join(state, "functions.env")) as f:
    function_env = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


class Start:
    """One process start. Times are time.perf_counter_ns() values."""

    def __init__(self, event, invoke):
        self.event = event
        self.invoke = invoke  # False: the process is killed at its first poll
        self.request_id = str(uuid.uuid4())
        self.exec_at = self.next_at = self.sent_at = self.response_at = None
        self.response = self.error = None
        self.done = threading.Event()
        self.killed = threading.Event()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A killed process leaves a reset connection behind: nothing to report.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Runtime(http.server.BaseHTTPRequestHandler):
    """The Lambda Runtime API, as much of it as a function's first invocation uses."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        now = time.perf_counter_ns()
        start = self.server.start
        if self.path != NEXT:
            self.send_error(404)
            return
        if start.next_at is not None or not start.invoke:
            start.next_at = start.next_at or now
            start.done.set()
            # Hold the poll until the process is killed.
            start.killed.wait(120)
            self.close_connection = True
            return
        start.next_at = now
        body = start.event
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", start.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 900_000))
        self.send_header(
            "Lambda-Runtime-Invoked-Function-Arn",
            "arn:aws:lambda:us-east-1:123456789012:function:crmflow-bench",
        )
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        start.sent_at = time.perf_counter_ns()

    def do_POST(self):
        now = time.perf_counter_ns()
        start = self.server.start
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "16")
        self.end_headers()
        self.wfile.write(b'{"status":"OK"}\n')
        if self.path.endswith("/response"):
            start.response_at = now
            start.response = body
        else:
            start.error = f"{self.path}: {body[:2000].decode(errors='replace')}"


def environment(binary, runtime_api):
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": f"crmflow-bench-{binary}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/03/02/[$LATEST]00000000000000000000000000000000",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/crmflow-bench-{binary}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": os.environ["AWS_REGION"],
        "AWS_DEFAULT_REGION": os.environ["AWS_REGION"],
        "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
        "AWS_SESSION_TOKEN": "bench-session-token",
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "_HANDLER": "bootstrap",
    }
    if binary != "hello-lambda":
        env.update(function_env)
    return env


def sample(binary):
    name = "resume" if binary == "hello-lambda" else binary
    with open(os.path.join("events", "lambda", f"{name}.json"), "rb") as f:
        return f.read()


def start_once(binary, invoke, timeout=60):
    """Starts the binary once. With invoke, hands it the sample event and waits for the answer;
    without, kills it at its first poll. Returns the figures in ms."""
    start = Start(sample(binary), invoke)
    # A runtime API server (a port) per start: a request of the previous process, killed
    # while polling, cannot be taken for this one's.
    server = Server(("127.0.0.1", 0), Runtime)
    server.start = start
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runtime_api = f"127.0.0.1:{server.server_address[1]}"
    log = open(os.path.join(state, f"{binary}.log"), "ab")
    actions = [(os.POSIX_SPAWN_DUP2, log.fileno(), 1), (os.POSIX_SPAWN_DUP2, log.fileno(), 2)]
    path = os.path.join(bin_dir, binary)
    env = environment(binary, runtime_api)
    try:
        start.exec_at = time.perf_counter_ns()
        pid = os.posix_spawn(path, [path], env, file_actions=actions)
        # With invoke, done is set by the poll after the answer (the process is idle then).
        finished = start.done.wait(timeout)
        os.kill(pid, signal.SIGKILL)
        _, _, usage = os.wait4(pid, 0)
    finally:
        start.killed.set()
        log.close()
        server.shutdown()
        server.server_close()
    if not finished:
        sys.exit(f"{binary}: no {'answer' if invoke else 'poll'} within {timeout} s (log: {log.name})")
    if start.error:
        sys.exit(f"{binary}: the invocation failed: {start.error}")
    figures = {
        "init": (start.next_at - start.exec_at) / 1e6,
        "cpu": (usage.ru_utime + usage.ru_stime) * 1e3,
    }
    if invoke:
        answer = json.loads(start.response)
        if isinstance(answer, dict) and answer.get("batchItemFailures"):
            sys.exit(f"{binary}: the record failed: {answer}")
        if binary in ("api", "simulate") and not 200 <= answer.get("statusCode", 0) < 300:
            sys.exit(f"{binary}: the request failed: {answer}")
        figures["first"] = (start.response_at - start.sent_at) / 1e6
    return figures


for binary in binaries:
    print(f"warm-up start of {binary}", file=sys.stderr)
    start_once(binary, True, timeout=300)
polls = {b: [] for b in binaries}
invocations = {b: [] for b in binaries}
for round in range(runs):
    print(f"round {round + 1}/{runs}", file=sys.stderr)
    for binary in binaries:
        polls[binary].append(start_once(binary, False))
        invocations[binary].append(start_once(binary, True))


def median(results, binary, key):
    return statistics.median(r[key] for r in results[binary])


def spread(results, binary, key):
    values = [r[key] for r in results[binary]]
    return f"({min(values):.2f}-{max(values):.2f})"


hello = binaries[0]
print(
    f"""
{runs} starts per binary and column; medians in ms, (min-max); x: the median over {hello}'s.
init: from the exec to the first GET .../invocation/next (starts killed at that poll).
init cpu: CPU time of those starts (all threads, user + system, from wait4).
1st invocation: from handing out the sample event to its POST .../response (other starts).
init+1st cpu: CPU time of those starts, killed once idle at their next poll.
"""
)
print(
    f"{'binary':<13}{'bytes':>11}  {'init':>21} {'x':>5}  {'init cpu':>8} {'x':>5}"
    f"  {'1st invocation':>21}  {'init+1st cpu':>12}"
)
for b in binaries:
    size = os.path.getsize(os.path.join(bin_dir, b))
    init, cpu = median(polls, b, "init"), median(polls, b, "cpu")
    print(
        f"{b:<13}{size:>11,}"
        f"  {init:>7.2f} {spread(polls, b, 'init'):>13} {init / median(polls, hello, 'init'):>5.2f}"
        f"  {cpu:>8.2f} {cpu / median(polls, hello, 'cpu'):>5.2f}"
        f"  {median(invocations, b, 'first'):>7.2f} {spread(invocations, b, 'first'):>13}"
        f"  {median(invocations, b, 'cpu'):>12.2f}"
    )
PY
