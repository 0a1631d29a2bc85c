"""The Markdown a deploy or rollback appends to $GITHUB_STEP_SUMMARY under GitHub Actions:
a verdict line, the phases as a Mermaid Gantt chart (odoo_ai.charts), the release's notes.

Pure text here, one small writer; the CLI calls it after the outcome is known. A summary is
a nicety: it never changes a command's outcome (odoo_ai.cli.deploy warns on stderr when it
cannot be written)."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from odoo_ai import charts

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
MAX_NOTE_CHARS = 500
MAX_NOTES = 30

_BADGE = {"success": "✅", "failed": "❌", "unchanged": "⚪"}


def md_text(text: Any, limit: int = MAX_NOTE_CHARS) -> str:
    """One line of hostile text as inert Markdown: no HTML, no code span, no table cell end,
    no emphasis or link syntax."""
    line = " ".join(str(text).split())
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return _MD_SPECIAL.sub(r"\\\1", html.escape(line, quote=True))


def md_code(text: Any) -> str:
    """`text` as a code span (a tag, a digest): backticks and newlines dropped."""
    return "`" + " ".join(str(text).replace("`", "").split())[:200] + "`" if text else "none"


def deploy_markdown(result: Mapping[str, Any], *, error: str | None = None, failed_phase: str | None = None) -> str:
    """The summary of one deploy or rollback: `result` is its --json document (the report
    of a success, or of a DeployFailed with `error` and `failed_phase`)."""
    record = result.get("release") or {}
    status = str(result.get("status") or ("failed" if error else "?"))
    kind, env = result.get("kind") or "deploy", result.get("env") or "?"
    duration = record.get("duration") if status != "unchanged" else None
    head = (f"### {_BADGE.get(status, '❔')} {md_text(kind, 20)} {md_text(env, 60)}: "
            f"{md_code(result.get('previous_tag'))} → {md_code(result.get('tag'))} **{md_text(status, 20)}**")
    if failed_phase:
        head += f" in phase {md_code(failed_phase)}"
    if isinstance(duration, int | float):
        head += f" ({duration:.1f}s)"
    lines = [head, ""]
    digests = result.get("digests") or {}
    if digests:
        lines += [" · ".join(f"{md_text(target, 40)} {md_code(digest)}" for target, digest in sorted(digests.items())),
                  ""]
    if error:
        lines += [f"**Error:** {md_text(error)}", ""]
    if status == "unchanged":
        lines += [md_text(result.get("note") or "nothing to do"), ""]
    elif record:
        lines += [charts.fenced(charts.release_gantt(record)), ""]
    notes = [md_text(n) for n in [*(record.get("notes") or []), *([record["note"]] if record.get("note") else [])]]
    notes += [f"warning: {md_text(w)}" for w in result.get("warnings") or record.get("warnings") or []]
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes[:MAX_NOTES]]
        if len(notes) > MAX_NOTES:
            lines.append(f"- … and {len(notes) - MAX_NOTES} more")
        lines.append("")
    return "\n".join(lines) + "\n"


def not_recorded_markdown(kind: str, env: str, tag: str | None, error: str) -> str:
    """A deploy or rollback that failed before it could record a release (lock held, host
    unreachable): the verdict line and the error."""
    return (f"### ❌ {md_text(kind, 20)} {md_text(env, 60)}: {md_code(tag)} **failed** before a release was "
            f"recorded\n\n**Error:** {md_text(error)}\n\n")


def append(path: str | Path, text: str) -> None:
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write(text)
