"""Every value reaches the containers exactly as given, through real Compose."""

from __future__ import annotations

import json
import stat

import pytest

from tests.integration.conftest import BASE_IMAGE, force_cleanup, image_exists

HOSTILE = {
    "ODOO_DB_PASSWORD": "pa$word $$ ${HOME} $(id) `id`",
    "ODOO_MASTER_PASSWORD": "it's \"quoted\" # not a comment \\ back\\\\slash\\",
    "SHOPIFY_API_TOKEN": " lead and trail \t tab ü 😀 ${X:-y} $$$ '\\'' \\\" ",
}


@pytest.fixture
def stack_env(cli, project_name, tmp_path):
    if not image_exists(BASE_IMAGE):
        pytest.fail(f"{BASE_IMAGE} missing: run scripts/provision-host.sh")
    state_root = tmp_path / "state"
    cli.write_env(
        "dev",
        f"ODOO_PROJECT_NAME={project_name}\nODOO_STATE_ROOT={state_root}\n"
        f"ODOO_SCRIPT_RUNNER_IMAGE={BASE_IMAGE}\nODOO_WEB_IMAGE={BASE_IMAGE}\n"
        "ODOO_SECRETS=ODOO_DB_PASSWORD,ODOO_MASTER_PASSWORD,SHOPIFY_API_TOKEN\n"
        "SHOP_NAME='Acme $shop'\n",
    )
    yield state_root
    force_cleanup(project_name, state_root)


def container_env(cli) -> dict[str, str]:
    proc = cli("compose", "dev", "--", "run", "--rm", "--no-deps", "-T", "--entrypoint", "env", "script-runner")
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def test_hostile_values_reach_the_container_exactly(cli, stack_env) -> None:
    cli("env", "render", "dev", extra_env=HOSTILE)
    dotenv = stack_env / ".env"
    assert stat.S_IMODE(dotenv.stat().st_mode) == 0o600
    assert stat.S_IMODE((stack_env / "odoo.env").stat().st_mode) == 0o600
    env = container_env(cli)
    assert env["ODOO_DB_PASSWORD"] == HOSTILE["ODOO_DB_PASSWORD"]  # via .env interpolation
    assert env["ODOO_ADMIN_PASSWD"] == HOSTILE["ODOO_MASTER_PASSWORD"]
    assert env["SHOPIFY_API_TOKEN"] == HOSTILE["SHOPIFY_API_TOKEN"]  # via the raw odoo.env
    assert env["SHOP_NAME"] == "Acme $shop"
    assert env["ODOO_LOGFILE"] == ""  # script-runner logs to stderr


def test_compose_config_passes_for_both_envs(cli, stack_env, project_name) -> None:
    for env in ("dev", "testing"):
        if env == "testing":
            cli.write_env("testing", f"ODOO_PROJECT_NAME={project_name}-t\nODOO_STATE_ROOT={stack_env}-t\n")
        cli("env", "render", env, "--tag", f"{env}-0000000", extra_env=HOSTILE)
        cfg = json.loads(cli("compose", env, "--", "--profile", "tools", "config", "--format", "json").stdout)
        assert set(cfg["services"]) >= {"db", "web", "proxy"}
        assert cfg["services"]["script-runner"]["profiles"] == ["tools"]
        assert cfg["services"]["proxy"]["ports"][0]["host_ip"] == "127.0.0.1"
    force_cleanup(f"{project_name}-t", stack_env.parent / "state-t")


def test_newline_is_refused_and_nothing_written(cli, stack_env) -> None:
    proc = cli("env", "render", "dev", "--tag", "dev-0000000", check=False,
               extra_env={**HOSTILE, "ODOO_DB_PASSWORD": "two\nlines"})
    assert proc.returncode == 2
    assert "ODOO_DB_PASSWORD: value contains a newline" in proc.stderr
    assert not stack_env.exists()


def test_missing_secret_is_named(cli, stack_env) -> None:
    env = {k: v for k, v in HOSTILE.items() if k != "SHOPIFY_API_TOKEN"}
    proc = cli("env", "render", "dev", "--tag", "dev-0000000", check=False, extra_env=env)
    assert proc.returncode == 2
    assert "missing secret SHOPIFY_API_TOKEN" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not stack_env.exists()
