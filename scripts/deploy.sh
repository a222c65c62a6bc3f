#!/usr/bin/env bash
# Seed-compatible entry point: accepts exactly the options of the original deploy script and
# runs `kyb-deploy deploy` with them. The exit code is kyb-deploy's (docs/cli.md).
set -euo pipefail

usage_line='Usage: deploy.sh -e ENVIRONMENT [-v VERSION] [-f] [-s] [-d] [-h]'

usage() {
  printf '%s\n' "$usage_line"
  cat <<'USAGE'

Deploy the KYB Platform API with kyb-deploy.

Options:
  -e, --environment ENV   environment to deploy to (staging, production, ...)
  -v, --version VERSION   version to deploy (default: the current git commit)
  -f, --force             deploy despite failing tests or uncommitted changes
  -s, --skip-tests        do not run the tests
  -d, --dry-run           show what would change, change nothing
  -h, --help              show this help

Runs `kyb-deploy deploy` with the same options. The binary is $KYB_DEPLOY_BIN, else
kyb-deploy on PATH, else target/release/kyb-deploy in this repository. Exit codes are
kyb-deploy's: 0 deployed, 2 usage or configuration error, 3 failed before deploying,
4 rolled back, 5 rollback failed, 6 timed out, 130 interrupted (docs/cli.md).
USAGE
}

usage_error() {
  printf 'deploy.sh: %s\n' "$1" >&2
  printf '%s\n' "$usage_line" >&2
  printf "Run 'deploy.sh -h' for help.\n" >&2
  exit 2
}

environment=""
forward=()
while [[ $# -gt 0 ]]; do
  arg="$1"
  shift
  # Bundled short flags, as getopts accepts them: -fsd is -f -s -d.
  if [[ "$arg" =~ ^-[fsdh]{2,}$ ]]; then
    bundle=()
    for ((i = 1; i < ${#arg}; i++)); do
      bundle+=("-${arg:i:1}")
    done
    set -- "${bundle[@]}" "$@"
    continue
  fi
  case "$arg" in
    -e | --environment)
      [[ $# -gt 0 && -n "$1" ]] || usage_error "$arg needs a value"
      environment="$1"
      shift
      ;;
    --environment=*) environment="${arg#*=}" ;;
    -v | --version)
      [[ $# -gt 0 && -n "$1" ]] || usage_error "$arg needs a value"
      forward+=("--version=$1")
      shift
      ;;
    --version=*) forward+=("--version=${arg#*=}") ;;
    -f | --force) forward+=(--force) ;;
    -s | --skip-tests) forward+=(--skip-tests) ;;
    -d | --dry-run) forward+=(--dry-run) ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) usage_error "unknown option: $arg" ;;
  esac
done
[[ -n "$environment" ]] || usage_error "-e/--environment is required"

if [[ -n "${KYB_DEPLOY_BIN:-}" ]]; then
  bin="$KYB_DEPLOY_BIN"
elif command -v kyb-deploy >/dev/null 2>&1; then
  bin="kyb-deploy"
else
  repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  bin="$repo_root/target/release/kyb-deploy"
  if [[ ! -x "$bin" ]]; then
    printf 'deploy.sh: kyb-deploy not found: set KYB_DEPLOY_BIN, put kyb-deploy on PATH, or run `cargo build --release -p kyb-deploy-cli`\n' >&2
    exit 1
  fi
fi

# `--opt=value` keeps a value that starts with '-' from being read as a flag.
exec "$bin" deploy "--environment=$environment" ${forward[@]+"${forward[@]}"}
