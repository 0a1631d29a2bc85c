"""The one CLI (odoo_ai.cli): one exit-code enum, one error path, --json honoured the same
way by every command (usage errors included), results on stdout, and a start that
imports only what the command needs (asserted on sys.modules, not on timings)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from odoo_ai.cli import app, common, testing
from odoo_ai.errors import ExitCode, OdooAiError
from odoo_ai.testing.results import TestExitCode

REPO = Path(__file__).resolve().parents[2]
FAIL_LOG = REPO / "tests" / "fixtures" / "odoo18-logs" / "30-test-acc3-i-failing_mod-FAILS.log"

# What a start may not import: the use-cases, their HTTP/registry/parsing stacks, and
# (for --help) the settings model and rich.
USE_CASES = ["odoo_ai.deploy", "odoo_ai.stack", "odoo_ai.build", "odoo_ai.images", "odoo_ai.hosts",
             "odoo_ai.registry", "odoo_ai.runners", "odoo_ai.health", "odoo_ai.testing.logparse",
             "odoo_ai.testing.report", "odoo_ai.testing.run", "httpx"]
HELP_ONLY = [*USE_CASES, "odoo_ai.config.stack", "pydantic", "yaml", "rich"]


def imported_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    """Run `code` in a fresh interpreter; the top modules and odoo_ai.* modules it imported."""
    probe = (
        "import contextlib, io, json, sys\n"
        f"{code}\n"
        "names = set(sys.modules)\n"
        "names |= {n.split('.')[0] for n in names}\n"
        "print(json.dumps(sorted(names)), file=sys.__stdout__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(REPO), **(env or {})}, check=False)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def run_quietly(argv: list[str], entry: str = "main") -> str:
    return (f"from odoo_ai.cli import {entry}\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            f"    code = {entry}({argv!r})\n"
            "assert code == 0, code\n")


# ---------------------------------------------------------------- start-up: lazy imports
def test_building_the_commands_imports_no_use_case() -> None:
    loaded = imported_after("import typer, odoo_ai.cli\ntyper.main.get_command(odoo_ai.cli.app)")
    assert not loaded & set(HELP_ONLY), sorted(loaded & set(HELP_ONLY))


@pytest.mark.parametrize(("argv", "entry"), [(["--help"], "main"), (["--help"], "testing_main"),
                                             (["test", "--help"], "main"), (["deploy", "--help"], "main")])
def test_help_imports_no_use_case_no_settings_model_no_rich(argv: list[str], entry: str) -> None:
    loaded = imported_after(run_quietly(argv, entry))
    assert "odoo_ai.cli" in loaded
    # Below the root, typer itself validates the root's options with pydantic.
    forbidden = set(HELP_ONLY) - ({"pydantic"} if len(argv) > 1 else set())
    assert not loaded & forbidden, sorted(loaded & forbidden)


def test_config_show_imports_the_settings_only(repo: Path, home: Path) -> None:
    for as_json in ([], ["--json"]):
        argv = ["--repo", str(repo), "--config-dir", str(repo / "docker" / "config"), "config", "show", "dev", *as_json]
        loaded = imported_after(run_quietly(argv), env={"HOME": str(home)})
        assert "odoo_ai.config.stack" in loaded
        assert not loaded & set(USE_CASES), sorted(loaded & set(USE_CASES))


# ---------------------------------------------------------------- one CLI, one enum
def test_one_exit_code_enum() -> None:
    assert TestExitCode is ExitCode
    assert [(c.name, int(c)) for c in ExitCode] == [("OK", 0), ("FAILED", 1), ("USAGE", 2), ("INFRA", 3),
                                                    ("NO_TESTS", 4)]
    assert ExitCode.PASSED is ExitCode.OK


def test_odoo_ai_test_is_the_test_program() -> None:
    root = typer.main.get_command(app)
    assert set(root.commands["test"].commands) == {"parse", "run", "templates"}
    run = root.commands["test"].commands["run"].callback
    assert getattr(run, "__wrapped__", run) is testing.run
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"odoo-ai": "odoo_ai.cli:entry", "test": "odoo_ai.cli:testing_entry",
                       "odoo-test": "odoo_ai.cli:testing_entry"}


def test_both_programs_give_the_same_document_and_code(capsys: pytest.CaptureFixture[str]) -> None:
    from odoo_ai.cli import main, testing_main

    docs = []
    for run, argv in ((main, ["test", "parse", str(FAIL_LOG), "--json"]), (testing_main, ["parse", str(FAIL_LOG), "--json"])):
        assert run(argv) == 1
        docs.append(json.loads(capsys.readouterr().out))
    assert docs[0] == docs[1] and docs[0]["status"] == "failed"


# ---------------------------------------------------------------- usage errors and --json
def invoke(*args: str, cli: typer.Typer = app):
    return CliRunner(env={"NO_COLOR": "1"}).invoke(cli, list(args))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["deploy", "dev"], "Missing option '--tag'"),
        (["status"], "Missing argument"),
        (["nosuch"], "No such command 'nosuch'"),
        (["releases", "dev", "--limit", "0"], "--limit"),
        (["test", "run", "--whatever"], "No such option: --whatever"),
        (["test", "parse"], "Missing argument 'LOGFILE'"),
    ],
)
def test_usage_errors_with_json_are_one_document(args: list[str], fragment: str) -> None:
    result = invoke(*args, "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["schema"] == "odoo-ai/1" and doc["exit_code"] == 2 and fragment in doc["error"]
    assert doc["hint"].startswith("see 'odoo-ai ") and doc["hint"].endswith(" --help'")
    assert result.stderr.startswith("odoo-ai: error: ")  # still said on stderr


@pytest.mark.parametrize("args", [["deploy", "dev"], ["test", "run", "--whatever"]])
def test_usage_errors_without_json_are_clicks_own(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert "Usage: " in result.stderr and "Error: " in result.stderr


def test_json_after_the_compose_separator_is_not_ours() -> None:
    assert common.json_requested(["compose", "dev", "--", "ps", "--json"]) is False
    assert common.json_requested(["status", "dev", "--json"]) is True


def test_test_program_usage_error_with_json() -> None:
    result = invoke("parse", "--json", cli=testing.app)
    assert result.exit_code == 2
    assert json.loads(result.stdout)["exit_code"] == 2
    assert result.stderr.startswith("error: ")


# ---------------------------------------------------------------- the one error path
class Failed(OdooAiError):
    """Shaped like deploy's DeployFailed: a report, a phase, the failing command's output."""


def failing_app(extra: bool) -> typer.Typer:
    cli = typer.Typer(cls=common.OdooAiGroup, **common.TYPER_SETTINGS)

    @cli.command()
    def boom(as_json: common.JsonOpt = False) -> None:
        common.state.json = as_json
        exc = Failed("the gate failed", hint="look at the logs", output="Traceback ...\nKeyError: 'x'")
        if extra:
            common.fail(exc, extra={"status": "failed", "failed_phase": "gate", "output": exc.output},
                        output_title="last lines of gate")
        raise exc

    @cli.command()
    def other() -> None:
        pass

    return cli


def test_an_error_is_one_line_on_stderr_after_the_output() -> None:
    result = invoke("boom", cli=failing_app(extra=False))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == ["Traceback ...", "KeyError: 'x'", "odoo-ai: error: the gate failed",
                                          "hint: look at the logs"]


def test_an_error_with_json_is_one_document_on_stdout() -> None:
    result = invoke("boom", "--json", cli=failing_app(extra=False))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc == {"schema": "odoo-ai/1", "error": "the gate failed", "hint": "look at the logs",
                   "output": "Traceback ...\nKeyError: 'x'", "exit_code": 1}
    assert result.stderr.splitlines() == ["odoo-ai: error: the gate failed", "hint: look at the logs"]


def test_a_deploy_failure_adds_its_report_and_frames_the_output() -> None:
    human = invoke("boom", cli=failing_app(extra=True))
    assert human.exit_code == 1
    assert human.stderr.splitlines()[:4] == ["--- last lines of gate ---", "Traceback ...", "KeyError: 'x'", "---"]
    doc = json.loads(invoke("boom", "--json", cli=failing_app(extra=True)).stdout)
    assert doc["status"] == "failed" and doc["failed_phase"] == "gate" and doc["exit_code"] == 1
    assert doc["error"] == "the gate failed" and doc["output"].endswith("KeyError: 'x'")


def test_no_state_leaks_from_one_run_into_the_next() -> None:
    cli = failing_app(extra=False)
    assert invoke("boom", "--json", cli=cli).exit_code == 1
    result = invoke("other", cli=cli)
    assert result.exit_code == 0 and common.state.json is False


# ---------------------------------------------------------------- results on stdout
def test_config_show_table_goes_to_stdout(repo: Path, home: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "odoo_ai", "--repo", str(repo), "--config-dir", str(repo / "docker" / "config"),
         "config", "show", "dev"],
        capture_output=True, text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin", "COLUMNS": "300"}, timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert "opw-dev" in proc.stdout and str(home / "odoo-ai" / "opw-dev") in proc.stdout
