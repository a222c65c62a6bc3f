#!/usr/bin/env bash
# The README's test command: every check CI runs, in order, on a fresh Debian machine.
#   format -> clippy (-D warnings) -> all test tiers (unit, property, integration, end-to-end
#   against the built binaries) -> documentation (doctests run with the tests).
# The tiers in this release need only the Rust toolchain and git; later tiers that need a
# Docker engine, a registry or moto install and start them from here.
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
need cargo cargo

# Keep the build within the machine's two cores' memory and time.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_INCREMENTAL=0

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (unit, property, integration, end-to-end, doctests)"
cargo test --workspace --locked

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "all checks passed"
