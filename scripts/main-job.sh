#!/usr/bin/env bash
# The README's first command: a real deployment of the kyb-sample-api service to the local
# development environment. Sets up the Docker engine and the local registry (Debian, as root;
# see scripts/setup.sh), builds kyb-deploy, then `kyb-deploy deploy -e development` runs the
# sample's tests, builds the static binary and the image, scans it, pushes it to
# 127.0.0.1:5000, runs it beside the previous release, verifies /ready, /health, /status,
# /metrics and the classify smoke test, puts it on 127.0.0.1:8080 and records the run.
# Extra arguments go to `kyb-deploy deploy` (for example -v v1.2.3 or --skip-tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p kyb-deploy-cli
exec target/release/kyb-deploy deploy -e development "$@"
