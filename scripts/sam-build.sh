#!/usr/bin/env bash
# Builds the deployable stack with AWS SAM (CI runs this, see scripts/test.sh):
#
#   scripts/sam-build.sh            # arm64, the template's default Architecture
#   scripts/sam-build.sh --x86-64   # Architecture=x86_64
#
# 1. scripts/build-lambdas.sh builds the six functions in one `cargo lambda build --release`.
# 2. `sam build --beta-features` (rust-cargolambda is a beta build method) runs, per function,
#    `cargo lambda build --release [--arm64] --bin <Binary>` from the workspace root into the same
#    target directory, with the same flags, so cargo finds every unit fresh and SAM only copies
#    the bootstraps. Built one function at a time from cold, the six fat-LTO links run one
#    after another; step 1 runs them side by side instead.
# 3. Checks what SAM wrote: .aws-sam/build/template.yaml points each function at its own
#    directory, and each directory's `bootstrap` is a Linux ELF executable for the architecture,
#    byte for byte the binary cargo-lambda built for that function.
#
# Needs no Docker. Output: .aws-sam/build/ (git-ignored), what `sam deploy` packages.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

architecture=arm64
build_flag=--arm64
for arg in "$@"; do
    case "$arg" in
        --arm64) architecture=arm64 build_flag=--arm64 ;;
        --x86-64 | --x86_64) architecture=x86_64 build_flag=--x86-64 ;;
        *)
            echo "usage: $0 [--arm64|--x86-64]" >&2
            exit 2
            ;;
    esac
done

log() { printf 'sam-build.sh: %s\n' "$*" >&2; }
now() { date +%s; }

scripts/python-tools.sh lambda sam
# cargo-lambda's virtualenv first: SAM runs `cargo-lambda`, which runs `python3 -m ziglang`.
lambda_bin=$(scripts/python-tools.sh path lambda)
export PATH="$lambda_bin:$root/.venv/bin:$PATH"
# No usage reports from the SAM CLI.
export SAM_CLI_TELEMETRY=0

# SAM's cargo-lambda step builds into CARGO_TARGET_DIR when set, else the workspace's target/.
target_dir=${CARGO_TARGET_DIR:-$root/target}

t0=$(now)
scripts/build-lambdas.sh "$build_flag"
t1=$(now)

build_dir="$root/.aws-sam/build"
sam build --beta-features --template-file infra/template.yaml --build-dir "$build_dir" \
    --parameter-overrides "Architecture=$architecture" >&2
t2=$(now)

# ELF e_machine (bytes 18-19, little-endian): 0xB7 AArch64, 0x3E x86-64.
case "$architecture" in
    arm64) machine=b700 ;;
    x86_64) machine=3e00 ;;
esac

declare -A binaries=(
    [IntakeFunction]=intake [EvaluateFunction]=evaluate
    [ExecuteFunction]=execute [ResumeFunction]=resume
    [ApiFunction]=api [SimulateFunction]=simulate
)
failures=0
for function in IntakeFunction EvaluateFunction ExecuteFunction ResumeFunction ApiFunction SimulateFunction; do
    binary=${binaries[$function]}
    built="$build_dir/$function/bootstrap"
    if [ ! -x "$built" ]; then
        log "$function: no executable $built"
        failures=$((failures + 1))
        continue
    fi
    magic=$(od -An -tx1 -N4 "$built" | tr -d ' ')
    class=$(od -An -tx1 -j4 -N1 "$built" | tr -d ' ')
    e_machine=$(od -An -tx1 -j18 -N2 "$built" | tr -d ' ')
    if [ "$magic" != 7f454c46 ] || [ "$class" != 02 ] || [ "$e_machine" != "$machine" ]; then
        log "$function: $built is not a 64-bit ELF for $architecture (magic $magic, machine $e_machine)"
        failures=$((failures + 1))
    fi
    if ! cmp -s "$built" "$target_dir/lambda/$binary/bootstrap"; then
        log "$function: $built differs from cargo-lambda's $binary binary"
        failures=$((failures + 1))
    fi
    # The built template must point the function at its own artifact directory.
    if ! awk -v name="  $function:" '$0 == name { inside = 1; next } /^  [^ ]/ { inside = 0 } inside' \
        "$build_dir/template.yaml" | grep -qx "      CodeUri: $function"; then
        log "$function: .aws-sam/build/template.yaml does not set CodeUri: $function"
        failures=$((failures + 1))
    fi
    printf '  %-17s %10d bytes  %s\n' "$function" "$(stat -c %s "$built")" "${built#"$root"/}" >&2
done
if [ "$failures" -gt 0 ]; then
    log "$failures problem(s) in the SAM build"
    exit 1
fi
log "cargo-lambda build $((t1 - t0)) s, sam build $((t2 - t1)) s ($architecture); ready for sam deploy"
