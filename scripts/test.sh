#!/usr/bin/env bash
# The project's test command (README "First steps"; CI runs it through .ci/run):
# formatting, the core's dependency boundary, lints, function length, API docs, every test (unit, integration, CEL conformance, and end-to-end against a
# local AWS-protocol server that this script starts and stops), the definition schema and the
# management API's OpenAPI document (committed as generated, valid, schemathesis against
# `crmflow serve`), the IaC checks, and the
# deployable build (`cargo lambda build --release`, then `sam build`, no Docker needed).
# It installs what it needs itself (Python tools into the project-local .venv/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '\n== %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "the core links no AWS (cargo tree)"
scripts/check-core-deps.sh

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "no production function over 80 lines (clippy too_many_lines; the five longest)"
scripts/check-function-length.sh

step "cargo doc (broken intra-doc links are errors)"
# Reuses most of what clippy just built: about 35 s after a cold clippy, 10 s when warm.
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "local AWS server (moto)"
# Assigned first so that a failed start stops this script (`eval "$(...)"` alone would not), and
# the AWS tests are told to fail rather than skip should the endpoint still be missing.
moto_exports=$(scripts/moto.sh start)
eval "$moto_exports"
export CRMFLOW_REQUIRE_LOCAL_AWS=1
trap 'scripts/moto.sh stop >/dev/null 2>&1 || true' EXIT

step "cargo test"
cargo test --workspace

step "the definition schema accepts what the loader accepts (jsonschema)"
scripts/check-schema.sh

step "the OpenAPI document: committed as generated, valid, and schemathesis against crmflow serve"
scripts/check-openapi.sh

if [ -x scripts/validate-infra.sh ]; then
    step "infrastructure template"
    scripts/validate-infra.sh
fi

step "deployable build (cargo lambda build --release, sam build)"
scripts/sam-build.sh
