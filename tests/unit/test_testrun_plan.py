"""Pure planning of `test run` (odoo_ai.plan.testrun): modules, shards, the throw-away
project and the exact argv of every step."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from odoo_ai.config.stack import PROJECT_RE, load_stack
from odoo_ai.errors import ConfigError
from odoo_ai.plan import testrun as plan

SUFFIX = "0badc0de"
names = st.from_regex(r"[a-z0-9_]{1,12}", fullmatch=True)


# ---------------------------------------------------------------- modules and tags


def test_parse_modules_sorts_dedupes_and_ignores_blanks() -> None:
    assert plan.parse_modules("b, a,b ,c") == ["a", "b", "c"]


@pytest.mark.parametrize(
    "text", ["", ",", "a,", "A", "a;rm -rf /", "a,,b", "../x", "a b,c", "mod-x", "x\ny"]
)
def test_parse_modules_refuses_anything_else(text: str) -> None:
    with pytest.raises(ConfigError, match="--modules"):
        plan.parse_modules(text)


@pytest.mark.parametrize(
    "tags",
    ["/my_module", "at_install,-slow", "/m:MyTest.test_x", "-/web", "post_install,/m[x]", "*"],
)
def test_odoo_test_tags_are_accepted(tags: str) -> None:
    assert plan.validate_test_tags(tags) == tags


@pytest.mark.parametrize("tags", ["", "a;b", "$(id)", "a'b", "a|b", "a b", "a\nb", "a" * 2001])
def test_hostile_test_tags_are_refused(tags: str) -> None:
    with pytest.raises(ConfigError, match="--tags"):
        plan.validate_test_tags(tags)


# ---------------------------------------------------------------- shards


@pytest.mark.parametrize(
    ("shards", "shard", "message"),
    [(2, None, "go together"), (None, 1, "go together"), (0, 1, "at least 1"),
     (3, 0, "from 1 to"), (3, 4, "from 1 to")],
)
def test_shard_options_are_validated(shards, shard, message) -> None:
    with pytest.raises(ConfigError, match=message):
        plan.validate_shard(shards, shard)


def test_no_sharding_and_valid_sharding() -> None:
    assert plan.validate_shard(None, None) is None
    assert plan.validate_shard(3, 3) == (3, 3)


def test_shards_are_round_robin_over_the_sorted_list() -> None:
    modules = ["e", "a", "d", "c", "b"]
    assert [plan.shard_modules(modules, k, 2) for k in (1, 2)] == [["a", "c", "e"], ["b", "d"]]
    assert plan.shard_modules(["a"], 2, 3) == []  # more shards than modules: empty shards


@given(st.lists(names, max_size=40), st.integers(min_value=1, max_value=9))
def test_shards_partition_the_modules_deterministically(modules: list[str], count: int) -> None:
    parts = [plan.shard_modules(modules, k, count) for k in range(1, count + 1)]
    flat = [m for part in parts for m in part]
    assert sorted(flat) == sorted(set(modules))  # each module in exactly one shard
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1  # balanced by count
    # The split depends only on the names, not on the order they were given in.
    assert parts == [plan.shard_modules(list(reversed(modules)), k, count) for k in range(1, count + 1)]


# ---------------------------------------------------------------- the throw-away project


@given(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,62}", fullmatch=True))
def test_project_names_stay_valid_compose_names(project: str) -> None:
    name = plan.project_name_for(project, SUFFIX)
    assert PROJECT_RE.match(name) and len(name) <= 63
    assert name.endswith(f"-test-{SUFFIX}")


def test_names_refuse_a_bad_suffix() -> None:
    with pytest.raises(ValueError):
        plan.project_name_for("opw-dev", "x; rm")
    with pytest.raises(ValueError):
        plan.db_name_for("ABCDEF12")


@pytest.fixture
def project(repo: Path, home: Path, tmp_path: Path) -> plan.TestProject:
    config = repo / "docker" / "config"
    (config / "dev.env").write_text(
        "ODOO_DB_IMAGE=odoo-ai-test/postgres:15\nODOO_DB_PASSWORD=from-env-file\n"
        "ODOO_WEB_IMAGE=pinned/web:1\nODOO_IMAGE_TAG=dev-1234567\nODOO_DB_DIR=/srv/live-db\n"
    )
    stack = load_stack("dev", repo_root=repo, config_dir=config, home=home)
    return plan.plan_project(
        stack, suffix=SUFFIX, state_dir=tmp_path / "state", image="reg/x-script-runner:t1",
        modules=["a", "b"], test_tags="/a", timeout=60,
        secret_names=["ODOO_DB_PASSWORD", "ODOO_MASTER_PASSWORD"],
    )


def test_the_project_is_the_env_re_pointed_at_a_temp_dir(project: plan.TestProject, tmp_path: Path) -> None:
    state = tmp_path / "state"
    stack = project.stack
    assert (project.name, project.database) == (f"opw-dev-test-{SUFFIX}", f"test_{SUFFIX}")
    assert (stack.state_root, stack.data_dir, stack.log_dir) == (state, state / "filestore", state / "logs")
    assert stack.db_dir == state / "postgres"  # never the live ODOO_DB_DIR
    assert stack.compose_files[-1] == state / plan.OVERRIDE_FILE
    assert stack.values["ODOO_WEB_IMAGE"] == stack.values["ODOO_SCRIPT_RUNNER_IMAGE"] == project.image
    assert "ODOO_IMAGE_TAG" not in stack.values and stack.image_tag is None
    assert "ODOO_DB_PASSWORD" not in stack.values  # secrets only reach the rendered .env


def test_override_moves_the_database_into_a_project_volume() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!override", lambda loader, node: loader.construct_sequence(node))
    doc = yaml.load(plan.OVERRIDE_YAML, Loader=Loader)  # noqa: S506 - our own text
    assert doc["services"]["db"]["volumes"] == ["test-db:/var/lib/postgresql/data"]
    assert "test-db" in doc["volumes"]
    assert "volumes: !override" in plan.OVERRIDE_YAML


def _base(project: plan.TestProject) -> list[str]:
    state = project.state_dir
    return [
        "docker", "compose", "--project-name", project.name, "--project-directory",
        str(project.stack.repo_root), "--file", str(project.stack.repo_root / "docker-compose.yml"),
        "--file", str(project.stack.repo_root / "environments" / "dev.yaml"),
        "--file", str(state / plan.OVERRIDE_FILE), "--env-file", str(state / ".env"),
    ]


def test_commands_are_exact_argv(project: plan.TestProject, monkeypatch) -> None:
    monkeypatch.setenv("ODOO_AI_DOCKER", "docker")
    base = _base(project)
    run = plan.run_tests(project)
    assert run.argv == [
        *base, "--ansi", "never", "run", "--rm", "--no-deps", "-T", "--name",
        f"{project.name}-run", "script-runner", "/odoo/odoo-bin", "-d", f"test_{SUFFIX}",
        "-i", "a,b", "--test-enable", "--test-tags=/a", "--stop-after-init",
    ]
    assert run.timeout == 60
    up = plan.up_db(project)
    assert up.argv == [*base, "--ansi", "never", "up", "--detach", "--wait", "--wait-timeout", "180", "db"]
    assert up.timeout and up.timeout > 180
    assert plan.down(project).argv == [
        *base, "--profile", "*", "down", "--remove-orphans", "--timeout", "10", "--volumes",
    ]
    assert plan.remove_container(project).argv == ["docker", "rm", "--force", "--volumes", f"{project.name}-run"]
    assert plan.image_present(project).argv[-1] == "reg/x-script-runner:t1"
    assert plan.pull_image(project).argv[-3:] == ["pull", "--quiet", "script-runner"]
    for command in (run, up, plan.down(project), plan.pull_image(project)):
        assert command.timeout is not None
        assert "from-env-file" not in command.display()


def test_demo_data_is_opt_in(project: plan.TestProject) -> None:
    assert "ODOO_WITHOUT_DEMO=False" not in plan.run_tests(project).argv
    with_demo = plan.TestProject(**{**project.__dict__, "demo": True})
    argv = plan.run_tests(with_demo).argv
    assert argv[argv.index("script-runner") - 2 :][:2] == ["-e", "ODOO_WITHOUT_DEMO=False"]


def test_odoo_argv_without_tags_tests_exactly_the_modules() -> None:
    # Without --test-tags Odoo would also test what -i pulls in (dependencies, auto_install).
    assert plan.module_test_tags(["a", "b_c"]) == "/a,/b_c"
    assert plan.odoo_test_argv("d", ["m"], None) == [
        "/odoo/odoo-bin", "-d", "d", "-i", "m", "--test-enable", "--test-tags=/m", "--stop-after-init",
    ]
    assert plan.odoo_test_argv("d", ("a", "b"), None)[-2] == "--test-tags=/a,/b"


def test_odoo_argv_given_tags_win_and_a_leading_minus_stays_one_item() -> None:
    argv = plan.odoo_test_argv("d", ["m", "n"], "-/web")
    assert "--test-tags=-/web" in argv and not any(a.startswith("--test-tags=/") for a in argv)
    assert plan.odoo_test_argv("d", ["m"], "at_install")[-2] == "--test-tags=at_install"
