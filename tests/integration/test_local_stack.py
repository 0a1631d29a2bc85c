"""The dev stack, built from the stand-in Odoo with the real Dockerfile, brought up
and torn down by the CLI against a real engine, real PostgreSQL and real nginx."""

from __future__ import annotations

import json
import stat

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

    down = cli.json("down", "dev", "--purge")
    assert down["removed"] is True and down["purged"] is True
    assert leftovers(project_name) == {"containers": [], "networks": [], "volumes": []}
    assert not state_root.exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/web/health", timeout=2)


def test_dry_run_prints_argv_and_changes_nothing(cli, dev_stack, project_name) -> None:
    state_root, _ = dev_stack
    for args in (["up", "dev", "--tag", "dev-5ca1ab1"], ["down", "dev", "--purge"], build_args(),
                 ["compose", "dev", "--dry-run", "--", "ps"], ["logs", "dev", "web"], ["status", "dev"],
                 ["deploy", "dev", "--tag", "dev-5ca1ab1"]):
        if "--dry-run" not in args:
            args = [*args, "--dry-run"]
        proc = cli(*args)
        assert proc.returncode == 0, proc.stderr
        commands = [line for line in proc.stdout.splitlines() if line.startswith((DOCKER, "DOCKER_BUILDKIT=1 "))]
        assert commands, proc.stdout
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
