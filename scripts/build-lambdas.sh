#!/usr/bin/env bash
# Builds the six Lambda functions (intake, evaluate, execute, resume, api, simulate) as `bootstrap` binaries
# for the provided.al2023 runtime, with cargo-lambda (installed from PyPI, with the zig it
# cross-links with, by scripts/python-tools.sh).
#
#   scripts/build-lambdas.sh             # arm64 (the template's default Architecture)
#   scripts/build-lambdas.sh --x86-64    # x86_64 (deploy with Architecture=x86_64)
#
# Output: $CARGO_TARGET_DIR/lambda/<function>/bootstrap (target/lambda/... by default), the
# layout `sam build` and `cargo lambda deploy` expect. Extra arguments go to `cargo lambda build`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

functions=(intake evaluate execute resume api simulate)
arch_flag=--arm64
rust_target=aarch64-unknown-linux-gnu
extra=()
for arg in "$@"; do
    case "$arg" in
        --arm64) arch_flag=--arm64 rust_target=aarch64-unknown-linux-gnu ;;
        --x86-64 | --x86_64) arch_flag=--x86-64 rust_target=x86_64-unknown-linux-gnu ;;
        *) extra+=("$arg") ;;
    esac
done

scripts/python-tools.sh lambda
# cargo-lambda finds zig through `python3 -m ziglang` when no `zig` is on PATH: its virtualenv's
# python, which lives beside the target directory (see scripts/python-tools.sh).
lambda_bin=$(scripts/python-tools.sh path lambda)
export PATH="$lambda_bin:$root/.venv/bin:$PATH"

# The Rust standard library for the target (cargo-lambda would ask rustup too; say it first).
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$rust_target"; then
    echo "build-lambdas.sh: adding the Rust target $rust_target" >&2
    rustup target add "$rust_target" >&2
fi

# Selected by binary (--bin), as `sam build` selects each function: cargo then resolves features
# over the same packages (the whole workspace) and compiles the same units, so a later
# `sam build` finds them fresh instead of compiling and linking all five again.
binaries=()
for f in "${functions[@]}"; do binaries+=(--bin "$f"); done

start=$(date +%s)
cargo lambda build --release "$arch_flag" "${binaries[@]}" "${extra[@]}"
end=$(date +%s)

target_dir=${CARGO_TARGET_DIR:-$root/target}
echo "build-lambdas.sh: built in $((end - start)) s ($arch_flag):" >&2
for f in "${functions[@]}"; do
    bin="$target_dir/lambda/$f/bootstrap"
    if [ ! -f "$bin" ]; then
        echo "build-lambdas.sh: missing $bin" >&2
        exit 1
    fi
    printf '  %-9s %10d bytes  %s\n' "$f" "$(stat -c %s "$bin")" "${bin#"$root"/}" >&2
done
