"""Mermaid charts of deploys, release histories and test runs: pure functions, records in,
Mermaid text out (GitHub renders a ```mermaid block in Markdown, job summaries included).

Only two chart types, both in Mermaid for years and rendered by every GitHub version of
it: `gantt` (a deploy's phases, a release history, a test run's modules) and `pie` (a test
run's outcomes). `timeline` and `xychart-beta` were left out: the first is marked
experimental and uses `:` as its separator, the second is beta.

Every text that reaches a chart comes from records that may be hostile (a hand-edited
release log, a module or test name, a note): `label()` keeps only letters, digits, spaces
and `. , + / ( ) @ = ~ - _ →`, so no `:` (Mermaid's task separator), `#` and `%%`
(comments), `;` (statement end), quote, backtick, brace or HTML survives, nor a newline.
Every task text starts with a status mark (✓ ✗ ↩ ○ …), so no text can begin with a
Gantt keyword (`section`, `click`, `title`…) or a date. Bars are integer milliseconds
from 0 (`dateFormat x`), one after the other, so the numbers add up to the JSON's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_UNSAFE = re.compile(r"[^\w .,+/()@=~→-]")
MAX_LABEL = 80
MAX_BARS = 100

OK, FAILED, ROLLBACK, OTHER, UNKNOWN, SKIPPED = "✓", "✗", "↩", "○", "?", "–"


def label(text: Any, limit: int = MAX_LABEL) -> str:
    """`text` made safe for any Mermaid text position (see the module docstring)."""
    clean = " ".join(_UNSAFE.sub(" ", str(text)).split())
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


def fenced(chart: str) -> str:
    """The chart as a Markdown block GitHub renders (charts never hold a backtick)."""
    return f"```mermaid\n{chart}\n```"


def ms(seconds: Any) -> int:
    """Seconds (a JSON number, or anything else: 0) as whole milliseconds, never negative."""
    return max(0, round(float(seconds) * 1000)) if isinstance(seconds, int | float) else 0


def seconds_text(seconds: Any) -> str:
    """`41.2s`, `0.03s` (two decimals under 10 s), `?` for no number."""
    if not isinstance(seconds, int | float):
        return "?"
    return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"


def _gantt(title: str, axis: str = "%M:%S") -> list[str]:
    return ["gantt", f"    title {label(title, 120)}", "    dateFormat x", f"    axisFormat {axis}"]


def _task(mark: str, text: str, tags: Sequence[str], task_id: str, start: int, end: int) -> str:
    """One bar: its text is the mark and the label()-ed `text` (see the module docstring)."""
    data = ", ".join([*tags, task_id, str(start), str(end)])
    return f"    {mark} {label(text, 120)} :{data}"


# ---------------------------------------------------------------- one release


def release_gantt(record: Mapping[str, Any]) -> str:
    """The phases of one release (a deploy or rollback record of releases.log, or the
    `release` of a deploy's --json) one after the other, the failing one `crit`; the time
    outside any phase (lock, recovery, undo, record) as a last `○ other` bar."""
    kind, env = record.get("kind") or "deploy", record.get("env") or "?"
    status = str(record.get("status") or "?")
    failed = status != "success"
    title = f"{kind} of {record.get('image_tag') or '?'} to {env}, {status}"
    if failed and record.get("phase"):
        title += f" in {record['phase']}"
    if isinstance(record.get("duration"), int | float):
        title += f", {seconds_text(record['duration'])}"
    lines = [*_gantt(title), "    section phases"]
    phases = [p for p in record.get("phases") or [] if isinstance(p, Mapping)]
    start = 0
    for index, phase in enumerate(phases[:MAX_BARS], start=1):
        ok = bool(phase.get("ok"))
        length = ms(phase.get("seconds"))
        text = f"{label(phase.get('name'), 40)} {seconds_text(phase.get('seconds'))}"
        lines.append(_task(OK if ok else FAILED, text, ["done"] if ok else ["crit"], f"p{index}", start,
                           start + max(length, 1)))
        start += length
    total = ms(record.get("duration"))
    if not phases:
        text = f"no phase timings recorded, total {seconds_text(record.get('duration'))}"
        lines.append(_task(UNKNOWN, text, ["crit"] if failed else ["done"], "p0", 0, max(total, 1)))
    elif total - start >= 50:
        rest = (total - start) / 1000
        what = "undo and record" if failed else "lock and record"
        lines.append(_task(OTHER, f"other ({what}) {seconds_text(rest)}", ["active"], "p0", start, total))
    return "\n".join(lines)


# ---------------------------------------------------------------- a release history


def _when(timestamp: Any) -> tuple[str, str]:
    """(day, HHhMM) of a record's `2026-11-29T10:00:00Z`; no `:` (task separator)."""
    text = str(timestamp or "")
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):\d{2}(?:\.\d+)?Z?", text)
    return (match[1], f"{match[2]}h{match[3]}") if match else ("undated", "")


def history_mark(record: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A release's mark and Gantt tags: success ✓ (done), rollback ↩ (active), failed ✗ (crit)."""
    if record.get("status") != "success":
        return FAILED, ["crit"]
    if record.get("kind") == "rollback":
        return ROLLBACK, ["active"]
    return OK, ["done"]


def history_gantt(records: Iterable[Mapping[str, Any]], *, env: str) -> str:
    """The releases (oldest first), one bar each, its length the release's duration; a
    section per day. Bars start at 0: weeks apart, a minute-long deploy would be invisible
    on a real time axis, so the time of day is in the label instead."""
    shown = list(records)[-MAX_BARS:]
    lines = _gantt(f"{env} releases, duration of each (last {len(shown)})")
    day = None
    for index, record in enumerate(shown, start=1):
        when, clock = _when(record.get("timestamp"))
        if when != day:
            lines.append(f"    section {label(when)}")
            day = when
        mark, tags = history_mark(record)
        kind, status = record.get("kind") or "deploy", str(record.get("status") or "?")
        text = f"{clock} {label(kind, 20)} {label(record.get('image_tag') or '?', 60)}"
        if status != "success":
            text += f" {label(status, 20)}" + (f" in {label(record['phase'], 30)}" if record.get("phase") else "")
        duration = record.get("duration")
        if not isinstance(duration, int | float):
            lines.append(_task(mark, f"{text} duration unknown", ["milestone", *tags], f"r{index}", 0, 1))
            continue
        lines.append(_task(mark, f"{text} {seconds_text(duration)}", tags, f"r{index}", 0, max(ms(duration), 1)))
    return "\n".join(lines)


# ---------------------------------------------------------------- a test run


def outcome_pie(totals: Mapping[str, Any], *, title: str = "Odoo tests") -> str | None:
    """passed / failed / errors / skipped of a test run (`totals` of its JSON); None when
    no test ran (a pie of nothing does not render)."""
    slices = [(name, totals.get(name)) for name in ("passed", "failed", "errors", "skipped")]
    slices = [(name, value) for name, value in slices if isinstance(value, int) and value > 0]
    if not slices:
        return None
    lines = ["pie showData", f"    title {label(title)}"]
    lines += [f'    "{name}" : {value}' for name, value in slices]
    return "\n".join(lines)


def modules_gantt(modules: Sequence[Mapping[str, Any]], tests: Sequence[Mapping[str, Any]] = ()) -> str | None:
    """A test run's modules one after the other (`modules` and `tests` of its JSON), each
    bar its test time (Odoo's `incl. Xs test`, else the sum of its tests' durations), a
    failed module `crit`, its counts in the label. None when there is no module."""
    if not modules:
        return None
    lines = [*_gantt("test time per module"), "    section modules"]
    start = 0
    for index, module in enumerate(modules[:MAX_BARS], start=1):
        name = str(module.get("name"))
        seconds = module_time(module, tests)
        failed = module.get("status") == "failed"
        counts = f"{module.get('passed', 0)} passed, {module.get('failed', 0)} failed"
        if module.get("errors"):
            counts += f", {module['errors']} error" + ("" if module["errors"] == 1 else "s")
        counts += f", {module.get('skipped', 0)} skipped"
        text = f"{label(name, 50)} {counts} {seconds_text(seconds)}"
        length = ms(seconds)
        lines.append(_task(FAILED if failed else OK, text, ["crit"] if failed else ["done"], f"m{index}", start,
                           start + max(length, 1)))
        start += length
    return "\n".join(lines)


def module_time(module: Mapping[str, Any], tests: Sequence[Mapping[str, Any]]) -> float:
    """The seconds modules_gantt draws for `module` (for checks against the JSON)."""
    if isinstance(module.get("duration"), int | float):
        return float(module["duration"])
    return round(sum(t["duration"] for t in tests if t.get("module") == module.get("name")
                     and isinstance(t.get("duration"), int | float)), 3)


def slowest(tests: Sequence[Mapping[str, Any]], count: int = 10) -> list[Mapping[str, Any]]:
    """The `count` slowest tests with a duration, slowest first (ties: in run order)."""
    timed = [t for t in tests if isinstance(t.get("duration"), int | float)]
    return sorted(timed, key=lambda t: -t["duration"])[:count]
