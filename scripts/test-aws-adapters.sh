#!/usr/bin/env bash
# Runs the AWS adapter integration tests against a moto server of their own, then stops it.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
eval "$(scripts/moto.sh start)"
trap 'scripts/moto.sh stop' EXIT
cargo test -p crmflow --test aws_adapters --test aws_endpoint_env "$@"
