#!/usr/bin/env bash
# Validates infra/template.yaml (CI runs this):
#   1. cfn-lint with the SAM transform, its informational rules and the serverless rules
#      (cfn-lint-serverless); first a probe template proves the serverless rules are loaded.
#   2. checkov (CloudFormation framework), offline; every skipped check must carry a comment.
# Both must pass. Tools are installed into .venv/ by scripts/python-tools.sh (once).
# Each rule skipped in the template says why next to the resource it is skipped on.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
template=${1:-infra/template.yaml}
venv="$root/.venv"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { printf 'validate-infra.sh: %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(now)
scripts/python-tools.sh lint checkov
log "tools ready in $(since "$t0") s"

# --- 1. cfn-lint --------------------------------------------------------------------------
cfn_lint=("$venv/bin/cfn-lint" --append-rules cfn_lint_serverless.rules --include-checks I)

# The serverless rules must actually run: a SAM function without a Timeout has to trip ES1006
# ("Lambda Default Timeout"). If the plugin failed to load, this probe would pass silently.
cat >"$work/probe.yaml" <<'EOF'
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Probe:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: provided.al2023
      Handler: bootstrap
      InlineCode: "probe"
      MemorySize: 128
EOF
t1=$(now)
if "${cfn_lint[@]}" -- "$work/probe.yaml" >"$work/probe.out" 2>&1; then
    log "cfn-lint passed the probe template: the serverless rules did not run"
    exit 1
fi
if ! grep -q '^ES1006' "$work/probe.out"; then
    log "the serverless rules did not report ES1006 on the probe template:"
    cat "$work/probe.out" >&2
    exit 1
fi
log "serverless rules loaded (ES1006 fired on the probe) in $(since "$t1") s"

# Every rule the template tells cfn-lint to ignore must say why: a comment on the rule's line, or
# comment lines right before it (shared by the rules listed right after them).
"$venv/bin/python" - "$template" <<'EOF'
import re, sys
path = sys.argv[1]
bare, inside, indent, explained = [], False, 0, False
for number, line in enumerate(open(path), 1):
    stripped = line.strip()
    here = len(line) - len(line.lstrip())
    if re.match(r"ignore_checks:", stripped):
        rest = stripped[len("ignore_checks:"):].strip()
        if rest:  # inline list: ignore_checks: [A, B] # why
            if "#" not in rest:
                bare.append(f"{path}:{number}: {stripped}")
            inside = False
        else:
            inside, indent, explained = True, here, False
        continue
    if not inside:
        continue
    if stripped.startswith("#"):
        explained = True
    elif stripped.startswith("- ") and here > indent:
        if "#" not in stripped and not explained:
            bare.append(f"{path}:{number}: {stripped}")
    elif stripped:
        inside = False
if bare:
    print("cfn-lint rules ignored without a reason (add a comment):", *bare, sep="\n  ", file=sys.stderr)
    sys.exit(1)
EOF

t1=$(now)
if ! "${cfn_lint[@]}" -- "$template"; then
    log "cfn-lint: $template has findings (above)"
    exit 1
fi
log "cfn-lint: $template clean ($(since "$t1") s)"

# --- 2. checkov ---------------------------------------------------------------------------
t1=$(now)
# --skip-download: no Prisma Cloud calls (offline; no guidelines, no platform suppressions).
status=0
"$venv/bin/checkov" --compact --skip-download --framework cloudformation -f "$template" \
    -o json >"$work/checkov.json" 2>"$work/checkov.err" || status=$?
if [ ! -s "$work/checkov.json" ]; then
    log "checkov wrote no report (exit $status):"
    cat "$work/checkov.err" >&2
    exit 1
fi
# Fails on a failed check, a parsing error, no check at all, or a skip without its reason.
"$venv/bin/python" - "$work/checkov.json" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    data = json.load(f)
reports = data if isinstance(data, list) else [data]
passed = failed = parse_errors = 0
failures, skipped = [], []
for r in reports:
    summary = r.get("summary", {})
    passed += summary.get("passed", 0)
    failed += summary.get("failed", 0)
    parse_errors += summary.get("parsing_errors", 0)
    failures += r.get("results", {}).get("failed_checks", [])
    skipped += r.get("results", {}).get("skipped_checks", [])
for c in failures:
    lines = c.get("file_line_range") or ["?", "?"]
    print(f"FAILED {c['check_id']} {c['check_name']}: {c['resource']} (lines {lines[0]}-{lines[1]})", file=sys.stderr)
bare = []
by_check = {}
for c in skipped:
    reason = " ".join(((c.get("check_result") or {}).get("suppress_comment") or "").split())
    if not reason or reason == "No comment provided":
        bare.append(f"{c['check_id']} on {c['resource']}")
    by_check.setdefault(c["check_id"], []).append(c["resource"].split(".")[-1])
for check, resources in by_check.items():
    print(f"  skipped {check} (reason in the template) on {', '.join(resources)}", file=sys.stderr)
print(f"checkov: {passed} passed, {failed} failed, {len(skipped)} skipped, {parse_errors} parsing errors", file=sys.stderr)
if bare:
    print("checkov: skips without a reason: " + ", ".join(bare), file=sys.stderr)
if failed or bare or parse_errors or passed == 0:
    sys.exit(1)
EOF
[ "$status" = 0 ] || { log "checkov exited $status"; exit 1; }
log "checkov: $template clean ($(since "$t1") s)"
log "done in $(since "$t0") s"
