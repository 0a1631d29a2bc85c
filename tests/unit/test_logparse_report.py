"""JUnit XML, GitHub step summary and annotations, and the human renderer."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from odoo_ai.testing.logparse import LogParser, parse_log
from odoo_ai.testing.report import (
    ProgressPrinter,
    escape_data,
    escape_property,
    github_annotations,
    github_summary,
    junit_xml,
    map_path,
    render_human,
    safe_text,
    workflow_command,
    write_junit,
)
from odoo_ai.testing.results import RunResult

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "odoo18-logs"
PASS_LOG = "20-test-acc2-i-base-web-tags-web-TestWebController-PASS.log"
FAIL_LOG = "30-test-acc3-i-failing_mod-FAILS.log"
EMPTY_LOG = "33-test-acc2-tags-match-nothing-0-tests.log"
BROKEN_LOG = "40-install-acc3-i-broken_data_mod-FAILS.log"
ALL_LOGS = sorted(p.name for p in FIXTURES.glob("*.log"))


def parse(name: str, code: int | None = None) -> RunResult:
    if code is None and (FIXTURES / f"{name}.rc").exists():
        text = (FIXTURES / f"{name}.rc").read_text().strip()
        code = int(text.removeprefix("rc=")) if text.startswith("rc=") else None
    return parse_log((FIXTURES / name).read_text(encoding="utf-8").splitlines(), code)


def rec(message: str, level: str = "INFO", logger: str = "odoo.addons.demo.tests.test_x") -> str:
    return f"2026-11-25 23:00:00,000 7 {level} db {logger}: {message} "


def hostile_result() -> RunResult:
    """A failing test whose traceback carries control characters and workflow commands."""
    log = [
        rec("Starting TestX.test_evil ..."),
        rec("FAIL: TestX.test_evil", level="ERROR"),
        "Traceback (most recent call last):",
        '  File "/m/demo/tests/test_x.py", line 3, in test_evil',
        "AssertionError: bad \x00\x01\x1b]0;title\x07 | `x` ```",
        "::add-mask::secret",
        "  ::set-env name=X::1",
        "##[error]fake",
        rec(
            "0 failed, 0 error(s) of 1 tests when loading database 'db'",
            level="ERROR",
            logger="odoo.tests.result",
        ),
    ]
    return parse_log(log, 1)


# ---------------------------------------------------------------- JUnit


@pytest.mark.parametrize("name", ALL_LOGS)
def test_junit_is_well_formed_for_every_fixture(name: str) -> None:
    result = parse(name)
    root = ET.fromstring(junit_xml(result))
    assert root.tag == "testsuites"
    cases = list(root.iter("testcase"))
    assert int(root.get("tests")) == len(cases)
    assert int(root.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
    assert int(root.get("errors")) == sum(1 for c in cases if c.find("error") is not None)
    for suite in root.iter("testsuite"):
        assert int(suite.get("tests")) == len(list(suite.iter("testcase")))
    # A red run is red in the XML too.
    red = int(root.get("failures")) + int(root.get("errors"))
    assert (red > 0) == (result.status in ("failed", "error"))


def test_junit_for_the_failing_fixture() -> None:
    root = ET.fromstring(junit_xml(parse(FAIL_LOG)))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "failing_mod"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    assert suite.get("skipped") == "0"
    ok, fail, error = suite.findall("testcase")
    classname = "odoo.addons.failing_mod.tests.test_fail.TestFailingFixture"
    assert [c.get("classname") for c in (ok, fail, error)] == [classname] * 3
    assert [c.get("name") for c in (ok, fail, error)] == [
        "test_01_passes",
        "test_02_fails",
        "test_03_errors",
    ]
    assert list(ok) == []
    failure = fail.find("failure")
    assert failure is not None
    assert failure.get("message") == "AssertionError: 2 != 3 : deliberate assertion failure"
    assert failure.get("type") == "AssertionError"
    assert 'test_fail.py", line 11' in failure.text
    assert (fail.get("file"), fail.get("line")) == (
        "/mnt/extra-addons/failing_mod/tests/test_fail.py",
        "11",
    )
    err = error.find("error")
    assert err is not None and err.get("type") == "ValueError"
    assert float(ok.get("time")) == pytest.approx(0.007)


def test_junit_maps_paths() -> None:
    root = ET.fromstring(junit_xml(parse(FAIL_LOG), path_map=[("/mnt/extra-addons", "addons")]))
    files = {c.get("file") for c in root.iter("testcase") if c.get("file")}
    assert files == {"addons/failing_mod/tests/test_fail.py"}


def test_junit_for_an_infra_error_has_a_red_odoo_case() -> None:
    root = ET.fromstring(junit_xml(parse(BROKEN_LOG)))
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "odoo"
    [case] = suite.findall("testcase")
    error = case.find("error")
    assert error is not None
    assert "Odoo failed to load the registry" in error.get("message")
    assert "x_acc.missing.model" in error.text
    assert root.get("errors") == "1"


def test_junit_for_a_log_error_has_a_failing_odoo_case() -> None:
    log = [
        rec("Starting TestX.test_ok ..."),
        rec("oops", level="ERROR", logger="odoo.http"),
        rec(
            "0 failed, 0 error(s) of 1 tests when loading database 'db'", logger="odoo.tests.result"
        ),
    ]
    root = ET.fromstring(junit_xml(parse_log(log, 0)))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    odoo_case = next(c for c in root.iter("testcase") if c.get("classname") == "odoo")
    assert "odoo.http: oops" in odoo_case.find("failure").text


def test_junit_no_tests_is_empty_but_valid() -> None:
    root = ET.fromstring(junit_xml(parse(EMPTY_LOG)))
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("0", "0", "0")


def test_junit_survives_control_characters() -> None:
    root = ET.fromstring(junit_xml(hostile_result()))
    failure = next(root.iter("failure"))
    assert "\x00" not in failure.text and "\ufffd" in failure.text


def test_junit_skipped() -> None:
    log = [
        rec("Starting TestX.test_skip ..."),
        rec("skipped TestX.test_skip : not today"),
        rec(
            "0 failed, 0 error(s) of 1 tests when loading database 'db'", logger="odoo.tests.result"
        ),
    ]
    root = ET.fromstring(junit_xml(parse_log(log, 0)))
    assert root.get("skipped") == "1"
    assert next(root.iter("skipped")).get("message") == "not today"


def test_write_junit_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "junit.xml"
    target.write_text("old")
    write_junit(parse(FAIL_LOG), target)
    assert ET.parse(target).getroot().get("tests") == "3"
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]


# ---------------------------------------------------------------- GitHub


def test_escaping_follows_workflow_command_rules() -> None:
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert workflow_command("error", "m:1,2", file="a,b.py", line=3, title=None) == (
        "::error file=a%2Cb.py,line=3::m:1,2"
    )


def test_annotations_for_the_failing_fixture() -> None:
    lines = github_annotations(
        parse(FAIL_LOG), path_map=[("/mnt/extra-addons/", "")], workspace=None
    )
    assert len(lines) == 2
    fail, error = lines
    assert fail.startswith(
        "::error file=failing_mod/tests/test_fail.py,line=11,"
        "title=FAIL%3A failing_mod TestFailingFixture.test_02_fails::"
        "AssertionError: 2 != 3 : deliberate assertion failure%0A%0ATraceback"
    )
    assert error.startswith("::error file=failing_mod/tests/test_fail.py,line=14,")
    assert all("\n" not in ln for ln in lines)


def test_annotations_relative_to_the_workspace() -> None:
    [line, _] = github_annotations(parse(FAIL_LOG), workspace="/mnt/extra-addons")
    assert "file=failing_mod/tests/test_fail.py," in line


def test_annotations_for_infra_problems_have_no_file() -> None:
    lines = github_annotations(parse(BROKEN_LOG))
    assert lines and all(ln.startswith("::error title=Odoo run::") for ln in lines)


def test_no_annotations_for_a_green_run() -> None:
    assert github_annotations(parse(PASS_LOG)) == []


def test_hostile_text_stays_inside_one_annotation() -> None:
    for line in github_annotations(hostile_result()):
        assert "\n" not in line and "\r" not in line
        assert line.count("::") >= 2 and line.startswith("::error ")


def test_step_summary_for_the_failing_fixture() -> None:
    md = github_summary(parse(FAIL_LOG))
    assert md.startswith("### Odoo tests: ❌ failed")
    assert "**3 tests: 1 passed, 1 failed, 1 error, 0 skipped**" in md
    assert "| failing_mod | ❌ failed | 3 | 1 | 1 | 1 | 0 | 0.03s |" in md
    assert "TestFailingFixture.test_02_fails: AssertionError: 2 != 3" in md
    assert "```text\nTraceback (most recent call last):" in md
    assert "`/mnt/extra-addons/failing_mod/tests/test_fail.py:11`" in md


def test_step_summary_for_no_tests_and_errors() -> None:
    assert "No test ran" in github_summary(parse(EMPTY_LOG))
    md = github_summary(parse(BROKEN_LOG))
    assert "💥 error" in md and "#### Problems" in md and "broken_data_mod" in md


def test_step_summary_fences_hold_backticks() -> None:
    md = github_summary(hostile_result())
    assert "````text" in md  # longer than the ``` inside the traceback


def test_map_path() -> None:
    assert (
        map_path("/mnt/extra-addons/m/t.py", [("/mnt/extra-addons", "addons")]) == "addons/m/t.py"
    )
    assert map_path("/mnt/extra-addons/m/t.py", [("/mnt/extra-addons/", "")]) == "m/t.py"
    assert (
        map_path("/mnt/extra-addons2/m.py", [("/mnt/extra-addons", "x")])
        == "/mnt/extra-addons2/m.py"
    )
    assert map_path("/w/repo/m.py", workspace="/w/repo") == "m.py"
    assert map_path("/other/m.py", workspace="/w/repo") == "/other/m.py"


# ---------------------------------------------------------------- human output


def render(result: RunResult, **kwargs: bool) -> str:
    buffer = io.StringIO()
    render_human(result, Console(file=buffer, width=100, color_system=None), **kwargs)
    return buffer.getvalue()


def test_human_report_for_the_failing_fixture() -> None:
    text = render(parse(FAIL_LOG))
    assert "failing_mod  3 tests: 1 passed, 1 failed, 1 error, 0 skipped" in text
    assert "FAIL  failing_mod  TestFailingFixture.test_02_fails" in text
    assert "AssertionError: 2 != 3 : deliberate assertion failure" in text
    assert "at /mnt/extra-addons/failing_mod/tests/test_fail.py:11" in text
    assert text.rstrip().splitlines()[-1].startswith("FAILED  3 tests")


def test_human_report_for_no_tests_and_allow_empty() -> None:
    text = render(parse(EMPTY_LOG), allow_empty=True)
    assert "No test ran" in text and "exit 0" in text


def test_human_report_never_starts_a_line_with_a_workflow_command() -> None:
    text = render(hostile_result())
    for line in text.splitlines():
        assert not line.lstrip().startswith(("::", "##["))
    assert "\x00" not in text and "\x07" not in text


def test_safe_text() -> None:
    assert safe_text("::add-mask::x").startswith(":\u200b:")
    assert safe_text("  ##[error]x").startswith("  #\u200b#[")
    assert safe_text("a::b") == "a::b"
    assert safe_text("bell\x07") == "bell\ufffd"


def test_progress_printer_prints_finished_tests() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None)
    parser = LogParser()
    with ProgressPrinter(console) as progress:
        for line in (FIXTURES / FAIL_LOG).read_text().splitlines():
            for event in parser.feed(line):
                progress.handle(event)
    lines = buffer.getvalue().splitlines()
    assert lines == [
        "  ✓ failing_mod  TestFailingFixture.test_01_passes (0.01s)",
        "  ✗ FAIL failing_mod  TestFailingFixture.test_02_fails (0.00s)",
        "  ✗ ERROR failing_mod  TestFailingFixture.test_03_errors (0.00s)",
    ]
