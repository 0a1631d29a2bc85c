"""The JSON document (schema odoo-ai.test-results/1) and the status -> exit code mapping.

This file pins the public JSON interface: a failure here means consumers may break.
Add keys freely (update the pins and docs/test-runner.md); never rename or drop one
without bumping SCHEMA.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odoo_ai.testing.logparse import parse_log
from odoo_ai.testing.results import (
    SCHEMA,
    RunStatus,
    TestExitCode,
    exit_code_for,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "odoo18-logs"
FAIL_LOG = FIXTURES / "30-test-acc3-i-failing_mod-FAILS.log"
BROKEN_LOG = FIXTURES / "40-install-acc3-i-broken_data_mod-FAILS.log"

TOP_KEYS = {
    "schema",
    "status",
    "exit_code",
    "totals",
    "modules",
    "tests",
    "duration",
    "odoo_exit_code",
    "database",
    "summary_line",
    "problems",
    "started_at",
}
TOTALS_KEYS = {"tests", "passed", "failed", "errors", "skipped"}
MODULE_KEYS = {"name", "status", *TOTALS_KEYS, "duration", "odoo_reported"}
TEST_KEYS = {
    "id",
    "module",
    "class",
    "method",
    "classname",
    "status",
    "phase",
    "duration",
    "message",
    "details",
    "file",
    "line",
}
PROBLEM_KEYS = {"kind", "message", "details", "level", "logger", "module", "test", "line"}


def document(path: Path, code: int | None) -> dict:
    result = parse_log(path.read_text(encoding="utf-8").splitlines(), code)
    return json.loads(result.to_json())


def test_schema_is_versioned() -> None:
    assert SCHEMA == "odoo-ai.test-results/1"


def test_json_document_shape_is_pinned() -> None:
    doc = document(FAIL_LOG, 1)
    assert set(doc) == TOP_KEYS
    assert set(doc["totals"]) == TOTALS_KEYS
    assert all(set(m) == MODULE_KEYS for m in doc["modules"])
    assert all(set(t) == TEST_KEYS for t in doc["tests"])
    assert set(doc["modules"][0]["odoo_reported"]) == {"tests", "failures", "errors"}


def test_json_document_values_for_the_failing_fixture() -> None:
    doc = document(FAIL_LOG, 1)
    assert doc["schema"] == SCHEMA
    assert doc["status"] == "failed"
    assert doc["exit_code"] == 1
    assert doc["totals"] == {"tests": 3, "passed": 1, "failed": 1, "errors": 1, "skipped": 0}
    assert doc["odoo_exit_code"] == 1
    assert doc["database"] == "acc3"
    assert doc["duration"] == pytest.approx(1.255)
    assert doc["problems"] == []
    assert doc["modules"] == [
        {
            "name": "failing_mod",
            "status": "failed",
            "tests": 3,
            "passed": 1,
            "failed": 1,
            "errors": 1,
            "skipped": 0,
            "duration": 0.03,
            "odoo_reported": {"tests": 3, "failures": 1, "errors": 1},
        }
    ]
    failing = doc["tests"][1]
    assert failing == {
        "id": "odoo.addons.failing_mod.tests.test_fail.TestFailingFixture.test_02_fails",
        "module": "failing_mod",
        "class": "TestFailingFixture",
        "method": "test_02_fails",
        "classname": "odoo.addons.failing_mod.tests.test_fail.TestFailingFixture",
        "status": "failed",
        "phase": "at_install",
        "duration": 0.001,
        "message": "AssertionError: 2 != 3 : deliberate assertion failure",
        "details": failing["details"],
        "file": "/mnt/extra-addons/failing_mod/tests/test_fail.py",
        "line": 11,
    }
    assert "deliberate assertion failure" in failing["details"]


def test_json_problems_shape() -> None:
    doc = document(BROKEN_LOG, 255)
    assert doc["status"] == "error"
    assert doc["exit_code"] == 3
    assert doc["problems"]
    assert all(set(p) == PROBLEM_KEYS for p in doc["problems"])
    assert {p["kind"] for p in doc["problems"]} == {"infra"}


def test_statuses_are_the_documented_four() -> None:
    assert {s.value for s in RunStatus} == {"passed", "failed", "error", "no-tests"}


def test_json_is_ascii_and_one_document() -> None:
    text = parse_log(["2026-11-25 23:00:00,000 1 ERROR db x: caf\u00e9 \u2603 "], 0).to_json()
    assert text.isascii()
    assert json.loads(text)["problems"][0]["message"] == "x: caf\u00e9 \u2603"


@pytest.mark.parametrize(
    ("status", "allow_empty", "code"),
    [
        (RunStatus.PASSED, False, 0),
        (RunStatus.FAILED, False, 1),
        (RunStatus.ERROR, False, 3),
        (RunStatus.NO_TESTS, False, 4),
        (RunStatus.NO_TESTS, True, 0),
        (RunStatus.FAILED, True, 1),
        (RunStatus.ERROR, True, 3),
    ],
)
def test_exit_code_mapping(status: RunStatus, allow_empty: bool, code: int) -> None:
    assert exit_code_for(status, allow_empty=allow_empty) == code


def test_exit_code_names() -> None:
    # The test runner's codes are the CLI's one enum (odoo_ai.errors.ExitCode); PASSED is OK.
    assert {name: int(c) for name, c in TestExitCode.__members__.items()} == {
        "OK": 0,
        "PASSED": 0,
        "FAILED": 1,
        "USAGE": 2,
        "INFRA": 3,
        "NO_TESTS": 4,
    }
