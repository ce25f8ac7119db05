#!/usr/bin/env bash
# The core links no AWS: fails if `cargo tree` shows an AWS SDK crate, the Lambda runtime, an
# HTTP client or server, or a TLS or crypto-provider crate among the normal dependencies of
#   - crmflow-core (definitions, conditions, time, waits, templates, the decider, the engine
#     shell, ports, the memory adapters, simulate), and
#   - the crmflow command without its `aws` feature (validate, simulate, schema).
# CI runs it (scripts/test.sh). Prints each checked package's dependency count.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

forbidden='^(aws-.*|aws_.*|lambda_runtime.*|lambda_http|reqwest|hyper|hyper-.*|h2|rustls|rustls-.*|tokio-rustls|webpki.*|native-tls|openssl|openssl-sys|ring|aws-lc-rs|aws-lc-sys)$'
status=0
check() {
    local label=$1
    shift
    local crates
    crates=$(cargo tree "$@" -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
    local bad
    bad=$(grep -E "$forbidden" <<<"$crates" || true)
    if [ -n "$bad" ]; then
        printf 'check-core-deps.sh: %s links crates the core must not:\n%s\n' "$label" "$bad" >&2
        status=1
    else
        printf 'check-core-deps.sh: %s: %d crates, no AWS SDK, Lambda, HTTP or TLS crate\n' "$label" "$(wc -l <<<"$crates")" >&2
    fi
}
check "crmflow-core" -p crmflow-core
check "crmflow (--no-default-features)" -p crmflow-cli --no-default-features
exit "$status"
