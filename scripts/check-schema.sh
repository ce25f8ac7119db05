#!/usr/bin/env bash
# The published definition schema accepts what the loader accepts, checked by an independent
# validator: Python's jsonschema (draft 2020-12) validates every example (examples/) and every
# fixture under tests/data/definitions/valid/ against `crmflow schema`, and must reject every
# fixture under tests/data/definitions/invalid/. The loader is held to the same fixtures by the
# `definition_fixtures` test (tests/tests/input_errors.rs). CI runs this (scripts/test.sh).
#
# The schema checks shape (fields, types, action types and their parameters); rules across fields
# (unique step ids, goto targets, exactly one kind per step) are the loader's alone, so the
# invalid fixtures here are shape errors.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/python-tools.sh schema
schema=$(mktemp)
trap 'rm -f "$schema"' EXIT
cargo run -q -p crmflow-cli --no-default-features -- schema >"$schema"

.venv/bin/python - "$schema" <<'PY'
import glob
import json
import sys

import jsonschema
import yaml

schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)


def load(path):
    with open(path) as f:
        return json.load(f) if path.endswith(".json") else yaml.safe_load(f)


def files(*patterns):
    return sorted(p for pattern in patterns for p in glob.glob(pattern))


failures = 0
valid = files("examples/*.yaml", "examples/*.yml", "examples/*.json", "tests/data/definitions/valid/*")
invalid = files("tests/data/definitions/invalid/*")
for path in valid:
    errors = list(validator.iter_errors(load(path)))
    for e in errors[:3]:
        print(f"check-schema.sh: {path}: rejected at /{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}")
    failures += bool(errors)
for path in invalid:
    if validator.is_valid(load(path)):
        print(f"check-schema.sh: {path}: accepted, but the loader rejects it")
        failures += 1
print(f"check-schema.sh: {len(valid)} valid definitions accepted, {len(invalid)} invalid ones rejected"
      if not failures else f"check-schema.sh: {failures} of {len(valid) + len(invalid)} definitions disagree")
sys.exit(1 if failures else 0)
PY
