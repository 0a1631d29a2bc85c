"""A deploy killed (SIGKILL: no chance to clean up) at each phase, followed by a deploy of
the old tag and, after another kill at the same phase, a deploy of the new tag. After
each follow-up deploy the database holds exactly the data and module version of the
release the log says is current, no update or extra web container is left, the proxy
serves, and the lock is free. Against the real engine and PostgreSQL, stand-in Odoo.

The roles swap from phase to phase (the new tag of one phase is the old of the next),
so every phase is killed going from a current release to a different one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx
import pytest

from odoo_ai.lock import EnvLock
from tests.integration.conftest import (
    BASE_IMAGE,
    DOCKER,
    REPO,
    Cli,
    force_cleanup,
    free_port,
    image_exists,
    standin_build_args,
)

SCENARIOS = {"ok": "7111111aaaa", "ok_v2": "7222222bbbb", "slow_update": "7666666ffff"}
VERSIONS = {"ok": "18.0.1.0.0", "ok_v2": "18.0.1.1.0", "slow_update": "18.0.1.2.0"}
SECRETS = {"ODOO_DB_PASSWORD": "kill-db", "ODOO_MASTER_PASSWORD": "kill-master"}
# (phase killed, the new tag's scenario); the old one is whatever is current.
PLAN = [("render", "ok_v2"), ("pull", "ok"), ("snapshot", "ok_v2"), ("update", "slow_update"),
        ("start", "ok"), ("gate", "ok_v2"), ("switch", "ok")]


def tag(scenario: str) -> str:
    return f"dev-{SCENARIOS[scenario][:7]}"


SCENARIO_OF = {tag(s): s for s in SCENARIOS}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    for image in ("odoo-ai-test/postgres:15", "odoo-ai-test/nginx:1", BASE_IMAGE):
        if not image_exists(image):
            pytest.fail(f"{image} missing: run scripts/build-test-images.sh")
    tmp = tmp_path_factory.mktemp("kill")
    (tmp / "config").mkdir()
    (tmp / "home").mkdir()
    project = f"oaik-{os.getpid()}"
    state_root = tmp / "state"
    port = free_port()
    env = {**os.environ, "HOME": str(tmp / "home"), "ODOO_AI_DOCKER": DOCKER, **SECRETS}
    cli = Cli(REPO, tmp / "config", tmp / "home", env)
    cli.write_env("dev", "\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={state_root}", f"ODOO_PUBLISHED_PORT={port}",
        "ODOO_IMAGE=odoo-ai-test/odoo", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15",
        "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1", "ODOO_DB_NAME=opw_kill", "ODOO_UPDATE=standin_demo",
        "ODOO_DEPLOY_GATE_TIMEOUT=30", "ODOO_DEPLOY_DRAIN_SECONDS=0.5", "ODOO_DEPLOY_LOCK_TIMEOUT=5",
        "ODOO_DEPLOY_KEEP_SNAPSHOTS=2", "",
    ]))
    for scenario, sha in SCENARIOS.items():
        cli(*standin_build_args("dev", sha, addons=scenario), timeout=1200)
    cli("deploy", "dev", "--tag", tag("ok"))
    sql(cli, "CREATE TABLE odoo_ai_probe (note text); INSERT INTO odoo_ai_probe VALUES ('written before')")
    yield cli, project, state_root, port
    force_cleanup(project, state_root)


def sql(cli: Cli, query: str) -> str:
    return cli("compose", "dev", "--", "exec", "-T", "db", "psql", "-U", "odoo", "-d", "opw_kill",
               "-tAc", query).stdout.strip()


def containers(project: str, *filters: str) -> list[str]:
    argv = [DOCKER, "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"]
    for f in filters:
        argv += ["--filter", f]
    return subprocess.run(argv, capture_output=True, text=True).stdout.split()


def kill_at(cli: Cli, phase: str, new_tag: str) -> None:
    """Start a deploy of `new_tag` and SIGKILL it in `phase`: held at the phase's start by
    the fault-injection hook (the journal is written before), or, for the update, 2 s into
    the running `odoo-bin -u` (its container goes on without the CLI)."""
    hold = {} if phase == "update" else {"ODOO_AI_FAULT_HOLD_PHASE": phase}
    proc = subprocess.Popen(
        ["odoo-ai", "--repo", str(REPO), "--config-dir", str(cli.config_dir), "deploy", "dev", "--tag", new_tag],
        env={**cli.env, **hold}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    seen = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line.rstrip())
            if line.startswith(f"… {phase}"):
                if phase == "update":
                    time.sleep(2)
                proc.send_signal(signal.SIGKILL)
                break
        else:
            pytest.fail(f"the deploy of {new_tag} ended before phase {phase}: {seen}")
    finally:
        proc.kill()
        proc.wait(timeout=60)


def current_release(cli: Cli) -> dict:
    history = cli.json("releases", "dev", "--limit", "200")["releases"]
    return [r for r in history if r["status"] == "success"][-1]


def assert_consistent(cli: Cli, project: str, state_root, port: int, expected_tag: str) -> None:
    current = current_release(cli)
    assert current["image_tag"] == expected_tag
    version = VERSIONS[SCENARIO_OF[expected_tag]]
    # one psql (one `compose exec`) for three answers, a line each:
    # (1) the module's version, (2) no module left mid-update, (3) the data written before
    answers = sql(cli, " UNION ALL ".join([
        "(SELECT 1, latest_version FROM ir_module_module WHERE name = 'standin_demo')",
        "(SELECT 2, count(*)::text FROM ir_module_module WHERE state <> 'installed' AND state <> 'uninstalled')",
        "(SELECT 3, string_agg(note, ',') FROM odoo_ai_probe)",
    ]) + " ORDER BY 1")
    assert answers.splitlines() == [f"1|{version}", "2|0", "3|written before"]
    assert httpx.get(f"http://127.0.0.1:{port}/web/login", timeout=10).status_code == 200
    assert containers(project, "label=org.odoo-ai.role=update") == []
    assert containers(project, "label=com.docker.compose.oneoff=True") == []
    assert len(containers(project, "label=com.docker.compose.service=web")) == 1
    assert not (state_root / "deploy-journal.json").exists() and not (state_root / ".env.next").exists()
    # snapshots and restores copy the filestore; never into itself (a copy nested per round)
    live = state_root / "filestore" / "filestore" / "opw_kill"
    assert sorted(p.name for p in live.iterdir()) == ["standin"], sorted(live.iterdir())
    with EnvLock(state_root / "deploy.lock", command="test: is the lock free", timeout=0):
        pass


@pytest.mark.parametrize(("phase", "new"), PLAN, ids=[p for p, _ in PLAN])
def test_killed_deploy_is_undone_then_old_and_new_deploy(stack, phase: str, new: str) -> None:
    cli, project, state_root, port = stack
    old_tag = current_release(cli)["image_tag"]
    new_tag = tag(new)
    assert old_tag != new_tag

    kill_at(cli, phase, new_tag)
    status = cli.json("status", "dev")
    assert status["unfinished_deploy"]["phase"] == phase and status["unfinished_deploy"]["tag"] == new_tag
    if phase == "update":  # the killed CLI's update container goes on: status says so
        assert status["update_containers"], status
    # (a) the old tag: recovery undoes the killed deploy first
    result = cli.json("deploy", "dev", "--tag", old_tag)
    assert result["status"] == "success"
    assert any("recovered an interrupted deploy" in n for n in result["release"]["notes"]), result["release"]
    killed = cli.json("releases", "dev", "--limit", "200")["releases"][-2]
    assert killed["image_tag"] == new_tag and killed["status"] == "failed" and killed["phase"] == phase
    if phase == "update":
        assert any("restored database and filestore from snapshot" in n for n in killed["notes"]), killed
        assert any("module update container" in n for n in killed["notes"]), killed
    assert_consistent(cli, project, state_root, port, old_tag)

    # (b) killed again at the same phase, then the new tag
    kill_at(cli, phase, new_tag)
    result = cli.json("deploy", "dev", "--tag", new_tag)
    assert result["status"] == "success"
    assert any("recovered an interrupted deploy" in n for n in result["release"]["notes"])
    assert_consistent(cli, project, state_root, port, new_tag)


def test_sigterm_during_the_update_stops_it_and_undoes_before_exiting(stack) -> None:
    """A cancelled CI job: the CLI still lives, so it stops its own update container,
    restores the snapshot, records the failure and exits, leaving nothing to recover."""
    cli, project, state_root, port = stack
    old_tag = current_release(cli)["image_tag"]
    assert old_tag != tag("slow_update")
    proc = subprocess.Popen(
        ["odoo-ai", "--repo", str(REPO), "--config-dir", str(cli.config_dir), "deploy", "dev", "--tag",
         tag("slow_update"), "--json"],
        env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("… update"):
            break
    deadline = time.monotonic() + 60  # the update container starts (slower on a loaded machine)
    while True:  # an update running for a second (one that could not reach db at once is run again)
        while not containers(project, "label=org.odoo-ai.role=update", "status=running"):
            assert time.monotonic() < deadline, "the update container never ran"
            time.sleep(0.2)
        time.sleep(1)
        if containers(project, "label=org.odoo-ai.role=update", "status=running"):
            break
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert time.monotonic() - started < 60  # it did not wait for the 20 s update to end... nor hang
    doc = json.loads(out)
    assert doc["status"] == "failed" and doc["failed_phase"] == "update"
    assert doc["error"].endswith("interrupted by SIGTERM"), (doc["error"], doc["release"].get("notes"), doc.get("output"))
    assert any("module update container" in n for n in doc["release"]["undone"])
    assert any("restored database and filestore" in n for n in doc["release"]["undone"])
    assert_consistent(cli, project, state_root, port, old_tag)
