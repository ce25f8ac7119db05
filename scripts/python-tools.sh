#!/usr/bin/env bash
# Installs the Python-packaged tools of the infrastructure checks and the Lambda build into the
# project-local virtualenv .venv/ (git-ignored; moto lives there too, see scripts/moto.sh).
#
#   scripts/python-tools.sh lint      # cfn-lint + cfn-lint-serverless (the serverless rules)
#   scripts/python-tools.sh checkov   # checkov
#   scripts/python-tools.sh lambda    # cargo-lambda (+ ziglang, its cross linker)
#   scripts/python-tools.sh sam       # aws-sam-cli (`sam build` / `sam deploy`)
#   scripts/python-tools.sh schema    # jsonschema + PyYAML (scripts/check-schema.sh)
#   scripts/python-tools.sh api       # schemathesis + openapi-spec-validator (scripts/check-openapi.sh)
#   scripts/python-tools.sh all       # every group above
#   scripts/python-tools.sh path lambda   # prints the bin directory to put first on PATH for
#                                         # cargo-lambda (its python3 finds zig, see below)
#
# Each group is installed once: a stamp file records the versions asked for, and a later call
# with the same versions returns at once. Progress goes to stderr.
#
# cfn-lint and cfn-lint-serverless go into .venv itself: they fit beside moto.
# checkov and aws-sam-cli pin boto3/botocore (and a few more) to versions that would downgrade
# what moto runs on, so each gets a virtualenv of its own under .venv/tools/<group>/ and its
# commands are linked into .venv/bin/. moto keeps working whatever is installed here. The api group
# (schemathesis, openapi-spec-validator) is kept apart too: schemathesis brings its own jsonschema,
# hypothesis and HTTP stack, which should not move what the schema group or moto run on.
#
# cargo-lambda (with ziglang, the cross linker it drives) gets a virtualenv beside the cargo
# target directory instead: $CARGO_TARGET_DIR/crmflow-tools/cargo-lambda, or
# target/crmflow-tools/cargo-lambda. The linker wrapper cargo-lambda hands to cargo names the
# cargo-lambda executable by its path, and cargo fingerprints the linker: were it installed in each
# clone, a build cache shared by clones (as CI's is) would recompile every release dependency for
# every clone. Kept with the cache, the path is as long-lived as what was compiled with it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
tools="$venv/tools"

# Pinned so that a new rule release cannot break CI by itself; raise these deliberately.
lint_spec=("cfn-lint>=1.58,<1.59" "cfn-lint-serverless==0.3.6")
checkov_spec=("checkov==3.3.30")
lambda_spec=("cargo-lambda==1.9.2")
sam_spec=("aws-sam-cli==1.170.0")
schema_spec=("jsonschema>=4.23,<5" "PyYAML>=6,<7")
api_spec=("schemathesis==4.32.5" "openapi-spec-validator==0.9.0")

log() { printf 'python-tools.sh: %s\n' "$*" >&2; }

target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$target_dir" in
    /*) ;;
    *) target_dir="$root/$target_dir" ;;
esac
lambda_dir="$target_dir/crmflow-tools/cargo-lambda"

pip_install() {
    local python=$1
    shift
    "$python" -m pip install --quiet --disable-pip-version-check "$@" >&2
}

ensure_venv() {
    local dir=$1
    if [ ! -x "$dir/bin/python" ]; then
        log "creating virtualenv $dir"
        python3 -m venv "$dir"
    fi
}

# installed STAMP SPEC...: true when the stamp records exactly these specs.
installed() {
    local stamp=$1
    shift
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$*" ]
}

# shared GROUP SPEC...: installs into .venv itself.
shared() {
    local group=$1
    shift
    ensure_venv "$venv"
    local stamp="$venv/.crmflow-$group"
    if installed "$stamp" "$@"; then
        return 0
    fi
    log "installing $* into $venv"
    pip_install "$venv/bin/python" "$@"
    echo "$*" >"$stamp"
}

# isolated GROUP DIR COMMANDS SPEC...: installs into the virtualenv DIR and links COMMANDS
# (comma-separated) into .venv/bin.
isolated() {
    local group=$1 dir=$2 commands=$3
    shift 3
    ensure_venv "$venv"
    local stamp="$dir/.crmflow-$group"
    if ! installed "$stamp" "$@"; then
        ensure_venv "$dir"
        log "installing $* into $dir"
        pip_install "$dir/bin/python" "$@"
        echo "$*" >"$stamp"
    fi
    local command
    for command in ${commands//,/ }; do
        ln -sf "$dir/bin/$command" "$venv/bin/$command"
    done
}

install_group() {
    case "$1" in
        lint) shared lint "${lint_spec[@]}" ;;
        lambda)
            # Clones share this virtualenv (see above): one install at a time, the others wait
            # for it and then find the stamp. flock(1) is util-linux; without it, no lock.
            mkdir -p "$(dirname "$lambda_dir")"
            (
                if command -v flock >/dev/null 2>&1; then
                    flock 9
                fi
                isolated lambda "$lambda_dir" cargo-lambda "${lambda_spec[@]}"
            ) 9>"$lambda_dir.lock"
            ;;
        checkov) isolated checkov "$tools/checkov" checkov "${checkov_spec[@]}" ;;
        sam) isolated sam "$tools/sam" sam "${sam_spec[@]}" ;;
        schema) shared schema "${schema_spec[@]}" ;;
        api) isolated api "$tools/api" st,schemathesis,openapi-spec-validator "${api_spec[@]}" ;;
        all)
            local g
            for g in lint lambda checkov sam schema api; do install_group "$g"; done
            ;;
        *)
            echo "usage: $0 lint|checkov|lambda|sam|schema|api|all..." >&2
            exit 2
            ;;
    esac
}

if [ "${1:-}" = path ]; then
    case "${2:-}" in
        lambda) echo "$lambda_dir/bin" ;;
        *)
            echo "usage: $0 path lambda" >&2
            exit 2
            ;;
    esac
    exit 0
fi

[ $# -gt 0 ] || set -- all
for group in "$@"; do
    install_group "$group"
done
