#!/usr/bin/env bash
# Rolls ENV back with kyb-deploy and verifies the result, from GitHub Actions
# (.github/workflows/deployment.yml): to TO when set (any version kyb-deploy or the platform
# knows), else to the last known-good release. SLACK_WEBHOOK_URL, when set, is notified.
# Exits with kyb-deploy's exit code.
set -euo pipefail
environment="${1:?usage: ci-rollback.sh ENVIRONMENT}"
if [ -n "${SLACK_WEBHOOK_URL:-}" ]; then
  export KYB_DEPLOY_NOTIFY__WEBHOOKS="[\"$SLACK_WEBHOOK_URL\"]"
fi
args=(rollback -e "$environment" --yes)
if [ -n "${TO:-}" ]; then
  args+=(--to "$TO")
fi
kyb-deploy "${args[@]}"
kyb-deploy verify -e "$environment"
