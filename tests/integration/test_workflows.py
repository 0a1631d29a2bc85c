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

The GitHub side is modelled too: the environments admit only their branch (dev: main,
testing: testing, housekeeping: main) and hold every secret, and the runner's job-started
hook (scripts/runner-job-started.sh) runs before every job on the Docker host. A second
sshd on the Docker bridge gateway serves two git repositories: an addon that the
workspace keeps as a git submodule (registered, not checked out, as actions/checkout
leaves it) and an addon pinned in addon-repos.yaml, fetched by the build container.

Scenario (one stack per env on the host): push main (sha1) -> build once, test that image,
push those images, deploy dev by their digests (the submodule and the pinned addon in the
image); dispatch promote dev-sha1 -> testing from `testing` (no rebuild, the release log's
digests); push testing (sha2) -> build and deploy testing, the deploy job cancelled the
way the runner cancels (SIGINT...) while it deploys, then pushed again: the interrupted
deploy is recovered, and the tag moved in the registry meanwhile does not matter (the
digests do); dispatch rollback testing -> back to the promoted image; dispatch prune +
housekeeping (a dry run) and the scheduled run (deletes testing-sha2 only, rotates the
log, removes a leftover snapshot); push main (sha3) with the image rebuilt between the
tests and the push -> nothing pushed, nothing deployed. Then a missing variable, jobs
from other branches and workflows kept away from the runner and the secrets, and the
project's own ci.yml.
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
from tests.integration.gitsshd import GitSshd, start_git_sshd
from tests.integration.registry import Registry
from tests.integration.sshd import Sshd, start_sshd
from tests.integration.workflows_sim import RunResult, Simulator

WORKFLOWS = REPO / ".github" / "workflows"
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
ENVS = ("dev", "testing")
ADDONS_DIR = "tests/fixtures/standin-addons/tests_pass"
SUB_ADDON = "wf_sub_addon"  # a git submodule of the workspace, over the git sshd
PINNED_ADDON = "wf_pinned_addon"  # in addon-repos.yaml, over the git sshd
REPOSITORY = "acme/odoo-ai"
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"])
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
    git: GitSshd | None = None

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
            f"ODOO_BUILD_ADDONS_DIR={ADDONS_DIR}",
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

    # ---- the registry, read and changed behind the workflows' back (independent of the code under test)
    def manifest(self, target: str, reference: str) -> tuple[bytes, str]:
        response = httpx.get(f"{self.registry.url}/v2/{self.repo(target)}/manifests/{reference}",
                             headers={"Accept": MANIFEST_TYPES}, auth=(self.registry.user, self.registry.password),
                             timeout=10)
        response.raise_for_status()
        return response.content, response.headers["content-type"]

    def image_id(self, target: str, digest: str) -> str:
        """The image (config) a manifest describes: what Docker calls the image ID."""
        return json.loads(self.manifest(target, digest)[0])["config"]["digest"]

    def move_tag(self, target: str, tag: str, digest: str) -> None:
        body, media_type = self.manifest(target, digest)
        httpx.put(f"{self.registry.url}/v2/{self.repo(target)}/manifests/{tag}", content=body,
                  headers={"Content-Type": media_type}, auth=(self.registry.user, self.registry.password),
                  timeout=10).raise_for_status()
        assert self.registry.digest(self.repo(target), tag) == digest

    def in_image(self, ref: str, script: str) -> str:
        return subprocess.run([DOCKER, "run", "--rm", "--entrypoint", "/bin/sh", ref, "-c", script],
                              capture_output=True, text=True, timeout=120).stdout


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workflows") / "workspace"
    path.mkdir()
    make_workspace(path)
    return path


def add_addon_sources(workspace: Path, git: GitSshd) -> None:
    """The workspace gets a git submodule under the built addons folder (registered and
    committed, then de-initialised: what a checkout without submodules leaves) and an
    addon-repos.yaml pinning another repository's commit, both served by `git`."""
    manifest = "{'name': '%s', 'version': '18.0.1.0.0', 'depends': ['base'], 'license': 'LGPL-3'}\n"
    sub, _ = git.repo(f"sub-{uuid.uuid4().hex[:6]}", {"__init__.py": "", "__manifest__.py": manifest % SUB_ADDON})
    pinned, commit = git.repo(f"pinned-{uuid.uuid4().hex[:6]}", {
        f"{PINNED_ADDON}/__init__.py": "", f"{PINNED_ADDON}/__manifest__.py": manifest % PINNED_ADDON})
    env = {**os.environ, "GIT_SSH_COMMAND": git.ssh_command(), "GIT_AUTHOR_NAME": "sim",
           "GIT_AUTHOR_EMAIL": "sim@example.invalid", "GIT_COMMITTER_NAME": "sim", "GIT_COMMITTER_EMAIL": "sim@example.invalid"}
    path = f"{ADDONS_DIR}/{SUB_ADDON}"
    for args in (["submodule", "add", "-q", git.url(sub), path], ["add", "-A"]):
        subprocess.run(["git", "-C", str(workspace), *args], env=env, check=True, capture_output=True, timeout=120)
    (workspace / "addon-repos.yaml").write_text(
        f"repos:\n  - url: {git.url(pinned)}\n    commit: {commit}\n    paths: [{PINNED_ADDON}]\n")
    _git(workspace, "add", "addon-repos.yaml")
    _git(workspace, "commit", "-q", "-m", "addons from a submodule and a pinned repository")
    _git(workspace, "submodule", "deinit", "-q", "-f", path)
    shutil.rmtree(workspace / ".git" / "modules")
    assert not any((workspace / path).iterdir())


@pytest.fixture(scope="module")
def stage(registry: Registry, workspace: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("workflow-stage")
    sshd = start_sshd(tmp / "sshd")
    git = start_git_sshd(tmp / "git-sshd")
    add_addon_sources(workspace, git)
    suffix = uuid.uuid4().hex[:8]
    enterprise_key = tmp / "enterprise_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(enterprise_key)], check=True)
    (tmp / "tmp").mkdir()
    stage = Stage(
        sim=None, workspace=workspace, host=tmp / "host", registry=registry, namespace=f"oaiw-{suffix}/odoo",
        sshd=sshd, ports={env: free_port() for env in ENVS}, projects={env: f"oaiw-{env}-{suffix}" for env in ENVS},
        git=git,
    )
    known_hosts = sshd.known_hosts.read_text()
    client_key = sshd.client_key.read_text()
    # Every secret is an environment secret (docs/operations.md, "Trust boundary"); each
    # environment admits only its branch.
    registry_secret = {"ODOO_REGISTRY_PASSWORD": registry.password}
    build_secrets = {**registry_secret, "ODOO_ENTERPRISE_SSH_KEY": enterprise_key.read_text(),
                     "ODOO_ADDONS_SSH_KEY": git.key.read_text()}
    stage.sim = Simulator(
        workspace=workspace, temp_root=tmp / "runner", base_env=runner_env(tmp / "tmp"), repository=REPOSITORY,
        vars={
            "ODOO_DEV_ENV_FILE": stage.env_file("dev"),
            "ODOO_TESTING_ENV_FILE": stage.env_file("testing"),
            "DOCKER_SHINY_HOST": sshd.url,
            "DOCKER_SHINY_KNOWN_HOSTS": known_hosts,
            "ODOO_REGISTRY_USER": registry.user,
            "ODOO_ENTERPRISE_KNOWN_HOSTS": known_hosts,  # any pinned host keys: nothing clones Enterprise here
            "ODOO_ADDONS_KNOWN_HOSTS": git.known_hosts.read_text(),
            "ODOO_DEV_URL": f"http://127.0.0.1:{stage.ports['dev']}",
            "ODOO_TESTING_URL": f"http://127.0.0.1:{stage.ports['testing']}",
            "ODOO_PRUNE_KEEP": "1",
            "ODOO_PRUNE_MIN_AGE_HOURS": "0",
            "ODOO_HOUSEKEEPING_BUILD_CACHE_HOURS": "8760",  # a shared engine: only cache unused for a year
            "ODOO_HOUSEKEEPING_LOG_MAX_MB": "0",  # rotate at every run
            "ODOO_HOUSEKEEPING_LOG_KEEP": "3",
        },
        secrets={"GITHUB_TOKEN": "ghs_simulated-token-unused-by-a-non-ghcr-registry"},
        environments={
            "dev": {"secrets": {**SECRETS["dev"], **build_secrets, "DOCKER_SHINY_SSH_KEY": client_key},
                    "branches": ["main"]},
            "testing": {"secrets": {**SECRETS["testing"], **build_secrets, "DOCKER_SHINY_SSH_KEY": client_key},
                        "branches": ["testing"]},
            "housekeeping": {"secrets": registry_secret, "branches": ["main"]},
        },
    )
    stage.sim.job_started_hook = REPO / "scripts" / "runner-job-started.sh"
    stage.sim.runner_env = {"ODOO_AI_RUNNER_REPOSITORY": REPOSITORY}
    yield stage
    git.stop()
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
    targets = ("web", "script-runner")

    # -- push to main: build once (the keys as BuildKit secrets), test that image, push those
    #    very images; deploy dev by the digests the build job reported
    sha1 = stage.head()
    tag1, promoted, tag2 = f"dev-{sha1[:7]}", f"testing-{sha1[:7]}", None
    fetched = stage.git.accepted()
    run = sim.run(deploy_yml, event="push", ref="refs/heads/main", sha=sha1)
    assert_ok(run, ["build", "deploy_dev"])
    build = run.job("build")
    assert build.outputs["tag"] == tag1
    built = build.step("build").outputs  # the image IDs the build step reported
    for target in targets:
        assert build.outputs[f"{target}-digest"] == stage.registry.digest(stage.repo(target), tag1), run.log()
        # what was pushed is the image that was built: its manifest's config is the built image ID
        assert stage.image_id(target, build.outputs[f"{target}-digest"]) == built[f"{target}-id"]
    assert build.concurrency == {"group": "build-main", "cancel-in-progress": False, "queue": "max"}
    assert build.environment == {"name": "dev", "url": ""}
    reports = sim.artifacts.uploaded["odoo-test-results"] / "reports"
    results = json.loads((reports / "test-results.json").read_text())
    assert results["status"] == "passed" and results["totals"]["tests"] > 0
    tested = results["run"]["image"]
    assert tested == built["script-runner-id"]  # the tests ran on that image, by ID
    assert (reports / "test-results.xml").exists()
    assert "standin_tests_pass" in build.summary  # the test runner's own summary
    assert f"### images `{tag1}`" in build.summary and "key scan: 0 findings" in build.summary
    assert "| yes |" in build.summary  # the registry has those very images
    # the submodule (checked out by the job over ssh with ODOO_ADDONS_SSH_KEY) and the pinned
    # repository (fetched by the build container with the key as a BuildKit secret)
    assert stage.git.accepted() >= fetched + 2
    assert SUB_ADDON in build.step("Check out the addon submodules").log
    pinned = next(line for line in (stage.workspace / "addon-repos.yaml").read_text().splitlines() if "commit:" in line)
    assert "addon repository `ssh://" in build.summary and pinned.split()[-1] in build.summary

    deploy = run.job("deploy_dev")
    assert deploy.environment == {"name": "dev", "url": f"http://127.0.0.1:{stage.ports['dev']}"}
    assert deploy.concurrency == {"group": "deploy-dev", "cancel-in-progress": False, "queue": "max"}
    # the CLI's own summary, once: its verdict, the phases as a Mermaid Gantt chart
    assert f"### ✅ deploy dev: none → `{tag1}` **success**" in deploy.summary, deploy.summary
    assert deploy.summary.count("**success**") == 1 and "```mermaid\ngantt" in deploy.summary
    assert "gate" in deploy.summary.split("```mermaid", 1)[1]
    # progress lines reach the job log as the phases happen, although stdout is the JSON document
    log = deploy.step("Deploy (or roll back) over SSH").log
    assert "… pull" in log and "✓ gate" in log and log.index("… pull") < log.index("✓ gate")
    assert stage.http("dev") == 200
    release = stage.releases("dev")[-1]
    assert (release["kind"], release["image_tag"], release["status"], release["commit"]) == \
        ("deploy", tag1, "success", sha1)
    # the deployed digests are those of the tested images
    assert release["digests"] == {t: build.outputs[f"{t}-digest"] for t in targets}
    assert stage.image_id("script-runner", release["digests"]["script-runner"]) == tested
    assert release["actor"] == sim.actor and release["ci_run_url"].endswith(f"/actions/runs/{1000 + sim.runs}")
    # The host pulled with the credentials the deploy step passed (a login for the pull
    # only): not a fallback to the images that the build left on this same engine.
    assert not any("registry unreachable" in note for note in release["notes"]), release["notes"]
    assert stat.S_IMODE((stage.state_root("dev") / ".env").stat().st_mode) == 0o600
    web = f"{stage.registry.host}/{stage.repo('web')}@{release['digests']['web']}"
    listed = stage.in_image(web, "ls /opt/odoo/custom-addons /opt/odoo/addon-repos; cat /opt/odoo/addon-checksums.json")
    assert SUB_ADDON in listed and PINNED_ADDON in listed, listed
    assert listed.count(f'"{SUB_ADDON}"') == 1 and listed.count(f'"{PINNED_ADDON}"') == 1  # in the addons hash
    assert_clean(stage, run)

    # -- dispatch from `testing`: promote the tested dev image (the release log's digests, no
    #    build) and deploy those digests
    run = sim.run(deploy_yml, event="workflow_dispatch", ref="refs/heads/testing", sha=sha1,
                  inputs={"action": "promote", "tag": tag1})
    assert_ok(run, ["promote", "deploy_testing"])
    assert run.job("promote").outputs == {"tag": promoted, **{f"{t}-digest": release["digests"][t] for t in targets}}
    assert run.job("promote").concurrency["group"] == run.job("deploy_testing").concurrency["group"] == "deploy-testing"
    assert "(digests from the release-log)" in run.job("promote").summary
    for target in targets:
        assert stage.registry.digest(stage.repo(target), promoted) == build.outputs[f"{target}-digest"]
    testing = stage.releases("testing")[-1]
    assert (testing["image_tag"], testing["status"], testing["commit"]) == (promoted, "success", sha1)
    assert testing["digests"] == release["digests"]
    assert run.job("deploy_testing").environment["name"] == "testing"
    assert stage.http("testing") == 200
    assert_clean(stage, run)

    # -- push to testing (sha2): the deploy job is cancelled while it deploys (GitHub's
    #    SIGINT, SIGTERM, SIGKILL); the always() steps still clean up, testing keeps serving
    sha2 = stage.commit()
    tag2 = f"testing-{sha2[:7]}"
    sim.base_env["ODOO_AI_FAULT_HOLD_PHASE"] = "gate"  # the deploy waits at the gate to be cancelled there
    try:  # cancelled once the deploy says it is in the gate (the hold starts after that line)
        run = sim.run(deploy_yml, event="push", ref="refs/heads/testing", sha=sha2,
                      cancel={"deploy_testing": ("Deploy (or roll back) over SSH", 300.0, "… gate")})
    finally:
        del sim.base_env["ODOO_AI_FAULT_HOLD_PHASE"]
    assert run.job("build").result == "success", run.log()
    cancelled = run.job("deploy_testing")
    assert cancelled.result == "cancelled", run.log()
    assert cancelled.step("Deploy (or roll back) over SSH").outcome == "cancelled"
    assert "… gate" in cancelled.step("Deploy (or roll back) over SSH").log  # cancelled in the gate
    assert cancelled.step("Remove the SSH key and the settings").outcome == "success"
    print("cancelled deploy:", cancelled.step("Deploy (or roll back) over SSH").log[-1500:])
    assert stage.http("testing") == 200  # the previous release serves
    assert_clean(stage, run)

    # -- pushed again: the interrupted deploy is recovered first; meanwhile someone moved the
    #    tag in the registry to another image, which changes nothing: the digests are deployed
    sha2_digests = {t: run.job("build").outputs[f"{t}-digest"] for t in targets}

    def move_the_tag(job: str, step: str) -> None:
        if (job, step) == ("deploy_testing", "Deploy (or roll back) over SSH"):
            for target in targets:
                stage.move_tag(target, tag2, release["digests"][target])  # an image that was not built for sha2

    run = sim.run(deploy_yml, event="push", ref="refs/heads/testing", sha=sha2, before_step=move_the_tag)
    assert_ok(run, ["build", "deploy_testing"])
    assert {t: run.job("build").outputs[f"{t}-digest"] for t in targets} == sha2_digests  # built once: same images
    assert f"`{promoted}` → `{tag2}` **success**" in run.job("deploy_testing").summary
    last = stage.releases("testing")[-1]
    assert (last["image_tag"], last["status"]) == (tag2, "success")
    assert last["digests"] == sha2_digests != {t: stage.registry.digest(stage.repo(t), tag2) for t in targets}
    records = stage.releases("testing")
    interrupted = [r for r in records if r["image_tag"] == tag2 and r["status"] != "success"]
    assert interrupted and any("interrupt" in json.dumps(r).lower() for r in interrupted), records
    assert [r["image_tag"] for r in records if r["status"] == "success"] == [promoted, tag2]
    assert [r["image_tag"] for r in stage.releases("dev")] == [tag1]  # dev untouched
    assert not (stage.state_root("testing") / "deploy-journal.json").exists()
    for target in targets:  # put the tag back for the prune below
        stage.move_tag(target, tag2, sha2_digests[target])
    assert_clean(stage, run)

    # -- dispatch from `testing`: roll testing back to the release before the current one
    run = sim.run(deploy_yml, event="workflow_dispatch", ref="refs/heads/testing", sha=sha2,
                  inputs={"action": "rollback", "env": "testing"})
    assert_ok(run, ["deploy_testing"])
    assert f"### ✅ rollback testing: `{tag2}` → `{promoted}` **success**" in run.job("deploy_testing").summary
    last = stage.releases("testing")[-1]
    assert (last["kind"], last["image_tag"], last["status"]) == ("rollback", promoted, "success")
    assert stage.http("testing") == 200
    assert_clean(stage, run)

    # -- dispatch prune + housekeeping: a dry run by default. With ODOO_PRUNE_KEEP=1 only
    #    testing-<sha2> (rolled back from, not deployed anywhere now) may go; nothing is deleted yet.
    leftover = stage.state_root("testing") / "snapshots" / "leftover-1.dump"  # of no release
    leftover.parent.mkdir(exist_ok=True)
    leftover.write_text("x")
    odoo_log = stage.state_root("testing") / "logs" / "odoo.log"
    assert odoo_log.stat().st_size > 0
    tags = {t: stage.registry.tags(stage.repo(t)) for t in targets}
    run = sim.run(prune_yml, event="workflow_dispatch", ref="refs/heads/main", sha=sha2)
    assert_ok(run, ["prune", "housekeeping"])
    summary = run.job("prune").summary
    assert "### prune-images (dry run): would delete 2, kept 2" in summary, summary
    assert f"| delete | `{stage.repo('web')}:{tag2}` |" in summary and "currently deployed" in summary
    assert {t: stage.registry.tags(stage.repo(t)) for t in targets} == tags
    assert "### housekeeping (dry run)" in run.job("housekeeping").summary, run.job("housekeeping").summary
    assert leftover.exists() and not (odoo_log.parent / "odoo.log.1").exists()
    assert_clean(stage, run)

    # -- the daily schedule deletes for real, and only that image; the host: the leftover
    #    snapshot goes, Odoo's log is rotated, <state_root>/cache/ exists
    run = sim.run(prune_yml, event="schedule", ref="refs/heads/main", sha=sha2)
    assert_ok(run, ["prune", "housekeeping"])
    assert "### prune-images: deleted 2, kept 2" in run.job("prune").summary, run.job("prune").summary
    for target in targets:
        assert stage.registry.tags(stage.repo(target)) == sorted([tag1, promoted])
    house = run.job("housekeeping").summary
    print(house)
    assert "### housekeeping\n" in house and "builder cache unused for 8760" in house
    assert not leftover.exists()
    for env in ENVS:
        assert (stage.state_root(env) / "cache").is_dir()
        assert (stage.state_root(env) / "logs" / "odoo.log.1").exists()
    assert stage.http("dev") == 200 and stage.http("testing") == 200
    assert_clean(stage, run)

    # -- push to main (sha3), and the image is rebuilt differently between the tests and the
    #    push (e.g. a moving Odoo branch): nothing is pushed, nothing deployed
    sha3 = stage.commit()
    tag3 = f"dev-{sha3[:7]}"

    def rebuild(job: str, step: str) -> None:
        if (job, step) == ("build", "Push the tested images"):
            ref = f"{stage.registry.host}/{stage.repo('script-runner')}:{tag3}"
            subprocess.run([DOCKER, "build", "-q", "-t", ref, "-"], input=f"FROM {ref}\nLABEL untested=yes\n",
                           text=True, capture_output=True, check=True, timeout=300,
                           env={**os.environ, "DOCKER_BUILDKIT": "1"})

    run = sim.run(deploy_yml, event="push", ref="refs/heads/main", sha=sha3, before_step=rebuild)
    build = run.job("build")
    assert build.result == "failure" and run.job("deploy_dev").result == "skipped", run.log()
    push = build.step("Push the tested images")
    assert push.outcome == "failure" and "that was built and tested: refusing to push" in push.log, push.log
    assert build.step("Remove the keys and the settings").outcome == "success"
    for target in targets:
        assert tag3 not in stage.registry.tags(stage.repo(target))
    assert [r["image_tag"] for r in stage.releases("dev")] == [tag1] and stage.http("dev") == 200
    assert_clean(stage, run)


def test_other_branches_reach_neither_the_runner_nor_the_secrets(stage: Stage, tmp_path: Path) -> None:
    """A workflow pushed to another branch: the runner's hook refuses it, and an environment
    refuses a branch it does not admit; the repository's own workflows do not run their
    Docker-host jobs from other branches either."""
    sim = stage.sim
    evil = tmp_path / "exfiltrate.yml"
    evil.write_text("on: [push]\npermissions: {}\njobs:\n  take:\n    runs-on: [self-hosted, docker-shiny]\n"
                    "    timeout-minutes: 5\n    environment: {name: dev}\n    steps:\n"
                    "      - env: {KEY: '${{ secrets.DOCKER_SHINY_SSH_KEY }}'}\n        run: echo \"$KEY\"\n")
    run = sim.run(evil, event="push", ref="refs/heads/feature", sha=stage.head())
    job = run.job("take")
    assert job.result == "failure" and "BEGIN OPENSSH" not in job.log()
    assert "is not allowed to deploy to dev" in job.log()  # the environment refuses first
    # even a job without an environment never gets a shell on the Docker host
    evil.write_text(evil.read_text().replace("    environment: {name: dev}\n", "").replace(
        "secrets.DOCKER_SHINY_SSH_KEY", "github.ref"))
    job = sim.run(evil, event="push", ref="refs/heads/feature", sha=stage.head()).job("take")
    assert job.result == "failure" and [s.name for s in job.steps] == ["Set up runner (job-started hook)"]
    assert "exfiltrate.yml@refs/heads/feature is not admitted" in job.log()
    # the real workflows on another branch: nothing runs on the host
    run = sim.run(WORKFLOWS / "deploy.yml", event="workflow_dispatch", ref="refs/heads/feature", sha=stage.head(),
                  inputs={"action": "rollback", "env": "dev"})
    assert run.ran() == []
    run = sim.run(WORKFLOWS / "deploy.yml", event="workflow_dispatch", ref="refs/heads/main", sha=stage.head(),
                  inputs={"action": "promote", "tag": "dev-1234567"})
    assert run.ran() == []  # promote only from testing


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
