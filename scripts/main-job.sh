#!/usr/bin/env bash
# The README's first command: a whole deployment of the kyb-sample-api service to the local
# development environment, verified over HTTP, including an automatic rollback of a broken
# release. Needs only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p kyb-deploy-testkit --bins --examples
exec target/release/examples/deploy_sample
