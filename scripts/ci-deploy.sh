#!/usr/bin/env bash
# Deploys the image built earlier in the workflow to ENV with kyb-deploy, from GitHub Actions
# (.github/workflows/deployment.yml):
#   IMAGE    the image by digest (registry/repository@sha256:...): deployed as it is, not rebuilt
#   VERSION  the version it is recorded and verified as
#   FORCE    "true" deploys despite failing tests or a dirty tree (recorded, with a warning)
#   SLACK_WEBHOOK_URL  when set, kyb-deploy notifies it (Slack-compatible) of the outcome
# Waits up to 15 minutes for another run's lock on ENV. Writes the step outputs outcome,
# run_id and url, a line in the job summary, and exits with kyb-deploy's exit code
# (docs/cli.md: 0 deployed, 4 rolled back, 5 needs attention, ...).
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
report="${RUNNER_TEMP:-/tmp}/kyb-deploy-$environment.json"
status=0
kyb-deploy --output json "${args[@]}" > "$report" || status=$?
outcome="$(jq -r '.report.outcome.outcome // "unknown"' "$report" 2>/dev/null || echo unknown)"
run_id="$(jq -r '.report.run_id // ""' "$report" 2>/dev/null || true)"
url="$(jq -r '.report.url // ""' "$report" 2>/dev/null || true)"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "outcome=$outcome"
    echo "run_id=$run_id"
    echo "url=$url"
  } >> "$GITHUB_OUTPUT"
fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  echo "kyb-deploy: \`$VERSION\` to $environment: **$outcome** (exit $status, run \`$run_id\`)" >> "$GITHUB_STEP_SUMMARY"
fi
cat "$report"
exit "$status"
