"""The dev stack, built from the stand-in Odoo with the real Dockerfile, brought up
and torn down by the CLI against a real engine, real PostgreSQL and real nginx."""

from __future__ import annotations

import json
import stat
import subprocess
import time

import httpx
import pytest

from tests.integration.conftest import (
    BASE_IMAGE,
    DOCKER,
    force_cleanup,
    free_port,
    image_exists,
    leftovers,
    standin_build_args,
)

DB_IMAGE = "odoo-ai-test/postgres:15"
PROXY_IMAGE = "odoo-ai-test/nginx:1"
SHA = "5ca1ab1e0ddba11"


def build_args(env: str = "dev") -> list[str]:
    return standin_build_args(env, SHA)


@pytest.fixture
def dev_stack(cli, project_name, tmp_path):
    for image in (DB_IMAGE, PROXY_IMAGE, BASE_IMAGE):
        if not image_exists(image):
            pytest.fail(f"{image} missing: run scripts/build-test-images.sh")
    state_root = tmp_path / "state"
    port = free_port()
    cli.write_env(
        "dev",
        f"ODOO_PROJECT_NAME={project_name}\nODOO_STATE_ROOT={state_root}\nODOO_PUBLISHED_PORT={port}\n"
        f"ODOO_IMAGE=odoo-ai-test/odoo\nODOO_DB_IMAGE={DB_IMAGE}\nODOO_PROXY_IMAGE={PROXY_IMAGE}\n",
    )
    yield state_root, port
    if leftovers(project_name)["containers"]:
        cli("logs", "dev", "--tail", "80", check=False)
    force_cleanup(project_name, state_root)


def test_build_up_health_down_leaves_nothing(cli, dev_stack, project_name) -> None:
    state_root, port = dev_stack
    built = cli.json(*build_args())
    assert built["tag"] == "dev-5ca1ab1"
    assert built["images"]["web"]["ref"] == "odoo-ai-test/odoo-web:dev-5ca1ab1"
    assert built["images"]["script-runner"]["id"].startswith("sha256:")

    secrets = {"ODOO_DB_PASSWORD": "db pa$$ 'x\"", "ODOO_MASTER_PASSWORD": "m$ster"}
    result = cli.json("up", "dev", "--tag", built["tag"], extra_env=secrets)
    assert result["healthy"] is True
    assert stat.S_IMODE((state_root / ".env").stat().st_mode) == 0o600

    response = httpx.get(f"http://127.0.0.1:{port}/web/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "pass"}
    assert response.headers["cache-control"] == "no-store"
    db_status = httpx.get(f"http://127.0.0.1:{port}/web/health?db_server_status=1", timeout=5)
    assert db_status.json() == {"status": "pass", "db_server_status": True}

    status = cli.json("status", "dev")
    services = {row["service"]: row for row in status["services"]}
    assert set(services) == {"db", "web", "proxy"}  # script-runner (profile tools) never started
    assert all(row["state"] == "running" for row in services.values())
    assert status["health"]["ok"] is True and status["tag"] == "dev-5ca1ab1"

    # Odoo writes its log file under the state root, in Odoo's format.
    log_text = (state_root / "logs" / "odoo.log").read_text()
    assert " INFO " in log_text and "odoo" in log_text

    logs = cli("logs", "dev", "db", "--tail", "5")
    assert logs.returncode == 0

    # A purge that is refused stops nothing and deletes nothing (issue 12): without --yes off a
    # terminal, and with the marker of another project in the state root.
    running = containers(project_name)
    kept = files_outside_the_database(state_root)
    proc = cli("down", "dev", "--purge", check=False)
    assert proc.returncode == 2
    assert f"refusing to delete {state_root} without confirmation (no terminal to ask on): pass --yes" in proc.stderr
    marker = state_root / ".odoo-ai-stack"
    assert json.loads(marker.read_text())["project"] == project_name  # written by the first render
    own = marker.read_text()
    marker.write_text(json.dumps({"project": "someone-else", "env": "dev", "created": "2026-01-01T00:00:00+00:00"}))
    proc = cli("down", "dev", "--purge", "--yes", "--json", check=False)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"] == (
        f"refusing to delete {state_root}: it is the state root of the stack 'someone-else', not of "
        f"'{project_name}'; nothing deleted")
    marker.write_text(own)
    assert containers(project_name) == running and files_outside_the_database(state_root) == kept
    assert httpx.get(f"http://127.0.0.1:{port}/web/health", timeout=5).status_code == 200

    # no Odoo to answer (its container stopped): the proxy's "restarting" page, not a bare 502
    web = subprocess.run([DOCKER, "ps", "-q", "--filter", f"label=com.docker.compose.project={project_name}",
                          "--filter", "label=com.docker.compose.service=web"], capture_output=True, text=True,
                         check=True).stdout.split()
    subprocess.run([DOCKER, "stop", *web], capture_output=True, check=True, timeout=60)
    for path in ("/web/login", "/websocket"):
        deadline = time.monotonic() + 30
        while True:  # for `valid=2s` nginx may still know the stopped web's address: a connect timeout, 504
            page = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
            if page.status_code != 504 or time.monotonic() > deadline:
                break
        assert page.status_code == 503 and page.headers["x-odoo-ai"] == "unavailable", (path, page.status_code)
        assert page.headers["retry-after"] == "10" and "Odoo is restarting" in page.text

    down = cli.json("down", "dev", "--purge", "--yes")
    assert down["removed"] is True and down["purged"] is True
    parts = {p["what"]: p for p in down["purge"]["parts"]}
    assert list(parts) == ["database", "filestore", "snapshots", "logs", "the rest"]
    assert parts["database"]["bytes"] > 1_000_000 and parts["logs"]["files"] >= 1
    assert leftovers(project_name) == {"containers": [], "networks": [], "volumes": []}
    assert not state_root.exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/web/health", timeout=2)


def containers(project: str) -> list[tuple[str, str]]:
    """(id, state) of the project's containers."""
    out = subprocess.run([DOCKER, "ps", "-a", "--filter", f"label=com.docker.compose.project={project}",
                          "--format", "{{.ID}} {{.State}}"], capture_output=True, text=True, check=True).stdout
    return sorted(tuple(line.split()) for line in out.splitlines() if line.strip())


def files_outside_the_database(root) -> dict[str, bytes]:
    """The state root's files but the live ones (PostgreSQL's data, Odoo's log): path -> bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0] not in ("postgres", "logs")}


def test_dry_run_prints_argv_and_changes_nothing(cli, dev_stack, project_name) -> None:
    state_root, _ = dev_stack
    for args in (["up", "dev", "--tag", "dev-5ca1ab1"], build_args(), ["status", "dev"],
                 ["deploy", "dev", "--tag", "dev-5ca1ab1"]):
        if "--dry-run" not in args:
            args = [*args, "--dry-run"]
        # a deploy's dry run refuses missing secrets like the real one
        proc = cli(*args, extra_env={"ODOO_DB_PASSWORD": "pw", "ODOO_MASTER_PASSWORD": "master"})
        assert proc.returncode == 0, proc.stderr
        commands = [line for line in proc.stdout.splitlines() if line.startswith((DOCKER, "DOCKER_BUILDKIT=1 "))]
        assert commands, proc.stdout
    # the real code against the dry connector: where the real run has nothing to do or refuses
    # (the stack was never brought up), its dry run says the same
    down = cli("down", "dev", "--purge", "--dry-run")
    assert "no containers to remove" in down.stdout and "nothing to purge" in down.stderr
    assert not [line for line in down.stdout.splitlines() if line.startswith(DOCKER)]
    for args in (["compose", "dev", "--dry-run", "--", "ps"], ["logs", "dev", "web", "--dry-run"]):
        dry, real = cli(*args, check=False), cli(*[a for a in args if a != "--dry-run"], check=False)
        assert dry.returncode == real.returncode == 2 and "no rendered" in dry.stderr
        assert dry.stderr == real.stderr
    up = cli("up", "dev", "--tag", "dev-5ca1ab1", "--dry-run").stdout
    assert f"--project-name {project_name}" in up and "up --detach --remove-orphans" in up
    assert not state_root.exists()
    assert leftovers(project_name)["containers"] == []


def test_json_error_envelope(cli, dev_stack) -> None:
    proc = cli("up", "dev", "--tag", "dev-abc;rm -rf /", "--json", check=False)
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 2 and "invalid image tag" in doc["error"]
    assert not dev_stack[0].exists()
