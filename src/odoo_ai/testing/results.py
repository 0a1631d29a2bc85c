"""Result models for an Odoo test run and the one place that maps a status to an exit code.

The JSON document produced by :meth:`RunResult.to_json` is a public, versioned interface
(documented in docs/test-runner.md and pinned by tests/unit/test_logparse_results.py):
add keys freely, but never rename or remove one without bumping ``SCHEMA``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from odoo_ai.errors import ExitCode

SCHEMA = "odoo-ai.test-results/1"


# The exit codes of `test run` / `test parse` are the CLI's one enum (NO_TESTS = 4 included);
# the test runner's name for it stays.
TestExitCode = ExitCode


class RunStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # tests failed or errored
    ERROR = "error"  # Odoo/infrastructure failed: the results are incomplete
    NO_TESTS = "no-tests"  # nothing matched


class TestStatus(StrEnum):
    __test__ = False

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    # Only seen while a log is being streamed: a finished RunResult never holds it.
    RUNNING = "running"


class Phase(StrEnum):
    AT_INSTALL = "at_install"
    POST_INSTALL = "post_install"


# Why a Problem exists decides what it does to the run status (see logparse.decide_status).
ProblemKind = Literal["infra", "log-error", "note"]


def exit_code_for(status: RunStatus, *, allow_empty: bool = False) -> TestExitCode:
    """The single status -> exit code mapping."""
    if status is RunStatus.PASSED:
        return TestExitCode.PASSED
    if status is RunStatus.FAILED:
        return TestExitCode.FAILED
    if status is RunStatus.NO_TESTS:
        return TestExitCode.PASSED if allow_empty else TestExitCode.NO_TESTS
    return TestExitCode.INFRA


@dataclass(slots=True, eq=False)
class TestCase:
    """One test method as Odoo ran it (subtest failures are folded into their test)."""

    __test__ = False

    module: str
    class_name: str
    method: str
    # `odoo.addons.<module>.tests.<file>.<Class>` when the logger tells us, else `<module>.<Class>`.
    classname: str
    status: TestStatus = TestStatus.RUNNING
    phase: Phase = Phase.AT_INSTALL
    duration: float | None = None
    message: str = ""  # one line: the exception line of the traceback, or the skip reason
    details: str = ""  # the traceback(s) Odoo logged, as text
    file: str | None = None  # frame inside the test module, from the traceback
    line: int | None = None
    pid: int | None = None
    started_at: float | None = None  # log timestamp (epoch seconds), used for durations

    @property
    def id(self) -> str:
        return f"{self.classname}.{self.method}"

    @property
    def description(self) -> str:
        """`Class.method`, the way Odoo names a test in its log."""
        return f"{self.class_name}.{self.method}" if self.class_name else self.method

    @property
    def is_problem(self) -> bool:
        return self.status in (TestStatus.FAILED, TestStatus.ERROR)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "module": self.module,
            "class": self.class_name,
            "method": self.method,
            "classname": self.classname,
            "status": self.status.value,
            "phase": self.phase.value,
            "duration": self.duration,
            "message": self.message,
            "details": self.details,
            "file": self.file,
            "line": self.line,
        }


@dataclass(slots=True)
class OdooModuleCounts:
    """What Odoo itself printed for a module: `Module X: F failures, E errors of N tests`."""

    tests: int
    failures: int
    errors: int

    def to_dict(self) -> dict[str, int]:
        return {"tests": self.tests, "failures": self.failures, "errors": self.errors}


@dataclass(slots=True)
class Totals:
    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0

    @classmethod
    def count(cls, tests: list[TestCase]) -> Totals:
        totals = cls(tests=len(tests))
        for test in tests:
            if test.status is TestStatus.FAILED:
                totals.failed += 1
            elif test.status is TestStatus.ERROR:
                totals.errors += 1
            elif test.status is TestStatus.SKIPPED:
                totals.skipped += 1
            else:
                totals.passed += 1
        return totals

    def to_dict(self) -> dict[str, int]:
        return {
            "tests": self.tests,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
        }


@dataclass(slots=True)
class ModuleResult:
    name: str
    totals: Totals = field(default_factory=Totals)
    # Test time Odoo reported (`Module X loaded in 0.64s (incl. 0.04s test)`), summed.
    duration: float | None = None
    odoo_counts: OdooModuleCounts | None = None

    @property
    def status(self) -> RunStatus:
        reported_bad = self.odoo_counts is not None and (
            self.odoo_counts.failures or self.odoo_counts.errors
        )
        if self.totals.failed or self.totals.errors or reported_bad:
            return RunStatus.FAILED
        return RunStatus.PASSED if self.totals.tests else RunStatus.NO_TESTS

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            **self.totals.to_dict(),
            "duration": self.duration,
            "odoo_reported": self.odoo_counts.to_dict() if self.odoo_counts else None,
        }


@dataclass(slots=True)
class Problem:
    """Something outside the per-test results that matters: see ProblemKind."""

    kind: ProblemKind
    message: str  # one line
    details: str = ""
    level: str | None = None
    logger: str | None = None
    module: str | None = None  # the module Odoo was loading, when known
    test: str | None = None  # the id of the test that was running, when any
    line_no: int | None = None  # 1-based line in the log

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "details": self.details,
            "level": self.level,
            "logger": self.logger,
            "module": self.module,
            "test": self.test,
            "line": self.line_no,
        }


@dataclass(slots=True)
class RunResult:
    status: RunStatus
    totals: Totals
    modules: list[ModuleResult]
    tests: list[TestCase]
    duration: float | None = None
    odoo_exit_code: int | None = None
    database: str | None = None
    summary_line: str | None = None  # Odoo's last `odoo.tests.result` message, verbatim
    problems: list[Problem] = field(default_factory=list)
    started_at: str | None = None  # ISO 8601 from the first log timestamp

    def exit_code(self, *, allow_empty: bool = False) -> TestExitCode:
        return exit_code_for(self.status, allow_empty=allow_empty)

    @property
    def failures(self) -> list[TestCase]:
        return [t for t in self.tests if t.is_problem]

    def to_dict(self, *, allow_empty: bool = False) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "status": self.status.value,
            "exit_code": int(self.exit_code(allow_empty=allow_empty)),
            "totals": self.totals.to_dict(),
            "modules": [m.to_dict() for m in self.modules],
            "tests": [t.to_dict() for t in self.tests],
            "duration": self.duration,
            "odoo_exit_code": self.odoo_exit_code,
            "database": self.database,
            "summary_line": self.summary_line,
            "problems": [p.to_dict() for p in self.problems],
            "started_at": self.started_at,
        }

    def to_json(self, *, allow_empty: bool = False, indent: int | None = 2) -> str:
        # ensure_ascii keeps the document printable on any terminal/CI log encoding.
        return json.dumps(self.to_dict(allow_empty=allow_empty), indent=indent, ensure_ascii=True)
