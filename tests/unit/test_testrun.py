"""`test run` use-case (odoo_ai.testing.run) and command line, with a fake runner that
replays real Odoo 18 logs (tests/fixtures/odoo18-logs, addon paths moved to where our image
puts the addons): module selection, image choice, isolation, secrets, cleanup, timeouts,
infrastructure failures and exit codes. The real engine: tests/integration/test_test_run.py."""

from __future__ import annotations

import json
import stat
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from odoo_ai.cli.testing import app
from odoo_ai.config.envfile import read_rendered_env
from odoo_ai.config.stack import load_stack
from odoo_ai.errors import ConfigError
from odoo_ai.hosts import LocalHost
from odoo_ai.plan import testrun as plan
from odoo_ai.runners.base import Command, CommandTimedOut, Result
from odoo_ai.testing import run as run_uc
from odoo_ai.testing.results import RunStatus

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "odoo18-logs"
SOURCES = {
    "tests_pass": "20-test-acc2-i-base-web-tags-web-TestWebController-PASS.log",
    "tests_fail": "30-test-acc3-i-failing_mod-FAILS.log",
    "tests_crash": "40-install-acc3-i-broken_data_mod-FAILS.log",
}
SCENARIO_RC = {
    name: int((FIXTURES / f"{src}.rc").read_text().strip().removeprefix("rc="))
    for name, src in SOURCES.items()
}
SCENARIO_LOG: dict[str, Path] = {}  # filled per test by _scenario_logs
CLEAN_ENV = {"GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": None, "GITHUB_WORKSPACE": None}


class FakeRunner:
    """Records every command; `stream` replays an Odoo log. `fail` maps a compose
    subcommand ("up", "inspect", "pull", "down") to a failing Result."""

    dry_run = False

    def __init__(self, log: Path | None = None, rc: int = 0, *, fail: dict[str, Result] | None = None,
                 on_stream: Callable[[], None] | None = None):
        self.log, self.rc, self.fail = log, rc, fail or {}
        self.on_stream = on_stream
        self.commands: list[Command] = []
        self.streamed: list[Command] = []

    def kind(self, command: Command) -> str:
        argv = command.argv
        for word in ("up", "pull", "down", "run", "rm"):
            if word in argv:
                return word
        return "inspect" if "inspect" in argv else "?"

    def run(self, command: Command, *, capture: bool = False) -> Result:
        self.commands.append(command)
        return self.fail.get(self.kind(command), Result(0, "sha256:x\n" if "inspect" in command.argv else ""))

    def stream(self, command: Command, on_line) -> int:
        self.commands.append(command)
        self.streamed.append(command)
        if self.on_stream:
            self.on_stream()
        if self.log is not None:
            for line in self.log.read_text(encoding="utf-8").splitlines():
                on_line(line)
        return self.rc

    def note(self, text: str) -> None:
        pass

    def kinds(self) -> list[str]:
        return [self.kind(c) for c in self.commands]


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    """The real logs as our container prints them: addons under /opt/odoo/custom-addons."""
    root = tmp_path_factory.mktemp("logs")
    out = {}
    for name, src in SOURCES.items():
        text = (FIXTURES / src).read_text(encoding="utf-8")
        out[name] = root / f"{name}.log"
        out[name].write_text(text.replace("/mnt/extra-addons", plan.CUSTOM_ADDONS_IN_IMAGE))
    return out


@pytest.fixture(autouse=True)
def _scenario_logs(logs, monkeypatch) -> None:
    for name, path in logs.items():
        monkeypatch.setitem(SCENARIO_LOG, name, path)


@pytest.fixture
def config_dir(repo: Path) -> Path:
    path = repo / "docker" / "config"
    (path / "dev.env").write_text(
        "ODOO_IMAGE=odoo-ai-test/odoo\nODOO_DB_IMAGE=odoo-ai-test/postgres:15\n"
        "ODOO_SECRETS=ODOO_DB_PASSWORD,ODOO_MASTER_PASSWORD,SHOP_TOKEN,OTHER_TOKEN\n"
    )
    return path


@pytest.fixture
def stack(repo: Path, config_dir: Path, home: Path):
    return load_stack("dev", repo_root=repo, config_dir=config_dir, home=home)


@pytest.fixture
def addons(repo: Path) -> Path:
    root = repo / "addons"
    for name, manifest in {
        "mod_b": "{'name': 'B'}",
        "mod_a": "{'name': 'A', 'installable': True}",
        "mod_c": "{'name': 'C'}",
        "old_mod": "{'name': 'Old', 'installable': False}",
        "Bad-Name": "{'name': 'bad'}",
        "broken": "{not python",
    }.items():
        (root / name).mkdir(parents=True)
        (root / name / "__manifest__.py").write_text(manifest)
    (root / "not_an_addon").mkdir()
    (root / "README.md").write_text("x")
    return root


def console() -> Console:
    return Console(stderr=True, highlight=False, width=200, force_terminal=False)


def prepare(stack, tmp_path: Path, environ: dict[str, str] | None = None, host_stack=None, **kw) -> run_uc.Prepared:
    request = run_uc.RunRequest(**{"tag": "standin-tests_pass", **kw})
    return run_uc.prepare(stack, request, environ=environ or {}, suffix="0badc0de", tmp_root=tmp_path,
                          host_stack=host_stack)


# ---------------------------------------------------------------- selection and image


def test_default_modules_are_the_installable_addons_sorted(stack, addons, tmp_path) -> None:
    prepared = prepare(stack, tmp_path)
    assert prepared.selection.modules == ["broken", "mod_a", "mod_b", "mod_c"]
    assert prepared.selection.source == f"addons in {addons}"
    assert sorted(prepared.selection.skipped) == ["Bad-Name (not a valid module name)",
                                                  "old_mod (installable: False)"]
    assert prepared.project is not None and prepared.project.modules == ("broken", "mod_a", "mod_b", "mod_c")


def test_addons_dir_setting_and_option(stack, addons, tmp_path, repo, config_dir, home) -> None:
    other = repo / "more"
    (other / "zed").mkdir(parents=True)
    (other / "zed" / "__manifest__.py").write_text("{}")
    assert prepare(stack, tmp_path, addons_dir=Path("more")).selection.modules == ["zed"]
    with (config_dir / "dev.env").open("a") as fh:
        fh.write("ODOO_BUILD_ADDONS_DIR=more\n")
    restack = load_stack("dev", repo_root=repo, config_dir=config_dir, home=home)
    assert prepare(restack, tmp_path).selection.modules == ["zed"]
    with pytest.raises(ConfigError, match="--addons"):
        prepare(stack, tmp_path, addons_dir=Path("nope"))


def test_overlay_test_modules_win_over_discovery(stack, addons, tmp_path, repo) -> None:
    overlay = repo / "environments" / "dev.yaml"
    overlay.write_text(overlay.read_text().replace('test_modules: ""', 'test_modules: "mod_c, mod_a"'))
    prepared = prepare(stack, tmp_path)
    assert prepared.selection.modules == ["mod_a", "mod_c"]
    assert "x-odoo-ai.test_modules" in prepared.selection.source
    assert prepare(stack, tmp_path, modules="mod_b").selection.modules == ["mod_b"]


def test_shards_split_the_selection(stack, addons, tmp_path) -> None:
    picked = [prepare(stack, tmp_path, shards=3, shard=k).selection.modules for k in (1, 2, 3)]
    assert picked == [["broken", "mod_c"], ["mod_a"], ["mod_b"]]
    info = prepare(stack, tmp_path, shards=3, shard=2).run_info()
    assert info["shard"] == {"index": 2, "count": 3, "modules_total": 4}


def test_without_tags_the_run_tests_exactly_its_modules(stack, addons, tmp_path) -> None:
    prepared = prepare(stack, tmp_path, modules="mod_b, mod_a")
    assert prepared.test_tags == "/mod_a,/mod_b"
    assert prepared.project is not None and prepared.project.test_tags == "/mod_a,/mod_b"
    assert "--test-tags=/mod_a,/mod_b" in plan.run_tests(prepared.project).argv
    info = prepared.run_info()
    assert (info["test_tags"], info["test_tags_source"]) == ("/mod_a,/mod_b", "modules")
    # After sharding: only this shard's modules.
    assert prepare(stack, tmp_path, shards=3, shard=1).test_tags == "/broken,/mod_c"


def test_given_tags_override_the_modules_tags(stack, addons, tmp_path) -> None:
    prepared = prepare(stack, tmp_path, modules="mod_a,mod_b", tags="/mod_a:TestX, -slow")
    assert prepared.test_tags == "/mod_a:TestX,-slow"
    assert prepared.project is not None
    argv = plan.run_tests(prepared.project).argv
    assert "--test-tags=/mod_a:TestX,-slow" in argv and "--test-tags=/mod_a,/mod_b" not in argv
    assert prepared.run_info()["test_tags_source"] == "--tags"


def test_an_empty_shard_is_no_tests_and_runs_nothing(stack, tmp_path) -> None:
    prepared = prepare(stack, tmp_path, modules="only_one", shards=2, shard=2)
    assert prepared.project is None
    runner = FakeRunner()
    result = run_uc.execute(prepared, LocalHost(runner), console())
    assert runner.commands == []
    assert result.status is RunStatus.NO_TESTS and int(result.exit_code()) == 4
    assert int(result.exit_code(allow_empty=True)) == 0
    assert "shard 2/2 has no module" in result.problems[0].message


def test_no_addons_at_all_is_no_tests(stack, tmp_path) -> None:
    result = run_uc.execute(prepare(stack, tmp_path), LocalHost(FakeRunner()), console())
    assert result.status is RunStatus.NO_TESTS
    assert "no module to test" in result.problems[0].message


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"image": "ghcr.io/acme/odoo-script-runner@sha256:" + "a" * 64, "tag": None},
         "ghcr.io/acme/odoo-script-runner@sha256:" + "a" * 64),
        ({"tag": "dev-1a2b3c4"}, "odoo-ai-test/odoo-script-runner:dev-1a2b3c4"),
    ],
)
def test_image_from_options(stack, tmp_path, kw, expected) -> None:
    prepared = prepare(stack, tmp_path, modules="m", **kw)
    assert prepared.image == expected
    assert prepared.project is not None
    values = prepared.project.stack.values
    assert values["ODOO_WEB_IMAGE"] == values["ODOO_SCRIPT_RUNNER_IMAGE"] == expected
    env = _rendered(prepared, tmp_path)
    assert env["ODOO_WEB_IMAGE"] == env["ODOO_SCRIPT_RUNNER_IMAGE"] == expected


def test_image_defaults_to_the_env_tag_then_the_last_build(stack, tmp_path, config_dir, repo, home) -> None:
    with pytest.raises(ConfigError, match="no image to test"):
        prepare(stack, tmp_path, modules="m", tag=None)
    stack.state_root.mkdir(parents=True)
    (stack.state_root / "last-build.json").write_text(json.dumps({"tag": "dev-b0b0b0b"}))
    assert prepare(stack, tmp_path, modules="m", tag=None).image.endswith("script-runner:dev-b0b0b0b")
    with (config_dir / "dev.env").open("a") as fh:
        fh.write("ODOO_IMAGE_TAG=dev-7777777\n")
    restack = load_stack("dev", repo_root=repo, config_dir=config_dir, home=home)
    assert prepare(restack, tmp_path, modules="m", tag=None).image.endswith("script-runner:dev-7777777")
    with (config_dir / "dev.env").open("a") as fh:
        fh.write("ODOO_SCRIPT_RUNNER_IMAGE=reg/pinned:1\n")
    restack = load_stack("dev", repo_root=repo, config_dir=config_dir, home=home)
    assert prepare(restack, tmp_path, modules="m", tag=None).image == "reg/pinned:1"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"image": "a:1", "tag": "b"}, "not both"),
        ({"image": "bad ref;x", "tag": None}, "--image"),
        ({"tag": "-bad"}, "invalid image tag"),
        ({"modules": "a;b"}, "--modules"),
        ({"tags": "x;y"}, "--tags"),
        ({"shards": 2}, "go together"),
        ({"shards": 2, "shard": 3}, "from 1 to"),
        ({"timeout": 0}, "--timeout"),
    ],
)
def test_bad_options_are_config_errors(stack, tmp_path, kw, message) -> None:
    with pytest.raises(ConfigError, match=message):
        prepare(stack, tmp_path, **{"modules": "m", **kw})


# ---------------------------------------------------------------- isolation and secrets


def _rendered(prepared: run_uc.Prepared, tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "rendered.env"
    path.write_text(prepared.dotenv_text)
    return read_rendered_env(path)


def test_the_test_project_never_shares_the_envs_database_or_passwords(stack, tmp_path) -> None:
    live = {"ODOO_DB_PASSWORD": "live-db-pw", "ODOO_MASTER_PASSWORD": "live-master", "SHOP_TOKEN": "tok"}
    prepared = prepare(stack, tmp_path, environ=live, modules="m")
    env = _rendered(prepared, tmp_path)
    assert env["COMPOSE_PROJECT_NAME"] == "opw-dev-test-0badc0de" != stack.project
    assert env["ODOO_DB_NAME"] == "test_0badc0de"
    state = tmp_path / "odoo-ai-opw-dev-test-0badc0de"
    assert env["ODOO_STATE_ROOT"] == str(state) and env["ODOO_DB_DIR"] == str(state / "postgres")
    assert env["ODOO_DB_PASSWORD"] not in ("", "live-db-pw") and len(env["ODOO_DB_PASSWORD"]) >= 24
    assert env["ODOO_MASTER_PASSWORD"] not in ("", "live-master", env["ODOO_DB_PASSWORD"])
    assert env["SHOP_TOKEN"] == "tok"  # app secrets from the environment pass through
    assert "OTHER_TOKEN" not in env and prepared.omitted_secrets == ["OTHER_TOKEN"]
    again = _rendered(prepare(stack, tmp_path, environ=live, modules="m"), tmp_path)
    assert again["ODOO_DB_PASSWORD"] != env["ODOO_DB_PASSWORD"]  # fresh every run


def test_prepare_writes_nothing(stack, tmp_path) -> None:
    before = sorted(tmp_path.rglob("*"))
    prepare(stack, tmp_path, modules="m")
    assert sorted(tmp_path.rglob("*")) == before


# ---------------------------------------------------------------- execute


def run(stack, tmp_path, scenario: str, *, keep_db: bool = False, runner: FakeRunner | None = None,
        environ: dict[str, str] | None = None, **kw):
    prepared = prepare(stack, tmp_path, environ=environ, modules=f"standin_{scenario}",
                       keep_db=keep_db, **kw)
    runner = runner or FakeRunner(SCENARIO_LOG[scenario], SCENARIO_RC[scenario])
    result = run_uc.execute(prepared, LocalHost(runner), console())
    return prepared, runner, result


@pytest.mark.parametrize(
    ("scenario", "status", "code", "tests"),
    [("tests_pass", RunStatus.PASSED, 0, 2), ("tests_fail", RunStatus.FAILED, 1, 3),
     ("tests_crash", RunStatus.ERROR, 3, 0)],
)
def test_scenarios_give_the_right_verdict_and_clean_up(stack, tmp_path, scenario, status, code, tests) -> None:
    prepared, runner, result = run(stack, tmp_path, scenario)
    assert (result.status, int(result.exit_code()), result.totals.tests) == (status, code, tests)
    assert result.odoo_exit_code == SCENARIO_RC[scenario]
    assert runner.kinds() == ["inspect", "up", "run", "down"]
    assert runner.streamed[0].argv == plan.run_tests(prepared.project).argv
    assert not prepared.project.state_dir.exists()  # temp dir removed
    assert result.kept is None and result.run["project"] == "opw-dev-test-0badc0de"
    doc = json.loads(result.to_json())
    assert doc["schema"] == "odoo-ai.test-results/1" and doc["run"]["modules"] == [f"standin_{scenario}"]


def test_the_project_files_exist_while_odoo_runs(stack, tmp_path) -> None:
    seen: dict[str, object] = {}
    state = tmp_path / "odoo-ai-opw-dev-test-0badc0de"

    def look() -> None:
        seen["mode"] = stat.S_IMODE(state.stat().st_mode)
        seen["env_mode"] = stat.S_IMODE((state / ".env").stat().st_mode)
        seen["files"] = sorted(p.name for p in state.iterdir())
        seen["override"] = (state / plan.OVERRIDE_FILE).read_text()

    runner = FakeRunner(SCENARIO_LOG["tests_pass"], 0, on_stream=look)
    run(stack, tmp_path, "tests_pass", runner=runner)
    assert seen["mode"] == 0o700 and seen["env_mode"] == 0o600
    assert seen["files"] == [".env", ".odoo-ai-stack", plan.OVERRIDE_FILE, "filestore", "logs", "odoo.env", "snapshots"]
    assert seen["override"] == plan.OVERRIDE_YAML


def test_secrets_are_never_in_argv_or_results(stack, tmp_path) -> None:
    passwords: list[str] = []
    state = tmp_path / "odoo-ai-opw-dev-test-0badc0de"

    def grab() -> None:
        env = read_rendered_env(state / ".env")
        passwords.extend([env["ODOO_DB_PASSWORD"], env["ODOO_MASTER_PASSWORD"], env["SHOP_TOKEN"]])

    runner = FakeRunner(SCENARIO_LOG["tests_fail"], 1, on_stream=grab)
    _, runner, result = run(stack, tmp_path, "tests_fail", runner=runner, environ={"SHOP_TOKEN": "s3cr3t-tok"},
                            keep_db=True)
    text = result.to_json() + "".join(c.display() + repr(c.env) for c in runner.commands)
    assert passwords and not any(p in text for p in passwords)


def test_keep_db_keeps_the_project_and_says_how_to_remove_it(stack, tmp_path) -> None:
    prepared, runner, result = run(stack, tmp_path, "tests_pass", keep_db=True)
    assert "down" not in runner.kinds()
    tp = prepared.project
    assert tp.state_dir.is_dir()
    assert result.kept == {
        "project": tp.name,
        "database": tp.database,
        "state_dir": str(tp.state_dir),
        "cleanup": [plan.down(tp).display(), f"rm -rf {tp.state_dir}"],
        "psql": plan.psql_hint(tp).display(),
    }
    assert json.loads(result.to_json())["kept"]["project"] == tp.name


def test_a_timeout_kills_and_removes_the_container(stack, tmp_path) -> None:
    class Slow(FakeRunner):
        def stream(self, command, on_line):
            self.commands.append(command)
            on_line("2026-11-25 23:24:57,981 7 INFO test_0badc0de odoo.modules.loading: loading 1 modules...")
            raise CommandTimedOut("timed out")

    prepared, runner, result = run(stack, tmp_path, "tests_pass", runner=Slow(), timeout=5)
    assert runner.kinds() == ["inspect", "up", "run", "rm", "down"]
    assert runner.commands[3].argv[-1] == prepared.project.container
    assert result.status is RunStatus.ERROR and int(result.exit_code(allow_empty=True)) == 3
    assert result.problems[0].message == "the Odoo test run timed out after 5s (--timeout) and was killed"
    assert not any("test summary" in p.message for p in result.problems)
    assert result.run["timed_out"] is True


def test_ctrl_c_still_removes_everything(stack, tmp_path) -> None:
    class Interrupted(FakeRunner):
        def stream(self, command, on_line):
            self.commands.append(command)
            raise KeyboardInterrupt

    runner = Interrupted()
    with pytest.raises(KeyboardInterrupt):
        run(stack, tmp_path, "tests_pass", runner=runner)
    assert runner.kinds() == ["inspect", "up", "run", "rm", "down"]
    assert not (tmp_path / "odoo-ai-opw-dev-test-0badc0de").exists()


@pytest.mark.parametrize(
    ("fail", "kinds", "message"),
    [
        ({"up": Result(1, "", "dependency failed to start: container db is unhealthy")},
         ["inspect", "up", "down"], "the test database did not start"),
        ({"inspect": Result(1), "pull": Result(18, "", "pull access denied for x")},
         ["inspect", "pull", "down"], "is not on this host and could not be pulled"),
    ],
)
def test_infrastructure_failures_are_errors_with_one_clear_line(stack, tmp_path, capsys, fail, kinds, message) -> None:
    runner = FakeRunner(SCENARIO_LOG["tests_pass"], 0, fail=fail)
    prepared, runner, result = run(stack, tmp_path, "tests_pass", runner=runner)
    assert runner.kinds() == kinds
    assert result.status is RunStatus.ERROR and int(result.exit_code(allow_empty=True)) == 3
    assert message in result.problems[0].message and result.problems[0].kind == "infra"
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert not prepared.project.state_dir.exists()


def test_a_missing_image_is_pulled_first(stack, tmp_path) -> None:
    runner = FakeRunner(SCENARIO_LOG["tests_pass"], 0, fail={"inspect": Result(1)})
    _, runner, result = run(stack, tmp_path, "tests_pass", runner=runner)
    assert runner.kinds() == ["inspect", "pull", "inspect", "up", "run", "down"]
    assert result.status is RunStatus.PASSED


def test_when_odoo_never_logs_its_last_words_are_kept(stack, tmp_path) -> None:
    log = tmp_path / "entrypoint.log"
    log.write_text("odoo-entrypoint: ERROR: ODOO_DB_PASSWORD is the literal 'True'\n")
    _, _, result = run(stack, tmp_path, "tests_pass", runner=FakeRunner(log, 78))
    assert result.status is RunStatus.ERROR
    notes = [p for p in result.problems if p.kind == "note"]
    assert notes and "odoo-entrypoint: ERROR" in notes[0].message


UNREACHED_LOG = """2026-11-30 12:00:00,000 1 INFO ? odoo: Odoo version 18.0
2026-11-30 12:00:00,001 1 INFO ? odoo: database: odoo@db:5432
2026-11-30 12:00:00,100 1 ERROR ? odoo.sql_db: Connection to the database failed
Traceback (most recent call last):
  File "/odoo/odoo/sql_db.py", line 800, in borrow
    result = psycopg2.connect(
psycopg2.OperationalError: could not translate host name "db" to address: Temporary failure in name resolution
"""


@pytest.mark.parametrize("second", ["tests_pass", "unreached"])
def test_a_run_that_never_reached_postgresql_is_run_once_more(stack, tmp_path, capsys, second) -> None:
    """Docker's DNS failed for a new container (seen under load): no test ran and nothing
    changed, so Odoo runs once more; a second such failure is the verdict (exit 3)."""
    unreached = tmp_path / "unreached.log"
    unreached.write_text(UNREACHED_LOG)

    class Flaky(FakeRunner):
        def stream(self, command, on_line):
            self.log = unreached if len(self.streamed) == 0 or second == "unreached" else SCENARIO_LOG["tests_pass"]
            self.rc = 1 if self.log == unreached else 0
            return super().stream(command, on_line)

    _, runner, result = run(stack, tmp_path, "tests_pass", runner=Flaky())
    assert runner.kinds() == ["inspect", "up", "run", "rm", "run", "down"] and len(runner.streamed) == 2
    assert result.run["retried"] == 'could not reach PostgreSQL (could not translate host name "db" to address)'
    assert "before any test ran: running it once more" in capsys.readouterr().err
    if second == "tests_pass":
        assert result.status is RunStatus.PASSED and result.tests
    else:
        assert result.status is RunStatus.ERROR and int(result.exit_code()) == 3


def test_a_failing_test_run_is_not_run_again(stack, tmp_path) -> None:
    _, runner, result = run(stack, tmp_path, "tests_fail", runner=FakeRunner(SCENARIO_LOG["tests_fail"],
                                                                              SCENARIO_RC["tests_fail"]))
    assert len(runner.streamed) == 1 and "retried" not in result.run and run_uc.unreached_db(result) is None


def test_a_failing_teardown_warns_but_keeps_the_verdict(stack, tmp_path, capsys) -> None:
    runner = FakeRunner(SCENARIO_LOG["tests_pass"], 0, fail={"down": Result(1, "", "network in use")})
    _, _, result = run(stack, tmp_path, "tests_pass", runner=runner)
    assert result.status is RunStatus.PASSED
    err = capsys.readouterr().err
    assert "cleanup of opw-dev-test-0badc0de incomplete" in err and "down --remove-orphans" in err


class OnAnotherHost(LocalHost):
    """This machine's files and a FakeRunner, treated as a remote Docker host: what the
    use-case does differently there (its folder's marker read through the connector)."""

    remote = True
    target = "ssh://tester@docker.example:22"


def test_a_remote_run_keeps_the_project_on_the_host_and_says_where(stack, tmp_path) -> None:
    prepared = prepare(stack, tmp_path / "host-state" / "test-runs", modules="standin_tests_pass", keep_db=True,
                       host_stack=stack)
    assert prepared.cache is None and prepared.cache_reason.startswith("--host: ")
    result = run_uc.execute(prepared, OnAnotherHost(FakeRunner(SCENARIO_LOG["tests_pass"], 0)), console())
    assert result.status is RunStatus.PASSED and result.run["template"]["reason"].startswith("--host: ")
    state = prepared.project.state_dir
    assert result.kept["host"] == "ssh://tester@docker.example:22" and result.kept["state_dir"] == str(state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / ".env").stat().st_mode) == 0o600


@pytest.mark.parametrize("tamper", ["another project's marker", "not a marker"])
def test_a_remote_teardown_removes_only_a_folder_with_its_own_marker(stack, tmp_path, capsys, tamper) -> None:
    prepared = prepare(stack, tmp_path, modules="standin_tests_pass", host_stack=stack)
    state = prepared.project.state_dir

    def during_the_run() -> None:
        marker = state / ".odoo-ai-stack"
        assert json.loads(marker.read_text())["project"] == prepared.project.name
        marker.write_text('{"project": "someone-else"}\n' if tamper == "another project's marker" else "x\n")

    runner = FakeRunner(SCENARIO_LOG["tests_pass"], 0, on_stream=during_the_run)
    result = run_uc.execute(prepared, OnAnotherHost(runner), console())
    assert result.status is RunStatus.PASSED  # the verdict stays the tests' own
    err = " ".join(capsys.readouterr().err.split())
    assert f"{state} was not removed: its marker is not that of {prepared.project.name}" in err
    assert (state / ".env").is_file()
    untampered = prepare(stack, tmp_path / "again", modules="standin_tests_pass", host_stack=stack)
    run_uc.execute(untampered, OnAnotherHost(FakeRunner(SCENARIO_LOG["tests_pass"], 0)), console())
    assert not untampered.project.state_dir.exists()


def test_cli_host_errors_come_first_and_run_nothing(repo, config_dir, fake_local) -> None:
    made = fake_local("tests_pass")
    for host, fragment in (("", "--host is empty"), ("ssh://root@h;id", "invalid host name"),
                           ("ssh://root@127.0.0.1:22", "must set ODOO_STATE_ROOT")):
        for dry in ([], ["--dry-run"]):
            result = cli(*base_args(repo, config_dir), "--tag", "t", "--modules", "m", "--host", host, *dry)
            assert result.exit_code == 2 and fragment in result.stderr, result.stderr
            assert result.stdout == ""
    assert made == []


# ---------------------------------------------------------------- command line


def cli(*args: str, env: dict[str, str | None] | None = None):
    return CliRunner(env={**CLEAN_ENV, "ODOO_AI_DOCKER": "docker", **(env or {})}).invoke(app, list(args))


@pytest.fixture
def fake_local(monkeypatch):
    """Make `test run` use a FakeRunner instead of the real LocalRunner."""
    made: list[FakeRunner] = []

    def install(scenario: str) -> list[FakeRunner]:
        def factory(*, echo=None):
            runner = FakeRunner(SCENARIO_LOG[scenario], SCENARIO_RC[scenario])
            made.append(runner)
            return runner
        monkeypatch.setattr("odoo_ai.runners.LocalRunner", factory)
        return made
    return install


def base_args(repo: Path, config_dir: Path) -> list[str]:
    return ["run", "dev", "--repo", str(repo), "--config-dir", str(config_dir)]


@pytest.mark.parametrize(("scenario", "code"), [("tests_pass", 0), ("tests_fail", 1), ("tests_crash", 3)])
def test_cli_exit_codes_json_and_junit(repo, config_dir, tmp_path, fake_local, scenario, code) -> None:
    fake_local(scenario)
    junit = tmp_path / "r.xml"
    result = cli(*base_args(repo, config_dir), "--tag", f"standin-{scenario}", "--modules",
                 f"standin_{scenario}", "--json", "--junit", str(junit))
    assert result.exit_code == code, result.stderr
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == code and doc["run"]["image"].endswith(f"standin-{scenario}")
    assert doc["kept"] is None
    assert ET.parse(junit).getroot().tag == "testsuites"


def test_cli_human_output_shows_progress_and_maps_paths(repo, config_dir, fake_local) -> None:
    fake_local("tests_fail")
    result = cli(*base_args(repo, config_dir), "--tag", "t", "--modules", "standin_tests_fail")
    assert result.exit_code == 1 and result.stdout == ""
    assert "✗ FAIL failing_mod  TestFailingFixture.test_02_fails" in result.stderr
    assert "FAILED" in result.stderr


def test_cli_annotations_map_container_paths_to_the_addons_dir(repo, config_dir, fake_local, tmp_path) -> None:
    fake_local("tests_fail")
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_WORKSPACE": str(repo)}
    result = cli(*base_args(repo, config_dir), "--tag", "t", "--modules", "standin_tests_fail", env=env)
    assert "::error file=addons/failing_mod/tests/test_fail.py,line=11" in result.stdout


def test_cli_empty_shard_and_allow_empty(repo, config_dir, fake_local) -> None:
    made = fake_local("tests_pass")
    args = [*base_args(repo, config_dir), "--tag", "t", "--modules", "a", "--shards", "2", "--shard", "2"]
    result = cli(*args)
    assert result.exit_code == 4 and "shard 2/2 has no module" in result.stderr
    assert cli(*args, "--allow-empty").exit_code == 0
    assert all(r.commands == [] for r in made)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--modules", "a;b"], "--modules"),
        (["--shard", "1"], "go together"),
        (["--junit", "/nonexistent-dir/x.xml"], "does not exist"),
        (["--tags", "$(id)"], "--tags"),
        (["--image", "a:1"], "not both"),
    ],
)
def test_cli_usage_errors_exit_2_and_run_nothing(repo, config_dir, fake_local, args, fragment) -> None:
    made = fake_local("tests_pass")
    result = cli(*base_args(repo, config_dir), "--tag", "t", *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert fragment in result.stderr and result.stderr.startswith("error: ")
    assert made == []


def test_cli_unknown_env_is_a_usage_error(repo, config_dir) -> None:
    result = cli("run", "nope", "--repo", str(repo), "--config-dir", str(config_dir), "--tag", "t")
    assert result.exit_code == 2 and "unknown env" in result.stderr


def test_cli_refuses_a_remote_docker_host(repo, config_dir) -> None:
    result = cli(*base_args(repo, config_dir), "--tag", "t", env={"DOCKER_HOST": "ssh://u@h"})
    assert result.exit_code == 2 and "local Docker engine" in result.stderr


@pytest.fixture
def docker_log(tmp_path) -> tuple[str, Path]:
    """A `docker` that logs its argv and knows no image: what the dry run really runs."""
    log = tmp_path / "docker.log"
    script = tmp_path / "bin" / "docker"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\necho "Error: No such image: $7" >&2\nexit 1\n')
    script.chmod(0o755)
    return str(script), log


def test_cli_dry_run_runs_the_real_code_and_writes_nothing(repo, config_dir, tmp_path, monkeypatch,
                                                           docker_log) -> None:
    docker, log = docker_log
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    before = sorted(tmp_path.rglob("*"))
    result = cli(*base_args(repo, config_dir), "--tag", "t", "--modules", "m1,m2", "--tags", "/m1",
                 "--dry-run", "--no-cache", env={"ODOO_AI_DOCKER": docker})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    commands = [ln for ln in lines if ln.startswith(f"{docker} ")]
    steps = [" image inspect ", " pull --quiet script-runner", " image inspect ", " up --detach --wait ",
             " run --rm ", " down --remove-orphans "]
    assert len(commands) == len(steps)
    assert all(step in command for step, command in zip(steps, commands, strict=True))
    run_line = next(c for c in commands if " run --rm " in c)
    assert run_line.endswith("-i m1,m2 --test-enable --test-tags=/m1 --stop-after-init")
    assert "--project-name opw-dev-test-" in run_line
    # what it read, what it assumed, what it would write: said so
    assert "#   read: odoo-ai-test/odoo-script-runner:t is not on the host" in lines
    assert "#   assume: the image under test can be pulled (the registry was not asked)" in lines
    assert any(ln.startswith("# mkdir (0700) ") and "/odoo-ai-opw-dev-test-" in ln for ln in lines)
    assert any(ln.startswith("# write ") and ln.endswith("/.env (0600, " + ln.split("(0600, ")[-1]) for ln in lines)
    assert any(ln.startswith("# rm -r ") for ln in lines)
    assert "dry run: 6 command(s), " in result.stderr and "nothing was run or written" in result.stderr
    assert "PASSWORD" not in result.stdout
    # the only commands really run: the two reads of the image
    assert [ln.split()[:2] for ln in log.read_text().splitlines()] == [["image", "inspect"]] * 2
    assert sorted(p for p in tmp_path.rglob("*") if p != log) == before


def test_cli_dry_run_shows_the_template_steps_and_writes_nothing(repo, config_dir, tmp_path, docker_log) -> None:
    docker, _ = docker_log
    home = tmp_path / "h"
    home.mkdir()
    result = cli(*base_args(repo, config_dir), "--tag", "t", "--modules", "m1,m2", "--dry-run",
                 env={"HOME": str(home), "XDG_CACHE_HOME": None, "ODOO_AI_DOCKER": docker})
    assert result.exit_code == 0, result.stderr
    commands = [ln for ln in result.stdout.splitlines() if ln.startswith(f"{docker} ")]
    steps = [" image inspect ", " pull --quiet script-runner", " image inspect ",
             " run --rm -i --network none --entrypoint python3 ", "--project-name opw-dev-test-templates ",
             "--project-name opw-dev-test-templates ", "-template script-runner /odoo/odoo-bin -d tmpl_",
             " run --rm --no-deps -T ", "--project-name opw-dev-test-templates ", " down --remove-orphans "]
    commands = [c for c in commands if " exec -T db psql " not in c]
    assert len(commands) == len(steps)
    assert all(step in command for step, command in zip(steps, commands, strict=True))
    assert " down " in commands[4] and "--volumes" in commands[4]  # a new server: made afresh
    assert " up --detach --wait " in commands[5] and " down " in commands[8] and "--volumes" not in commands[8]
    assert "/odoo/odoo-bin -d test_" in commands[7]
    assert "#   sql: CREATE DATABASE \"test_" in result.stdout and "PASSWORD" not in result.stdout
    assert "#   assume: the image's modules as the probe would read them" in result.stdout
    assert list(home.iterdir()) == []


def test_cli_dry_run_json(repo, config_dir, docker_log) -> None:
    result = cli(*base_args(repo, config_dir), "--tag", "t", "--modules", "m,n", "--dry-run", "--json", "--no-cache",
                 env={"ODOO_AI_DOCKER": docker_log[0]})
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True and doc["run"]["modules"] == ["m", "n"]
    assert doc["run"]["test_tags"] == "/m,/n" and doc["run"]["test_tags_source"] == "modules"
    run_line = next(line for line in doc["plan"] if " run --rm --no-deps -T " in line)
    assert run_line.endswith("-i m,n --test-enable --test-tags=/m,/n --stop-after-init")
    assert "the image under test can be pulled (the registry was not asked)" in doc["assumptions"]
    assert doc["reads"] == ["odoo-ai-test/odoo-script-runner:t is not on the host"]


def test_cli_dry_run_fails_where_the_real_run_fails(repo, config_dir) -> None:
    """Before the first write: the same message and exit code (here a bad --tags; and no
    docker binary, met by the real reads, is the real run's infrastructure error)."""
    args = [*base_args(repo, config_dir), "--tag", "t", "--modules", "m", "--tags", "$(id)"]
    real, dry = cli(*args), cli(*args, "--dry-run")
    assert real.exit_code == dry.exit_code == 2 and real.stderr == dry.stderr
    missing = {"ODOO_AI_DOCKER": "/nonexistent/docker"}
    dry = cli(*base_args(repo, config_dir), "--tag", "t", "--modules", "m", "--dry-run", "--no-cache", env=missing)
    assert dry.exit_code == 3 and "error: /nonexistent/docker: command not found" in dry.stderr
    assert dry.stderr.count("command not found") == 1 and dry.stdout.count("docker image inspect") == 1
    real = cli(*base_args(repo, config_dir), "--tag", "t", "--modules", "m", "--no-cache", env=missing)
    assert real.exit_code == 3 and "error: /nonexistent/docker: command not found" in real.stderr


def test_run_help_documents_the_exit_codes_and_options() -> None:
    text = " ".join(cli("run", "--help").stdout.split())
    for fragment in ("4 no test ran", "3 Odoo or the infrastructure failed", "--shards", "--shard",
                     "--keep-db", "--timeout", "--image", "--modules", "--tags", "--demo", "--no-cache"):
        assert fragment in text
