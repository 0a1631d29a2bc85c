"""`test parse` / `test run` command line: exit codes, outputs, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from odoo_ai.cli.testing import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "odoo18-logs"
PASS_LOG = FIXTURES / "20-test-acc2-i-base-web-tags-web-TestWebController-PASS.log"
FAIL_LOG = FIXTURES / "30-test-acc3-i-failing_mod-FAILS.log"
EMPTY_LOG = FIXTURES / "33-test-acc2-tags-match-nothing-0-tests.log"

# GitHub variables of the machine running the tests must not leak into these runs.
CLEAN_ENV = {"GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": None, "GITHUB_WORKSPACE": None}


def invoke(*args: str, env: dict[str, str | None] | None = None, stdin: bytes | None = None):
    runner = CliRunner(env={**CLEAN_ENV, **(env or {})})
    return runner.invoke(app, list(args), input=stdin)


def rc_of(path: Path) -> str:
    return path.with_name(path.name + ".rc").read_text().strip().removeprefix("rc=")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("20-test-acc2-i-base-web-tags-web-TestWebController-PASS.log", 0),
        ("30-test-acc3-i-failing_mod-FAILS.log", 1),
        ("33-test-acc2-tags-match-nothing-0-tests.log", 4),
        ("40-install-acc3-i-broken_data_mod-FAILS.log", 3),
        ("41-install-acc3-i-unknown-module-name.log", 3),
        ("44-db-auth-failure-wrong-password.log", 3),
        ("01-init-acc1-i-base.log", 3),
    ],
)
def test_exit_codes_on_the_real_logs(name: str, expected: int) -> None:
    path = FIXTURES / name
    result = invoke("parse", str(path), "--odoo-exit-code", rc_of(path))
    assert result.exit_code == expected, result.stderr
    assert result.stdout == ""  # human output goes to stderr


def test_allow_empty_turns_no_tests_into_success() -> None:
    assert invoke("parse", str(EMPTY_LOG), "--allow-empty").exit_code == 0
    assert invoke("parse", str(EMPTY_LOG)).exit_code == 4


def test_allow_empty_does_not_hide_a_crash() -> None:
    broken = FIXTURES / "40-install-acc3-i-broken_data_mod-FAILS.log"
    assert invoke("parse", str(broken), "--allow-empty").exit_code == 3


def test_non_zero_odoo_exit_code_with_green_log_is_an_error() -> None:
    assert invoke("parse", str(PASS_LOG), "--odoo-exit-code", "255").exit_code == 3


def test_json_output_is_one_document_on_stdout() -> None:
    result = invoke("parse", str(FAIL_LOG), "--odoo-exit-code", "1", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["schema"] == "odoo-ai.test-results/1"
    assert doc["status"] == "failed"
    assert doc["totals"] == {"tests": 3, "passed": 1, "failed": 1, "errors": 1, "skipped": 0}
    assert doc["odoo_exit_code"] == 1
    assert [t["method"] for t in doc["tests"]] == [
        "test_01_passes",
        "test_02_fails",
        "test_03_errors",
    ]
    assert result.stderr == ""


def test_human_output_goes_to_stderr() -> None:
    result = invoke("parse", str(FAIL_LOG), "--odoo-exit-code", "1")
    assert "FAIL  failing_mod  TestFailingFixture.test_02_fails" in result.stderr
    assert "FAILED" in result.stderr


def test_junit_file(tmp_path: Path) -> None:
    junit = tmp_path / "results.xml"
    result = invoke("parse", str(FAIL_LOG), "--junit", str(junit), "--json")
    assert result.exit_code == 1
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")


def test_path_map_option(tmp_path: Path) -> None:
    junit = tmp_path / "results.xml"
    invoke("parse", str(FAIL_LOG), "--junit", str(junit), "--path-map", "/mnt/extra-addons=addons")
    files = {c.get("file") for c in ET.parse(junit).getroot().iter("testcase") if c.get("file")}
    assert files == {"addons/failing_mod/tests/test_fail.py"}


def test_stdin(tmp_path: Path) -> None:
    result = invoke("parse", "-", "--json", stdin=FAIL_LOG.read_bytes())
    assert result.exit_code == 1
    assert json.loads(result.stdout)["totals"]["tests"] == 3


def test_stdin_shows_progress() -> None:
    result = invoke("parse", "-", stdin=FAIL_LOG.read_bytes())
    assert "✗ FAIL failing_mod  TestFailingFixture.test_02_fails" in result.stderr


# ---------------------------------------------------------------- GitHub Actions


def github_env(tmp_path: Path) -> dict[str, str | None]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_WORKSPACE": "/mnt/extra-addons",
    }


def test_github_summary_is_appended_and_annotations_printed(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = invoke("parse", str(FAIL_LOG), "--odoo-exit-code", "1", env=github_env(tmp_path))
    assert result.exit_code == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n### Odoo tests: ❌ failed")
    annotations = [ln for ln in result.stdout.splitlines() if ln.startswith("::error")]
    assert [a.split("::")[1] for a in annotations] == [
        "error file=failing_mod/tests/test_fail.py,line=11,"
        "title=FAIL%3A failing_mod TestFailingFixture.test_02_fails",
        "error file=failing_mod/tests/test_fail.py,line=14,"
        "title=ERROR%3A failing_mod TestFailingFixture.test_03_errors",
    ]


def test_github_annotations_go_to_stderr_with_json(tmp_path: Path) -> None:
    result = invoke("parse", str(FAIL_LOG), "--json", env=github_env(tmp_path))
    json.loads(result.stdout)  # nothing but the document
    assert result.stderr.count("::error file=") == 2
    assert (tmp_path / "summary.md").exists()


def test_no_github_output_outside_actions(tmp_path: Path) -> None:
    env = {**github_env(tmp_path), "GITHUB_ACTIONS": None}
    result = invoke("parse", str(FAIL_LOG), env=env)
    assert "::error" not in result.stdout + result.stderr
    assert not (tmp_path / "summary.md").exists()


def test_unwritable_summary_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    env = {**github_env(tmp_path), "GITHUB_STEP_SUMMARY": str(tmp_path / "no" / "summary.md")}
    result = invoke("parse", str(PASS_LOG), env=env)
    assert result.exit_code == 0
    assert "GITHUB_STEP_SUMMARY" in result.stderr


# ---------------------------------------------------------------- bad input: exit 2


def assert_usage_error(result, *, fragment: str) -> None:
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0]


def test_missing_file(tmp_path: Path) -> None:
    assert_usage_error(invoke("parse", str(tmp_path / "nope.log")), fragment="does not exist")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert_usage_error(invoke("parse", str(tmp_path)), fragment="is a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    log = tmp_path / "secret.log"
    log.write_text("x")
    log.chmod(0)
    assert_usage_error(invoke("parse", str(log)), fragment="cannot read")


def test_open_failure_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Same path as the chmod test above, which root cannot exercise.
    log = tmp_path / "x.log"
    log.write_text("x")

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    assert_usage_error(invoke("parse", str(log)), fragment="Permission denied")


@pytest.mark.parametrize("value", ["-1", "abc", "256", "1.5", ""])
def test_invalid_odoo_exit_code(value: str, tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    result = invoke("parse", str(FAIL_LOG), "--odoo-exit-code", value, "--junit", str(junit))
    assert_usage_error(result, fragment="--odoo-exit-code")
    assert not junit.exists()


def test_junit_in_a_missing_directory(tmp_path: Path) -> None:
    junit = tmp_path / "missing" / "j.xml"
    result = invoke("parse", str(FAIL_LOG), "--junit", str(junit))
    assert_usage_error(result, fragment="does not exist")
    assert not junit.parent.exists()


def test_junit_path_is_a_directory(tmp_path: Path) -> None:
    assert_usage_error(
        invoke("parse", str(FAIL_LOG), "--junit", str(tmp_path)), fragment="is a directory"
    )


def test_bad_path_map() -> None:
    assert_usage_error(invoke("parse", str(FAIL_LOG), "--path-map", "nonsense"), fragment="FROM=TO")


def test_bad_input_writes_no_summary(tmp_path: Path) -> None:
    result = invoke("parse", str(tmp_path / "nope.log"), env=github_env(tmp_path))
    assert result.exit_code == 2
    assert not (tmp_path / "summary.md").exists()


# ---------------------------------------------------------------- run and help


def test_run_refuses_unknown_options() -> None:
    # `test run` itself is covered by tests/unit/test_testrun*.py.
    result = invoke("run", "--whatever", "x")
    assert result.exit_code == 2


@pytest.mark.parametrize("args", [["--help"], ["parse", "--help"], ["run", "--help"]])
def test_help_documents_the_exit_codes(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for fragment in (
        "0 all tests passed",
        "1 tests failed or errored",
        "2 usage or configuration error",
        "3 Odoo or the infrastructure failed",
        "4 no test ran",
    ):
        assert fragment in text


def test_console_script_end_to_end(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("test")
    if not script.exists():
        pytest.skip("console script `test` not installed in this environment")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    proc = subprocess.run(  # noqa: S603  # our own console script, fixed arguments
        [str(script), "parse", str(FAIL_LOG), "--odoo-exit-code", "1", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["status"] == "failed"


def test_bad_input_with_json_is_one_error_document(tmp_path: Path) -> None:
    # The CLI's one error path: the error line on stderr, the document on stdout.
    result = invoke("parse", str(tmp_path / "nope.log"), "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["schema"] == "odoo-ai/1" and doc["exit_code"] == 2 and "does not exist" in doc["error"]
    assert result.stderr.strip().splitlines() == [f"error: {doc['error']}"]
