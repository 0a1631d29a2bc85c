"""Golden command lines: what each step would run, argv exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from odoo_ai.config.stack import load_stack
from odoo_ai.errors import ConfigError
from odoo_ai.plan import compose as plan
from odoo_ai.plan.build import BuildInputs, build_command


@pytest.fixture
def stack(repo: Path, home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ODOO_AI_DOCKER", "docker")
    return load_stack("dev", repo_root=repo, home=home)


def base(stack) -> str:
    r = stack.repo_root
    return (
        f"docker compose --project-name opw-dev --project-directory {r} "
        f"--file {r}/docker-compose.yml --file {r}/environments/dev.yaml "
        f"--env-file {stack.state_root}/.env"
    )


def test_up(stack) -> None:
    assert " ".join(plan.up(stack).argv) == base(stack) + " up --detach --remove-orphans"


def test_down_includes_every_profile(stack) -> None:
    assert " ".join(plan.down(stack).argv) == base(stack) + " --profile * down --remove-orphans --timeout 10"
    assert plan.down(stack, volumes=True).argv[-1] == "--volumes"


def test_logs_and_ps(stack) -> None:
    assert " ".join(plan.logs(stack, ["web"], follow=True, tail=50).argv) == (
        base(stack) + " logs --no-color --timestamps --follow --tail 50 web"
    )
    assert plan.ps(stack).argv[-4:] == ["ps", "--all", "--format", "json"]


def test_passthrough_keeps_hostile_args_as_single_argv_items(stack) -> None:
    cmd = plan.compose(stack, "exec", "web", "echo", "$(rm -rf /); `id`")
    assert cmd.argv[-1] == "$(rm -rf /); `id`"
    assert "'$(rm -rf /); `id`'" in cmd.display()


def test_build_web_with_secrets(stack) -> None:
    repo = stack.repo_root
    (repo / "vendor" / "odoo").mkdir(parents=True)
    inputs = BuildInputs(
        sha="1a2b3c4d5e6f", odoo_local_src=repo / "vendor" / "odoo", base_image="debian:bookworm-slim",
        enterprise_git_url="git@github.com:odoo/enterprise.git", enterprise_sha="abc",
        enterprise_key=Path("/run/key"), enterprise_known_hosts=Path("/run/kh"), build_time="T",
    )
    cmd = build_command(stack, "web", inputs, "docker")
    assert cmd.env == {"DOCKER_BUILDKIT": "1"}
    assert cmd.argv == [
        "docker", "build", "--file", f"{repo}/docker/Dockerfile", "--target", "web",
        "--tag", "odoo-ai/odoo-web:dev-1a2b3c4",
        "--build-arg", "SOURCE_COMMIT=1a2b3c4d5e6f", "--build-arg", "ODOO_REF=18.0",
        "--build-arg", "ENTERPRISE_SHA=abc", "--build-arg", "BUILD_TIME=T", "--build-arg", "WKHTMLTOPDF=debian",
        "--build-arg", "BASE_IMAGE=debian:bookworm-slim", "--build-arg", "ODOO_LOCAL_SRC=vendor/odoo",
        "--build-arg", "ENTERPRISE_GIT_URL=git@github.com:odoo/enterprise.git",
        "--secret", "id=enterprise_key,src=/run/key", "--secret", "id=enterprise_known_hosts,src=/run/kh",
        str(repo),
    ]
    # the key's content never appears; only its path goes to --secret
    assert all("BEGIN" not in a for a in cmd.argv)


def test_build_refuses_source_outside_context(stack, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(ConfigError, match="outside the build context"):
        build_command(stack, "web", BuildInputs(sha="1a2b3c4", odoo_local_src=outside), "docker")


@pytest.mark.parametrize(
    ("ref", "repo"),
    [
        ("127.0.0.1:5000/odoo-ai/odoo-web:dev-1a2b3c4", "127.0.0.1:5000/odoo-ai/odoo-web"),
        ("ghcr.io/acme/odoo-web@sha256:" + "a" * 64, "ghcr.io/acme/odoo-web"),
        ("reg:5000/x@sha256:" + "b" * 64, "reg:5000/x"),
        ("odoo-ai/odoo-web:dev-1", "odoo-ai/odoo-web"),
        ("odoo", "odoo"),
    ],
)
def test_repository_of_keeps_registry_ports(ref: str, repo: str) -> None:
    from odoo_ai.deploy import repository_of

    assert repository_of(ref) == repo


def test_deploy_plan_quotes_hostile_values_and_keeps_secrets_off_argv(stack) -> None:
    from odoo_ai.plan import deploy as dplan

    cmd = dplan.db_exists(stack)
    assert cmd.stdin is not None and b":'dbname'" in cmd.stdin  # the name travels as a psql variable
    assert "-v" in cmd.argv and "dbname=opw_dev" in cmd.argv
    update = dplan.module_update(stack, stack.state_root / ".env.next", install=["new_mod"], update="sale,stock",
                                 name="opw-dev-update-17-1", deploy_id="17")
    assert update.argv[-9:] == ["/odoo/odoo-bin", "-d", "opw_dev", "-i", "new_mod", "-u", "sale,stock",
                                "--stop-after-init", "--no-http"]
    assert "run" in update.argv and "--rm" in update.argv and "--no-deps" in update.argv
    # named and labelled, so a later run finds (and stops) the container of a killed CLI
    assert update.argv[update.argv.index("--name") + 1] == "opw-dev-update-17-1"
    assert "org.odoo-ai.role=update" in update.argv and "org.odoo-ai.deploy=17" in update.argv
    snap = dplan.snapshot_filestore(stack, "dev-1-2")
    assert snap.argv[-3:] == ["sh", "/volumes/data/filestore/opw_dev", "/volumes/snapshots/dev-1-2.filestore"]
    assert dplan.upstream_conf(None).count("set ") == 0
    assert "set $odoo_http http://p-web-2:8069;" in dplan.upstream_conf("p-web-2")


def test_a_restore_runs_its_filestore_steps_as_execs_in_one_sleeping_tools_container(stack) -> None:
    from odoo_ai.plan import deploy as dplan

    start = dplan.tools_start(stack, stack.dotenv_path)
    at = start.argv.index("run")
    assert start.argv[at:] == ["run", "--detach", "--rm", "--no-deps", "--entrypoint", "sleep", "script-runner",
                               str(dplan.TOOLS_IDLE_SECONDS)]
    prepare = dplan.prepare_filestore(stack, "dev-1-2", "c0ffee")
    assert prepare.argv[1:5] == ["exec", "c0ffee", "sh", "-c"] and prepare.argv[5] == dplan.FILESTORE_PREPARE_SH
    assert prepare.argv[6:] == ["sh", "/volumes/data/filestore/opw_dev", "/volumes/snapshots/dev-1-2.filestore"]
    swap = dplan.swap_filestore(stack, "c0ffee", keep_as="opw_dev__failed_1")
    assert swap.argv[5] == dplan.FILESTORE_SWAP_SH
    assert swap.argv[6:] == ["sh", "/volumes/data/filestore/opw_dev", "", "/volumes/data/filestore/opw_dev__failed_1"]


def test_the_switch_lists_nginx_workers_and_reloads_in_one_exec() -> None:
    from odoo_ai.plan import deploy as dplan

    switch = dplan.proxy_switch("px")
    assert switch.argv[1:5] == ["exec", "px", "sh", "-c"]
    assert switch.argv[5] == dplan.PROXY_WORKERS_SH + "; exec nginx -s reload"
    gone = dplan.proxy_workers_gone("px", ["12", "13;rm -rf /", "14"], 2.0)
    assert gone.argv[-4:] == ["sh", "40", "12", "14"]  # 0.05 s checks; only pids pass
    assert gone.timeout == 32.0 and "--user" not in gone.argv  # the workers' user unknown: as the exec's
    assert dplan.proxy_workers_gone("px", ["12"], 2.0, user="101").argv[1:4] == ["exec", "--user", "101"]
    assert "--user" not in dplan.proxy_workers_gone("px", ["12"], 2.0, user="0;x").argv
    assert dplan.proxy_worker_rows("11:33\n12:33\n") == (["11", "12"], "33")
    assert dplan.proxy_worker_rows("11:33\n12:101\nx:1\n13\n") == (["11", "12", "13"], None)  # two users: unknown
