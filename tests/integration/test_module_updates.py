"""Per-module update decisions against the real engine and PostgreSQL (stand-in Odoo):
the database records each installed module's checksum after an update; a deploy then
updates exactly the modules whose code changed, installs new required ones, and runs
nothing (no snapshot, no update) when nothing changed. `modules changed` previews it."""

from __future__ import annotations

import os
import subprocess

import pytest

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

SCENARIOS = {"two_mods": "9a11111aaaa", "two_mods_b2": "9b22222bbbb", "ok": "9c33333cccc"}
SECRETS = {"ODOO_DB_PASSWORD": "mod-db", "ODOO_MASTER_PASSWORD": "mod-master"}


def tag(scenario: str) -> str:
    return f"dev-{SCENARIOS[scenario][:7]}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    for image in ("odoo-ai-test/postgres:15", "odoo-ai-test/nginx:1", BASE_IMAGE):
        if not image_exists(image):
            pytest.fail(f"{image} missing: run scripts/build-test-images.sh")
    tmp = tmp_path_factory.mktemp("modules")
    (tmp / "config").mkdir()
    (tmp / "home").mkdir()
    project = f"oaim-{os.getpid()}"
    state_root = tmp / "state"
    env = {**os.environ, "HOME": str(tmp / "home"), "ODOO_AI_DOCKER": DOCKER, **SECRETS}
    cli = Cli(REPO, tmp / "config", tmp / "home", env)
    cli.write_env("dev", "\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={state_root}", f"ODOO_PUBLISHED_PORT={free_port()}",
        "ODOO_IMAGE=odoo-ai-test/odoo", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15",
        "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1", "ODOO_DB_NAME=opw_mods", "ODOO_INSTALL=standin_alpha,standin_beta",
        "ODOO_DEPLOY_DRAIN_SECONDS=0.5", "",  # ODOO_UPDATE unset: auto, per-module checksums
    ]))
    for scenario, sha in SCENARIOS.items():
        cli(*standin_build_args("dev", sha, addons=scenario), timeout=1200)
    yield cli, project, state_root
    force_cleanup(project, state_root)


def sql(cli: Cli, query: str) -> str:
    return cli("compose", "dev", "--", "exec", "-T", "db", "psql", "-U", "odoo", "-d", "opw_mods",
               "-tAc", query).stdout.strip()


def upgrades(cli: Cli) -> list[str]:
    """The modules upgraded so far, in order (one psql: '' when none)."""
    listed = sql(cli, "SELECT coalesce(string_agg(module, ',' ORDER BY id), '') FROM standin_module_log "
                      "WHERE action = 'upgrade'")
    return listed.split(",") if listed else []


def test_first_deploy_installs_and_records_the_checksums(stack) -> None:
    cli, project, state_root = stack
    result = cli.json("deploy", "dev", "--tag", tag("two_mods"))
    assert result["status"] == "success"
    assert sql(cli, "SELECT string_agg(name, ',' ORDER BY name) FROM ir_module_module WHERE state = 'installed' "
                    "AND name LIKE 'standin_%'") == "standin_alpha,standin_beta"
    recorded = sql(cli, "SELECT count(*) FROM odoo_ai_module_checksum WHERE name IN ('standin_alpha', 'standin_beta')")
    assert recorded == "2"


def test_preview_lists_exactly_the_changed_module(stack) -> None:
    cli, project, state_root = stack
    preview = cli.json("modules", "changed", "dev", "--tag", tag("two_mods_b2"))
    assert preview["per_module"] is True and preview["changed"] == ["standin_beta"]
    assert preview["update"] == "standin_beta" and preview["install"] == []
    assert preview["why"] == {"standin_beta": "checksum changed"}
    alpha = cli.json("modules", "changed", "dev", "--tag", tag("two_mods"))
    assert alpha["update"] is None and alpha["reason"] == "no module changed"
    human = cli("modules", "changed", "dev", "--tag", tag("two_mods_b2")).stdout
    assert "standin_beta: checksum changed" in human


def test_a_change_to_one_module_updates_only_it(stack) -> None:
    cli, project, state_root = stack
    before = upgrades(cli)
    result = cli.json("deploy", "dev", "--tag", tag("two_mods_b2"))
    assert result["status"] == "success" and result["modules"]["changed"] == ["standin_beta"]
    assert result["modules"]["update"] == "standin_beta"
    assert upgrades(cli)[len(before):] == ["standin_beta"]  # standin_alpha was not touched
    assert sql(cli, "SELECT latest_version FROM ir_module_module WHERE name = 'standin_beta'") == "18.0.1.1.0"


def test_same_code_under_another_tag_runs_nothing(stack) -> None:
    cli, project, state_root = stack
    for target in ("web", "script-runner"):
        subprocess.run([DOCKER, "tag", f"odoo-ai-test/odoo-{target}:{tag('two_mods_b2')}",
                        f"odoo-ai-test/odoo-{target}:dev-9b22223"], check=True)
    before = upgrades(cli)
    result = cli.json("deploy", "dev", "--tag", "dev-9b22223")
    names = [p["name"] for p in result["phases"]]
    assert result["status"] == "success" and "snapshot" not in names and "update" not in names
    assert upgrades(cli) == before


def test_a_module_gone_from_the_image_is_reported_not_touched(stack) -> None:
    cli, project, state_root = stack
    cli.write_env("dev", (cli.config_dir / "dev.env").read_text().replace(
        "ODOO_INSTALL=standin_alpha,standin_beta", "ODOO_INSTALL=standin_demo"))
    result = cli.json("deploy", "dev", "--tag", tag("ok"))
    assert result["status"] == "success"
    assert result["modules"]["removed"] == ["standin_alpha", "standin_beta"]
    assert result["modules"]["install"] == ["standin_demo"]
    assert any("no longer in the image" in w for w in result["warnings"])
    assert sql(cli, "SELECT state FROM ir_module_module WHERE name = 'standin_beta'") == "installed"


def test_an_update_blocked_by_a_lock_is_stopped_and_retried_with_the_web_held(stack) -> None:
    """A session of the live side holds a row the update must change (as Odoo's cron can):
    past ODOO_DEPLOY_LOCK_WAIT the update is stopped, the blocking session ended with the
    web paused, and the update retried: the deploy succeeds instead of hanging."""
    import time

    cli, project, state_root = stack
    text = (cli.config_dir / "dev.env").read_text().replace("ODOO_INSTALL=standin_demo",
                                                             "ODOO_INSTALL=standin_alpha,standin_beta")
    cli.write_env("dev", text + "ODOO_DEPLOY_LOCK_WAIT=3\n")
    db = subprocess.run([DOCKER, "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
                         "--filter", "label=com.docker.compose.service=db"], capture_output=True, text=True).stdout.split()
    holder = subprocess.Popen([DOCKER, "exec", "-i", db[0], "psql", "-U", "odoo", "-d", "opw_mods", "-q"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    assert holder.stdin is not None
    holder.stdin.write("BEGIN; SELECT name FROM ir_module_module FOR UPDATE; SELECT pg_sleep(120);\n")
    holder.stdin.flush()
    time.sleep(1)
    try:
        started = time.monotonic()
        result = cli.json("deploy", "dev", "--tag", tag("two_mods"))
        assert result["status"] == "success"
        assert any("retrying with the web held" in n for n in result["release"]["notes"]), result["release"]
        assert time.monotonic() - started < 60
        assert holder.wait(timeout=30) is not None  # its session was ended
    finally:
        holder.kill()
    assert sql(cli, "SELECT count(*) FROM ir_module_module WHERE state LIKE 'to %'") == "0"
    paused = subprocess.run([DOCKER, "ps", "-q", "--filter", f"label=com.docker.compose.project={project}",
                             "--filter", "status=paused"], capture_output=True, text=True).stdout.split()
    assert paused == []
