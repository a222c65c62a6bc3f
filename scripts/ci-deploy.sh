#!/usr/bin/env bash
# Deploys the image built earlier in the workflow to ENV with kyb-deploy, from GitHub Actions
# (.github/workflows/deployment.yml):
#   IMAGE    the image by digest (registry/repository@sha256:...): deployed as it is, not rebuilt
#   VERSION  the version it is recorded and verified as
#   FORCE    "true" deploys despite failing tests or a dirty tree (recorded, with a warning)
#   SLACK_WEBHOOK_URL  when set, kyb-deploy notifies it (Slack-compatible) of the outcome
# Waits up to 15 minutes for another run's lock on ENV. Under GitHub Actions kyb-deploy itself
# writes the job summary, the step outputs (outcome, exit_code, version, image, digest, url,
# record_id, rolled_back_to) and the annotations (docs/ci.md). Exits with kyb-deploy's exit
# code (docs/cli.md: 0 deployed, 4 rolled back, 5 needs attention, ...).
set -euo pipefail
environment="${1:?usage: ci-deploy.sh ENVIRONMENT}"
: "${IMAGE:?IMAGE must name the image by digest}" "${VERSION:?VERSION must be set}"
if [ -n "${SLACK_WEBHOOK_URL:-}" ]; then
  export KYB_DEPLOY_NOTIFY__WEBHOOKS="[\"$SLACK_WEBHOOK_URL\"]"
fi
args=(deploy -e "$environment" -v "$VERSION" --image "$IMAGE" --yes --wait-for-lock 15m)
if [ "${FORCE:-false}" = true ]; then
  args+=(--force)
fi
exec kyb-deploy --ci github "${args[@]}"
