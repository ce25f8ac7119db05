#!/usr/bin/env bash
# Runs the AWS adapter integration tests against a moto server of their own, then stops it.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Assigned first so that a failed start stops this script (`eval "$(...)"` alone would not), and
# the AWS tests are told to fail rather than skip should the endpoint still be missing.
moto_exports=$(scripts/moto.sh start)
eval "$moto_exports"
export CRMFLOW_REQUIRE_LOCAL_AWS=1
trap 'scripts/moto.sh stop' EXIT
cargo test -p crmflow-tests --test aws "$@" -- adapters:: endpoint_env::
