"""The GitHub workflows of .github/workflows, run here step by step.

tests/integration/workflows_sim.py plays the self-hosted runner: it evaluates every
`${{ }}` of the workflows' `if:`/`env:`/`outputs:` against simulated contexts and runs
each `run:` script with bash in a clean copy of the repository, in order, with the job
outputs flowing to the jobs that need them. What the scripts reach is real: the local
Docker engine builds the stand-in Odoo with `odoo-ai build`, a Debian docker-registry
(htpasswd) receives the pushes, and an OpenSSH server on 127.0.0.1 stands in for
docker.shiny (pinned host key, key auth). The simulated
values are the repository/environment variables and secrets docs/operations.md tells
the user to define, so a broken step or a missing variable fails here, not on GitHub.

Scenario (one stack per env on the host): push main (sha1) -> build, test, push, deploy
dev; dispatch promote dev-sha1 -> testing (no rebuild); push testing (sha2) -> build and
deploy testing; dispatch rollback testing -> back to the promoted image; dispatch prune
(a dry run) and the scheduled prune (deletes testing-sha2 only). Then a missing variable,
and the project's own ci.yml.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.conftest import BASE_IMAGE, DOCKER, REPO, force_cleanup, free_port
from tests.integration.registry import Registry
from tests.integration.sshd import Sshd, start_sshd
from tests.integration.workflows_sim import RunResult, Simulator

WORKFLOWS = REPO / ".github" / "workflows"
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
ENVS = ("dev", "testing")
SECRETS = {
    "dev": {"ODOO_DB_PASSWORD": "wf-dev-$ecret 'db' \"pw\"", "ODOO_MASTER_PASSWORD": "wf-dev-master-$$"},
    "testing": {"ODOO_DB_PASSWORD": "wf-testing-$ecret #db", "ODOO_MASTER_PASSWORD": "wf-testing-master"},
}


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "sim", "GIT_AUTHOR_EMAIL": "sim@example.invalid",
           "GIT_COMMITTER_NAME": "sim", "GIT_COMMITTER_EMAIL": "sim@example.invalid"}
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True,
                          env=env, timeout=120).stdout.strip()


def make_workspace(target: Path) -> str:
    """A clean copy of the repository (tracked and new, not ignored, files) as a git
    repository of its own with one commit; returns that commit."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard"],
                            capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = REPO / rel
        if source.is_file() and not source.is_symlink():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)
    _git(target, "init", "-q", "-b", "main")
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "-m", "workflow simulation")
    return _git(target, "rev-parse", "HEAD")


def runner_env(tmp: Path) -> dict[str, str]:
    """The environment of the runner's process: this machine's, without what pytest, uv
    or a developer's shell put there that a runner would not have (our own virtualenv,
    settings that point odoo-ai at another repository)."""
    venv_bin = str(Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ODOO_", "GITHUB_", "RUNNER_", "PYTEST_", "UV_"))
           and k not in ("VIRTUAL_ENV", "CI", "COLUMNS", "TMPDIR")}
    env["PATH"] = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["ODOO_AI_DOCKER"] = DOCKER  # BuildKit-capable docker CLI (see conftest.py)
    env["TMPDIR"] = str(tmp)
    return env


@dataclass
class Stage:
    sim: Simulator
    workspace: Path
    host: Path
    registry: Registry
    namespace: str
    sshd: Sshd
    ports: dict[str, int]
    projects: dict[str, str]

    def state_root(self, env: str) -> Path:
        return self.host / "data" / env

    def releases(self, env: str) -> list[dict]:
        path = self.state_root(env) / "releases.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def commit(self) -> str:
        _git(self.workspace, "commit", "-q", "--allow-empty", "-m", f"change {uuid.uuid4().hex[:6]}")
        return _git(self.workspace, "rev-parse", "HEAD")

    def head(self) -> str:
        return _git(self.workspace, "rev-parse", "HEAD")

    def repo(self, target: str) -> str:
        return f"{self.namespace}-{target}"

    def env_file(self, env: str) -> str:
        """The content of the repository variable ODOO_<ENV>_ENV_FILE (docs/operations.md)."""
        lines = [
            f"ODOO_PROJECT_NAME={self.projects[env]}",
            f"ODOO_STATE_ROOT={self.state_root(env)}",
            f"ODOO_REMOTE_REPO_DIR={self.host / 'repos' / env}",
            f"ODOO_PUBLISHED_PORT={self.ports[env]}",
            f"ODOO_IMAGE={self.registry.host}/{self.namespace}",
            "ODOO_DB_IMAGE=odoo-ai-test/postgres:15",
            "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1",
            # testing's mail catcher: the TEST image (no Docker Hub here), its UI on a port Docker picks
            "ODOO_MAIL_CATCHER_IMAGE=odoo-ai-test/mailcatcher:1",
            "ODOO_MAIL_CATCHER_PORT=0",
            f"ODOO_DB_NAME=opw_wf_{env}",
            "ODOO_SECRETS=ODOO_DB_PASSWORD,ODOO_MASTER_PASSWORD",
            "ODOO_BUILD_ODOO_SRC=tests/fixtures/standin-odoo",
            "ODOO_BUILD_ADDONS_DIR=tests/fixtures/standin-addons/tests_pass",
            f"ODOO_BUILD_BASE_IMAGE={BASE_IMAGE}",
            "ODOO_BUILD_WKHTMLTOPDF=none",
            "ODOO_DEPLOY_GATE_TIMEOUT=60",
            "ODOO_DEPLOY_DRAIN_SECONDS=0.5",
        ]
        if os.path.exists(CA_FILE):
            lines.append(f"ODOO_BUILD_CA_FILE={CA_FILE}")
        return "\n".join(lines)

    def http(self, env: str) -> int:
        return httpx.get(f"http://127.0.0.1:{self.ports[env]}/web/health", timeout=10).status_code


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workflows") / "workspace"
    path.mkdir()
    make_workspace(path)
    return path


@pytest.fixture(scope="module")
def stage(registry: Registry, workspace: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("workflow-stage")
    sshd = start_sshd(tmp / "sshd")
    suffix = uuid.uuid4().hex[:8]
    enterprise_key = tmp / "enterprise_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(enterprise_key)], check=True)
    (tmp / "tmp").mkdir()
    stage = Stage(
        sim=None, workspace=workspace, host=tmp / "host", registry=registry, namespace=f"oaiw-{suffix}/odoo",
        sshd=sshd, ports={env: free_port() for env in ENVS}, projects={env: f"oaiw-{env}-{suffix}" for env in ENVS},
    )
    known_hosts = sshd.known_hosts.read_text()
    client_key = sshd.client_key.read_text()
    stage.sim = Simulator(
        workspace=workspace, temp_root=tmp / "runner", base_env=runner_env(tmp / "tmp"),
        vars={
            "ODOO_DEV_ENV_FILE": stage.env_file("dev"),
            "ODOO_TESTING_ENV_FILE": stage.env_file("testing"),
            "DOCKER_SHINY_HOST": sshd.url,
            "DOCKER_SHINY_KNOWN_HOSTS": known_hosts,
            "ODOO_REGISTRY_USER": registry.user,
            "ODOO_ENTERPRISE_KNOWN_HOSTS": known_hosts,  # any pinned host keys: nothing clones here
            "ODOO_DEV_URL": f"http://127.0.0.1:{stage.ports['dev']}",
            "ODOO_TESTING_URL": f"http://127.0.0.1:{stage.ports['testing']}",
            "ODOO_PRUNE_KEEP": "1",
            "ODOO_PRUNE_MIN_AGE_HOURS": "0",
        },
        secrets={
            "GITHUB_TOKEN": "ghs_simulated-token-unused-by-a-non-ghcr-registry",
            "ODOO_REGISTRY_PASSWORD": registry.password,
            "ODOO_ENTERPRISE_SSH_KEY": enterprise_key.read_text(),
        },
        environments={env: {"secrets": {**SECRETS[env], "DOCKER_SHINY_SSH_KEY": client_key}} for env in ENVS},
    )
    yield stage
    sshd.stop()
    for env in ENVS:
        force_cleanup(stage.projects[env], stage.state_root(env))
    out = subprocess.run([DOCKER, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                         capture_output=True, text=True, timeout=60).stdout.split()
    for ref in out:  # our own throw-away images only, by name, never forced
        if ref.startswith(f"{registry.host}/{stage.namespace}-"):
            subprocess.run([DOCKER, "image", "rm", ref], capture_output=True, timeout=120)


def assert_ok(run: RunResult, expected_jobs: list[str]) -> None:
    print(run.workflow, {job: f"{run.job(job).seconds:.0f}s" for job in run.ran()})  # shown with -s / -rA
    assert run.ran() == expected_jobs, run.log()
    failed = [job for job in expected_jobs if run.job(job).result != "success"]
    assert not failed, f"jobs {failed} failed:\n{run.log()}"


def assert_clean(stage: Stage, run: RunResult) -> None:
    """The always() steps removed every secret file and the rendered settings; no
    secret value reached a log."""
    for job in run.jobs.values():
        if job.runner_temp is None:
            continue
        assert not (job.runner_temp / "odoo-ai").exists(), f"{job.id} left {list((job.runner_temp / 'odoo-ai').rglob('*'))}"
        values = [v for env in ENVS for v in SECRETS[env].values()] + [stage.registry.password]
        for step in job.steps:
            for value in values:
                assert value not in step.log, f"{job.id}/{step.name} logged a secret"
    assert list((stage.workspace / "docker" / "config").glob("*.env")) == []


def test_deploy_and_prune_workflows(stage: Stage) -> None:
    sim, deploy_yml, prune_yml = stage.sim, WORKFLOWS / "deploy.yml", WORKFLOWS / "prune-images.yml"

    # -- push to main: build (the Enterprise key as a BuildKit secret), test, push; deploy dev
    sha1 = stage.head()
    tag1, promoted, tag2 = f"dev-{sha1[:7]}", f"testing-{sha1[:7]}", None
    run = sim.run(deploy_yml, event="push", ref="refs/heads/main", sha=sha1)
    assert_ok(run, ["build", "deploy_dev"])
    build = run.job("build")
    assert build.outputs["tag"] == tag1
    for target in ("web", "script-runner"):
        assert build.outputs[f"{target}-digest"] == stage.registry.digest(stage.repo(target), tag1), run.log()
    assert build.concurrency == {"group": "build-main", "cancel-in-progress": False, "queue": "max"}
    reports = sim.artifacts.uploaded["odoo-test-results"] / "reports"
    results = json.loads((reports / "test-results.json").read_text())
    assert results["status"] == "passed" and results["totals"]["tests"] > 0
    assert (reports / "test-results.xml").exists()
    assert "standin_tests_pass" in build.summary  # the test runner's own summary
    assert f"### images `{tag1}`" in build.summary and "Enterprise key scan: 0 findings" in build.summary

    deploy = run.job("deploy_dev")
    assert deploy.environment == {"name": "dev", "url": f"http://127.0.0.1:{stage.ports['dev']}"}
    assert deploy.concurrency == {"group": "deploy-dev", "cancel-in-progress": False, "queue": "max"}
    assert f"### deploy of `{tag1}` to dev: **success**" in deploy.summary, deploy.summary
    assert "| phase | seconds | ok |" in deploy.summary and "| gate |" in deploy.summary
    assert stage.http("dev") == 200
    release = stage.releases("dev")[-1]
    assert (release["kind"], release["image_tag"], release["status"], release["commit"]) == \
        ("deploy", tag1, "success", sha1)
    assert release["digests"] == {t: build.outputs[f"{t}-digest"] for t in ("web", "script-runner")}
    assert release["actor"] == sim.actor and release["ci_run_url"].endswith(f"/actions/runs/{1000 + sim.runs}")
    # The host pulled with the credentials the deploy step passed (a login for the pull
    # only): not a fallback to the images that the build left on this same engine.
    assert not any("registry unreachable" in note for note in release["notes"]), release["notes"]
    assert stat.S_IMODE((stage.state_root("dev") / ".env").stat().st_mode) == 0o600
    assert_clean(stage, run)

    # -- dispatch: promote the tested dev image to testing (same digests, no build) and deploy it
    run = sim.run(deploy_yml, event="workflow_dispatch", ref="refs/heads/main", sha=sha1,
                  inputs={"action": "promote", "tag": tag1})
    assert_ok(run, ["promote", "deploy_testing"])
    assert run.job("promote").outputs == {"tag": promoted}
    assert run.job("promote").concurrency["group"] == run.job("deploy_testing").concurrency["group"] == "deploy-testing"
    assert "(digests from the release-log)" in run.job("promote").summary
    for target in ("web", "script-runner"):
        assert stage.registry.digest(stage.repo(target), promoted) == build.outputs[f"{target}-digest"]
    testing = stage.releases("testing")[-1]
    assert (testing["image_tag"], testing["status"], testing["commit"]) == (promoted, "success", sha1)
    assert run.job("deploy_testing").environment["name"] == "testing"
    assert stage.http("testing") == 200
    assert_clean(stage, run)

    # -- push to testing: built and deployed as testing-<sha2> over the promoted release
    sha2 = stage.commit()
    tag2 = f"testing-{sha2[:7]}"
    run = sim.run(deploy_yml, event="push", ref="refs/heads/testing", sha=sha2)
    assert_ok(run, ["build", "deploy_testing"])
    assert run.job("build").outputs["tag"] == tag2
    assert f"| previous release | `{promoted}` |" in run.job("deploy_testing").summary
    assert [r["image_tag"] for r in stage.releases("testing")] == [promoted, tag2]
    assert [r["image_tag"] for r in stage.releases("dev")] == [tag1]  # dev untouched
    assert_clean(stage, run)

    # -- dispatch: roll testing back to the release before the current one
    run = sim.run(deploy_yml, event="workflow_dispatch", ref="refs/heads/main", sha=sha2,
                  inputs={"action": "rollback", "env": "testing"})
    assert_ok(run, ["deploy_testing"])
    assert f"### rollback of `{promoted}` to testing: **success**" in run.job("deploy_testing").summary
    last = stage.releases("testing")[-1]
    assert (last["kind"], last["image_tag"], last["status"]) == ("rollback", promoted, "success")
    assert stage.http("testing") == 200
    assert_clean(stage, run)

    # -- dispatch prune: a dry run by default. With ODOO_PRUNE_KEEP=1 only testing-<sha2>
    #    (rolled back from, not deployed anywhere now) may go; nothing is deleted yet.
    tags = {t: stage.registry.tags(stage.repo(t)) for t in ("web", "script-runner")}
    run = sim.run(prune_yml, event="workflow_dispatch", ref="refs/heads/main", sha=sha2)
    assert_ok(run, ["prune"])
    summary = run.job("prune").summary
    assert "### prune-images (dry run): would delete 2, kept 2" in summary, summary
    assert f"| delete | `{stage.repo('web')}:{tag2}` |" in summary and "currently deployed" in summary
    assert {t: stage.registry.tags(stage.repo(t)) for t in ("web", "script-runner")} == tags
    assert_clean(stage, run)

    # -- the weekly schedule deletes for real, and only that image
    run = sim.run(prune_yml, event="schedule", ref="refs/heads/main", sha=sha2)
    assert_ok(run, ["prune"])
    assert "### prune-images: deleted 2, kept 2" in run.job("prune").summary, run.job("prune").summary
    for target in ("web", "script-runner"):
        assert stage.registry.tags(stage.repo(target)) == sorted([tag1, promoted])
    assert stage.http("dev") == 200 and stage.http("testing") == 200
    assert_clean(stage, run)


def test_missing_variable_fails_the_job_and_still_cleans_up(stage: Stage) -> None:
    sim = stage.sim
    saved = sim.vars.pop("DOCKER_SHINY_KNOWN_HOSTS")
    try:
        run = sim.run(WORKFLOWS / "deploy.yml", event="workflow_dispatch", ref="refs/heads/main", sha=stage.head(),
                      inputs={"action": "rollback", "env": "dev"})
    finally:
        sim.vars["DOCKER_SHINY_KNOWN_HOSTS"] = saved
    job = run.job("deploy_dev")
    assert job.result == "failure"
    write = job.step("Write the stack settings and the SSH files")
    assert write.outcome == "failure" and "DOCKER_SHINY_KNOWN_HOSTS" in write.log
    assert job.step("Deploy (or roll back) over SSH").outcome == "skipped"
    assert job.step("Summary").outcome == "success" and "no result" in job.summary
    assert job.step("Remove the SSH key and the settings").outcome == "success"
    assert_clean(stage, run)


def test_ci_workflow(workspace: Path, tmp_path: Path) -> None:
    """ci.yml's lint job (ruff, zizmor, actionlint + shellcheck) passes on this tree, run by
    its own steps in a clean copy. Its unit job is the one step `uv run pytest -q tests/unit`,
    which this test suite runs anyway; executing it here again would only double that time."""
    sim = Simulator(workspace=workspace, temp_root=tmp_path / "runner", base_env=runner_env(tmp_path))
    run = sim.run(WORKFLOWS / "ci.yml", event="pull_request", ref="refs/pull/1/merge",
                  sha=_git(workspace, "rev-parse", "HEAD"), jobs=["lint"])
    assert_ok(run, ["lint"])
    assert " passed" in run.job("lint").step("zizmor and actionlint on .github/workflows").log
    unit = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())["jobs"]["unit"]["steps"]
    assert [step.get("run") for step in unit if "run" in step] == ["uv run pytest -q tests/unit"]
