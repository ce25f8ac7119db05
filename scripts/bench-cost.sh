#!/usr/bin/env bash
# What a run of each example costs on AWS, in US dollars per million runs at batches of 1 and
# 10 records: each example on its own (its definition, the example events it listens to, then
# 30 days) through the four functions against a local AWS-protocol server, priced from the
# functions' cost ledgers (crmflow_tests::cost::ledger) with the price table and Lambda
# assumptions of crmflow_tests::cost::pricing. Starts its own moto server and stops it.
#
#   scripts/bench-cost.sh            # the lead follow-up, then every example: per-function
#                                    # ledgers, then the table
#
# It runs the cost tests (tests/tests/aws/cost.rs, which also run with the other AWS tests)
# with their output shown.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/moto.sh install
moto_exports=$(scripts/moto.sh start)
eval "$moto_exports"
export CRMFLOW_REQUIRE_LOCAL_AWS=1
trap 'scripts/moto.sh stop >/dev/null 2>&1 || true' EXIT

cargo test -p crmflow-tests --test aws -- cost:: --nocapture --test-threads 1
