"""The parser on EVERY real Odoo 18 log fixture (with the exit code Odoo returned), and the
stand-in excerpts `test run` replays in the integration test against the real logs they
were cut from. A new fixture without a row here fails `test_every_fixture_has_a_row`."""

from __future__ import annotations

from pathlib import Path

import pytest

from odoo_ai.testing.logparse import CRASH_MESSAGE, LogParser, parse_log
from odoo_ai.testing.results import RunStatus

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "odoo18-logs"
STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "standin-addons"

P, F, E = "passed", "failed", "error"
# name -> (status, exit code, tests, the tests' statuses in order)
EXPECTED: dict[str, tuple[RunStatus, int, int, list[str]]] = {
    "01-init-acc1-i-base.log": (RunStatus.ERROR, 3, 0, []),  # no --test-enable: no summary
    "02-server-acc1-port18069.log": (RunStatus.ERROR, 3, 0, []),
    "06-server-acc1-sigterm-exit-code.log": (RunStatus.ERROR, 3, 0, []),
    "10-update-acc1-u-base.log": (RunStatus.ERROR, 3, 0, []),
    "20-test-acc2-i-base-web-tags-web-TestWebController-PASS.log": (RunStatus.PASSED, 0, 2, [P, P]),
    "30-test-acc3-i-failing_mod-FAILS.log": (RunStatus.FAILED, 1, 3, [P, F, E]),
    "33-test-acc2-tags-match-nothing-0-tests.log": (RunStatus.NO_TESTS, 4, 0, []),
    "40-install-acc3-i-broken_data_mod-FAILS.log": (RunStatus.ERROR, 3, 0, []),
    "41-install-acc3-i-unknown-module-name.log": (RunStatus.ERROR, 3, 0, []),
    "44-db-auth-failure-wrong-password.log": (RunStatus.ERROR, 3, 0, []),
}
# stand-in scenario -> the real fixture its tests/standin_test.log was cut from
STANDIN_SOURCES = {
    "tests_pass": "20-test-acc2-i-base-web-tags-web-TestWebController-PASS.log",
    "tests_fail": "30-test-acc3-i-failing_mod-FAILS.log",
    "tests_crash": "40-install-acc3-i-broken_data_mod-FAILS.log",
}


def exit_code_of(log: Path) -> int | None:
    rc = log.with_name(log.name + ".rc")
    if not rc.exists():
        return None
    return int(rc.read_text().strip().rsplit("=", 1)[-1])


def test_every_fixture_has_a_row() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.log")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_fixture(name: str) -> None:
    log = FIXTURES / name
    status, code, tests, statuses = EXPECTED[name]
    result = parse_log(log.read_text(encoding="utf-8").splitlines(keepends=True), exit_code_of(log))
    assert result.status is status
    assert int(result.exit_code()) == code
    assert result.totals.tests == tests
    assert [t.status.value for t in result.tests] == statuses
    if status is RunStatus.ERROR:
        assert any(p.kind == "infra" for p in result.problems)
    else:
        assert not [p for p in result.problems if p.kind != "note"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_fixture_streamed_line_by_line_equals_parsed_at_once(name: str) -> None:
    log = FIXTURES / name
    parser = LogParser()
    for line in log.read_bytes().decode("utf-8").splitlines():
        parser.feed(line)
    streamed = parser.finish(exit_code_of(log))
    whole = parse_log(log.read_text(encoding="utf-8").splitlines(), exit_code_of(log))
    assert streamed.to_dict() == whole.to_dict()


@pytest.mark.parametrize(("scenario", "source"), sorted(STANDIN_SOURCES.items()))
def test_standin_excerpts_hold_the_real_tests(scenario: str, source: str) -> None:
    excerpt = STANDIN / scenario / f"standin_{scenario}" / "tests" / "standin_test.log"
    real = parse_log((FIXTURES / source).read_text(encoding="utf-8").splitlines(), exit_code_of(FIXTURES / source))
    # The stand-in appends Odoo's verdict lines itself; the excerpt holds the tests.
    replayed = parse_log(excerpt.read_text(encoding="utf-8").splitlines(), None)
    assert [(t.class_name, t.method) for t in replayed.tests] == [(t.class_name, t.method) for t in real.tests]
    assert {t.module for t in replayed.tests} <= {f"standin_{scenario}"}
    # (The excerpt ends without Odoo's summary, so a test still running there is a crash.)
    replayed_failures = [t.message for t in replayed.tests if t.is_problem and t.message != CRASH_MESSAGE]
    assert replayed_failures == [t.message for t in real.tests if t.is_problem]
    rc = int(excerpt.with_suffix(".rc").read_text())
    assert rc == exit_code_of(FIXTURES / source)
