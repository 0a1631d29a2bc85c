"""The release log: what was deployed where.

`<state_root>/releases.log` is JSON Lines, one object per deploy, appended by the
deploy use-case, e.g.::

    {"timestamp": "2026-11-25T10:00:00Z", "env": "dev", "image_tag": "dev-1a2b3c4",
     "commit": "1a2b3c4...", "digests": {"web": "sha256:...", "script-runner": "sha256:..."},
     "status": "success"}

The currently deployed release of an env is its last "success" line. Readers are
tolerant: a corrupt line (torn write, hand edit) is skipped and reported, never fatal.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

RELEASE_LOG = "releases.log"
SUCCESS = "success"
PINNED_SETTING = "ODOO_PRUNE_PINNED"

log = logging.getLogger(__name__)

OnError = Callable[[Path, int, str], None]


def release_log_path(stack: Any) -> Path:
    return Path(stack.state_root) / RELEASE_LOG


def _warn(path: Path, lineno: int, why: str) -> None:
    log.warning("%s:%d: skipped: %s", path, lineno, why)


def read_releases(path: Path | str, *, on_error: OnError | None = None) -> list[dict[str, Any]]:
    """All well-formed release records of the log at `path`, oldest first.

    A missing file is no releases. Lines that are not a JSON object with a string
    `status` are skipped and reported through `on_error(path, lineno, why)`
    (default: a logging warning).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return parse_releases(text, path, on_error=on_error)


def parse_releases(text: str, path: Path, *, on_error: OnError | None = None) -> list[dict[str, Any]]:
    """The records of a release log's text (read from this disk or a remote host's)."""
    report = on_error or _warn
    releases: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            report(path, lineno, f"not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            report(path, lineno, "not a JSON object")
            continue
        if not isinstance(record.get("status"), str):
            report(path, lineno, "no status")
            continue
        digests = record.get("digests")
        if digests is not None and not isinstance(digests, dict):
            report(path, lineno, "digests is not an object")
            continue
        releases.append(record)
    return releases


def successful(releases: Iterable[dict[str, Any]], env: str | None = None) -> list[dict[str, Any]]:
    """The successful releases (of `env` when given; lines without env count as the log's own)."""
    return [
        r for r in releases
        if r.get("status") == SUCCESS and (env is None or r.get("env") in (None, env))
    ]


def current_release(releases: Iterable[dict[str, Any]], env: str | None = None) -> dict[str, Any] | None:
    done = successful(releases, env)
    return done[-1] if done else None


def release_refs(release: dict[str, Any]) -> list[str]:
    """The image references a release names: its tag and its digests."""
    refs = []
    if isinstance(release.get("image_tag"), str) and release["image_tag"]:
        refs.append(release["image_tag"])
    for digest in (release.get("digests") or {}).values():
        if isinstance(digest, str) and digest.startswith("sha256:"):
            refs.append(digest)
    return refs


def pinned_refs(stack: Any) -> list[str]:
    """ODOO_PRUNE_PINNED of the stack (validated by load_stack)."""
    return list(stack.prune.pinned)


def protected_refs(
    stacks: Iterable[Any], keep_n: int, *, on_error: OnError | None = None
) -> dict[str, list[str]]:
    """Tags and digests that must survive any prune, each with the reasons why.

    For every stack: the last `keep_n` successful releases, the currently deployed
    one (even with keep_n=0), and the refs pinned by ODOO_PRUNE_PINNED.
    """
    protected: dict[str, list[str]] = {}

    def add(ref: str, reason: str) -> None:
        reasons = protected.setdefault(ref, [])
        if reason not in reasons:
            reasons.append(reason)

    for stack in stacks:
        env = stack.env
        done = successful(read_releases(release_log_path(stack), on_error=on_error), env)
        if done:
            current = done[-1]
            for ref in release_refs(current):
                add(ref, f"{env}: currently deployed ({current.get('timestamp', '?')})")
        recent = done[-keep_n:] if keep_n > 0 else []
        for age, release in enumerate(reversed(recent), start=1):
            for ref in release_refs(release):
                add(ref, f"{env}: successful release {age} of the last {keep_n} ({release.get('timestamp', '?')})")
        for ref in pinned_refs(stack):
            add(ref, f"{env}: pinned by {PINNED_SETTING}")
    return protected


# ---------------------------------------------------------------- writing (deploy, rollback)
SCHEMA = "odoo-ai.release/1"


def append_release(path: Path, record: dict[str, Any]) -> None:
    """Append one record as one line.

    The flock serialises concurrent writers and the line goes out in one
    O_APPEND write. A writer killed mid-line leaves a torn last line: the next
    append starts on a fresh line, and readers skip the torn one, so earlier
    lines are never lost or corrupted.
    """
    import fcntl
    import os

    data = (json.dumps({"schema": SCHEMA, **record}, separators=(",", ":")) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as tail:
                tail.seek(size - 1)
                if tail.read(1) != b"\n":
                    data = b"\n" + data
        if os.write(fd, data) != len(data):  # pragma: no cover - a full disk
            raise OSError(f"short write to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)
