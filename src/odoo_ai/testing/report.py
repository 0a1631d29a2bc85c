"""Renderings of a RunResult: JUnit XML, GitHub step summary and annotations, human text.

Everything here treats log text as hostile: it is stripped of characters XML cannot hold,
escaped for GitHub workflow commands and Markdown, and never printed at the start of a line
where GitHub would read it as a workflow command (`::add-mask::`, `##[...]`).
"""

from __future__ import annotations

import html
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.status import Status
from rich.text import Text

from odoo_ai.testing.logparse import (
    ModuleLoading,
    ParseEvent,
    ProblemFound,
    TestFinished,
    TestStarted,
    exception_summary,
)
from odoo_ai.testing.results import (
    ModuleResult,
    Problem,
    RunResult,
    RunStatus,
    TestCase,
    TestStatus,
    Totals,
)

PathMap = Sequence[tuple[str, str]]

# XML 1.0 cannot carry most C0 controls, lone surrogates or U+FFFE/U+FFFF at all.
_XML_INVALID_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
# GitHub reads `::cmd` and `##[cmd]` after leading whitespace on stdout *and* stderr.
_WORKFLOW_COMMAND_RE = re.compile(r"(?m)^(\s*)(::|##\[)")
_ZWSP = "\u200b"

MAX_ANNOTATION_CHARS = 4_000
MAX_SUMMARY_DETAILS_CHARS = 20_000
MAX_SUMMARY_FAILURES = 50
MAX_HUMAN_TRACEBACK_LINES = 30

_STATUS_WORD = {
    TestStatus.FAILED: "FAIL",
    TestStatus.ERROR: "ERROR",
    TestStatus.SKIPPED: "SKIP",
    TestStatus.PASSED: "PASS",
    TestStatus.RUNNING: "RUN",
}


# ---------------------------------------------------------------- paths


def map_path(path: str, path_map: PathMap = (), workspace: str | None = None) -> str:
    """Rewrite a path Odoo saw (in a container) into one the repository knows.

    The first matching `(prefix, replacement)` wins; then a path under `workspace`
    (GITHUB_WORKSPACE) becomes relative to it, which is what annotations want.
    """
    for prefix, replacement in path_map:
        if prefix and _under(path, prefix):
            rest = path[len(prefix) :].lstrip("/")
            path = f"{replacement.rstrip('/')}/{rest}" if replacement else rest
            break
    if workspace:
        root = workspace.rstrip("/") + "/"
        if path.startswith(root):
            path = path[len(root) :]
    return path


def _under(path: str, prefix: str) -> bool:
    if not path.startswith(prefix):
        return False
    return prefix.endswith("/") or len(path) == len(prefix) or path[len(prefix)] == "/"


# ---------------------------------------------------------------- JUnit


def _xml_text(text: str) -> str:
    return _XML_INVALID_RE.sub("\ufffd", text)


def _exception_type(message: str) -> str:
    head = message.split(":", 1)[0].strip()
    return head if head and " " not in head and len(head) < 200 else ""


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.3f}"


def junit_xml(result: RunResult, *, path_map: PathMap = (), workspace: str | None = None) -> bytes:
    """JUnit XML: <testsuites> → one <testsuite> per module → <testcase> per test.

    A run that is not green because of something outside the tests (Odoo crashed, an ERROR
    outside any test) gets an extra `odoo` suite with one failing testcase, so reporters
    that only look at the XML never show it as green.
    """
    root = ET.Element("testsuites", name="odoo")
    suites: list[ET.Element] = []
    for module in result.modules:
        tests = [t for t in result.tests if t.module == module.name]
        suites.append(_junit_suite(module.name, tests, module, result, path_map, workspace))
    synthetic = _synthetic_case(result)
    if synthetic is not None:
        suite = ET.Element("testsuite", name="odoo")
        suite.append(synthetic)
        _set_counts(suite, [synthetic])
        suites.append(suite)
    root.extend(suites)
    _set_counts(root, [case for suite in suites for case in suite.iter("testcase")])
    if result.duration is not None:
        root.set("time", _seconds(result.duration))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _junit_suite(
    name: str,
    tests: list[TestCase],
    module: ModuleResult,
    result: RunResult,
    path_map: PathMap,
    workspace: str | None,
) -> ET.Element:
    suite = ET.Element("testsuite", name=_xml_text(name))
    if result.started_at:
        suite.set("timestamp", result.started_at)
    for test in tests:
        suite.append(_junit_case(test, path_map, workspace))
    _set_counts(suite, list(suite))
    suite.set("time", _seconds(module.duration or sum(t.duration or 0.0 for t in tests)))
    return suite


def _junit_case(test: TestCase, path_map: PathMap, workspace: str | None) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=_xml_text(test.classname),
        name=_xml_text(test.method),
        time=_seconds(test.duration),
    )
    if test.file:
        case.set("file", _xml_text(map_path(test.file, path_map, workspace)))
        if test.line is not None:
            case.set("line", str(test.line))
    if test.status is TestStatus.SKIPPED:
        ET.SubElement(case, "skipped", message=_xml_text(test.message))
    elif test.is_problem:
        tag = "failure" if test.status is TestStatus.FAILED else "error"
        child = ET.SubElement(case, tag, message=_xml_text(test.message))
        if exc_type := _exception_type(test.message):
            child.set("type", _xml_text(exc_type))
        child.text = _xml_text(test.details or test.message)
    return case


def _synthetic_case(result: RunResult) -> ET.Element | None:
    infra = [p for p in result.problems if p.kind == "infra"]
    log_errors = [p for p in result.problems if p.kind == "log-error"]
    if result.status is RunStatus.ERROR:
        problems, tag = infra + [p for p in result.problems if p.kind == "note"], "error"
    elif log_errors:
        problems, tag = log_errors, "failure"
    else:
        return None
    case = ET.Element("testcase", classname="odoo", name="odoo run", time="0.000")
    child = ET.SubElement(case, tag, message=_xml_text(problems[0].message if problems else ""))
    child.text = _xml_text("\n\n".join(_problem_text(p) for p in problems))
    return case


def _problem_text(problem: Problem) -> str:
    return f"{problem.message}\n{problem.details}".rstrip() if problem.details else problem.message


def _set_counts(element: ET.Element, cases: list[ET.Element]) -> None:
    element.set("tests", str(len(cases)))
    for attr, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        element.set(attr, str(sum(1 for c in cases if c.find(tag) is not None)))


def write_junit(
    result: RunResult, path: Path, *, path_map: PathMap = (), workspace: str | None = None
) -> None:
    """Write atomically, so a reader never sees half a file."""
    data = junit_xml(result, path_map=path_map, workspace=workspace)
    _atomic_write(path, data)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- GitHub Actions


def escape_data(value: str) -> str:
    """Escape the message part of a workflow command."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a `key=value` property of a workflow command."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str, **properties: str | int | None) -> str:
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None and value != ""
    )
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


def github_annotations(
    result: RunResult, *, path_map: PathMap = (), workspace: str | None = None
) -> list[str]:
    """`::error` lines: one per failed/errored test (file/line when known), one per problem."""
    lines = []
    for test in result.failures:
        body = test.message
        if test.details:
            body = f"{body}\n\n{test.details}" if body else test.details
        lines.append(
            workflow_command(
                "error",
                _cap(body, MAX_ANNOTATION_CHARS),
                file=map_path(test.file, path_map, workspace) if test.file else None,
                line=test.line if test.file else None,
                title=f"{_STATUS_WORD[test.status]}: {test.module} {test.description}",
            )
        )
    for problem in result.problems:
        if problem.kind == "note" and result.status is not RunStatus.ERROR:
            continue  # a traceback after a green run is worth a look, not a red mark
        command = "warning" if problem.kind == "note" else "error"
        title = "Odoo log error" if problem.kind == "log-error" else "Odoo run"
        lines.append(
            workflow_command(
                command, _cap(_problem_text(problem), MAX_ANNOTATION_CHARS), title=title
            )
        )
    return lines


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n… [truncated]"


_STATUS_BADGE = {
    RunStatus.PASSED: "✅ passed",
    RunStatus.FAILED: "❌ failed",
    RunStatus.ERROR: "💥 error",
    RunStatus.NO_TESTS: "⚪ no tests",
}


def _md_cell(text: str) -> str:
    return html.escape(" ".join(text.split())).replace("|", "\\|")


def _fenced(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _totals_sentence(totals: Totals) -> str:
    return (
        f"{_plural(totals.tests, 'test')}: {totals.passed} passed, {totals.failed} failed, "
        f"{_plural(totals.errors, 'error')}, {totals.skipped} skipped"
    )


NO_TESTS_HINT = "No test ran. Odoo reports this as success: check --test-tags and the module names."


def github_summary(result: RunResult) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY."""
    out = [f"### Odoo tests: {_STATUS_BADGE[result.status]}", ""]
    facts = [f"**{_totals_sentence(result.totals)}**"]
    if result.duration is not None:
        facts.append(f"{result.duration:.2f}s")
    if result.database:
        facts.append(f"database `{_md_cell(result.database)}`")
    if result.odoo_exit_code is not None:
        facts.append(f"Odoo exit code {result.odoo_exit_code}")
    out += [" · ".join(facts), ""]
    if result.status is RunStatus.NO_TESTS:
        out += [NO_TESTS_HINT, ""]
    if result.modules:
        out += [
            "| Module | Status | Tests | Passed | Failed | Errors | Skipped | Time |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for m in result.modules:
            t = m.totals
            time = f"{m.duration:.2f}s" if m.duration is not None else ""
            out.append(
                f"| {_md_cell(m.name)} | {_STATUS_BADGE[m.status]} | {t.tests} | {t.passed} "
                f"| {t.failed} | {t.errors} | {t.skipped} | {time} |"
            )
        out.append("")
    out += _summary_charts(result)
    failures = result.failures
    if failures:
        out += ["#### Failures", ""]
        for test in failures[:MAX_SUMMARY_FAILURES]:
            out += _summary_failure(test)
        if len(failures) > MAX_SUMMARY_FAILURES:
            out += [f"… and {len(failures) - MAX_SUMMARY_FAILURES} more.", ""]
    problems = [p for p in result.problems if p.kind != "note" or result.status is RunStatus.ERROR]
    if problems:
        out += ["#### Problems", ""]
        for problem in problems:
            out += _summary_problem(problem)
    return "\n".join(out) + "\n"


SLOWEST_TESTS = 10


def _summary_charts(result: RunResult) -> list[str]:
    """A pie of the outcomes, the modules' test time as a Gantt chart (failed ones red) and
    the slowest tests. A test's time is what the log says: from the line that starts it to
    the one that ends it (its outcome, the next test, or the next module), at the log's
    millisecond timestamps."""
    from odoo_ai import charts

    out: list[str] = []
    pie = charts.outcome_pie(result.totals.to_dict())
    tests = [_timing(t) for t in result.tests]
    modules = charts.modules_gantt([m.to_dict() for m in result.modules], tests)
    for chart in (pie, modules):
        if chart:
            out += [charts.fenced(chart), ""]
    slowest = charts.slowest(tests, SLOWEST_TESTS)
    if slowest:
        out += [f"#### Slowest {_plural(len(slowest), 'test')}", "", "| Time | Module | Test | Status |",
                "|---:|---|---|---|"]
        out += [f"| {t['duration']:.2f}s | {_md_text(t['module'])} | {_md_text(t['test'])} | {t['status']} |"
                for t in slowest]
        out.append("")
    return out


def _timing(test: TestCase) -> dict[str, object]:
    return {"module": test.module, "test": test.description, "status": test.status.value,
            "duration": test.duration}


def _md_text(text: str) -> str:
    """A table cell of hostile text: no HTML, no cell end, no code span."""
    return _md_cell(text).replace("`", "\\`")


def _summary_failure(test: TestCase) -> list[str]:
    title = f"<b>{_STATUS_WORD[test.status]}</b> {html.escape(test.module)} · " + html.escape(
        test.description
    )
    if test.message:
        title += f": {html.escape(_cap(test.message, 300))}"
    where = f"\n\n`{_md_cell(test.file)}:{test.line}`" if test.file else ""
    body = _fenced(_cap(test.details or test.message, MAX_SUMMARY_DETAILS_CHARS))
    return [f"<details><summary>{title}</summary>{where}", "", body, "", "</details>", ""]


def _summary_problem(problem: Problem) -> list[str]:
    line = f"- **{problem.kind}**: {_md_cell(problem.message)}"
    if problem.module:
        line += f" (while loading module `{_md_cell(problem.module)}`)"
    if not problem.details:
        return [line]
    details = _fenced(_cap(problem.details, MAX_SUMMARY_DETAILS_CHARS))
    return [line, "", "  <details><summary>details</summary>", "", details, "", "  </details>", ""]


def append_step_summary(result: RunResult, path: Path) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(github_summary(result))


# ---------------------------------------------------------------- human output


def safe_text(text: str) -> str:
    """Printable, and never a GitHub workflow command (runners parse stderr too)."""
    text = _CONTROL_RE.sub("\ufffd", text)
    return _WORKFLOW_COMMAND_RE.sub(lambda m: f"{m[1]}{m[2][0]}{_ZWSP}{m[2][1:]}", text)


_HUMAN_STYLE = {
    RunStatus.PASSED: "bold green",
    RunStatus.FAILED: "bold red",
    RunStatus.ERROR: "bold red",
    RunStatus.NO_TESTS: "bold yellow",
}
_TEST_STYLE = {
    TestStatus.PASSED: "green",
    TestStatus.FAILED: "red",
    TestStatus.ERROR: "red",
    TestStatus.SKIPPED: "yellow",
    TestStatus.RUNNING: "cyan",
}


def _line(*parts: tuple[str, str] | str) -> Text:
    return Text.assemble(
        *((safe_text(p), "") if isinstance(p, str) else (safe_text(p[0]), p[1]) for p in parts)
    )


def render_human(result: RunResult, console: Console, *, allow_empty: bool = False) -> None:
    """The end-of-run report (to stderr: stdout is kept for --json)."""
    for module in result.modules:
        console.print(_module_line(module), soft_wrap=True)
    failures = result.failures
    if failures:
        console.print()
    for test in failures:
        _print_failure(console, test)
    problems = [p for p in result.problems if p.kind != "note" or result.status is RunStatus.ERROR]
    if problems:
        console.print()
        console.print(_line(("Problems:", "bold")), soft_wrap=True)
        for problem in problems:
            _print_problem(console, problem)
    console.print()
    if result.status is RunStatus.NO_TESTS:
        console.print(_line((NO_TESTS_HINT, "yellow")), soft_wrap=True)
    console.print(_verdict_line(result, allow_empty=allow_empty), soft_wrap=True)


def _module_line(module: ModuleResult) -> Text:
    t = module.totals
    time = f" ({module.duration:.2f}s)" if module.duration is not None else ""
    return _line(
        ("  ✓ " if module.status is RunStatus.PASSED else "  ✗ ", _HUMAN_STYLE[module.status]),
        (module.name, "bold"),
        f"  {_totals_sentence(t)}{time}",
    )


def _print_failure(console: Console, test: TestCase) -> None:
    console.print(
        _line(
            (f"{_STATUS_WORD[test.status]:<5} ", _TEST_STYLE[test.status]),
            (test.module, "bold"),
            f"  {test.description}",
        ),
        soft_wrap=True,
    )
    if test.message:
        console.print(_line(f"      {test.message}"), soft_wrap=True)
    if test.file:
        console.print(_line((f"      at {test.file}:{test.line}", "dim")), soft_wrap=True)
    _print_details(console, test.details)


def _print_details(console: Console, details: str) -> None:
    lines = details.splitlines()
    if len(lines) > MAX_HUMAN_TRACEBACK_LINES:
        skipped = len(lines) - MAX_HUMAN_TRACEBACK_LINES
        lines = [f"… {skipped} earlier lines", *lines[-MAX_HUMAN_TRACEBACK_LINES:]]
    for ln in lines:
        # The `│` gutter also keeps log text from starting a line (see safe_text).
        console.print(_line(("      │ ", "dim"), ln), soft_wrap=True)


def _print_problem(console: Console, problem: Problem) -> None:
    style = "yellow" if problem.kind == "note" else "red"
    where = f" (while loading module {problem.module})" if problem.module else ""
    console.print(
        _line((f"  {problem.kind:<9} ", style), f"{problem.message}{where}"), soft_wrap=True
    )
    if problem.details and problem.kind != "note":
        summary = exception_summary(problem.details)
        if summary:
            console.print(_line(f"            {summary}"), soft_wrap=True)


def _verdict_line(result: RunResult, *, allow_empty: bool) -> Text:
    word = result.status.value.upper()
    facts = _totals_sentence(result.totals)
    if result.duration is not None:
        facts += f" in {result.duration:.2f}s"
    if result.odoo_exit_code is not None:
        facts += f" · Odoo exit code {result.odoo_exit_code}"
    facts += f" · exit {int(result.exit_code(allow_empty=allow_empty))}"
    return _line((word, _HUMAN_STYLE[result.status]), f"  {facts}")


class ProgressPrinter:
    """Prints one line per finished test while a log streams in; a spinner on terminals.

    Use as a context manager so the spinner is always stopped.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Status | None = None

    def __enter__(self) -> ProgressPrinter:
        if self.console.is_terminal:
            self._status = self.console.status("starting Odoo…")
            self._status.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def handle(self, event: ParseEvent) -> None:
        if isinstance(event, ModuleLoading):
            self._spin(f"loading module {event.name} ({event.index}/{event.total})")
        elif isinstance(event, TestStarted):
            self._spin(f"{event.test.module}: {event.test.description}")
        elif isinstance(event, TestFinished):
            self._finished(event.test)
        elif isinstance(event, ProblemFound) and event.problem.kind != "note":
            self.console.print(_line(("  ! ", "red"), event.problem.message), soft_wrap=True)

    def _spin(self, text: str) -> None:
        if self._status is not None:
            self._status.update(safe_text(text))

    def _finished(self, test: TestCase) -> None:
        mark = {TestStatus.PASSED: "✓", TestStatus.SKIPPED: "-"}.get(test.status, "✗")
        time = f" ({test.duration:.2f}s)" if test.duration is not None else ""
        word = "" if test.status is TestStatus.PASSED else f" {_STATUS_WORD[test.status]}"
        self.console.print(
            _line(
                (f"  {mark}{word} ", _TEST_STYLE[test.status]),
                (test.module, "bold"),
                f"  {test.description}",
                (time, "dim"),
            ),
            soft_wrap=True,
        )
