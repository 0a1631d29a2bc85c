"""One deploy/rollback per env at a time: an flock on <state_root>/deploy.lock.

The kernel drops an flock when its holder dies, however it dies (SIGKILL
included), so a lock can never stay stuck the way a lock *file* or a lock
container can (Kamal's). The file's content only says who holds it, for the
message a second caller gets; a dead holder's leftover note is reported as
recovered.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odoo_ai.errors import ExitCode, OdooAiError


class LockHeld(OdooAiError):
    exit_code = ExitCode.FAILED


@dataclass
class Holder:
    pid: int
    host: str
    actor: str
    command: str
    since: str

    @classmethod
    def me(cls, command: str) -> Holder:
        actor = os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or str(os.getuid())
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(os.getpid(), socket.gethostname(), actor, command, now)

    def describe(self) -> str:
        return f"{self.command} by {self.actor} (pid {self.pid} on {self.host}) since {self.since}"


def _read_holder(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        return Holder(**json.loads(raw))
    except (ValueError, TypeError):
        return None


class EnvLock:
    """Context manager: `with EnvLock(path, command="deploy dev", timeout=60) as lock:`."""

    def __init__(self, path: Path, *, command: str, timeout: float = 0.0, poll: float = 0.2):
        self.path = path
        self.command = command
        self.timeout = timeout
        self.poll = poll
        self.recovered: Holder | None = None  # note left by a holder that died
        self._fd: int | None = None

    def acquire(self) -> EnvLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    who = holder.describe() if holder else "another process"
                    waited = f" after waiting {self.timeout:.0f}s" if self.timeout else ""
                    raise LockHeld(
                        f"{self.path.parent.name}: locked by {who}{waited}",
                        hint="wait for it to finish, or pass --lock-timeout SECONDS to wait longer",
                    ) from None
                time.sleep(self.poll)
        previous = _read_holder(fd)
        if previous is not None:
            # We got the flock, so whoever wrote this note is gone without cleaning up.
            self.recovered = previous
        note = json.dumps(Holder.me(self.command).__dict__).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # a clean exit leaves no note behind
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> EnvLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
