"""Deploys, rollbacks and `up` against REAL Odoo 18.0 Community (the trimmed source of
../shared/odoo18, built with the real Dockerfile by `scripts/build-test-images.sh --real`;
addons in tests/fixtures/real-addons/<scenario>), real PostgreSQL and nginx.

What the stand-in could hide, shown on the real thing: a module added to the env's list is
installed (not only `-u`'d), a schema change is applied, a failing update is restored with a
row written before kept and Odoo's cause in the output, an addon that fails to import fails
the gate at once, and `rollback --restore-db` brings the target's data back, also after a
plain rollback. One stack for the module; the tests run in order.

Skipped when the real images are absent, unless ODOO_AI_REQUIRE_REAL_ODOO=1 (.ci/run)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
import warnings

import httpx
import pytest

from tests.integration.conftest import (
    DOCKER,
    REPO,
    Cli,
    answers_during,
    force_cleanup,
    free_port,
    image_exists,
)

SCENARIOS = {"base": "8000000", "v1": "8111111", "v2": "8222222", "update_fails": "8333333",
             "import_error": "8444444"}
IMAGE = "odoo-ai-test/odoo-real"
SECRETS = {"ODOO_DB_PASSWORD": "real 'db' $pw", "ODOO_MASTER_PASSWORD": "real-master"}
REQUIRED = os.environ.get("ODOO_AI_REQUIRE_REAL_ODOO") == "1"


def tag(scenario: str) -> str:
    return f"dev-{SCENARIOS[scenario]}"


def env_text(project: str, state_root, port: int, *extra: str, drain: float = 0.5) -> str:
    return "\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={state_root}", f"ODOO_PUBLISHED_PORT={port}",
        f"ODOO_IMAGE={IMAGE}", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15", "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1",
        "ODOO_DB_NAME=opw_real", "ODOO_DEPLOY_GATE_TIMEOUT=120", f"ODOO_DEPLOY_DRAIN_SECONDS={drain}",
        "ODOO_DEPLOY_LOCK_TIMEOUT=5", "ODOO_DEPLOY_KEEP_SNAPSHOTS=5", *extra, "",
    ])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    missing = [s for s in SCENARIOS if not image_exists(f"odoo-ai-test/odoo-web:real-{s}")]
    if missing:
        why = f"real Odoo 18 images missing ({', '.join(missing)}): run scripts/build-test-images.sh --real"
        if REQUIRED:
            pytest.fail(f"ODOO_AI_REQUIRE_REAL_ODOO=1 but {why}")
        pytest.skip(why)
    for scenario in SCENARIOS:  # the env's image names and tags, for the prebuilt real images
        for target in ("web", "script-runner"):
            subprocess.run([DOCKER, "tag", f"odoo-ai-test/odoo-{target}:real-{scenario}",
                            f"{IMAGE}-{target}:{tag(scenario)}"], check=True)
    tmp = tmp_path_factory.mktemp("real")
    (tmp / "config").mkdir()
    (tmp / "home").mkdir()
    project = f"oair-{os.getpid()}"
    state_root = tmp / "state"
    port = free_port()
    cli = Cli(REPO, tmp / "config", tmp / "home", {**os.environ, "HOME": str(tmp / "home"),
                                                   "ODOO_AI_DOCKER": DOCKER, **SECRETS})
    cli.write_env("dev", env_text(project, state_root, port))
    yield cli, project, state_root, port
    force_cleanup(project, state_root)
    for scenario in SCENARIOS:
        for target in ("web", "script-runner"):
            subprocess.run([DOCKER, "rmi", f"{IMAGE}-{target}:{tag(scenario)}"], capture_output=True)


def sql(cli: Cli, query: str) -> str:
    return cli("compose", "dev", "--", "exec", "-T", "db", "psql", "-U", "odoo", "-d", "opw_real",
               "-tAc", query).stdout.strip()


def module(cli: Cli, name: str) -> str:
    return sql(cli, f"SELECT state || ' ' || coalesce(latest_version, '') FROM ir_module_module WHERE name = '{name}'")


def has_column(cli: Cli, table: str, column: str) -> bool:
    return sql(cli, "SELECT count(*) FROM information_schema.columns "
                    f"WHERE table_name = '{table}' AND column_name = '{column}'") == "1"


def login(port: int) -> int:
    return httpx.get(f"http://127.0.0.1:{port}/web/login?db=opw_real", timeout=15).status_code


def open_websocket(port: int) -> tuple[str, socket.socket]:
    """Odoo's /websocket through the proxy (as the web client opens it): the status line of
    the answer, and the connection (left open)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /websocket?version=18.0-1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Origin: http://127.0.0.1:{port}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head.decode(errors="replace").split("\r\n", 1)[0], sock


def why_no_bus(project: str, state_root) -> str:
    """What the proxy and Odoo logged, for a /websocket that did not answer 101."""
    proxy = subprocess.run([DOCKER, "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
                            "--filter", "label=com.docker.compose.service=proxy"], capture_output=True, text=True)
    logs = subprocess.run([DOCKER, "logs", "--tail", "20", *proxy.stdout.split()[:1]], capture_output=True, text=True)
    odoo = (state_root / "logs" / "odoo.log").read_text(errors="replace").splitlines()
    return "\n".join(["proxy:", logs.stderr[-2000:], "odoo:", *[line for line in odoo if "gevent" in line.lower()
                                                               or "Evented" in line or "ERROR" in line][-15:]])


def open_bus(port: int, project: str, state_root, within: float = 20.0) -> tuple[str, socket.socket]:
    """open_websocket until it answers 101, for at most `within` s: the bus is there once a
    deploy ends, but in CI (a loaded machine) two such opens right after a deploy answered
    503 once (the proxy's page for a 502) and the cause was not found here. A retry that
    was needed is reported as a warning with what the proxy and Odoo logged, so it shows."""
    deadline = time.monotonic() + within
    tries = 0
    while True:
        status, sock = open_websocket(port)
        tries += 1
        if status.split()[1:2] == ["101"] or time.monotonic() > deadline:
            break
        sock.close()
        time.sleep(0.5)
    if tries > 1:
        warnings.warn(f"/websocket answered 101 only at try {tries}: {why_no_bus(project, state_root)}", stacklevel=2)
    return status, sock


def deploy_fails(cli: Cli, *args: str) -> dict:
    proc = cli("deploy", "dev", *args, "--json", check=False, timeout=900)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_up_initialises_the_database_before_web(stack) -> None:
    cli, project, state_root, port = stack
    result = cli.json("up", "dev", "--tag", tag("base"), "--wait-timeout", "180", timeout=900)
    assert result["healthy"] is True and result["initialised"] == ["base"]
    # ready means ready: the database was loaded before web started, so login works at once
    assert login(port) == 200
    assert module(cli, "base").startswith("installed 18.0.")
    assert module(cli, "web").startswith("installed ")
    log = (state_root / "logs" / "odoo.log").read_text()
    assert "Modules loaded." in log and "could not serialize access" not in log
    assert "creating database" not in log.lower() or "init db" not in log  # web found it loaded
    # The bus: Odoo's websocket process (gevent, port 8072) runs and answers through the proxy.
    status, sock = open_websocket(port)
    sock.close()
    # before: 502, the process crashed at every start; then a 503 when `up` came back at
    # /web/health, before the bus listened (it now waits for the deploy's gate)
    assert status.split()[1:2] == ["101"], (status, why_no_bus(project, state_root))
    web = subprocess.run([DOCKER, "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
                          "--filter", "label=com.docker.compose.service=web"], capture_output=True, text=True).stdout.split()
    output = subprocess.run([DOCKER, "logs", web[0]], capture_output=True, text=True)
    assert "Traceback" not in output.stdout + output.stderr, (output.stdout + output.stderr)[-3000:]


def test_deploy_installs_a_module_added_to_the_list(stack) -> None:
    cli, project, state_root, port = stack
    cli.write_env("dev", env_text(project, state_root, port, "ODOO_INSTALL=oai_demo", "ODOO_UPDATE=oai_demo"))
    result = cli.json("deploy", "dev", "--tag", tag("v1"), timeout=900)
    assert result["status"] == "success"
    assert result["modules"]["install"] == ["oai_demo"]
    assert module(cli, "oai_demo") == "installed 18.0.1.0.0"
    assert sql(cli, "SELECT name FROM oai_demo") == "first"
    assert login(port) == 200


def test_deploy_of_a_changed_module_updates_the_schema(stack) -> None:
    cli, project, state_root, port = stack
    assert not has_column(cli, "oai_demo", "note")
    old_web = subprocess.run([DOCKER, "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}",
                              "--filter", "label=com.docker.compose.service=web"],
                             capture_output=True, text=True, check=True).stdout.split()
    log = state_root / "logs" / "odoo.log"
    offset = log.stat().st_size
    result = cli.json("deploy", "dev", "--tag", tag("v2"), timeout=900)
    assert result["status"] == "success" and result["release"]["updated"] is True
    # The old web stopped gracefully: its prefork workers (2 HTTP + 1 cron), woken again if
    # they slept through the stop signal, all exited on their own before its container went
    # (removed once Odoo's master had reaped them, not at the end of a stop grace).
    with log.open("rb") as fh:
        fh.seek(offset)
        gained = fh.read().decode(errors="replace")
    assert len(old_web) == 1 and "Stopping gracefully" in gained
    assert gained.count(") exiting. request_count:") >= 3, gained[-3000:]
    assert "Stopping forcefully" not in gained
    assert not subprocess.run([DOCKER, "ps", "-aq", "--filter", f"id={old_web[0]}"], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert {k: result["modules"][k] for k in ("install", "update", "reason")} == \
        {"install": [], "update": "oai_demo", "reason": "an addon changed"}
    assert module(cli, "oai_demo") == "installed 18.0.1.1.0"
    assert has_column(cli, "oai_demo", "note")
    sql(cli, "INSERT INTO oai_demo (name, note) VALUES ('written before', 'kept')")


def test_failing_update_is_restored_and_names_the_cause(stack) -> None:
    cli, project, state_root, port = stack
    doc = deploy_fails(cli, "--tag", tag("update_fails"))
    assert doc["failed_phase"] == "update" and "exited 255" in doc["error"]
    assert "External ID not found" in doc["output"]  # the cause, not only the last lines
    assert any("restored database and filestore" in line for line in doc["release"]["undone"])
    assert module(cli, "oai_demo") == "installed 18.0.1.1.0"
    assert sql(cli, "SELECT note FROM oai_demo WHERE name = 'written before'") == "kept"
    assert login(port) == 200


def test_addon_failing_at_import_fails_the_gate_at_once(stack) -> None:
    cli, project, state_root, port = stack
    start = time.monotonic()
    doc = deploy_fails(cli, "--tag", tag("import_error"), "--update", "never")
    elapsed = time.monotonic() - start
    assert doc["failed_phase"] == "gate" and "HTTP 500" in doc["error"], doc
    assert elapsed < 90  # the gate timeout is 120 s: it did not wait it out
    assert "oai_missing_dependency_xyz" in doc["output"]
    assert module(cli, "oai_demo") == "installed 18.0.1.1.0"
    assert login(port) == 200


def test_plain_rollback_warns_in_json_then_restore_db_brings_the_data_back(stack) -> None:
    cli, project, state_root, port = stack
    plain = cli.json("rollback", "dev", timeout=900)
    assert plain["status"] == "success" and plain["tag"] == tag("v1")
    assert any("--restore-db" in w for w in plain["warnings"])
    assert module(cli, "oai_demo") == "installed 18.0.1.1.0"  # old code, newer schema (as warned)
    restored = cli.json("rollback", "dev", "--to", tag("v1"), "--restore-db", "--yes", timeout=900)
    assert restored["status"] == "success" and "restore" in [p["name"] for p in restored["phases"]]
    assert restored["release"]["restored_snapshot"]
    assert module(cli, "oai_demo") == "installed 18.0.1.0.0"
    assert not has_column(cli, "oai_demo", "note")
    assert login(port) == 200


def test_restore_db_directly_after_an_update(stack) -> None:
    cli, project, state_root, port = stack
    assert cli.json("deploy", "dev", "--tag", tag("v2"), timeout=900)["status"] == "success"
    assert has_column(cli, "oai_demo", "note")
    result = cli.json("rollback", "dev", "--to", tag("v1"), "--restore-db", "--yes", timeout=900)
    assert result["status"] == "success" and result["warnings"] == []
    assert module(cli, "oai_demo") == "installed 18.0.1.0.0"
    assert not has_column(cli, "oai_demo", "note")
    assert sql(cli, "SELECT count(*) FROM ir_module_module WHERE state LIKE 'to %'") == "0"
    assert login(port) == 200


def test_per_module_checksums_on_real_odoo(stack) -> None:
    """ODOO_UPDATE=auto (the default): the first deploy has no recorded checksums and
    falls back to the addons hash (-u all), then records one per installed module; the
    next deploy updates exactly the module whose code changed, and `modules changed`
    says so beforehand."""
    cli, project, state_root, port = stack
    cli.write_env("dev", env_text(project, state_root, port, "ODOO_INSTALL=oai_demo"))
    first = cli.json("deploy", "dev", "--tag", tag("v2"), timeout=900)
    assert first["status"] == "success" and first["modules"]["update"] == "all"
    recorded = sql(cli, "SELECT count(*) FROM odoo_ai_module_checksum")
    installed = sql(cli, "SELECT count(*) FROM ir_module_module WHERE state = 'installed'")
    assert int(recorded) == int(installed) > 10  # base, web, … and oai_demo
    preview = cli.json("modules", "changed", "dev", "--tag", tag("v1"))
    assert preview["changed"] == ["oai_demo"] and preview["per_module"] is True
    second = cli.json("deploy", "dev", "--tag", tag("v1"), timeout=900)
    assert second["status"] == "success" and second["modules"]["update"] == "oai_demo"
    assert second["modules"]["reason"] == "checksum changed: oai_demo"
    assert module(cli, "oai_demo") == "installed 18.0.1.0.0"
    assert login(port) == 200


def test_open_websockets_do_not_hold_the_drain(stack) -> None:
    """Every open browser tab holds a websocket (Odoo's bus) through one of nginx's workers:
    the drain waits for HTTP requests in flight, not for those (it waited the whole
    ODOO_DEPLOY_DRAIN_SECONDS); they end when the old web stops, and the bus reconnects."""
    cli, project, state_root, port = stack
    cli.write_env("dev", env_text(project, state_root, port, "ODOO_INSTALL=oai_demo", drain=30))
    sockets = [open_bus(port, project, state_root) for _ in range(2)]
    assert [status.split()[1] for status, _ in sockets] == ["101", "101"], why_no_bus(project, state_root)
    with answers_during(f"http://127.0.0.1:{port}/web/login?db=opw_real") as answers:
        result = cli.json("rollback", "dev", timeout=900)
    failed = [a for a in answers if a != "200"]
    assert result["status"] == "success" and failed == [], (result.get("error"), failed)
    drain = next(p["seconds"] for p in result["phases"] if p["name"] == "drain")
    assert drain < 10, result["phases"]  # not the 30 s bound
    for _, sock in sockets:  # closed by the old web's stop (a close frame, or the connection's end)
        sock.settimeout(15)
        data = sock.recv(2)
        assert data == b"" or data[0] & 0x0F == 0x8, data
        sock.close()
    status, sock = open_websocket(port)
    sock.close()
    assert status.split()[1:2] == ["101"], (status, why_no_bus(project, state_root))  # to the new release
    cli.write_env("dev", env_text(project, state_root, port, "ODOO_INSTALL=oai_demo"))


def test_down_purge_leaves_nothing(stack) -> None:
    cli, project, state_root, port = stack
    cli("down", "dev", "--purge", "--yes")
    assert not state_root.exists()
