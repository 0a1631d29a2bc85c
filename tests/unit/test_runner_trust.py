"""The trust boundary around the self-hosted runner, the parts checkable here: the
runner's job-started hook (scripts/runner-job-started.sh) run with the variables the
runner gives it, and the workflow simulator's model of what GitHub and the runner do
(an environment's branch rule, the hook, a cancelled job) on small workflows."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.workflows_sim import Simulator

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "scripts" / "runner-job-started.sh"
ADMITTED = "acme/shop"


def hook(**env: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "ODOO_AI_RUNNER_REPOSITORY": ADMITTED, "GITHUB_REPOSITORY": ADMITTED,
            "GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main",
            "GITHUB_WORKFLOW_REF": f"{ADMITTED}/.github/workflows/deploy.yml@refs/heads/main"}
    return subprocess.run(["bash", "-e", str(HOOK)], env={**base, **env}, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("workflow, ref, event", [
    ("deploy.yml", "refs/heads/main", "push"),
    ("deploy.yml", "refs/heads/testing", "push"),
    ("deploy.yml", "refs/heads/testing", "workflow_dispatch"),
    ("prune-images.yml", "refs/heads/main", "schedule"),
])
def test_the_hook_admits_the_workflows_of_the_protected_branches(workflow: str, ref: str, event: str) -> None:
    proc = hook(GITHUB_EVENT_NAME=event, GITHUB_REF=ref,
                GITHUB_WORKFLOW_REF=f"{ADMITTED}/.github/workflows/{workflow}@{ref}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"admitted {workflow}@{ref}" in proc.stdout


@pytest.mark.parametrize("env, reason", [
    ({"GITHUB_REF": "refs/heads/feature", "GITHUB_WORKFLOW_REF": f"{ADMITTED}/.github/workflows/deploy.yml@refs/heads/feature"},
     "deploy.yml@refs/heads/feature is not admitted"),
    ({"GITHUB_WORKFLOW_REF": f"{ADMITTED}/.github/workflows/evil.yml@refs/heads/main"}, "evil.yml@refs/heads/main is not admitted"),
    ({"GITHUB_WORKFLOW_REF": f"{ADMITTED}/.github/workflows/prune-images.yml@refs/heads/testing",
      "GITHUB_REF": "refs/heads/testing"}, "prune-images.yml@refs/heads/testing is not admitted"),
    ({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/7/merge"}, "event pull_request"),
    ({"GITHUB_EVENT_NAME": "pull_request_target"}, "event pull_request_target"),
    ({"GITHUB_REPOSITORY": "mallory/fork"}, "repository mallory/fork is not acme/shop"),
    ({"GITHUB_WORKFLOW_REF": "mallory/x/.github/workflows/deploy.yml@refs/heads/main"}, "is not one of acme/shop's own"),
    ({"GITHUB_REF": "refs/heads/feature"}, "ref refs/heads/feature is not the workflow's ref refs/heads/main"),
    ({"ODOO_AI_RUNNER_REPOSITORY": ""}, "ODOO_AI_RUNNER_REPOSITORY is not set"),
])
def test_the_hook_refuses_everything_else(env: dict[str, str], reason: str) -> None:
    proc = hook(**env)
    assert proc.returncode == 1
    assert reason in proc.stdout and proc.stdout.startswith("::error title=odoo-ai runner::"), proc.stdout


def test_the_admitted_workflows_can_be_configured() -> None:
    ref = f"{ADMITTED}/.github/workflows/release.yml@refs/heads/main"
    assert hook(GITHUB_WORKFLOW_REF=ref).returncode == 1
    assert hook(GITHUB_WORKFLOW_REF=ref, ODOO_AI_RUNNER_WORKFLOWS="release.yml@refs/heads/main").returncode == 0


def test_the_admitted_workflows_are_the_repositorys() -> None:
    """The hook's default list names the workflow files that run on the Docker host."""
    import yaml

    text = HOOK.read_text()
    default = text[text.index('ODOO_AI_RUNNER_WORKFLOWS:-"') + 27:].split('"', 1)[0].split()
    on_host = set()
    for path in (REPO / ".github" / "workflows").glob("*.yml"):
        doc = yaml.safe_load(path.read_text())
        if "self-hosted" in str([j.get("runs-on") for j in doc["jobs"].values()]):
            on_host.add(path.name)
    assert {entry.split("@")[0] for entry in default} == on_host


# ---------------------------------------------------------------- the simulator's GitHub
WORKFLOW = """
on: [push, workflow_dispatch]
permissions: {}
jobs:
  secret:
    runs-on: [self-hosted, linux, docker-shiny]
    timeout-minutes: 5
    environment:
      name: dev
    steps:
      - name: read the secret
        env:
          VALUE: ${{ secrets.KEY }}
        run: echo "got ${#VALUE} bytes"
  long:
    runs-on: [self-hosted, linux, docker-shiny]
    timeout-minutes: 5
    steps:
      - name: work
        run: |
          trap 'echo "SIGINT: undoing"; sleep 1; echo undone; exit 130' INT
          echo started
          sleep 60 & wait
      - name: after
        run: echo must not run
      - name: cleanup
        if: always()
        run: echo cleaned up
      - name: only when cancelled
        if: cancelled()
        run: echo was cancelled
"""


@pytest.fixture
def sim(tmp_path: Path) -> tuple[Simulator, Path]:
    workflow = tmp_path / "evil.yml"
    workflow.write_text(WORKFLOW)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    simulator = Simulator(workspace=workspace, temp_root=tmp_path / "runner",
                          base_env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
                          environments={"dev": {"secrets": {"KEY": "s3cret"}, "branches": ["main"]}},
                          repository=ADMITTED)
    return simulator, workflow


def test_an_environment_refuses_a_branch_it_does_not_admit(sim) -> None:
    simulator, workflow = sim
    run = simulator.run(workflow, event="push", ref="refs/heads/feature", sha="a" * 40, jobs=["secret"])
    job = run.job("secret")
    assert job.result == "failure" and "is not allowed to deploy to dev" in job.log()
    assert "got" not in job.log()
    ok = simulator.run(workflow, event="push", ref="refs/heads/main", sha="a" * 40, jobs=["secret"])
    assert ok.job("secret").result == "success" and "got 6 bytes" in ok.job("secret").log()


def test_the_hook_keeps_another_workflow_off_the_runner(sim) -> None:
    simulator, workflow = sim
    simulator.job_started_hook = HOOK
    simulator.runner_env = {"ODOO_AI_RUNNER_REPOSITORY": ADMITTED}
    run = simulator.run(workflow, event="push", ref="refs/heads/main", sha="a" * 40, jobs=["secret"])
    job = run.job("secret")
    assert job.result == "failure" and "evil.yml@refs/heads/main is not admitted" in job.log()
    assert [s.name for s in job.steps] == ["Set up runner (job-started hook)"]


def test_a_cancelled_job_gets_sigint_and_runs_only_its_always_steps(sim) -> None:
    simulator, workflow = sim
    started = time.monotonic()
    run = simulator.run(workflow, event="push", ref="refs/heads/main", sha="a" * 40, jobs=["long"],
                        cancel={"long": ("work", 1.0)})
    job = run.job("long")
    assert job.result == "cancelled" and time.monotonic() - started < 20
    assert [(s.name, s.outcome) for s in job.steps] == [
        ("work", "cancelled"), ("after", "skipped"), ("cleanup", "success"), ("only when cancelled", "success")]
    assert "SIGINT: undoing" in job.step("work").log and "undone" in job.step("work").log
