"""What names the cause of a failure in Odoo's output: the first ERROR/CRITICAL record
with its traceback, not only the last lines (which often show the consequence:
`Failed to initialize database`, a `Transient module states were reset`)."""

from __future__ import annotations

import re

from odoo_ai.testing.logparse import clean_line, parse_record

CAUSE_LEVELS = ("ERROR", "CRITICAL")
_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):")
MAX_CAUSE_LINES = 60


def cause(text: str, *, max_lines: int = MAX_CAUSE_LINES) -> list[str]:
    """The first ERROR/CRITICAL record with its traceback, or the first bare traceback;
    [] when the output holds neither. Odoo often logs the error lines first and the
    traceback under the last of them (`Failed to load registry`, then `Failed to
    initialize database` + traceback): the run of error records is kept up to the first
    one that carries a traceback. A long traceback keeps its head and its end (the end
    names the exception)."""
    lines = [clean_line(line) for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if _is_error(line) or _TRACEBACK.match(line)), None)
    if start is None:
        return []
    block: list[str] = []
    traceback = False
    for line in lines[start:]:
        record = parse_record(line)
        if record is not None and block and (traceback or record.level not in CAUSE_LEVELS):
            break
        traceback = traceback or (record is None and bool(_TRACEBACK.match(line)))
        block.append(line)
    if len(block) > max_lines:
        head = max_lines // 4
        block = [*block[:head], f"[… {len(block) - max_lines} lines …]", *block[-(max_lines - head):]]
    return block


def _is_error(line: str) -> bool:
    record = parse_record(line)
    return record is not None and record.level in CAUSE_LEVELS


def failure_excerpt(text: str, *, tail: int = 20) -> str:
    """The cause (see `cause`) and, after a marker, the last `tail` lines; one block of
    text when the cause is among the last lines anyway."""
    lines = [clean_line(line) for line in text.rstrip().splitlines()]
    last = lines[-tail:] if tail else []
    first = cause(text)
    if not first or _contains(last, first):
        return "\n".join(last)
    return "\n".join([*first, "[…]", *last])


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))
