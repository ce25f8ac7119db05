#!/usr/bin/env bash
# End-to-end tests of the four Lambda functions (tests/tests/aws/e2e.rs) against a local
# AWS-protocol server: installs moto into .venv/ if needed, starts a moto server of its own on
# 127.0.0.1, runs the tests, stops the server, and exits with the tests' status.
#
#   scripts/test-e2e.sh                 # every end-to-end test (a few minutes on 2 cores)
#   scripts/test-e2e.sh examples        # only the tests whose name contains "examples"
#
# Extra arguments go to the test binary (a name filter, --test-threads N, ...). Passing tests
# show their output: the request figures and the crash-point table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/moto.sh install
# Assigned first so that a failed start stops this script (`eval "$(...)"` alone would not), and
# the AWS tests are told to fail rather than skip should the endpoint still be missing.
moto_exports=$(scripts/moto.sh start)
eval "$moto_exports"
export CRMFLOW_REQUIRE_LOCAL_AWS=1
trap 'scripts/moto.sh stop >/dev/null 2>&1 || true' EXIT

cargo test -p crmflow-tests --test aws -- --show-output e2e:: "$@"
