"""The Mermaid charts (issue 19): every chart the tool emits is checked by a strict
line-by-line grammar of exactly the Gantt and pie forms odoo_ai.charts writes (Mermaid's own
lexer rules where they matter: `:` ends a task's text, `#` and `%%` start comments, `;`
ends a statement, keywords and dates at the start of a line), hostile text cannot break
or inject into a chart, and the numbers drawn are the numbers of the JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from odoo_ai import charts, stepsummary
from odoo_ai.runners.base import Result
from odoo_ai.testing.report import github_summary
from odoo_ai.testing.results import ModuleResult, RunResult, RunStatus, TestCase, TestStatus, Totals
from tests.unit.test_deploy_table import NEW, deploy, fails, serving, stack  # noqa: F401 - the fixture
from tests.unit.test_logparse_report import FAIL_LOG, PASS_LOG, parse
from tests.unit.test_operator_view import odoo_ai, release

# ---------------------------------------------------------------- the grammar check

# Gantt statements Mermaid's lexer knows (case-insensitive); a task text must not start with one.
KEYWORDS = ("gantt", "dateformat", "inclusiveenddates", "topaxis", "axisformat", "tickinterval", "includes",
            "excludes", "todaymarker", "weekday", "title", "accdescription", "acctitle", "accdescr", "section",
            "click", "href", "call")
# What may stand in a text position: Mermaid ends it at # : ; newline; we also refuse
# what would be HTML, a quote, a backtick, a brace or a comment.
TEXT = r"[^#:;\n%\"'`<>&{}\[\]\\]+"
MARKS = "✓✗↩○?"
TAGS = {"done", "crit", "active", "milestone"}
HEADER = ["dateFormat x", "axisFormat %M:%S"]


class Bar:
    def __init__(self, section: str, mark: str, text: str, tags: list[str], task_id: str, start: int, end: int):
        self.section, self.mark, self.text, self.tags = section, mark, text, tags
        self.id, self.start, self.end = task_id, start, end

    @property
    def ms(self) -> int:
        return self.end - self.start


def parse_gantt(chart: str) -> tuple[str, list[Bar]]:
    """(title, bars) of a chart in exactly the form odoo_ai.charts writes, or an AssertionError
    naming the first line that is not."""
    assert "```" not in chart and "\r" not in chart and "%%" not in chart
    lines = chart.split("\n")
    assert lines[0] == "gantt", lines[0]
    title = re.fullmatch(rf"    title ({TEXT})", lines[1])
    assert title and title[1] == title[1].strip(), lines[1]
    assert [line.strip() for line in lines[2:4]] == HEADER and all(line.startswith("    ") for line in lines[2:4])
    section, bars, ids = None, [], set()
    for line in lines[4:]:
        if m := re.fullmatch(rf"    section ({TEXT})", line):
            section = m[1]
            assert section == section.strip() and section
            continue
        m = re.fullmatch(rf"    ([{MARKS}]) ({TEXT}) :((?:[a-z]+, )*)([a-z]\d+), (\d+), (\d+)", line)
        assert m, f"not a task line: {line!r}"
        assert section is not None, f"a task before any section: {line!r}"
        mark, text, tags = m[1], m[2], [t for t in m[3].split(", ") if t]
        assert text == text.strip() and text, line
        whole = f"{mark} {text}"  # what Mermaid's lexer reads: the mark first, never a keyword or a date
        assert not whole.lower().startswith(KEYWORDS) and not re.match(r"\d{4}-\d{2}-\d{2}", whole)
        assert set(tags) <= TAGS, line
        assert m[4] not in ids, f"duplicate task id {m[4]}"
        ids.add(m[4])
        start, end = int(m[5]), int(m[6])
        assert end > start, line
        bars.append(Bar(section, mark, text, tags, m[4], start, end))
    assert bars, "a Gantt chart without a bar"
    return title[1], bars


def parse_pie(chart: str) -> tuple[str, dict[str, int]]:
    assert "```" not in chart and "%%" not in chart
    lines = chart.split("\n")
    assert lines[0] in ("pie", "pie showData"), lines[0]
    title = re.fullmatch(rf"    title ({TEXT})", lines[1])
    assert title, lines[1]
    slices: dict[str, int] = {}
    for line in lines[2:]:
        m = re.fullmatch(r'    "([^"\n#;%]+)" : (\d+)', line)
        assert m, f"not a slice: {line!r}"
        assert m[1] not in slices and int(m[2]) > 0
        slices[m[1]] = int(m[2])
    assert slices
    return title[1], slices


def mermaid_blocks(markdown: str) -> list[str]:
    return re.findall(r"(?ms)^```mermaid\n(.*?)\n```$", markdown)


def test_the_grammar_check_refuses_what_mermaid_would_misread() -> None:
    good = "gantt\n    title t\n    dateFormat x\n    axisFormat %M:%S\n    section s\n    ✓ a 1s :done, p1, 0, 1000"
    parse_gantt(good)
    for bad in (good.replace("✓ a", "✓ a: b"), good.replace("✓ a", "✓ a # b"), good.replace("✓ a", "section a"),
                good.replace("title t", "title t;x"), good + "\n    ✓ b :done, p1, 0, 5", good.replace("0, 1000", "5, 5"),
                good.replace("done", "click"), good + "\n%%{init: {}}%%", good.replace("✓ a", "2026-01-01 a")):
        with pytest.raises(AssertionError):
            parse_gantt(bad)
    with pytest.raises(AssertionError):
        parse_pie('pie showData\n    title t\n    "a"b" : 3')


# ---------------------------------------------------------------- one release


def test_a_deploy_records_its_phases_and_the_chart_draws_them(stack) -> None:  # noqa: F811
    host = serving(stack)
    result = deploy(stack, host)
    record = host.records[-1]
    names = [p["name"] for p in record["phases"]]
    assert names == [p["name"] for p in result["phases"]] and names[:3] == ["render", "pull", "inspect"]
    assert names[-5:] == ["start", "gate", "switch", "drain", "converge"]
    assert record == result["release"]  # what --json says is what releases.log holds
    title, bars = parse_gantt(charts.release_gantt(record))
    assert title.startswith(f"deploy of {NEW} to dev, success")
    phase_bars = [b for b in bars if b.id != "p0"]
    assert [b.text.split()[0] for b in phase_bars] == names and all(b.tags == ["done"] for b in phase_bars)
    start = 0
    for bar, phase in zip(phase_bars, record["phases"], strict=True):
        assert bar.start == start and bar.ms == max(charts.ms(phase["seconds"]), 1)
        start += charts.ms(phase["seconds"])
    assert max(b.end for b in bars) in (charts.ms(record["duration"]), start, start + 1)


def test_a_failed_deploy_marks_its_phase_and_accounts_for_the_undo(stack) -> None:  # noqa: F811
    host = serving(stack)
    host.answers["gate_probe"] = Result(1, '{"health": 500, "login": null}\n')
    exc = fails(stack, host)
    record = exc.report["release"]
    assert record["phases"][-1] == {"name": "gate", "seconds": record["phases"][-1]["seconds"], "ok": False}
    title, bars = parse_gantt(charts.release_gantt(record))
    assert "failed in gate" in title
    failing = [b for b in bars if "crit" in b.tags]
    assert [b.text.split()[0] for b in failing] == ["gate"] and failing[0].mark == "✗"
    md = stepsummary.deploy_markdown(exc.report, error="HTTP 500", failed_phase="gate")
    assert md.startswith(f"### ❌ deploy dev: `dev-1111111` → `{NEW}` **failed** in phase `gate`")
    assert mermaid_blocks(md) == [charts.release_gantt(record)]


def test_a_record_without_phases_still_charts_its_total() -> None:
    _, bars = parse_gantt(charts.release_gantt(release(duration=12.5)))
    assert len(bars) == 1 and bars[0].ms == 12500 and bars[0].mark == "?"


# ---------------------------------------------------------------- hostile text

HOSTILE = [
    "a:b", "x # comment", "y; z", "two\nlines", 'say "hi"', "it's", "`code`", "<script>alert(1)</script>",
    "&amp; <b>bold</b>", "%%{init: {'theme': 'dark'}}%%", "section evil", "click p1 call alert()",
    "2026-01-01 date", "title x", "]]> {x} [y]", "\u202eright-to-left\u200b", "|pipe|", "a" * 500,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_neither_breaks_nor_injects_a_chart(text: str) -> None:
    record = release(text, kind=text, env=text, status="failed", phase=text, notes=[text], warnings=[text],
                     phases=[{"name": text, "seconds": 1.5, "ok": True}, {"name": text, "seconds": 2, "ok": False}])
    _, bars = parse_gantt(charts.release_gantt(record))
    assert len(bars) == 3  # two phases and the rest: nothing added, nothing lost
    _, bars = parse_gantt(charts.history_gantt([record, release(timestamp=text)], env=text))
    assert [b.ms for b in bars] == [42500, 42500]
    md = stepsummary.deploy_markdown({"status": "failed", "kind": text, "env": text, "tag": text,
                                      "previous_tag": text, "digests": {text: text}, "release": record},
                                     error=text, failed_phase=text)
    prose = re.sub(r"`[^`\n]*`", "", md)  # a code span shows its text as it is: no HTML there
    assert "<script" not in prose and "<b>" not in prose
    (block,) = mermaid_blocks(md)
    parse_gantt(block)
    assert md.count("```") == 2 and md.count("\n- ") == 2  # one note, one warning, one line each
    module = ModuleResult(text, Totals(tests=2, passed=1, failed=1), duration=0.5)
    tests = [TestCase(text, text, text, text, status=TestStatus.FAILED, duration=0.25),
             TestCase(text, text, "m2", text, status=TestStatus.PASSED, duration=0.125)]
    result = RunResult(RunStatus.FAILED, Totals(tests=2, passed=1, failed=1), [module], tests)
    summary = github_summary(result)
    pie, gantt = mermaid_blocks(summary)
    assert parse_pie(pie)[1] == {"passed": 1, "failed": 1}
    assert [b.ms for b in parse_gantt(gantt)[1]] == [500]
    rows = summary.split("#### Slowest 2 tests\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(rows) == 4 and all(len(re.split(r"(?<!\\)\|", row)) == 6 for row in rows), rows
    assert "<script" not in summary.split("#### Failures")[0]


# ---------------------------------------------------------------- a release history


def test_the_history_chart_has_one_bar_per_release_as_long_as_the_json_says() -> None:
    records = [release(timestamp="2026-11-25T10:00:00Z", duration=42.5),
               release("dev-5e6f7a8", status="failed", phase="gate", duration=61.25, timestamp="2026-11-25T11:30:00Z"),
               release(kind="rollback", duration=9.0, timestamp="2026-11-26T08:05:00Z"),
               release("dev-9999999", duration=None, timestamp="2026-11-27T08:05:00Z", note="recovered")]
    title, bars = parse_gantt(charts.history_gantt(records, env="dev"))
    assert "last 4" in title
    assert [b.section for b in bars] == ["2026-11-25", "2026-11-25", "2026-11-26", "2026-11-27"]
    assert [b.mark for b in bars] == ["✓", "✗", "↩", "✓"]
    assert [b.tags for b in bars] == [["done"], ["crit"], ["active"], ["milestone", "done"]]
    assert [b.ms for b in bars[:3]] == [round(r["duration"] * 1000) for r in records[:3]]
    assert bars[1].text == "11h30 deploy dev-5e6f7a8 failed in gate 61.2s"
    assert all(b.start == 0 for b in bars)


def write_log(home: Path, records: list[dict[str, Any]]) -> None:
    root = home / "odoo-ai" / "opw-dev"
    root.mkdir(parents=True, exist_ok=True)
    (root / "releases.log").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_releases_chart_and_show_through_the_cli(repo: Path, home: Path) -> None:
    phases = [{"name": "render", "seconds": 0.25, "ok": True}, {"name": "update", "seconds": 30.5, "ok": False}]
    records = [release(duration=42.5), release("dev-5e6f7a8", status="failed", phase="update", duration=33.0,
                                                phases=phases, notes=["module update ran: sale"])]
    write_log(home, records)
    doc = json.loads(odoo_ai("releases", "dev", "--json", repo=repo, home=home).stdout)
    proc = odoo_ai("releases", "dev", "--chart", repo=repo, home=home)
    assert proc.returncode == 0, proc.stderr
    (chart,) = mermaid_blocks(proc.stdout)
    _, bars = parse_gantt(chart)
    assert [b.ms for b in bars] == [round(r["duration"] * 1000) for r in doc["releases"]]
    assert json.loads(odoo_ai("releases", "dev", "--chart", "--json", repo=repo, home=home).stdout)["chart"] == chart
    limited = odoo_ai("releases", "dev", "--chart", "--limit", "1", repo=repo, home=home).stdout
    assert len(parse_gantt(mermaid_blocks(limited)[0])[1]) == 1
    shown = odoo_ai("releases", "dev", "--show", "1", "--chart", repo=repo, home=home)
    (one,) = mermaid_blocks(shown.stdout)
    _, bars = parse_gantt(one)
    assert [(b.text.split()[0], b.ms, "crit" in b.tags) for b in bars[:2]] == [("render", 250, False),
                                                                              ("update", 30500, True)]
    assert bars[2].end == 33000  # the rest up to the release's duration
    text = odoo_ai("releases", "dev", "--show", "2", repo=repo, home=home).stdout
    assert "deploy of dev-1a2b3c4 to dev" in text and "no phase timings" in text
    full = json.loads(odoo_ai("releases", "dev", "--show", "1", "--json", repo=repo, home=home).stdout)
    assert full["release"]["phases"] == phases and full["is_current"] is False
    bad = odoo_ai("releases", "dev", "--show", "3", repo=repo, home=home)
    assert bad.returncode == 2 and "--show 3: dev has 2 release record(s)" in bad.stderr
    write_log(home, [])
    empty = odoo_ai("releases", "dev", "--chart", repo=repo, home=home)
    assert empty.returncode == 0 and "dev: no release in" in empty.stdout and "```" not in empty.stdout


# ---------------------------------------------------------------- a test run


@pytest.mark.parametrize("log", [FAIL_LOG, PASS_LOG])
def test_the_test_summary_charts_match_the_test_runs_json(log: str) -> None:
    result = parse(log)
    doc = json.loads(result.to_json())
    blocks = mermaid_blocks(github_summary(result))
    _, slices = parse_pie(blocks[0])
    assert slices == {k: v for k, v in doc["totals"].items() if k != "tests" and v}
    _, bars = parse_gantt(blocks[1])
    assert [b.text.split()[0] for b in bars] == [m["name"] for m in doc["modules"]]
    assert [b.ms for b in bars] == [max(charts.ms(charts.module_time(m, doc["tests"])), 1) for m in doc["modules"]]
    assert [("crit" in b.tags) for b in bars] == [m["status"] == "failed" for m in doc["modules"]]
    timed = sorted((t for t in doc["tests"] if t["duration"] is not None), key=lambda t: -t["duration"])[:10]
    table = github_summary(result).split("| Time | Module | Test | Status |\n|---:|---|---|---|\n", 1)[1]
    rows = table.split("\n\n", 1)[0].splitlines()
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == [f"{t['duration']:.2f}s" for t in timed]


def test_no_test_no_pie() -> None:
    assert charts.outcome_pie({"tests": 0, "passed": 0, "failed": 0}) is None
    assert charts.modules_gantt([]) is None


# ---------------------------------------------------------------- the deploy's step summary


def test_the_step_summary_is_appended_and_a_failure_to_write_it_is_only_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from odoo_ai.cli.deploy import _step_summary

    record = release(phases=[{"name": "render", "seconds": 0.5, "ok": True}], notes=["a note"])
    result = {"status": "success", "kind": "deploy", "env": "dev", "tag": "dev-1a2b3c4", "previous_tag": None,
              "digests": record["digests"], "release": record}
    summary = tmp_path / "summary.md"
    summary.write_text("before\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    _step_summary(result)
    text = summary.read_text()
    assert text.startswith("before\n### ✅ deploy dev: none → `dev-1a2b3c4` **success** (42.5s)")
    assert f"script-runner `{record['digests']['script-runner']}`" in text and "- a note" in text
    assert mermaid_blocks(text) == [charts.release_gantt(record)]
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "missing" / "summary.md"))
    _step_summary(result)  # no exception
    assert "warning: cannot write GITHUB_STEP_SUMMARY" in capsys.readouterr().err
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    _step_summary(result)
    assert summary.read_text() == text
