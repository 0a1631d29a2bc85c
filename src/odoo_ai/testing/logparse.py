"""Turn an Odoo 18 server log into test results.

Two entry points share one implementation:

* ``parse_log(lines, odoo_exit_code)`` for a finished log (``test parse``);
* ``LogParser``: ``feed(line)`` returns events as lines arrive (progress display while
  ``test run`` streams Odoo's output), then ``finish(odoo_exit_code)`` returns the result.

What Odoo 18 logs (see tests/fixtures/odoo18-logs/README.md):

* records are ``DATE TIME PID LEVEL DB LOGGER: MESSAGE `` (trailing space, ``?`` as DB
  before one is bound); a multi-line message (a traceback) continues on unprefixed lines;
* a test logs ``Starting Class.test_x ...`` on the logger of its module
  (``odoo.addons.<module>.tests.<file>``) and nothing else when it passes; failures and
  errors log ``FAIL: Class.test_x`` / ``ERROR: Class.test_x`` at ERROR level followed by the
  traceback; skips log ``skipped Class.test_x : reason``;
* the last ``odoo.tests.result`` record holds the authoritative totals
  (``N failed, M error(s) of K tests when loading database 'DB'``).

The parser never raises on odd input (binary junk, huge lines, CRLF, interleaved PIDs,
truncated logs). Status rules, in order (documented in docs/test-runner.md):

1. ``error``: an ``infra`` problem — CRITICAL record, registry failure, unknown module
   names, no final ``odoo.tests.result`` record, or an Odoo exit code the log cannot explain;
2. ``failed``: a failed/errored test, Odoo's own ERROR-level verdict lines, or any other
   ERROR record (``log-error``), inside or outside a test;
3. ``no-tests``: Odoo ran 0 tests;
4. ``passed``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from odoo_ai.testing.results import (
    ModuleResult,
    OdooModuleCounts,
    Phase,
    Problem,
    ProblemKind,
    RunResult,
    RunStatus,
    TestCase,
    TestStatus,
    Totals,
)

# Bounds that keep memory and output sane on hostile input.
MAX_LINE_CHARS = 65_536
MAX_DETAILS_CHARS = 262_144
MAX_PROBLEMS = 200
MAX_LINE_BYTES = 1_048_576

ERROR_LEVELS = frozenset({"ERROR", "CRITICAL"})
CRASH_MESSAGE = (
    "the log ended while this test was running: Odoo crashed, was killed, or the log is truncated"
)

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# Odoo's format: '%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s %(perf_info)s'
_RECORD_RE = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2}) (?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})"
    r"(?:[,.](?P<ms>\d{1,6}))? (?P<pid>\d{1,10}) (?P<level>[A-Z_]{3,12}) (?P<db>\S+) "
    r"(?P<logger>[^\s:]+): ?(?P<message>.*)"
)
_TEST_LOGGER_RE = re.compile(r"odoo\.addons\.(?P<module>[^.\s]+)(?:\.|$)")
# Odoo logs a test's lines on the logger of the test's module, which Odoo's loader only
# imports from `<addon>/tests/`; class-level errors come from unittest's own modules.
_TEST_SOURCE_RE = re.compile(r"odoo\.addons\.[^.\s]+\.tests(?:\.|$)|unittest(?:\.|$)")
_ERROR_HOLDER_RE = re.compile(r"(?P<method>\w+) \((?P<path>[\w.]+)\)")
_RESULT_RE = re.compile(
    r"(?P<failed>\d{1,9}) failed, (?P<errors>\d{1,9}) error\(s\) of (?P<tests>\d{1,9}) tests"
    r"(?: when loading database '(?P<db>[^']*)')?"
)
_MODULE_COUNTS_RE = re.compile(
    r"Module (?P<module>[\w.-]+): (?P<failures>\d{1,9}) failures, "
    r"(?P<errors>\d{1,9}) errors of (?P<tests>\d{1,9}) tests"
)
_MODULE_LOADED_RE = re.compile(
    r"Module (?P<module>[\w.-]+) loaded in [\d.]+s"
    r"(?: \(incl\. (?P<test>\d{1,9}(?:\.\d{1,9})?)s test\))?"
)
_LOADING_MODULE_RE = re.compile(
    r"Loading module (?P<module>[\w.-]+) \((?P<index>\d{1,9})/(?P<total>\d{1,9})\)"
)
_POST_TESTS_DONE_RE = re.compile(r"\d{1,9} post-tests in ")
_INVALID_MODULES_PREFIX = "invalid module names, ignored: "
_FRAME_RE = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d{1,9})')


@dataclass(frozen=True, slots=True)
class LogRecord:
    """The prefixed first line of one Odoo log record."""

    timestamp: float | None  # seconds, as logged (server-local time, no zone)
    iso_time: str | None
    pid: int
    level: str
    db: str
    logger: str
    message: str  # first line only, trailing whitespace stripped


# ---------------------------------------------------------------- events (for progress)


@dataclass(frozen=True, slots=True)
class TestStarted:
    __test__ = False
    test: TestCase


@dataclass(frozen=True, slots=True)
class TestFinished:
    """The test's outcome is final (emitted once per test, when Odoo moves on)."""

    __test__ = False
    test: TestCase


@dataclass(frozen=True, slots=True)
class ModuleLoading:
    name: str
    index: int
    total: int


@dataclass(frozen=True, slots=True)
class ProblemFound:
    problem: Problem


@dataclass(frozen=True, slots=True)
class SummaryFound:
    """Odoo printed its final `N failed, M error(s) of K tests` line."""

    failed: int
    errors: int
    tests: int
    database: str | None


ParseEvent = TestStarted | TestFinished | ModuleLoading | ProblemFound | SummaryFound


# ---------------------------------------------------------------- line level helpers


def clean_line(line: str) -> str:
    """Drop the line ending and colour codes; cap the length."""
    line = line.rstrip("\r\n")
    if "\x1b" in line:
        line = _ANSI_RE.sub("", line)
    if len(line) > MAX_LINE_CHARS:
        dropped = len(line) - MAX_LINE_CHARS
        line = f"{line[:MAX_LINE_CHARS]}… [{dropped} more characters]"
    return line


def parse_record(line: str) -> LogRecord | None:
    """The record a prefixed line starts, or None for a continuation line."""
    m = _RECORD_RE.match(line)
    if m is None:
        return None
    timestamp, iso_time = _timestamp(m)
    return LogRecord(
        timestamp=timestamp,
        iso_time=iso_time,
        pid=int(m["pid"]),
        level=m["level"],
        db=m["db"],
        logger=m["logger"],
        message=m["message"].rstrip(),
    )


def _timestamp(m: re.Match[str]) -> tuple[float | None, str | None]:
    micros = int((m["ms"] or "0").ljust(6, "0"))
    try:
        dt = datetime(
            int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]), micros
        )
    except ValueError:  # 2026-13-45 and friends: keep the record, lose the time
        return None, None
    # Naive datetimes: only differences matter, and Odoo logs server-local time.
    return (dt - datetime(1970, 1, 1)).total_seconds(), dt.isoformat(timespec="milliseconds")


def iter_lines(stream: BinaryIO, *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Decode a byte stream into lines without ever holding more than one capped line.

    Uses read1() when available so a live pipe yields lines as soon as they arrive.
    """
    read = getattr(stream, "read1", stream.read)
    pending = bytearray()
    overflow = 0  # bytes dropped from the current line
    while chunk := read(65_536):
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            end = len(chunk) if newline == -1 else newline
            room = max_line_bytes - len(pending)
            piece = chunk[start:end]
            pending += piece[:room]
            overflow += max(0, len(piece) - room)
            if newline == -1:
                break
            yield _decode(pending, overflow)
            pending.clear()
            overflow = 0
            start = newline + 1
    if pending or overflow:
        yield _decode(pending, overflow)


def _decode(data: bytes | bytearray, overflow: int) -> str:
    text = bytes(data).decode("utf-8", errors="replace").rstrip("\r")
    return f"{text}… [{overflow} more bytes]" if overflow else text


# ---------------------------------------------------------------- traceback helpers


def exception_summary(details: str) -> str:
    """The exception line of a traceback (`ValueError: boom`), or its last non-empty line."""
    lines = details.splitlines()
    last_frame = max((i for i, ln in enumerate(lines) if _FRAME_RE.match(ln)), default=-1)
    if last_frame >= 0:
        # After the last frame come its indented source/caret lines, then the exception.
        for ln in lines[last_frame + 1 :]:
            if ln.strip() and not ln.startswith("    "):
                return ln.strip()
    non_empty = [ln.strip() for ln in lines if ln.strip()]
    return non_empty[-1] if non_empty else ""


def find_location(
    details: str, test_logger_path: str | None, module: str
) -> tuple[str, int] | None:
    """The deepest traceback frame inside the test's own file (else its module's tests/)."""
    frames = [(m["path"], int(m["line"])) for m in map(_FRAME_RE.match, details.splitlines()) if m]
    if not frames:
        return None
    candidates: list[str] = []
    if test_logger_path:
        candidates.append("/" + test_logger_path)  # e.g. /failing_mod/tests/test_fail.py
    candidates += [f"/{module}/tests/", f"/{module}/"]
    for needle in candidates:
        for path, line in reversed(frames):
            if needle in path.replace("\\", "/"):
                return path, line
    return None


def _logger_file(logger: str) -> str | None:
    """`odoo.addons.m.tests.test_x` -> `m/tests/test_x.py`."""
    if not logger.startswith("odoo.addons."):
        return None
    return logger.removeprefix("odoo.addons.").replace(".", "/") + ".py"


# ---------------------------------------------------------------- the parser


@dataclass(slots=True)
class _PidState:
    """Per process, because several Odoo processes may write to one log."""

    current: TestCase | None = None
    phase: Phase = Phase.AT_INSTALL
    loading_module: str | None = None


@dataclass(slots=True)
class _Tail:
    """Continuation lines of the last record, kept only when someone needs them."""

    owner: TestCase | Problem
    lines: list[str] = field(default_factory=list)
    size: int = 0


class LogParser:
    """Incremental Odoo log parser: feed() lines, then finish() once."""

    def __init__(self) -> None:
        self.tests: list[TestCase] = []
        self.problems: list[Problem] = []
        self._by_key: dict[tuple[str, str, str], TestCase] = {}
        self._pids: dict[int, _PidState] = {}
        self._module_counts: dict[str, OdooModuleCounts] = {}
        self._module_test_time: dict[str, float] = {}
        self._summary: tuple[int, int, int] | None = None  # failed, errors, tests
        self._summary_line: str | None = None
        self._database: str | None = None
        self._odoo_said_failed = False
        # Set by the handlers that account for an ERROR record (a FAIL line, a verdict...).
        self._explained = False
        self._tail: _Tail | None = None
        self._last_level: str | None = None
        self._first: LogRecord | None = None
        self._last_ts: float | None = None
        self._line_no = 0
        self._dropped_problems = 0
        self._dropped_log_error = False
        self._finished = False

    # -- public API

    def feed(self, line: str) -> list[ParseEvent]:
        """Consume one line (with or without its line ending); return what it revealed."""
        self._line_no += 1
        line = clean_line(line)
        record = parse_record(line)
        if record is None:
            return self._continuation(line)
        self._flush_tail()
        self._note_record(record)
        return self._dispatch(record)

    def feed_all(self, lines: Iterable[str]) -> list[ParseEvent]:
        events: list[ParseEvent] = []
        for line in lines:
            events += self.feed(line)
        return events

    @property
    def totals_so_far(self) -> Totals:
        """Counts of the tests seen so far (running ones count as passed)."""
        return Totals.count(self.tests)

    def finish(self, odoo_exit_code: int | None = None) -> RunResult:
        """Build the result. Call once, after the last line."""
        if self._finished:
            raise RuntimeError("LogParser.finish() called twice")
        self._finished = True
        self._flush_tail()
        complete = self._summary is not None
        for state in self._pids.values():
            if state.current is not None:
                self._close(state, None, crashed=not complete)
        for test in self.tests:  # defensive: a final result never holds RUNNING
            if test.status is TestStatus.RUNNING:
                test.status = TestStatus.PASSED if complete else TestStatus.ERROR
        self._finalize_texts()
        self._check_completeness()
        totals = self._totals()
        self._check_exit_code(odoo_exit_code, totals)
        if self._dropped_problems:
            self.problems.append(
                Problem("note", f"{self._dropped_problems} more problems were not recorded")
            )
        return RunResult(
            status=decide_status(
                totals=totals,
                tests=self.tests,
                problems=self.problems,
                odoo_said_failed=self._odoo_said_failed or self._dropped_log_error,
            ),
            totals=totals,
            modules=self._modules(),
            tests=self.tests,
            duration=self._duration(),
            odoo_exit_code=odoo_exit_code,
            database=self._database,
            summary_line=self._summary_line,
            problems=self.problems,
            started_at=self._first.iso_time if self._first else None,
        )

    # -- line handling

    def _continuation(self, line: str) -> list[ParseEvent]:
        if self._tail is not None:
            self._append_tail(line)
            return []
        if line.startswith("Traceback (most recent call last):") and self._last_level != "WARNING":
            # An uncaught exception printed to stderr (no log prefix): worth showing, and it
            # explains a non-zero exit code. WARNING records carry their own exc_info.
            problem = Problem(
                "note", "Python traceback outside a log record", line_no=self._line_no
            )
            self._tail = _Tail(problem)
            self._append_tail(line)
            return self._add_problem(problem)
        return []

    def _append_tail(self, line: str) -> None:
        tail = self._tail
        assert tail is not None
        if tail.size >= MAX_DETAILS_CHARS:
            return
        tail.lines.append(line)
        tail.size += len(line) + 1

    def _flush_tail(self) -> None:
        tail, self._tail = self._tail, None
        if tail is None or not tail.lines:
            return
        text = "\n".join(tail.lines).rstrip()
        if tail.size >= MAX_DETAILS_CHARS:
            text += "\n… [truncated]"
        owner = tail.owner
        # Several FAIL records for one test (subtests) are kept one after the other.
        owner.details = f"{owner.details}\n\n{text}" if owner.details else text

    def _note_record(self, record: LogRecord) -> None:
        if self._first is None:
            self._first = record
        if record.timestamp is not None:
            self._last_ts = record.timestamp
        if record.db not in ("?", "None"):
            self._database = record.db
        self._last_level = record.level

    def _dispatch(self, record: LogRecord) -> list[ParseEvent]:
        state = self._pids.setdefault(record.pid, _PidState())
        if record.level == "CRITICAL":
            # Odoo logs CRITICAL when it gives up (e.g. `Failed to initialize database`).
            return self._infra(record, state, f"Odoo logged CRITICAL: {record.message}")
        self._explained = False
        events: list[ParseEvent] = []
        for handler in (self._test_line, self._odoo_line):
            handled = handler(record, state, record.message)
            if handled is not None:
                events = handled
                break
        if record.level == "ERROR" and not self._explained:
            # Whatever it says, an ERROR nobody accounts for keeps the run from being green.
            events += self._stray_error(record, state)
        return events

    def _test_line(
        self, record: LogRecord, state: _PidState, message: str
    ) -> list[ParseEvent] | None:
        """Starting / FAIL / ERROR / skipped / unexpected success, on a test logger.

        Restricting to test loggers keeps an addon's own `ERROR: ...` message from
        becoming a fake test (it stays an unexplained ERROR, so the run is not green).
        """
        if not _TEST_SOURCE_RE.match(record.logger):
            return None
        if message.startswith("Starting ") and message.endswith(" ..."):
            return self._start(record, state, message[len("Starting ") : -len(" ...")])
        if record.level == "ERROR":
            kind, sep, desc = message.partition(": ")
            if sep and kind in ("FAIL", "ERROR") and desc:
                status = TestStatus.FAILED if kind == "FAIL" else TestStatus.ERROR
                return self._outcome(record, state, desc, status)
            if message.startswith("unexpected success for "):  # Odoo <= 16 wording
                desc = message.removeprefix("unexpected success for ")
                return self._outcome(record, state, desc, TestStatus.FAILED, "unexpected success")
        if message.startswith("skipped ") and " : " in message:
            desc, _, reason = message.removeprefix("skipped ").partition(" : ")
            return self._skip(record, state, desc, reason)
        return None

    def _odoo_line(
        self, record: LogRecord, state: _PidState, message: str
    ) -> list[ParseEvent] | None:
        """Odoo's own progress and verdict lines."""
        logger = record.logger
        if logger == "odoo.tests.result" and (m := _RESULT_RE.match(message)):
            return self._result_line(record, state, m)
        if logger == "odoo.modules.loading":
            return self._loading_line(record, state, message)
        if logger == "odoo.service.server":
            if message == "Starting post tests":
                events = self._close(state, record.timestamp)
                state.phase = Phase.POST_INSTALL
                state.loading_module = None
                return events
            if _POST_TESTS_DONE_RE.match(message):
                return self._close(state, record.timestamp)
        if logger == "odoo.modules.registry" and message.startswith("Failed to load registry"):
            return self._infra(record, state, "Odoo failed to load the registry")
        return None

    def _loading_line(
        self, record: LogRecord, state: _PidState, message: str
    ) -> list[ParseEvent] | None:
        if m := _LOADING_MODULE_RE.match(message):
            events = self._close(state, record.timestamp)
            state.loading_module = m["module"]
            return [*events, ModuleLoading(m["module"], int(m["index"]), int(m["total"]))]
        if m := _MODULE_LOADED_RE.match(message):
            if m["test"] is not None:
                times = self._module_test_time
                times[m["module"]] = times.get(m["module"], 0.0) + float(m["test"])
            return self._close(state, record.timestamp)
        if m := _MODULE_COUNTS_RE.match(message):
            counts = OdooModuleCounts(int(m["tests"]), int(m["failures"]), int(m["errors"]))
            self._module_counts[m["module"]] = counts
            if record.level in ERROR_LEVELS or counts.failures or counts.errors:
                self._odoo_said_failed = True
                self._explained = True
            return self._close(state, record.timestamp)
        if message.startswith("At least one test failed"):
            self._odoo_said_failed = True
            self._explained = True
            return []
        if message.startswith(_INVALID_MODULES_PREFIX):
            names = message.removeprefix(_INVALID_MODULES_PREFIX)
            return self._infra(record, state, f"Odoo ignored unknown module names: {names}")
        return None

    # -- tests

    def _start(self, record: LogRecord, state: _PidState, desc: str) -> list[ParseEvent]:
        events = self._close(state, record.timestamp)
        test = self._new_test(record, state, desc)
        test.started_at = record.timestamp
        state.current = test
        return [*events, TestStarted(test)]

    def _outcome(
        self,
        record: LogRecord,
        state: _PidState,
        desc: str,
        status: TestStatus,
        message: str = "",
    ) -> list[ParseEvent]:
        test = self._lookup(record, state, desc)
        # An error outranks a failure: one test can log several (subtests).
        if test.status is not TestStatus.ERROR:
            test.status = status
        if message and not test.message:
            test.message = message
        self._odoo_said_failed = True
        self._explained = True
        self._set_duration(test, record.timestamp)
        self._tail = _Tail(test)
        if desc.startswith("Subtest "):  # say which subtest the traceback belongs to
            self._append_tail(record.message)
        return []

    def _skip(
        self, record: LogRecord, state: _PidState, desc: str, reason: str
    ) -> list[ParseEvent]:
        test = self._lookup(record, state, desc)
        if test.status is TestStatus.RUNNING:
            test.status = TestStatus.SKIPPED
            test.message = reason.strip()
        self._set_duration(test, record.timestamp)
        return []

    def _lookup(self, record: LogRecord, state: _PidState, desc: str) -> TestCase:
        """The test a FAIL/ERROR/skipped line is about: running, seen before, or new."""
        key = self._key(record, state, desc)
        current = state.current
        if current is not None and (current.module, current.class_name, current.method) == key:
            return current
        if (known := self._by_key.get(key)) is not None:
            return known
        # No Starting line (setUpClass errors, or a log that begins mid-run).
        return self._new_test(record, state, desc)

    def _new_test(self, record: LogRecord, state: _PidState, desc: str) -> TestCase:
        module, class_name, method, classname = _describe(desc, record.logger, state)
        test = TestCase(
            module=module,
            class_name=class_name,
            method=method,
            classname=classname,
            phase=state.phase,
            pid=record.pid,
        )
        self.tests.append(test)
        self._by_key[(module, class_name, method)] = test
        return test

    def _key(self, record: LogRecord, state: _PidState, desc: str) -> tuple[str, str, str]:
        module, class_name, method, _ = _describe(desc, record.logger, state)
        return module, class_name, method

    def _close(
        self, state: _PidState, timestamp: float | None, *, crashed: bool = False
    ) -> list[ParseEvent]:
        test, state.current = state.current, None
        if test is None:
            return []
        if test.status is TestStatus.RUNNING:
            if crashed:
                test.status = TestStatus.ERROR
                test.message = test.message or CRASH_MESSAGE
            else:
                test.status = TestStatus.PASSED
        self._set_duration(test, timestamp)
        return [TestFinished(test)]

    @staticmethod
    def _set_duration(test: TestCase, timestamp: float | None) -> None:
        if test.duration is None and test.started_at is not None and timestamp is not None:
            test.duration = round(max(0.0, timestamp - test.started_at), 3)

    # -- verdicts and problems

    def _result_line(
        self, record: LogRecord, state: _PidState, m: re.Match[str]
    ) -> list[ParseEvent]:
        events = self._close(state, record.timestamp)
        failed, errors, tests = int(m["failed"]), int(m["errors"]), int(m["tests"])
        self._summary = (failed, errors, tests)  # the last one wins, as in Odoo's exit code
        self._summary_line = record.message
        if m["db"]:
            self._database = m["db"]
        if record.level in ERROR_LEVELS or failed or errors:
            self._odoo_said_failed = True
            self._explained = True
        return [*events, SummaryFound(failed, errors, tests, m["db"])]

    def _stray_error(self, record: LogRecord, state: _PidState) -> list[ParseEvent]:
        problem = self._problem("log-error", record, state, f"{record.logger}: {record.message}")
        self._tail = _Tail(problem)
        return self._add_problem(problem)

    def _infra(self, record: LogRecord, state: _PidState, message: str) -> list[ParseEvent]:
        self._explained = True
        problem = self._problem("infra", record, state, message)
        self._tail = _Tail(problem)
        return self._add_problem(problem)

    def _problem(
        self, kind: ProblemKind, record: LogRecord, state: _PidState, message: str
    ) -> Problem:
        return Problem(
            kind,
            message,
            level=record.level,
            logger=record.logger,
            module=state.loading_module,
            test=state.current.id if state.current else None,
            line_no=self._line_no,
        )

    def _add_problem(self, problem: Problem) -> list[ParseEvent]:
        # The infra ones always matter for the status: never drop those.
        if len(self.problems) >= MAX_PROBLEMS and problem.kind != "infra":
            self._dropped_problems += 1
            if problem.kind == "log-error":
                self._dropped_log_error = True  # keep its effect on the status
            return []
        self.problems.append(problem)
        return [ProblemFound(problem)]

    def _check_completeness(self) -> None:
        if self._summary is not None:
            return
        if self.tests:
            message = (
                f"Odoo stopped before printing its test summary (odoo.tests.result) after "
                f"{len(self.tests)} test(s): it crashed, was killed, or the log is truncated"
            )
        else:
            message = (
                "Odoo printed no test summary (odoo.tests.result): it failed before running "
                "tests, or ran without --test-enable"
            )
        self.problems.append(Problem("infra", message))

    def _check_exit_code(self, code: int | None, totals: Totals) -> None:
        if code is None or code == 0:
            return
        shows_failures = bool(
            totals.failed
            or totals.errors
            or self._odoo_said_failed
            or any(t.is_problem for t in self.tests)
        )
        if code == 1 and shows_failures:
            return  # Odoo's normal exit code for failing tests
        self.problems.append(Problem("infra", explain_odoo_exit_code(code)))

    def _finalize_texts(self) -> None:
        for test in self.tests:
            if not test.details:
                continue
            if not test.message:
                test.message = exception_summary(test.details)
            if test.file is None:
                where = find_location(test.details, _logger_file_of(test), test.module)
                if where is not None:
                    test.file, test.line = where
        for problem in self.problems:
            if problem.details and problem.kind == "note":
                summary = exception_summary(problem.details)
                if summary:
                    problem.message = f"{problem.message}: {summary}"

    # -- result assembly

    def _totals(self) -> Totals:
        if self._summary is None:
            return Totals.count(self.tests)
        failed, errors, tests = self._summary
        skipped = sum(1 for t in self.tests if t.status is TestStatus.SKIPPED)
        return Totals(
            tests=tests,
            passed=max(0, tests - failed - errors - skipped),
            failed=failed,
            errors=errors,
            skipped=skipped,
        )

    def _modules(self) -> list[ModuleResult]:
        by_name: dict[str, list[TestCase]] = {}
        for test in self.tests:
            by_name.setdefault(test.module, []).append(test)
        for name in self._module_counts:
            by_name.setdefault(name, [])
        return [
            ModuleResult(
                name=name,
                totals=Totals.count(tests),
                duration=self._module_test_time.get(name),
                odoo_counts=self._module_counts.get(name),
            )
            for name, tests in by_name.items()
        ]

    def _duration(self) -> float | None:
        first = self._first.timestamp if self._first else None
        if first is None or self._last_ts is None:
            return None
        return round(max(0.0, self._last_ts - first), 3)


def _logger_file_of(test: TestCase) -> str | None:
    if test.classname.startswith("odoo.addons.") and test.class_name:
        return _logger_file(test.classname.removesuffix("." + test.class_name))
    return None


def _describe(desc: str, logger: str, state: _PidState) -> tuple[str, str, str, str]:
    """(module, class, method, classname) from Odoo's test description and logger.

    Descriptions: `Class.method`, `Subtest Class.method (params)` (folded into its test),
    or `setUpClass (odoo.addons.m.tests.t.Class)` for class/module level errors.
    """
    desc = desc.strip()
    if desc.startswith("Subtest "):
        desc = desc.removeprefix("Subtest ").split(" ", 1)[0]
    if m := _ERROR_HOLDER_RE.fullmatch(desc):
        path, method = m["path"], m["method"]
        module = _module_of(path) or _module_of(logger) or state.loading_module or "unknown"
        if method in ("setUpModule", "tearDownModule"):
            return module, "", method, path
        return module, path.rsplit(".", 1)[-1], method, path
    class_name, _, method = desc.rpartition(".")
    module = _module_of(logger) or state.loading_module or "unknown"
    if logger.startswith("odoo.addons."):
        classname = f"{logger}.{class_name}" if class_name else logger
    else:
        classname = f"{module}.{class_name}" if class_name else module
    return module, class_name, method or desc, classname


def _module_of(dotted: str) -> str | None:
    m = _TEST_LOGGER_RE.match(dotted)
    return m["module"] if m else None


def explain_odoo_exit_code(code: int) -> str:
    if code == 1:
        return (
            "Odoo exited with code 1 but its log shows no failing test: "
            "it stopped on an uncaught error"
        )
    if code in (255, -1):
        return (
            f"Odoo exited with code {code}: the registry failed to load (bad data, missing "
            "dependency or import error) and everything was rolled back"
        )
    if code == 2:
        return "Odoo exited with code 2: bad command line or configuration (e.g. --addons-path)"
    if code < 0:
        return f"Odoo was killed by signal {-code}"
    if code > 128:
        return f"Odoo exited with code {code}: probably killed by signal {code - 128}"
    return f"Odoo exited with code {code}"


def decide_status(
    *,
    totals: Totals,
    tests: list[TestCase],
    problems: list[Problem],
    odoo_said_failed: bool,
) -> RunStatus:
    """Rules from the module docstring; `passed` needs a complete, clean log."""
    if any(p.kind == "infra" for p in problems):
        return RunStatus.ERROR
    if (
        totals.failed
        or totals.errors
        or odoo_said_failed
        or any(t.is_problem for t in tests)
        or any(p.kind == "log-error" for p in problems)
    ):
        return RunStatus.FAILED
    if totals.tests == 0 and not tests:
        return RunStatus.NO_TESTS
    return RunStatus.PASSED


def parse_log(lines: Iterable[str], odoo_exit_code: int | None = None) -> RunResult:
    """Parse a whole log. `lines` may carry their line endings."""
    parser = LogParser()
    for line in lines:
        parser.feed(line)
    return parser.finish(odoo_exit_code)
