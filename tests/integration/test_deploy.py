"""Health-gated deploys against a real engine: the stand-in Odoo (real Dockerfile),
real PostgreSQL, real nginx. One stack for the module; the tests run in order and
each leaves the stack serving, as a real env would be.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from odoo_ai import charts
from odoo_ai.lock import EnvLock
from tests.integration.conftest import (
    BASE_IMAGE,
    DOCKER,
    REPO,
    Cli,
    answers_during,
    force_cleanup,
    free_port,
    image_exists,
    leftovers,
    standin_build_args,
)
from tests.unit.test_charts import mermaid_blocks, parse_gantt

SCENARIOS = {  # addons scenario -> fake commit (tag dev-<first 7>)
    "ok": "1111111aaaa", "ok_v2": "2222222bbbb", "update_fails": "3333333cccc",
    "never_healthy": "4444444dddd", "crash": "5555555eeee", "slow_update": "6666666ffff",
    "dead_bus": "7777777abcd",
}
SECRETS = {"ODOO_DB_PASSWORD": "s3cr$t 'db'", "ODOO_MASTER_PASSWORD": "master$$"}


def tag(scenario: str) -> str:
    return f"dev-{SCENARIOS[scenario][:7]}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    for image in ("odoo-ai-test/postgres:15", "odoo-ai-test/nginx:1", BASE_IMAGE):
        if not image_exists(image):
            pytest.fail(f"{image} missing: run scripts/build-test-images.sh")
    tmp = tmp_path_factory.mktemp("deploy")
    (tmp / "config").mkdir()
    (tmp / "home").mkdir()
    project = f"oaid-{os.getpid()}"
    state_root = tmp / "state"
    port = free_port()
    env = {**os.environ, "HOME": str(tmp / "home"), "ODOO_AI_DOCKER": DOCKER, **SECRETS}
    cli = Cli(REPO, tmp / "config", tmp / "home", env)
    cli.write_env("dev", "\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={state_root}", f"ODOO_PUBLISHED_PORT={port}",
        "ODOO_IMAGE=odoo-ai-test/odoo", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15",
        "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1", "ODOO_DB_NAME=opw_it", "ODOO_UPDATE=standin_demo",
        "ODOO_DEPLOY_GATE_TIMEOUT=20", "ODOO_DEPLOY_DRAIN_SECONDS=1", "ODOO_DEPLOY_LOCK_TIMEOUT=2",
        "ODOO_DEPLOY_KEEP_SNAPSHOTS=1", "",
    ]))
    for scenario, sha in SCENARIOS.items():
        cli(*standin_build_args("dev", sha, addons=scenario), timeout=1200)
    yield cli, project, state_root, port
    if leftovers(project)["containers"]:
        subprocess.run(["odoo-ai", "--repo", str(REPO), "--config-dir", str(tmp / "config"), "logs", "dev",
                        "--tail", "40"], env=env)
    force_cleanup(project, state_root)


def health(port: int) -> int:
    return httpx.get(f"http://127.0.0.1:{port}/web/health", timeout=5).status_code


def sql(cli: Cli, query: str) -> str:
    return cli("compose", "dev", "--", "exec", "-T", "db", "psql", "-U", "odoo", "-d", "opw_it",
               "-tAc", query).stdout.strip()


def releases(cli: Cli) -> list[dict]:
    return cli.json("releases", "dev", "--limit", "100")["releases"]


def web_containers(project: str) -> list[str]:
    return subprocess.run([DOCKER, "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
                           "--filter", "label=com.docker.compose.service=web"],
                          capture_output=True, text=True).stdout.split()


def assert_previous_serving(cli: Cli, port: int, project: str, expected_tag: str) -> None:
    assert health(port) == 200
    assert sql(cli, "SELECT note FROM odoo_ai_probe") == "written before"
    assert len(web_containers(project)) == 1
    status = cli.json("status", "dev")
    assert status["tag"] == expected_tag
    oneoff = subprocess.run([DOCKER, "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}",
                             "--filter", "label=com.docker.compose.oneoff=True"], capture_output=True, text=True)
    assert oneoff.stdout.split() == []


def deploy_fails(cli: Cli, scenario_tag: str, phase: str, extra_env: dict[str, str] | None = None) -> dict:
    proc = cli("deploy", "dev", "--tag", scenario_tag, "--json", check=False, extra_env=extra_env)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "failed" and doc["failed_phase"] == phase, doc
    assert doc["hint"]
    return doc


def test_first_deploy_initialises_and_serves(stack) -> None:
    cli, project, state_root, port = stack
    result = cli.json("deploy", "dev", "--tag", tag("ok"))
    assert result["status"] == "success" and result["previous_tag"] is None
    names = [p["name"] for p in result["phases"]]
    assert names[:4] == ["render", "pull", "inspect", "services"] and "update" in names and names[-1] == "converge"
    assert all(p["ok"] for p in result["phases"])
    assert health(port) == 200
    assert result["release"]["commit"] == SCENARIOS["ok"]
    assert set(result["digests"]) == {"web", "script-runner"}
    sql(cli, "CREATE TABLE odoo_ai_probe (note text); INSERT INTO odoo_ai_probe VALUES ('written before')")
    assert sql(cli, "SELECT state FROM ir_module_module WHERE name = 'standin_demo'") == "installed"


def test_deploy_with_changed_addon_updates_and_switches(stack) -> None:
    cli, project, state_root, port = stack
    before = web_containers(project)
    result = cli.json("deploy", "dev", "--tag", tag("ok_v2"))
    assert result["status"] == "success" and result["previous_tag"] == tag("ok")
    assert result["release"]["updated"] is True and result["release"]["snapshot"]
    after = web_containers(project)
    assert len(after) == 1 and after != before  # a new container, the old one drained and removed
    assert_previous_serving(cli, port, project, tag("ok_v2"))
    assert sql(cli, "SELECT latest_version FROM ir_module_module WHERE name = 'standin_demo'").endswith("1.1.0")


ALIAS = "dev-2222223"  # the ok_v2 images under another tag: same digests, same addons


def test_redeploy_of_what_serves_changes_nothing(stack) -> None:
    cli, project, state_root, port = stack
    before = web_containers(project)
    log = (state_root / "releases.log").read_text()
    started = time.monotonic()
    result = cli.json("deploy", "dev", "--tag", tag("ok_v2"))
    assert result["status"] == "unchanged" and result["phases"] == []
    assert time.monotonic() - started < 10
    assert web_containers(project) == before and (state_root / "releases.log").read_text() == log


def test_redeploy_of_same_addons_skips_the_update(stack) -> None:
    cli, project, state_root, port = stack
    for target in ("web", "script-runner"):
        subprocess.run([DOCKER, "tag", f"odoo-ai-test/odoo-{target}:{tag('ok_v2')}",
                        f"odoo-ai-test/odoo-{target}:{ALIAS}"], check=True)
    result = cli.json("deploy", "dev", "--tag", ALIAS)
    assert result["status"] == "success"
    assert "update" not in [p["name"] for p in result["phases"]]
    assert "module update skipped: no addon changed" in result["release"]["notes"]


def test_unknown_tag_fails_in_pull_and_keeps_serving(stack) -> None:
    cli, project, state_root, port = stack
    doc = deploy_fails(cli, "dev-deadbee", "pull")
    assert "dev-deadbee" in doc["error"]
    assert_previous_serving(cli, port, project, ALIAS)
    assert not (state_root / ".env.next").exists()


def test_failing_update_restores_and_keeps_serving(stack, tmp_path) -> None:
    cli, project, state_root, port = stack
    summary = tmp_path / "step-summary.md"
    # clients whose requests hold their database connection 0.3 s before querying: the
    # undo's swap ends every session on the database, so it waits for them (new requests
    # wait at the proxy, the old web is paused once its own are done): none fails
    slow = f"http://127.0.0.1:{port}/web/login?db=opw_it&standin_hold=0.3"
    with answers_during(slow, clients=3) as answers:
        doc = deploy_fails(cli, tag("update_fails"), "update", extra_env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert answers and set(answers) == {"200"}, answers
    # under GitHub Actions: the verdict and the phases as a Mermaid chart, the failing one red,
    # each bar as long as the release log says; `releases --show 1 --chart` draws the same
    text = summary.read_text()
    assert f"→ `{tag('update_fails')}` **failed** in phase `update`" in text
    (chart,) = mermaid_blocks(text)
    _, bars = parse_gantt(chart)
    phases = doc["release"]["phases"]
    assert [(b.text.split()[0], b.ms, "crit" in b.tags) for b in bars[:len(phases)]] == \
        [(p["name"], max(charts.ms(p["seconds"]), 1), not p["ok"]) for p in phases] and phases[-1]["name"] == "update"
    assert mermaid_blocks(cli("releases", "dev", "--show", "1", "--chart").stdout) == [chart]
    assert "exited 255" in doc["error"]
    assert doc["output"]  # the last lines of odoo-bin's output
    assert any("restored database and filestore" in line for line in doc["release"]["undone"])
    assert_previous_serving(cli, port, project, ALIAS)
    assert sql(cli, "SELECT latest_version FROM ir_module_module WHERE name = 'standin_demo'").endswith("1.1.0")
    # nothing lost: the database the failed update touched is kept, with its filestore beside it
    kept = doc["release"]["kept_database"]
    assert kept.startswith("opw_it__failed_")
    assert sql(cli, f"SELECT count(*) FROM pg_database WHERE datname = '{kept}'") == "1"
    assert (state_root / "filestore" / "filestore" / kept).is_dir()


def test_never_healthy_image_fails_the_gate_and_keeps_serving(stack) -> None:
    cli, project, state_root, port = stack
    doc = deploy_fails(cli, tag("never_healthy"), "gate")
    assert "timed out after 20s waiting for /web/health" in doc["error"]
    assert_previous_serving(cli, port, project, ALIAS)


def test_crashing_image_fails_the_gate_fast_and_keeps_serving(stack) -> None:
    cli, project, state_root, port = stack
    start = time.monotonic()
    doc = deploy_fails(cli, tag("crash"), "gate")
    assert "crashed" in doc["error"]
    assert time.monotonic() - start < 60
    assert_previous_serving(cli, port, project, ALIAS)


def test_an_image_whose_bus_never_starts_fails_the_gate_and_keeps_serving(stack) -> None:
    """Odoo's websocket process (the bus) failing at start left /web/health and /web/login
    answering 200: the gate's websocket handshake is what sees it."""
    cli, project, state_root, port = stack
    doc = deploy_fails(cli, tag("dead_bus"), "gate")
    assert "/websocket 101" in doc["error"] and '"websocket": "ConnectionRefusedError' in doc["error"], doc["error"]
    assert_previous_serving(cli, port, project, ALIAS)


def test_release_log_records_every_attempt(stack) -> None:
    cli, *_ = stack
    history = releases(cli)
    assert [(r["image_tag"], r["status"]) for r in history] == [
        (tag("ok"), "success"), (tag("ok_v2"), "success"), (ALIAS, "success"),
        ("dev-deadbee", "failed"), (tag("update_fails"), "failed"), (tag("never_healthy"), "failed"),
        (tag("crash"), "failed"), (tag("dead_bus"), "failed"),
    ]
    failed = history[4]
    assert failed["phase"] == "update" and failed["previous_tag"] == ALIAS and failed["duration"] > 0
    assert {"timestamp", "env", "commit", "digests", "actor"} <= set(history[0])


def test_rollback_goes_to_the_previous_success_with_its_data(stack) -> None:
    cli, project, state_root, port = stack
    sql(cli, "INSERT INTO odoo_ai_probe VALUES ('written after the update')")
    with answers_during(f"http://127.0.0.1:{port}/web/login") as answers:  # a client during the rollback
        result = cli.json("rollback", "dev", "--to", tag("ok"), "--restore-db", "--yes")
    assert result["status"] == "success" and result["kind"] == "rollback" and result["tag"] == tag("ok")
    # From the swap to the switch the maintenance page answers (the newer code never runs on
    # the restored data); before and after, the release of the moment; nothing else.
    runs = " ".join(f"{a}x{len(list(g))}" for a, g in itertools.groupby(answers))  # what came, in order
    assert set(answers) == {"200", "503 retry-after"}, runs
    first, last = answers.index("503 retry-after"), len(answers) - answers[::-1].index("503 retry-after")
    # nginx's workers of the configuration the reload left may accept a last request before
    # they take its QUIT: the old web answers it, before the swap (old code, old data; the
    # stand-in would say "newer code" otherwise). From then to the switch: only the page.
    stray = [i for i, answer in enumerate(answers[first:last]) if answer != "503 retry-after"]
    assert all(i < 3 for i in stray) and last - first > 5 and answers[-1] == "200", runs
    names = [p["name"] for p in result["phases"]]
    assert "update" not in names and "restore" in names
    assert health(port) == 200
    assert cli.json("status", "dev")["tag"] == tag("ok")
    # The data as it was before ok_v2's update: its schema version and rows.
    assert sql(cli, "SELECT latest_version FROM ir_module_module WHERE name = 'standin_demo'").endswith("1.0.0")
    assert sql(cli, "SELECT note FROM odoo_ai_probe") == "written before"
    # The data it replaced went into a snapshot first; once the target served it was dropped.
    assert sql(cli, "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_\\_replaced\\_%'") == "0"
    assert not [p.name for p in (state_root / "filestore" / "filestore").iterdir() if "__replaced_" in p.name]
    assert any(n.startswith("dropped the replaced database") for n in result["release"]["notes"])
    bad = cli("rollback", "dev", "--to", "dev-0000000", check=False)
    assert bad.returncode == 2 and "unknown rollback target 'dev-0000000'" in bad.stderr
    back = cli.json("rollback", "dev", "--to", tag("ok_v2"))
    assert back["tag"] == tag("ok_v2")


def test_second_deploy_refuses_while_locked(stack) -> None:
    cli, project, state_root, port = stack
    with EnvLock(state_root / "deploy.lock", command="deploy dev held-by-test"):
        proc = cli("deploy", "dev", "--tag", tag("ok"), "--lock-timeout", "1", check=False)
    assert proc.returncode == 1
    assert "locked by deploy dev held-by-test" in proc.stderr and "since" in proc.stderr


def test_deploy_killed_mid_update_is_recovered_by_the_next(stack) -> None:
    cli, project, state_root, port = stack
    proc = subprocess.Popen(
        ["odoo-ai", "--repo", str(REPO), "--config-dir", str(cli.config_dir), "deploy", "dev", "--tag",
         tag("slow_update")], env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    journal = state_root / "deploy-journal.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.exists() and json.loads(journal.read_text() or "{}").get("phase") == "update":
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the deploy never reached the update phase")
    time.sleep(3)  # inside odoo-bin -u
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert health(port) == 200
    result = cli.json("deploy", "dev", "--tag", tag("ok"))
    assert result["status"] == "success"
    assert any("recovered an interrupted deploy" in note for note in result["release"]["notes"])
    assert_previous_serving(cli, port, project, tag("ok"))
    assert sql(cli, "SELECT count(*) FROM ir_module_module WHERE state IN ('to upgrade', 'to install')") == "0"
    history = releases(cli)
    assert history[-2]["image_tag"] == tag("slow_update") and history[-2]["status"] == "failed"
    assert "interrupted in phase update" in history[-2]["note"]


def test_old_snapshots_are_pruned(stack) -> None:
    cli, project, state_root, port = stack
    history = releases(cli)
    last = history[-1]
    assert last["status"] == "success" and last["snapshot"]
    kept = sorted(p.name for p in (state_root / "snapshots").iterdir())
    assert kept == [f"{last['snapshot']}.dump", f"{last['snapshot']}.filestore"] or kept == [f"{last['snapshot']}.dump"]
    assert any(r.get("snapshots_pruned") for r in history)


def test_teardown_leaves_nothing(stack) -> None:
    cli, project, state_root, port = stack
    cli("down", "dev", "--purge", "--yes")
    assert leftovers(project) == {"containers": [], "networks": [], "volumes": []}
    assert not state_root.exists()
    assert Path(state_root).parent.exists()


def test_failed_first_deploy_leaves_nothing_running(stack, tmp_path) -> None:
    cli, *_ = stack  # its images are built; this test uses its own fresh stack
    project = f"oaif-{os.getpid()}"
    state_root = tmp_path / "state"
    fresh = Cli(REPO, tmp_path / "config", cli.home, cli.env)
    fresh.config_dir.mkdir()
    fresh.write_env("dev", "\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={state_root}", f"ODOO_PUBLISHED_PORT={free_port()}",
        "ODOO_IMAGE=odoo-ai-test/odoo", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15",
        "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1", "ODOO_DB_NAME=opw_first", "ODOO_UPDATE=standin_demo", "",
    ]))
    try:
        doc = deploy_fails(fresh, tag("update_fails"), "update")
        assert "removed the services this first deploy had started" in doc["release"]["undone"]
        assert leftovers(project)["containers"] == []
        assert not (state_root / ".env").exists() and not (state_root / ".env.next").exists()
        assert [r["status"] for r in releases(fresh)] == ["failed"]
    finally:
        force_cleanup(project, state_root)
