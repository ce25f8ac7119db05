#!/usr/bin/env bash
# Throughput and memory of `crmflow simulate` (the `cli` profile) on generated input, default
# 100,000 events against 100 automations. Prints the simulator's summary line, then events/s,
# wall time, peak resident memory and CPU time as measured by /usr/bin/time -v. The simulator
# uses every core (`--jobs`, default: the machine's cores; SIMULATE_JOBS=N to set it here), so the
# CPU can exceed 100% of a core; well below N x 100% means the machine was busy with other work.
#
# Usage: scripts/bench-simulate.sh [EVENTS] [AUTOMATIONS]
#   CRMFLOW_BIN=path   run this binary instead of building the CLI (e.g. a saved baseline,
#                      to compare two builds on the same input in one sitting)
#   BENCH_DIR=path     where the input goes (default $CARGO_TARGET_DIR/bench-simulate)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
events=${1:-100000}
automations=${2:-100}
out=${BENCH_DIR:-${CARGO_TARGET_DIR:-target}/bench-simulate}
mkdir -p "$out/automations"
rm -f "$out"/automations/*.json
python3 - "$out" "$events" "$automations" <<'PY'
import json, random, sys
out, n_events, n_autos = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
types = ["contact.created", "contact.updated", "contact.tag_added", "lead.created", "lead.status_changed",
         "opportunity.stage_changed", "case.created", "conversation.started", "message.received", "email.clicked"]
for i in range(n_autos):
    t = types[i % len(types)]
    kind = i % 4
    steps = []
    if kind == 0:    # field-rule trigger, two actions
        cond = {"field": "score", "op": "greater_than", "value": 50}
        steps = [{"id": "tag", "action": {"type": "add_tag", "params": {"tag": f"auto-{i}"}}},
                 {"id": "note", "action": {"type": "notify", "params": {"channel": "ops", "message": "{{ record.score }}"}}}]
    elif kind == 1:  # CEL trigger, a wait and an email
        cond = {"cel": "record.score % 3 == 0"}
        steps = [{"id": "pause", "wait": {"duration": "2h"}},
                 {"id": "mail", "action": {"type": "send_email", "params": {"to": "{{ contact.email }}", "subject": "Hi {{ contact.first_name }}", "text": "score {{ record.score }}"}}}]
    elif kind == 2:  # branch + wait_for_event with a timeout
        cond = {"region": "EU"}
        steps = [{"id": "route", "branch": {"if": {"field": "score", "op": "between", "value": [20, 80]},
                  "then": [{"id": "assign", "action": {"type": "assign", "params": {"queue_id": "q1"}}}],
                  "else": [{"id": "ticket", "action": {"type": "create_ticket", "params": {"subject": "check {{ record.id }}"}}}]}},
                 {"id": "await", "wait_for_event": {"event": "email.clicked", "timeout": "1d",
                  "on_timeout": [{"id": "remind", "action": {"type": "add_tag", "params": {"tag": "no-click"}}}]}}]
    else:            # split + update
        cond = {"any": [{"field": "tier", "op": "in", "value": ["gold", "silver"]}, {"field": "score", "op": "less_than", "value": 10}]}
        steps = [{"id": "ab", "split": {"paths": [{"percent": 50, "steps": [{"id": "a", "action": {"type": "update_contact", "params": {"fields": {"variant": "A"}}}}]},
                                                  {"percent": 50, "steps": [{"id": "b", "action": {"type": "update_contact", "params": {"fields": {"variant": "B"}}}}]}]}}]
    auto = {"id": f"bench-{i:03}", "name": f"bench {i}", "status": "active", "trigger": {"event": t, "conditions": cond},
            "enrollment": {"reenroll": "always", "allow_concurrent": True}, "steps": steps}
    with open(f"{out}/automations/bench-{i:03}.json", "w") as f:
        json.dump(auto, f)
with open(f"{out}/events.jsonl", "w") as f:
    for n in range(n_events):
        t = types[n % len(types)]
        c = rng.randrange(10000)
        ev = {"id": f"e{n}", "type": t, "time": f"2026-03-{1 + n * 27 // n_events:02}T{(n // 60) % 24:02}:{n % 60:02}:00Z",
              "subject": {"type": t.split(".")[0], "id": f"R{c}", "contact_id": f"C{c}"},
              "data": {"id": f"R{c}", "score": rng.randrange(100), "region": rng.choice(["EU", "US"]), "tier": rng.choice(["gold", "silver", "bronze"])},
              "contact": {"email": f"c{c}@example.com", "first_name": f"N{c}", "timezone": rng.choice(["Europe/Berlin", "America/New_York", "Asia/Tokyo"])}}
        f.write(json.dumps(ev) + "\n")
PY
if [[ -z ${CRMFLOW_BIN:-} ]]; then
    cargo build --profile cli -q -p crmflow-cli --no-default-features
fi
bin=${CRMFLOW_BIN:-${CARGO_TARGET_DIR:-target}/cli/crmflow}
status=0
/usr/bin/time -v "$bin" simulate --automations "$out/automations" --events "$out/events.jsonl" --summary-only \
    ${SIMULATE_JOBS:+--jobs "$SIMULATE_JOBS"} \
    > "$out/summary.txt" 2> "$out/time.txt" || status=$?
tail -1 "$out/summary.txt"
python3 - "$out/time.txt" "$events" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
events = int(sys.argv[2])
wall = re.search(r"Elapsed \(wall clock\) time.*: (.+)", text).group(1).strip()
seconds = 0.0
for part in wall.split(":"):
    seconds = seconds * 60 + float(part)
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", text).group(1)) for kind in ("User", "System"))
print(f"wall {seconds:.1f} s (whole process, with loading), {events / seconds:,.0f} events/s, "
      f"peak RSS {rss_kb / 1024:,.0f} MB, CPU {cpu:.1f} s ({100 * cpu / max(seconds, 1e-9):.0f}% of a core)")
PY
exit "$status"
