"""The Odoo 18 log parser, on the real logs in tests/fixtures/odoo18-logs and on odd input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo_ai.testing.logparse import (
    CRASH_MESSAGE,
    MAX_LINE_CHARS,
    MAX_PROBLEMS,
    LogParser,
    ModuleLoading,
    SummaryFound,
    TestFinished,
    TestStarted,
    clean_line,
    exception_summary,
    find_location,
    iter_lines,
    parse_log,
    parse_record,
)
from odoo_ai.testing.report import junit_xml
from odoo_ai.testing.results import Phase, RunStatus, TestExitCode, TestStatus, Totals

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "odoo18-logs"
PASS_LOG = "20-test-acc2-i-base-web-tags-web-TestWebController-PASS.log"
FAIL_LOG = "30-test-acc3-i-failing_mod-FAILS.log"
EMPTY_LOG = "33-test-acc2-tags-match-nothing-0-tests.log"
BROKEN_LOG = "40-install-acc3-i-broken_data_mod-FAILS.log"
UNKNOWN_LOG = "41-install-acc3-i-unknown-module-name.log"
AUTH_LOG = "44-db-auth-failure-wrong-password.log"


def lines_of(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines(keepends=True)


def rc_of(name: str) -> int:
    return int((FIXTURES / f"{name}.rc").read_text().strip().removeprefix("rc="))


def parse_fixture(name: str, exit_code: int | None = -999):
    code = rc_of(name) if exit_code == -999 else exit_code
    return parse_log(lines_of(name), code)


def rec(
    message: str,
    *,
    level: str = "INFO",
    logger: str = "odoo.addons.demo.tests.test_demo",
    pid: int = 100,
    at: str = "23:00:00,000",
    db: str = "db1",
) -> str:
    """One Odoo 18 log line, trailing space included."""
    return f"2026-11-25 {at} {pid} {level} {db} {logger}: {message} \n"


def result_line(failed: int = 0, errors: int = 0, tests: int = 1, level: str = "INFO") -> str:
    return rec(
        f"{failed} failed, {errors} error(s) of {tests} tests when loading database 'db1'",
        level=level,
        logger="odoo.tests.result",
    )


def green_log(*body: str, tests: int = 1) -> list[str]:
    return [
        rec("Loading module demo (2/3)", logger="odoo.modules.loading"),
        *body,
        rec(
            "Module demo loaded in 0.10s (incl. 0.05s test), 12 queries",
            logger="odoo.modules.loading",
        ),
        result_line(tests=tests),
    ]


# ---------------------------------------------------------------- the real logs


def test_passing_run() -> None:
    result = parse_fixture(PASS_LOG)
    assert result.status is RunStatus.PASSED
    assert result.exit_code() is TestExitCode.PASSED
    assert result.totals == Totals(tests=2, passed=2, failed=0, errors=0, skipped=0)
    assert [(t.module, t.class_name, t.method, t.status) for t in result.tests] == [
        ("web", "TestWebController", "test_health", TestStatus.PASSED),
        ("web", "TestWebController", "test_health_db_server_status", TestStatus.PASSED),
    ]
    assert result.tests[0].classname == "odoo.addons.web.tests.test_health.TestWebController"
    assert result.tests[0].id == "odoo.addons.web.tests.test_health.TestWebController.test_health"
    # Durations come from the log timestamps: 23:24:22,389 -> 23:24:22,398.
    assert result.tests[0].duration == pytest.approx(0.009)
    [web] = result.modules
    assert (web.name, web.status, web.totals.tests, web.duration) == ("web", "passed", 2, 0.04)
    assert web.odoo_counts is None  # Odoo prints `Module X: ...` only when tests fail
    assert result.database == "acc2"
    assert result.summary_line == "0 failed, 0 error(s) of 2 tests when loading database 'acc2'"
    assert result.problems == []
    assert result.duration == pytest.approx(8.66, abs=0.001)  # 23:24:15,753 -> 23:24:24,413
    assert result.started_at == "2026-11-25T23:24:15.753"


def test_failing_run() -> None:
    result = parse_fixture(FAIL_LOG)
    assert result.status is RunStatus.FAILED
    assert result.exit_code() is TestExitCode.FAILED
    assert result.odoo_exit_code == 1
    assert result.totals == Totals(tests=3, passed=1, failed=1, errors=1, skipped=0)
    passes, fails, errors = result.tests
    assert (passes.method, passes.status) == ("test_01_passes", TestStatus.PASSED)
    assert (fails.method, fails.status) == ("test_02_fails", TestStatus.FAILED)
    assert (errors.method, errors.status) == ("test_03_errors", TestStatus.ERROR)
    assert {t.module for t in result.tests} == {"failing_mod"}
    assert {t.class_name for t in result.tests} == {"TestFailingFixture"}
    assert fails.message == "AssertionError: 2 != 3 : deliberate assertion failure"
    assert fails.details.startswith("Traceback (most recent call last):")
    assert 'self.assertEqual(1 + 1, 3, "deliberate assertion failure")' in fails.details
    assert (fails.file, fails.line) == ("/mnt/extra-addons/failing_mod/tests/test_fail.py", 11)
    assert errors.message == "ValueError: deliberate error raised by test_03_errors"
    assert (errors.file, errors.line) == ("/mnt/extra-addons/failing_mod/tests/test_fail.py", 14)
    assert passes.details == "" and passes.file is None
    [module] = result.modules
    assert module.name == "failing_mod"
    assert module.status is RunStatus.FAILED
    assert module.totals == Totals(tests=3, passed=1, failed=1, errors=1, skipped=0)
    assert module.odoo_counts is not None
    assert module.odoo_counts.to_dict() == {"tests": 3, "failures": 1, "errors": 1}
    assert module.duration == 0.03
    assert result.summary_line == "1 failed, 1 error(s) of 3 tests when loading database 'acc3'"
    assert result.problems == []  # every ERROR line in this log is explained by a test


def test_failing_run_is_failed_without_exit_code() -> None:
    assert parse_fixture(FAIL_LOG, None).status is RunStatus.FAILED


def test_zero_tests_is_no_tests() -> None:
    result = parse_fixture(EMPTY_LOG)
    assert result.status is RunStatus.NO_TESTS
    assert result.totals == Totals()
    assert result.tests == [] and result.modules == []
    assert result.exit_code() is TestExitCode.NO_TESTS
    assert result.exit_code(allow_empty=True) is TestExitCode.PASSED


def test_broken_module_install_is_error() -> None:
    result = parse_fixture(BROKEN_LOG)
    assert result.status is RunStatus.ERROR
    assert result.exit_code() is TestExitCode.INFRA
    messages = [p.message for p in result.problems]
    assert "Odoo failed to load the registry" in messages
    critical = next(p for p in result.problems if p.level == "CRITICAL")
    assert critical.kind == "infra"
    assert critical.module == "broken_data_mod"
    assert "KeyError: 'x_acc.missing.model'" in critical.details
    assert exception_summary(critical.details).startswith("odoo.tools.convert.ParseError")
    assert any("code 255" in m and "rolled back" in m for m in messages)


def test_broken_module_is_error_even_without_exit_code() -> None:
    assert parse_fixture(BROKEN_LOG, None).status is RunStatus.ERROR


def test_unknown_module_name_is_never_green() -> None:
    # Odoo exits 0 and only logs a WARNING: the module asked for was not there.
    result = parse_fixture(UNKNOWN_LOG)
    assert rc_of(UNKNOWN_LOG) == 0
    assert result.status is RunStatus.ERROR
    assert any("x_acc_no_such_module" in p.message for p in result.problems)


def test_db_auth_failure_is_error_with_the_reason() -> None:
    result = parse_fixture(AUTH_LOG)
    assert result.status is RunStatus.ERROR
    note = next(p for p in result.problems if p.kind == "note")
    assert "password authentication failed" in note.message
    assert any("code 1" in p.message for p in result.problems if p.kind == "infra")


@pytest.mark.parametrize(
    "name",
    [
        "01-init-acc1-i-base.log",
        "02-server-acc1-port18069.log",
        "06-server-acc1-sigterm-exit-code.log",
        "10-update-acc1-u-base.log",
    ],
)
def test_logs_without_a_test_summary_are_errors(name: str) -> None:
    result = parse_log(lines_of(name), 0)
    assert result.status is RunStatus.ERROR
    assert any("no test summary" in p.message for p in result.problems)


def test_thread_traceback_after_shutdown_is_a_note() -> None:
    result = parse_log(lines_of("06-server-acc1-sigterm-exit-code.log"), 0)
    [note] = [p for p in result.problems if p.kind == "note"]
    assert note.message.endswith("psycopg2.InterfaceError: connection already closed")


# ---------------------------------------------------------------- exit code vs log


@pytest.mark.parametrize("code", [1, 2, 137, 255])
def test_green_log_with_non_zero_exit_is_error(code: int) -> None:
    result = parse_fixture(PASS_LOG, code)
    assert result.status is RunStatus.ERROR
    assert any(f"code {code}" in p.message for p in result.problems)


def test_killed_by_signal_is_explained() -> None:
    result = parse_fixture(PASS_LOG, 137)
    assert any("signal 9" in p.message for p in result.problems)


@pytest.mark.parametrize(("code", "status"), [(0, "failed"), (1, "failed"), (255, "error")])
def test_failing_log_and_exit_code(code: int, status: str) -> None:
    assert parse_fixture(FAIL_LOG, code).status == status


# ---------------------------------------------------------------- streaming


def test_streaming_events_follow_the_run() -> None:
    parser = LogParser()
    events = []
    for line in lines_of(FAIL_LOG):
        events += parser.feed(line)
    started = [e.test.method for e in events if isinstance(e, TestStarted)]
    finished = [(e.test.method, e.test.status) for e in events if isinstance(e, TestFinished)]
    assert started == ["test_01_passes", "test_02_fails", "test_03_errors"]
    assert finished == [
        ("test_01_passes", TestStatus.PASSED),
        ("test_02_fails", TestStatus.FAILED),
        ("test_03_errors", TestStatus.ERROR),
    ]
    assert ModuleLoading("failing_mod", 2, 13) in events
    assert SummaryFound(1, 1, 3, "acc3") in events
    assert parser.totals_so_far == Totals(tests=3, passed=1, failed=1, errors=1)
    result = parser.finish(1)
    assert result.to_dict() == parse_fixture(FAIL_LOG).to_dict()


def test_feed_all_equals_parse_log() -> None:
    parser = LogParser()
    events = parser.feed_all(lines_of(PASS_LOG))
    assert sum(isinstance(e, TestFinished) for e in events) == 2
    assert parser.finish(0).to_dict() == parse_fixture(PASS_LOG, 0).to_dict()


def test_running_test_is_visible_before_it_ends() -> None:
    parser = LogParser()
    parser.feed(rec("Starting TestDemo.test_slow ..."))
    [test] = parser.tests
    assert test.status is TestStatus.RUNNING
    assert parser.totals_so_far.tests == 1


def test_finish_twice_is_a_bug() -> None:
    parser = LogParser()
    parser.finish()
    with pytest.raises(RuntimeError):
        parser.finish()


# ---------------------------------------------------------------- odd but real-world input


def test_crlf_and_missing_trailing_spaces_change_nothing() -> None:
    expected = parse_fixture(FAIL_LOG).to_dict()
    crlf = [ln.rstrip("\n").rstrip(" ") + "\r\n" for ln in lines_of(FAIL_LOG)]
    assert parse_log(crlf, 1).to_dict() == expected


def test_coloured_levels_are_understood() -> None:
    coloured = [
        ln.replace(" ERROR ", " \x1b[1;31m\x1b[1;49mERROR\x1b[0m ").replace(
            " INFO ", " \x1b[1;32m\x1b[1;49mINFO\x1b[0m "
        )
        for ln in lines_of(FAIL_LOG)
    ]
    assert parse_log(coloured, 1).to_dict() == parse_fixture(FAIL_LOG).to_dict()


def test_interleaved_processes_keep_their_own_running_test() -> None:
    log = [
        rec("Starting TestA.test_a ...", pid=1, logger="odoo.addons.mod_a.tests.test_a"),
        rec("Starting TestB.test_b ...", pid=2, logger="odoo.addons.mod_b.tests.test_b"),
        rec("FAIL: TestA.test_a", pid=1, level="ERROR", logger="odoo.addons.mod_a.tests.test_a"),
        "Traceback (most recent call last):\n",
        '  File "/addons/mod_a/tests/test_a.py", line 7, in test_a\n',
        "AssertionError: a is wrong\n",
        rec("Module mod_b loaded in 0.1s (incl. 0.1s test)", pid=2, logger="odoo.modules.loading"),
        rec("Module mod_a loaded in 0.1s (incl. 0.1s test)", pid=1, logger="odoo.modules.loading"),
        result_line(failed=1, tests=2, level="ERROR"),
    ]
    result = parse_log(log)
    by_method = {t.method: t for t in result.tests}
    assert by_method["test_a"].status is TestStatus.FAILED
    assert by_method["test_a"].module == "mod_a"
    assert by_method["test_a"].message == "AssertionError: a is wrong"
    assert (by_method["test_a"].file, by_method["test_a"].line) == (
        "/addons/mod_a/tests/test_a.py",
        7,
    )
    assert by_method["test_b"].status is TestStatus.PASSED
    assert result.status is RunStatus.FAILED
    assert [m.name for m in result.modules] == ["mod_a", "mod_b"]


def test_log_truncated_mid_traceback_is_error() -> None:
    lines = lines_of(FAIL_LOG)
    cut = next(i for i, ln in enumerate(lines) if "line 11, in test_02_fails" in ln) + 1
    result = parse_log(lines[:cut], None)
    assert result.status is RunStatus.ERROR
    first, second = result.tests
    assert first.status is TestStatus.PASSED
    assert second.status is TestStatus.FAILED
    assert "test_fail.py" in second.details
    assert any("after 2 test(s)" in p.message for p in result.problems)


def test_crash_mid_test_marks_the_running_test() -> None:
    lines = lines_of(FAIL_LOG)
    cut = next(i for i, ln in enumerate(lines) if "Starting TestFailingFixture.test_03" in ln) + 1
    result = parse_log(lines[:cut], 137)
    assert result.status is RunStatus.ERROR
    last = result.tests[-1]
    assert (last.method, last.status, last.message) == ("test_03_errors", "error", CRASH_MESSAGE)
    assert result.totals.errors == 1  # no Odoo summary: counted from the parsed tests


def test_error_outside_a_test_makes_a_complete_run_failed() -> None:
    log = green_log(
        rec("Starting TestDemo.test_ok ..."),
        rec("Module demo loaded in 0.1s", logger="odoo.modules.loading"),
        rec("something broke in a cron", level="ERROR", logger="odoo.addons.base.models.ir_cron"),
        "Traceback (most recent call last):\n",
        '  File "/odoo/odoo/addons/base/models/ir_cron.py", line 1, in run\n',
        "RuntimeError: cron exploded\n",
    )
    result = parse_log(log, 0)
    assert result.status is RunStatus.FAILED
    assert result.exit_code() is TestExitCode.FAILED
    assert result.totals == Totals(tests=1, passed=1)
    [problem] = result.problems
    assert (problem.kind, problem.logger, problem.test) == (
        "log-error",
        "odoo.addons.base.models.ir_cron",
        None,
    )
    assert problem.message == "odoo.addons.base.models.ir_cron: something broke in a cron"
    assert "RuntimeError: cron exploded" in problem.details


def test_unexplained_error_inside_a_test_is_failed_too() -> None:
    log = green_log(
        rec("Starting TestDemo.test_noisy ..."),
        rec("could not send mail", level="ERROR", logger="odoo.addons.mail.models.mail_mail"),
    )
    result = parse_log(log, 0)
    assert result.status is RunStatus.FAILED
    [problem] = result.problems
    assert problem.test == "odoo.addons.demo.tests.test_demo.TestDemo.test_noisy"
    assert result.tests[0].status is TestStatus.PASSED  # Odoo did not fail the test itself


def test_test_like_lines_from_other_loggers_are_not_tests() -> None:
    log = green_log(
        rec("Starting TestDemo.test_ok ..."),
        rec("Starting cron worker ...", logger="odoo.service.server"),
        rec("ERROR: could not reach the bank", level="ERROR", logger="odoo.addons.bank.models.x"),
    )
    result = parse_log(log, 0)
    assert [t.method for t in result.tests] == ["test_ok"]
    assert result.status is RunStatus.FAILED
    [problem] = result.problems
    assert problem.kind == "log-error" and "could not reach the bank" in problem.message


def test_a_flood_of_errors_is_capped_but_still_counts() -> None:
    flood = [rec(f"noise {i}", level="ERROR", logger="odoo.http") for i in range(MAX_PROBLEMS + 50)]
    result = parse_log(green_log(rec("Starting TestDemo.test_ok ..."), *flood), 0)
    assert len(result.problems) == MAX_PROBLEMS + 1
    assert result.problems[-1].message == "50 more problems were not recorded"
    assert result.status is RunStatus.FAILED


def test_critical_anywhere_is_error() -> None:
    log = green_log(rec("Starting TestDemo.test_ok ..."), rec("boom", level="CRITICAL", logger="x"))
    assert parse_log(log, 0).status is RunStatus.ERROR


def test_skipped_tests() -> None:
    log = green_log(
        rec("Starting TestDemo.test_ok ..."),
        rec("Starting TestDemo.test_later ..."),
        rec("skipped TestDemo.test_later : needs a printer"),
        tests=2,
    )
    result = parse_log(log, 0)
    assert result.status is RunStatus.PASSED
    skipped = result.tests[1]
    assert (skipped.status, skipped.message) == (TestStatus.SKIPPED, "needs a printer")
    assert result.totals == Totals(tests=2, passed=1, failed=0, errors=0, skipped=1)
    assert result.modules[0].totals.skipped == 1


def test_subtest_failures_fold_into_their_test() -> None:
    logger = "odoo.addons.demo.tests.test_demo"
    log = [
        rec("Starting TestDemo.test_many ...", logger=logger),
        rec("FAIL: Subtest TestDemo.test_many (i=1)", level="ERROR", logger=logger),
        "Traceback (most recent call last):\n",
        '  File "/x/demo/tests/test_demo.py", line 5, in test_many\n',
        "AssertionError: 1 is odd\n",
        rec("ERROR: Subtest TestDemo.test_many (i=3)", level="ERROR", logger=logger),
        "Traceback (most recent call last):\n",
        '  File "/x/demo/tests/test_demo.py", line 6, in test_many\n',
        "KeyError: 3\n",
        result_line(failed=1, errors=1, tests=1, level="ERROR"),
    ]
    result = parse_log(log, 1)
    [test] = result.tests
    assert test.status is TestStatus.ERROR  # an error outranks a failure
    assert "(i=1)" in test.details and "(i=3)" in test.details
    assert "KeyError: 3" in test.details
    assert result.totals == Totals(tests=1, passed=0, failed=1, errors=1)  # Odoo's own numbers
    assert result.status is RunStatus.FAILED


def test_set_up_class_error_becomes_a_test() -> None:
    log = [
        rec(
            "ERROR: setUpClass (odoo.addons.demo.tests.test_demo.TestDemo)",
            level="ERROR",
            logger="unittest.suite",
        ),
        "Traceback (most recent call last):\n",
        '  File "/x/demo/tests/test_demo.py", line 3, in setUpClass\n',
        "ValueError: no fixture\n",
        result_line(errors=1, tests=0, level="ERROR"),
    ]
    result = parse_log(log, 1)
    [test] = result.tests
    assert (test.module, test.class_name, test.method) == ("demo", "TestDemo", "setUpClass")
    assert test.classname == "odoo.addons.demo.tests.test_demo.TestDemo"
    assert test.status is TestStatus.ERROR
    assert test.message == "ValueError: no fixture"
    assert result.status is RunStatus.FAILED


def test_post_install_phase() -> None:
    log = [
        rec("Starting TestDemo.test_at ..."),
        rec("Starting post tests", logger="odoo.service.server"),
        rec("Starting TestDemo.test_post ..."),
        rec("1 post-tests in 0.01s, 3 queries", logger="odoo.service.server"),
        result_line(tests=2),
    ]
    result = parse_log(log, 0)
    assert [t.phase for t in result.tests] == [Phase.AT_INSTALL, Phase.POST_INSTALL]
    assert result.status is RunStatus.PASSED


def test_the_last_summary_line_wins() -> None:
    log = [rec("Starting TestDemo.test_ok ..."), result_line(tests=5), result_line(tests=1)]
    result = parse_log(log, 0)
    assert result.totals.tests == 1


def test_error_level_summary_with_zero_counts_is_not_green() -> None:
    log = [rec("Starting TestDemo.test_ok ..."), result_line(tests=1, level="ERROR")]
    assert parse_log(log, 0).status is RunStatus.FAILED


def test_impossible_timestamps_keep_the_record() -> None:
    record = parse_record("2026-13-45 25:61:61,000 7 INFO db odoo: hello ")
    assert record is not None
    assert (record.timestamp, record.message, record.pid) == (None, "hello", 7)


def test_continuation_lines_are_not_records() -> None:
    assert parse_record("Traceback (most recent call last):") is None
    assert parse_record("") is None
    assert parse_record("2026-11-25 23:00:00,000 12 INFO") is None


def test_huge_lines_are_capped() -> None:
    assert len(clean_line("x" * (MAX_LINE_CHARS * 3))) < MAX_LINE_CHARS + 100
    log = [rec("Starting TestDemo.test_ok ..."), rec("y" * 5_000_000), result_line()]
    assert parse_log(log, 0).status is RunStatus.PASSED


def test_binary_junk_does_not_break_anything() -> None:
    junk = bytes(range(256)) * 50 + b"\n\x00\xff\xfe" + (FIXTURES / PASS_LOG).read_bytes()
    result = parse_log(iter_lines(io.BytesIO(junk)), 0)
    assert result.status is RunStatus.PASSED
    assert result.totals.tests == 2


# ---------------------------------------------------------------- iter_lines


def test_iter_lines_handles_crlf_and_a_last_line_without_newline() -> None:
    data = b"one\r\ntwo\n\nthree"
    assert list(iter_lines(io.BytesIO(data))) == ["one", "two", "", "three"]


def test_iter_lines_caps_a_line_without_holding_it() -> None:
    data = b"a" * 100 + b"\nnext\n"
    lines = list(iter_lines(io.BytesIO(data), max_line_bytes=10))
    assert lines == ["a" * 10 + "… [90 more bytes]", "next"]


def test_iter_lines_decodes_invalid_utf8() -> None:
    assert list(iter_lines(io.BytesIO(b"caf\xe9\n"))) == ["caf\ufffd"]


def test_iter_lines_across_chunk_boundaries() -> None:
    data = b"".join(f"line {i}\n".encode() for i in range(30_000))
    lines = list(iter_lines(io.BufferedReader(io.BytesIO(data))))  # has read1()
    assert len(lines) == 30_000 and lines[-1] == "line 29999"


# ---------------------------------------------------------------- traceback helpers


def test_exception_summary_of_a_chained_traceback() -> None:
    details = (FIXTURES / BROKEN_LOG).read_text().split("CRITICAL", 1)[1]
    assert exception_summary(details) == (
        "odoo.tools.convert.ParseError: while parsing "
        "/mnt/extra-addons/broken_data_mod/data/broken_data.xml:3, somewhere inside"
    )


def test_exception_summary_without_frames() -> None:
    assert exception_summary("just text\nlast words\n\n") == "last words"
    assert exception_summary("") == ""


def test_find_location_prefers_the_test_file() -> None:
    details = (
        "Traceback (most recent call last):\n"
        '  File "/a/demo/tests/test_demo.py", line 10, in test_x\n'
        "    helper()\n"
        '  File "/a/demo/tests/common.py", line 20, in helper\n'
        "    boom()\n"
        '  File "/odoo/odoo/models.py", line 30, in boom\n'
        "ValueError: x\n"
    )
    assert find_location(details, "demo/tests/test_demo.py", "demo") == (
        "/a/demo/tests/test_demo.py",
        10,
    )
    assert find_location(details, None, "demo") == ("/a/demo/tests/common.py", 20)
    assert find_location(details, None, "other") is None
    assert find_location("no frames", None, "demo") is None


# ---------------------------------------------------------------- fuzzing

_log_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=2_000
)
_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.:()[]! =", min_size=1, max_size=40)
_noise_line = st.one_of(
    st.text(max_size=200).map(lambda s: s.replace("\n", " ")),
    st.sampled_from(
        [
            rec("Starting TestDemo.test_ok ..."),
            rec("FAIL: TestDemo.test_ok", level="ERROR"),
            rec("skipped TestDemo.test_ok : nope"),
            "Traceback (most recent call last):",
            '  File "/x/demo/tests/test_demo.py", line 1, in test_ok',
            result_line(),
            result_line(tests=0, level="WARNING"),
            rec("Module demo loaded in 0.1s (incl. 0.0s test)", logger="odoo.modules.loading"),
            rec("Starting post tests", logger="odoo.service.server"),
        ]
    ).map(lambda s: s.rstrip("\n")),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(text=_log_text, code=st.one_of(st.none(), st.integers(-300, 300)))
def test_fuzz_never_raises_on_arbitrary_text(text: str, code: int | None) -> None:
    result = parse_log(text.split("\n"), code)
    assert result.status in set(RunStatus)
    json.loads(result.to_json())
    junit_xml(result)  # the XML writer copes with whatever the parser kept


@settings(max_examples=100)
@given(data=st.binary(max_size=4_000))
def test_fuzz_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    result = parse_log(iter_lines(io.BytesIO(data), max_line_bytes=512), 0)
    assert result.status is not RunStatus.PASSED  # no Odoo summary in random bytes


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.lists(_noise_line, max_size=15),
    after=st.lists(_noise_line, max_size=15),
    logger=_word.filter(lambda s: ":" not in s and " " not in s),
    message=_word,
    pid=st.integers(0, 99999),
    code=st.one_of(st.none(), st.sampled_from([0, 1, 255])),
)
def test_fuzz_error_line_is_never_green(
    before: list[str], after: list[str], logger: str, message: str, pid: int, code: int | None
) -> None:
    error = rec(message, level="ERROR", logger=logger, pid=pid).rstrip("\n")
    result = parse_log([*before, error, *after], code)
    assert result.status is not RunStatus.PASSED


@settings(max_examples=100)
@given(position=st.integers(0, 10_000), message=_word)
def test_fuzz_error_line_inside_a_real_green_log(position: int, message: str) -> None:
    lines = lines_of(PASS_LOG)
    position %= len(lines) + 1
    error = rec(message, level="ERROR", logger="odoo.something")
    result = parse_log([*lines[:position], error, *lines[position:]], 0)
    assert result.status is not RunStatus.PASSED


@settings(max_examples=50)
@given(code=st.integers(-255, 255).filter(lambda c: c != 0))
def test_fuzz_non_zero_exit_with_green_log_is_never_green(code: int) -> None:
    assert parse_fixture(PASS_LOG, code).status is RunStatus.ERROR
