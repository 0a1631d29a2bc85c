#!/bin/bash
# The self-hosted runner's job-started hook (docs/operations.md, "Trust boundary"): the
# runner on the Docker host runs it before every job, outside the job's control, and a
# non-zero exit fails the job before any of its steps runs. It admits only this
# repository's own workflows on the protected branches, so that a workflow pushed to any
# other branch (or a pull request, or another repository's runner group) never gets a
# shell on the Docker host, whatever its YAML says.
#
# Install (as root; the runner user must not be able to change it):
#   install -o root -g root -m 0755 scripts/runner-job-started.sh /usr/local/lib/odoo-ai/runner-job-started.sh
#   and in ~deploy/actions-runner/.env:
#   ACTIONS_RUNNER_HOOK_JOB_STARTED=/usr/local/lib/odoo-ai/runner-job-started.sh
#   ODOO_AI_RUNNER_REPOSITORY=OWNER/REPO
#
# What is admitted (GITHUB_* are the job's default variables, set by the runner):
#   GITHUB_REPOSITORY     = ODOO_AI_RUNNER_REPOSITORY
#   GITHUB_EVENT_NAME     in push, workflow_dispatch, schedule (never pull_request*)
#   GITHUB_WORKFLOW_REF   = OWNER/REPO/.github/workflows/FILE@REF with FILE@REF one of
#                           ODOO_AI_RUNNER_WORKFLOWS (default: deploy.yml on main and testing,
#                           prune-images.yml and backups.yml on main)
#   GITHUB_REF            = the REF of GITHUB_WORKFLOW_REF (the workflow file of that branch)
set -euo pipefail

allowed=${ODOO_AI_RUNNER_WORKFLOWS:-"deploy.yml@refs/heads/main deploy.yml@refs/heads/testing prune-images.yml@refs/heads/main backups.yml@refs/heads/main"}
repository=${ODOO_AI_RUNNER_REPOSITORY:-}

refuse() {
    # A workflow command: the reason shows in the job's "Set up runner" log.
    printf '::error title=odoo-ai runner::%s\n' "$*"
    printf 'odoo-ai runner: refused: %s\n' "$*" >&2
    exit 1
}

[ -n "$repository" ] || refuse "ODOO_AI_RUNNER_REPOSITORY is not set in the runner's .env: refusing every job"
[ "${GITHUB_REPOSITORY:-}" = "$repository" ] || refuse "repository ${GITHUB_REPOSITORY:-?} is not $repository"
case "${GITHUB_EVENT_NAME:-}" in
    push|workflow_dispatch|schedule) ;;
    *) refuse "event ${GITHUB_EVENT_NAME:-?} may not run on the Docker host" ;;
esac
workflow_ref=${GITHUB_WORKFLOW_REF:-}
prefix="$repository/.github/workflows/"
case "$workflow_ref" in
    "$prefix"*@*) ;;
    *) refuse "workflow ${workflow_ref:-?} is not one of $repository's own workflows" ;;
esac
file_ref=${workflow_ref#"$prefix"}
[ "${GITHUB_REF:-}" = "${file_ref#*@}" ] || refuse "ref ${GITHUB_REF:-?} is not the workflow's ref ${file_ref#*@}"
for entry in $allowed; do
    if [ "$file_ref" = "$entry" ]; then
        echo "odoo-ai runner: admitted $file_ref (${GITHUB_EVENT_NAME}, run ${GITHUB_RUN_ID:-?} by ${GITHUB_ACTOR:-?})"
        exit 0
    fi
done
refuse "$file_ref is not admitted on the Docker host (admitted: $allowed)"
