"""The post-release hook: an operator's command (ODOO_POST_RELEASE_HOOK) run on the machine
running the CLI after every deploy and rollback — success or failure — with the release
record as one JSON document on stdin, e.g. to post to chat.

It never fails the deploy: whatever it does (exit non-zero, hang past its timeout, not
exist), the outcome is a note, and the deploy's exit code stays its own. Its output is
kept (the last lines, in the note when it fails), never mixed into the CLI's stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

OUTPUT_LINES = 5  # of the hook's output, kept in the outcome


@dataclass
class HookOutcome:
    command: list[str]
    ok: bool
    exit_code: int | None  # None: it did not start, or was killed at the timeout
    seconds: float
    note: str
    output: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def hook_environment(record: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """The hook's environment: the CLI's, plus the record's key facts for a shell one-liner."""
    facts = {
        "ODOO_AI_RELEASE_ENV": record.get("env"),
        "ODOO_AI_RELEASE_KIND": record.get("kind"),
        "ODOO_AI_RELEASE_TAG": record.get("image_tag"),
        "ODOO_AI_RELEASE_STATUS": record.get("status"),
        "ODOO_AI_RELEASE_PHASE": record.get("phase"),
    }
    return {**environ, **{k: str(v) for k, v in facts.items() if v is not None}}


def _tail(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return "\n".join(lines[-OUTPUT_LINES:])


def run_post_release_hook(argv: list[str] | tuple[str, ...], record: Mapping[str, Any], *, timeout: float,
                          cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> HookOutcome | None:
    """Run the hook with `record` (JSON) on stdin; None when no hook is set. Never raises:
    the outcome says what happened. At `timeout` the hook and its children (its own
    process group) are killed."""
    if not argv:
        return None
    command = list(argv)
    payload = (json.dumps(dict(record), default=str) + "\n").encode("utf-8")
    start = time.monotonic()
    try:
        proc = subprocess.Popen(  # noqa: S603 - the operator's own command line, argv list, no shell
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
            env=hook_environment(record, os.environ if environ is None else environ), start_new_session=True,
        )
    except OSError as exc:
        return HookOutcome(command, False, None, 0.0, f"post-release hook {command[0]} did not start: {exc.strerror}")
    try:
        output, _ = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        output, _ = proc.communicate()
        seconds = time.monotonic() - start
        return HookOutcome(command, False, None, round(seconds, 3),
                           f"post-release hook timed out after {timeout:g}s and was killed", _tail(output))
    seconds = round(time.monotonic() - start, 3)
    tail = _tail(output)
    if proc.returncode == 0:
        return HookOutcome(command, True, 0, seconds, f"post-release hook ran ({seconds:.1f}s)", tail)
    last = f": {tail.splitlines()[-1]}" if tail else ""
    return HookOutcome(command, False, proc.returncode, seconds,
                       f"post-release hook failed (exit {proc.returncode} after {seconds:.1f}s){last}", tail)
