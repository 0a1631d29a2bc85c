"""One deploy/rollback per env at a time: an flock on <state_root>/deploy.lock.

The kernel drops an flock when its holder dies, however it dies (SIGKILL
included), so a lock can never stay stuck the way a lock *file* or a lock
container can (Kamal's). The file's content only says who holds it, for the
message a second caller gets; a dead holder's leftover note is reported as
recovered.

A lock taken by hand (`odoo-ai lock acquire ENV -m MESSAGE`, e.g. for maintenance) is
the same flock, held by a small detached process on the Docker host until
`odoo-ai lock release ENV` stops it; its note carries the message, which a deploy
that finds the lock held says. `inspect_lock` reads the state without taking the
lock; `stop_holder` ends the process holding it (after checking that this process
really has the lock file open).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from odoo_ai.errors import ExitCode, OdooAiError

LOCK_FILE = "deploy.lock"
HELD_BY_HAND = "lock acquire"  # the command of a lock taken by hand


class LockHeld(OdooAiError):
    exit_code = ExitCode.FAILED


@dataclass
class Holder:
    pid: int
    host: str
    actor: str
    command: str
    since: str
    message: str = ""  # why it is held (a lock taken by hand always says)
    manual: bool = False  # taken by hand: `odoo-ai lock acquire`, held until `odoo-ai lock release`
    # The process on the Docker host that holds the flock, when it is not `pid` on `host`: a
    # deploy over ssh holds it through its ssh session's shell on the Docker host.
    lock_pid: int | None = None

    @classmethod
    def me(cls, command: str, *, message: str = "", manual: bool = False) -> Holder:
        actor = os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or str(os.getuid())
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(os.getpid(), socket.gethostname(), actor, command, now, message, manual)

    @classmethod
    def parse(cls, text: str | bytes) -> Holder | None:
        """A note read back (None when it is not one); keys it does not know are ignored."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        known = {f.name for f in fields(cls)}
        try:
            holder = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            return None
        if not isinstance(holder.pid, int) or not (holder.lock_pid is None or isinstance(holder.lock_pid, int)):
            return None
        return holder

    @property
    def host_pid(self) -> int:
        """The pid of the process holding the flock on the Docker host."""
        return self.lock_pid or self.pid

    def note(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v not in (None, "", False)})

    def describe(self) -> str:
        if self.manual:
            return (f"{self.actor} by hand (odoo-ai lock acquire, pid {self.pid} on {self.host}) since {self.since}: "
                    f"{self.message or 'no message'}")
        text = f"{self.command} by {self.actor} (pid {self.pid} on {self.host}) since {self.since}"
        return f"{text}: {self.message}" if self.message else text


def held_error(name: str, holder: Holder | None, waited: float) -> LockHeld:
    """What a caller that found the lock held is told."""
    who = holder.describe() if holder else "another process"
    after = f" after waiting {waited:.0f}s" if waited else ""
    if holder is not None and holder.manual:
        hint = "it was taken by hand: wait for `odoo-ai lock release` (`odoo-ai lock status` says who and why)"
    else:
        hint = "wait for it to finish, or pass --lock-timeout SECONDS to wait longer"
    return LockHeld(f"{name}: locked by {who}{after}", hint=hint)


def _read_holder(fd: int) -> Holder | None:
    os.lseek(fd, 0, os.SEEK_SET)
    return Holder.parse(os.read(fd, 4096))


class EnvLock:
    """Context manager: `with EnvLock(path, command="deploy dev", timeout=60) as lock:`."""

    def __init__(self, path: Path, *, command: str, timeout: float = 0.0, poll: float = 0.2,
                 message: str = "", manual: bool = False):
        self.path = path
        self.command = command
        self.timeout = timeout
        self.poll = poll
        self.message = message
        self.manual = manual
        self.recovered: Holder | None = None  # note left by a holder that died
        self.holder: Holder | None = None  # our own note
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
                    raise held_error(self.path.parent.name, holder, self.timeout) from None
                time.sleep(self.poll)
        previous = _read_holder(fd)
        if previous is not None:
            # We got the flock, so whoever wrote this note is gone without cleaning up.
            self.recovered = previous
        self.holder = Holder.me(self.command, message=self.message, manual=self.manual)
        note = self.holder.note().encode()
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


# ---------------------------------------------------------------- looking at a lock
@dataclass
class LockState:
    """A lock as seen without taking it: held or free, and the note in the file (the
    holder's when held; when free, a note left by a holder that died, if any)."""

    path: str
    held: bool
    holder: Holder | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "held": self.held}
        if self.held:
            data["holder"] = asdict(self.holder) if self.holder else None
        elif self.holder is not None:
            data["left_by"] = asdict(self.holder)  # a holder that died: the next taker recovers its note
        return data

    def describe(self) -> str:
        if self.held:
            return f"held by {self.holder.describe()}" if self.holder else "held by a process that left no note"
        return "free"


def parse_state(path: Path, text: str) -> LockState:
    """The answer of the remote probe (hosts.py): `HELD|FREE|ABSENT` and the note."""
    state, _, note = text.strip().partition(" ")
    if state == "ABSENT":
        return LockState(str(path), False)
    return LockState(str(path), state == "HELD", Holder.parse(note) if note.strip() else None)


def inspect_lock(path: Path) -> LockState:
    """This machine's lock at `path`, never taken: a shared flock tried without waiting
    fails exactly when someone holds it (a deploy that tries at that instant retries)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return LockState(str(path), False)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            held = False
        except BlockingIOError:
            held = True
        return LockState(str(path), held, _read_holder(fd))
    finally:
        os.close(fd)  # drops the shared flock, if taken


def holds_open(pid: int, path: Path) -> bool:
    """Has process `pid` of this machine `path` open (the lock's holder, not a stranger
    that reused a dead holder's pid)?"""
    target = os.path.realpath(path)
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}") == target:
                return True
        except OSError:
            continue
    return False


def stop_holder(path: Path, pid: int, *, wait: float = 60.0, poll: float = 0.2) -> bool:
    """SIGTERM to the process of this machine that holds the lock at `path` (checked
    first: it must have the file open); True once the lock is free, False when it is
    still held after `wait` seconds (a deploy undoing itself takes its time)."""
    if not holds_open(pid, path):
        raise OdooAiError(f"{path}: pid {pid} does not hold the lock on this machine (not running, or another "
                          "process): nothing stopped", exit_code=ExitCode.FAILED)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not inspect_lock(path).held:
            return True
        time.sleep(poll)
    return not inspect_lock(path).held


def hold_in_background(path: Path, *, message: str, timeout: float) -> Holder:
    """Take the lock at `path` by hand: a detached process (its own session, so closing
    the terminal does not end it) takes the flock, writes its note, and holds it until
    SIGTERM (`stop_holder`). Raises LockHeld when another holder keeps it `timeout` s."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "odoo_ai.lock", "hold", str(path), str(timeout), message],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    assert proc.stdout is not None
    state, _, rest = proc.stdout.readline().decode("utf-8", "replace").strip().partition(" ")
    proc.stdout.close()
    holder = Holder.parse(rest) if rest else None
    if state == "LOCKED" and holder is not None:
        proc.returncode = 0  # it goes on alone: no ResourceWarning about a child still running
        return holder
    proc.wait(timeout=10)
    if state == "HELD":
        raise held_error(path.parent.name, holder, timeout)
    raise OdooAiError(f"could not start the lock holder for {path} (exit {proc.returncode})", exit_code=ExitCode.INFRA)


def _hold(path: Path, timeout: float, message: str) -> int:
    """`python -m odoo_ai.lock hold PATH TIMEOUT MESSAGE`: the detached holder."""
    for signum in (signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # taken by sigwait below, never lost
    lock = EnvLock(path, command=HELD_BY_HAND, timeout=timeout, message=message, manual=True)
    try:
        lock.acquire()
    except LockHeld:
        try:
            fd = os.open(path, os.O_RDONLY)
            holder = _read_holder(fd)
            os.close(fd)
        except OSError:
            holder = None
        print(f"HELD {holder.note() if holder else ''}", flush=True)
        return 75
    assert lock.holder is not None
    print(f"LOCKED {lock.holder.note()}", flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the caller stops reading: nothing of ours may block on its pipe
    signal.sigwait({signal.SIGTERM})
    lock.release()
    return 0


if __name__ == "__main__":  # pragma: no cover - run by hold_in_background
    if len(sys.argv) == 5 and sys.argv[1] == "hold":
        sys.exit(_hold(Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
    sys.exit(2)
