#!/usr/bin/env bash
# No production function over 80 lines: runs clippy's `too_many_lines` on the library and binary
# targets of every package that ships (tests/ is test support, excluded), fails when a function
# is longer than the threshold in clippy.toml (80), and reports the five longest. Lines are
# clippy's count: code lines, not blank lines or comments.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

limit=$(sed -n 's/^too-many-lines-threshold *= *\([0-9]*\).*/\1/p' clippy.toml)
# A threshold of 0 makes clippy report every function with its length.
conf=$(mktemp -d)
trap 'rm -rf "$conf"' EXIT
echo 'too-many-lines-threshold = 0' >"$conf/clippy.toml"

report=$(CLIPPY_CONF_DIR="$conf" cargo clippy --workspace --exclude crmflow-tests --lib --bins \
    --message-format short -- -A clippy::all -W clippy::too_many_lines 2>&1 |
    sed -n 's/^\([^:]*\):\([0-9]*\):[0-9]*: warning: this function has too many lines (\([0-9]*\)\/0)$/\3 \1:\2/p' |
    sort -rn | uniq)
if [ -z "$report" ]; then
    echo "check-function-length.sh: clippy reported no function lengths" >&2
    exit 1
fi
printf 'check-function-length.sh: the five longest production functions (limit %s lines):\n' "$limit" >&2
head -n 5 <<<"$report" | sed 's/^/  /' >&2
over=$(awk -v limit="$limit" '$1 > limit' <<<"$report")
if [ -n "$over" ]; then
    printf 'check-function-length.sh: over %s lines:\n%s\n' "$limit" "$over" >&2
    exit 1
fi
