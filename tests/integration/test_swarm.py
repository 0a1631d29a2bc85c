"""ODOO_ENGINE=swarm on a real single-node swarm of the provisioned engine: the stand-in Odoo
(real Dockerfile), real PostgreSQL, real nginx, real `docker stack deploy`. One stack for
the module; the tests run in order, each leaving the stack serving.

The engine is shared with the compose tests running meanwhile: the fixture inits the swarm
only if it is not active (`--advertise-addr 127.0.0.1`), never touches a compose project,
and leaves the swarm (`docker swarm leave --force`) at the end if it made it.

A client polls the published port every 100 ms during each deploy: a rolling deploy of 2
web replicas and a never-healthy image give 0 failed requests; a failing update leaves the
old release serving with its data.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.conftest import DOCKER, REPO, Cli, answers_during, free_port, image_exists
from tests.integration.sshd import start_sshd

TAGS = {"ok": "standin", "ok_v2": "standin-ok_v2", "update_fails": "standin-update_fails",
        "never_healthy": "standin-never_healthy"}
SECRETS = {"ODOO_DB_PASSWORD": "s3cr$t 'db'", "ODOO_MASTER_PASSWORD": "master$$"}


def docker(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture(scope="module")
def swarm() -> Iterator[None]:
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    made = False
    if state != "active":
        init = docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        if init.returncode != 0:
            pytest.fail(f"docker swarm init failed: {init.stderr}")
        made = True
    yield
    if made:
        docker("swarm", "leave", "--force")


@pytest.fixture(scope="module")
def stack(swarm, tmp_path_factory):
    for image in ("odoo-ai-test/postgres:15", "odoo-ai-test/nginx:1"):
        if not image_exists(image):
            pytest.fail(f"{image} missing: run scripts/build-test-images.sh")
    # The stand-in's scenario images, (re)built every time: a machine that keeps images must
    # not test an older stand-in (cache hits: seconds when nothing changed).
    args = ["bash", "scripts/build-test-images.sh"]
    for scenario in TAGS:
        args += [] if scenario == "ok" else ["--scenario", scenario]
    subprocess.run(args, cwd=REPO, check=True, capture_output=True, timeout=1200)
    tmp = tmp_path_factory.mktemp("swarm")
    (tmp / "config").mkdir()
    (tmp / "home").mkdir()
    project = f"oaisw-{os.getpid()}"
    state_root = tmp / "state"
    port = free_port()
    env = {**os.environ, "HOME": str(tmp / "home"), "ODOO_AI_DOCKER": DOCKER, **SECRETS}
    cli = Cli(REPO, tmp / "config", tmp / "home", env)
    cli.write_env("dev", "\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={state_root}", f"ODOO_PUBLISHED_PORT={port}",
        "ODOO_IMAGE=odoo-ai-test/odoo", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15",
        "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1", "ODOO_DB_NAME=opw_sw", "ODOO_UPDATE=standin_demo",
        "ODOO_ENGINE=swarm", "ODOO_SWARM_WEB_REPLICAS=2", f"ODOO_REMOTE_REPO_DIR={tmp / 'host-repo'}",
        "ODOO_DEPLOY_GATE_TIMEOUT=12", "ODOO_DEPLOY_DRAIN_SECONDS=0.5", "ODOO_DEPLOY_LOCK_TIMEOUT=2", "ODOO_DEPLOY_KEEP_SNAPSHOTS=1", "",
    ]))
    yield cli, project, state_root, port
    docker("stack", "rm", project)


class Poller:
    """GET /web/health through the published port every 100 ms; every answer but a 200 fails."""

    def __init__(self, port: int):
        self.port = port
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(f"http://127.0.0.1:{self.port}/web/health").status_code
                    if status == 200:
                        self.ok += 1
                    else:
                        self.failed.append(str(status))
                except httpx.HTTPError as exc:
                    self.failed.append(type(exc).__name__)
                time.sleep(0.1)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)
        self._stop.set()
        self._thread.join()


def sql(project: str, query: str) -> str:
    db = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={project}_db").stdout.split()[0]
    return docker("exec", db, "psql", "-U", "odoo", "-d", "opw_sw", "-tAc", query, check=True).stdout.strip()


def service_image(project: str, name: str) -> str:
    return docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
                  f"{project}_{name}").stdout.strip()


def running_tasks(project: str, name: str) -> list[str]:
    out = docker("service", "ps", "--filter", "desired-state=running", "--format", "{{.Image}} {{.CurrentState}}",
                 f"{project}_{name}").stdout
    return [line for line in out.splitlines() if " Running" in line]


def deploy(cli: Cli, tag: str, *, fails: bool = False) -> dict:
    proc = cli("deploy", "dev", "--tag", tag, "--any-tag", "--json", check=False)
    assert proc.returncode == (1 if fails else 0), proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_first_deploy_starts_web_replicas_one_cron_and_serves(stack) -> None:
    cli, project, state_root, port = stack
    assert cli.json("config", "show", "dev")["engine"] == "swarm"
    result = deploy(cli, TAGS["ok"])
    assert result["status"] == "success"
    names = [p["name"] for p in result["phases"]]
    assert names[:4] == ["render", "pull", "inspect", "services"] and names[-2:] == ["rollout", "gate"]
    assert "update" in names  # the new database: -i in a replicated-job service
    assert httpx.get(f"http://127.0.0.1:{port}/web/health", timeout=5).status_code == 200
    assert len(running_tasks(project, "web")) == 2 and len(running_tasks(project, "cron")) == 1
    cron = json.loads(docker("service", "inspect", f"{project}_cron").stdout)[0]["Spec"]["TaskTemplate"]
    assert cron["ContainerSpec"]["Args"] == ["--no-http"]
    web_env = json.loads(docker("service", "inspect", f"{project}_web").stdout)[0]["Spec"]["TaskTemplate"][
        "ContainerSpec"]["Env"]
    assert "ODOO_MAX_CRON_THREADS=0" in web_env and "ODOO_DB_PASSWORD=s3cr$t 'db'" in web_env
    assert sql(project, "SELECT state FROM ir_module_module WHERE name = 'standin_demo'") == "installed"
    sql(project, "CREATE TABLE odoo_ai_probe (note text); INSERT INTO odoo_ai_probe VALUES ('written before')")
    status = cli("status", "dev", "--json", check=False)
    doc = json.loads(status.stdout)
    assert status.returncode == 0 and doc["ok"] and doc["engine"] == "swarm", doc
    assert not docker("service", "ls", "-q", "--filter", f"label=org.odoo-ai.update={project}").stdout.split()


def test_rolling_deploy_of_two_replicas_loses_no_request(stack) -> None:
    cli, project, state_root, port = stack
    log = (state_root / "releases.log").read_text()
    dry = cli("deploy", "dev", "--tag", TAGS["ok_v2"], "--any-tag", "--dry-run")
    assert "docker stack deploy --with-registry-auth --prune" in dry.stdout and "--mode replicated-job" in dry.stdout
    assert SECRETS["ODOO_DB_PASSWORD"] not in dry.stdout + dry.stderr
    assert service_image(project, "web") == f"odoo-ai-test/odoo-web:{TAGS['ok']}"  # the dry run changed nothing
    assert (state_root / "releases.log").read_text() == log and not (state_root / "stack.next.yml").exists()
    with Poller(port) as poll:
        result = deploy(cli, TAGS["ok_v2"])
    assert result["status"] == "success" and result["release"]["updated"] is True
    assert poll.failed == [] and poll.ok > 20, poll.failed
    assert service_image(project, "web").startswith("odoo-ai-test/odoo-web:standin-ok_v2")
    assert service_image(project, "cron") == service_image(project, "web")
    assert all("standin-ok_v2" in t for t in running_tasks(project, "web")) and len(running_tasks(project, "web")) == 2
    assert sql(project, "SELECT note FROM odoo_ai_probe") == "written before"
    assert sql(project, "SELECT latest_version FROM ir_module_module WHERE name = 'standin_demo'").endswith("1.1.0")


def test_a_never_healthy_image_is_never_given_traffic_and_is_undone(stack) -> None:
    cli, project, state_root, port = stack
    with Poller(port) as poll:
        result = deploy(cli, TAGS["never_healthy"], fails=True)
    assert result["failed_phase"] == "rollout", result
    assert poll.failed == [] and poll.ok > 20, poll.failed
    undone = result["release"]["undone"]
    assert "services back on the previous release's digests" in undone
    assert any(line.startswith("restored database and filestore") for line in undone)
    assert service_image(project, "web").startswith("odoo-ai-test/odoo-web:standin-ok_v2")
    assert all("standin-ok_v2" in t for t in running_tasks(project, "web"))
    assert sql(project, "SELECT note FROM odoo_ai_probe") == "written before"
    assert not (state_root / "stack.next.yml").exists() and not (state_root / ".env.next").exists()


def test_a_failing_update_leaves_the_old_release_serving_with_its_data(stack) -> None:
    cli, project, state_root, port = stack
    with Poller(port) as poll:
        result = deploy(cli, TAGS["update_fails"], fails=True)
    assert result["failed_phase"] == "update", result
    assert "exited 255" in result["error"] or "exited 255" in json.dumps(result["release"])
    assert "ParseError" in result["output"]  # the job's logs were collected
    assert poll.failed == [], poll.failed
    assert service_image(project, "web").startswith("odoo-ai-test/odoo-web:standin-ok_v2")
    assert sql(project, "SELECT note FROM odoo_ai_probe") == "written before"
    assert sql(project, "SELECT latest_version FROM ir_module_module WHERE name = 'standin_demo'").endswith("1.1.0")
    kept = result["release"]["kept_database"]
    assert kept and sql(project, f"SELECT count(*) FROM pg_database WHERE datname = '{kept}'") == "1"
    assert not docker("service", "ls", "-q", "--filter", f"label=org.odoo-ai.update={project}").stdout.split()
    records = cli.json("releases", "dev")["releases"]
    assert [r["status"] for r in records][-2:] == ["failed", "failed"]
    assert records[-1]["phase"] == "update"


def test_deploy_status_and_releases_with_host_over_ssh(stack, tmp_path) -> None:
    """The same env driven through --host (a real OpenSSH server on 127.0.0.1 in front of
    the same engine: the manager CI talks to)."""
    cli, project, state_root, port = stack
    sshd = start_sshd(tmp_path / "sshd")
    try:
        ssh = {"ODOO_AI_SSH_KEY": str(sshd.client_key), "ODOO_AI_KNOWN_HOSTS": str(sshd.known_hosts)}
        with Poller(port) as poll:
            proc = cli("deploy", "dev", "--tag", TAGS["ok_v2"], "--any-tag", "--host", sshd.url, "--json",
                       extra_env=ssh)
        result = json.loads(proc.stdout)
        assert result["status"] == "success" and "update" not in [p["name"] for p in result["phases"]]
        assert poll.failed == [], poll.failed
        assert (state_root.parent / "host-repo" / "docker-compose.yml").exists()  # the files synced to the manager
        status = json.loads(cli("status", "dev", "--host", sshd.url, "--json", extra_env=ssh, check=False).stdout)
        assert status["ok"] and status["release"]["image_tag"] == TAGS["ok_v2"], status
        records = json.loads(cli("releases", "dev", "--host", sshd.url, "--json", extra_env=ssh).stdout)["releases"]
        assert records[-1]["status"] == "success" and records[-1]["image_tag"] == TAGS["ok_v2"]
        assert "Accepted publickey" in sshd.log.read_text()
    finally:
        sshd.stop()


def restore_rollback(cli: Cli, port: int, tag: str) -> tuple[dict, list[str]]:
    """`rollback --to TAG --restore-db` while a client GETs the login page: its result, and
    what the client got (the stand-in says when it serves newer code on older data)."""
    with answers_during(f"http://127.0.0.1:{port}/web/login?db=opw_sw") as answers:
        result = cli.json("rollback", "dev", "--to", tag, "--restore-db", "--yes", timeout=600)
    return result, answers


def test_restore_db_rollbacks_never_serve_newer_code_on_older_data(stack) -> None:
    """Back to ok with its data, then forward to ok_v2 with its own: web and cron are scaled
    to 0 before each swap, so no task's code meets data it was not updated for."""
    cli, project, state_root, port = stack
    version = "SELECT latest_version FROM ir_module_module WHERE name = 'standin_demo'"
    assert sql(project, version).endswith("1.1.0")
    back, answers = restore_rollback(cli, port, TAGS["ok"])
    assert back["status"] == "success" and back["tag"] == TAGS["ok"], back
    # no task between the swap and the rollout: the proxy's page (503, Retry-After), never a bare 502
    assert set(answers) <= {"200", "503 retry-after unavailable"} and answers[-1] == "200", answers
    assert sql(project, version).endswith("1.0.0")
    assert service_image(project, "web") == f"odoo-ai-test/odoo-web:{TAGS['ok']}"
    assert any("scaled to 0" in n for n in back["release"]["notes"])
    assert any(n.startswith("dropped the replaced database") for n in back["release"]["notes"])
    forward, answers = restore_rollback(cli, port, TAGS["ok_v2"])
    assert forward["status"] == "success" and forward["tag"] == TAGS["ok_v2"], forward
    assert set(answers) <= {"200", "503 retry-after unavailable"} and answers[-1] == "200", answers
    assert sql(project, version).endswith("1.1.0")
    assert all("standin-ok_v2" in t for t in running_tasks(project, "web")) and len(running_tasks(project, "web")) == 2
    assert sql(project, "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_\\_replaced\\_%'") == "0"


def test_a_restore_db_rollback_killed_with_web_scaled_down_is_undone_by_the_next_run(stack) -> None:
    cli, project, state_root, port = stack
    journal = state_root / "deploy-journal.json"
    proc = subprocess.Popen(["odoo-ai", "--repo", str(REPO), "--config-dir", str(cli.config_dir), "rollback", "dev",
                             "--to", TAGS["ok"], "--restore-db", "--yes"], env=cli.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (journal.exists() and json.loads(journal.read_text() or "{}").get("web_stopped")):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("the rollback never scaled web down")
        time.sleep(0.05)
    time.sleep(1)  # web and cron are being scaled to 0
    proc.kill()
    proc.wait()
    result = deploy(cli, TAGS["ok_v2"])
    assert result["status"] == "success"
    notes = result["release"]["notes"]
    assert any("recovered an interrupted rollback" in n for n in notes), notes
    assert sql(project, "SELECT latest_version FROM ir_module_module WHERE name = 'standin_demo'").endswith("1.1.0")
    assert all("standin-ok_v2" in t for t in running_tasks(project, "web")) and len(running_tasks(project, "web")) == 2
    assert sql(project, "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_\\_replaced\\_%'") == "0"


def test_rollback_logs_and_down(stack) -> None:
    cli, project, state_root, port = stack
    with Poller(port) as poll:
        result = cli.json("rollback", "dev")
    assert result["status"] == "success" and result["tag"] == TAGS["ok"] and result["kind"] == "rollback"
    assert poll.failed == [], poll.failed
    assert service_image(project, "web") == f"odoo-ai-test/odoo-web:{TAGS['ok']}"
    logs = cli("logs", "dev", "web", "--tail", "5")
    assert "odoo" in logs.stdout + logs.stderr  # the tasks' output and errors, as they wrote them
    assert cli("logs", "dev", "nosuch", check=False).returncode == 2
    assert cli.json("releases", "dev")["current"]["kind"] == "rollback"
    cli("down", "dev")
    assert not docker("service", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={project}").stdout.split()
    status = cli("status", "dev", "--json", check=False)
    assert status.returncode == 1 and not json.loads(status.stdout)["ok"]
