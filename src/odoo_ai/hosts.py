"""The Docker host a deploy acts on: this machine, or one reached over OpenSSH.

A host runs planned commands (its runner) and does the few file operations a
deploy needs on the host's own disk: private files written atomically, the
release log appended under flock, and the per-env lock. Remotely each one is a
fixed `sh -c` script whose paths arrive as positional arguments and whose
contents arrive on stdin, so no value is ever spliced into a shell line.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from odoo_ai.config.envfile import write_private_file
from odoo_ai.errors import ExitCode, OdooAiError
from odoo_ai.lock import EnvLock, Holder, LockHeld
from odoo_ai.releases import append_release
from odoo_ai.runners.base import Command, Result, Runner
from odoo_ai.runners.local import LocalRunner
from odoo_ai.runners.ssh import SshRunner, SshTarget, remote_line

# Files of the repository that Compose needs on the host (relative to the repo).
STACK_FILES = ("docker-compose.yml", "environments", "docker/proxy")
READ_LIMIT = 1 << 20  # what read_from returns at most: the start of what a log gained


class Host(Protocol):
    """A connector: runs planned commands and moves files on one Docker host. Local, ssh
    and dry connectors implement it; nothing else in a use-case touches the world."""

    runner: Runner
    remote: bool
    dry_run: bool

    def run(self, command: Command, *, capture: bool = True) -> Result: ...
    def note(self, text: str) -> None: ...
    def sleep(self, seconds: float, why: str = "") -> None: ...
    def read_text(self, path: Path) -> str | None: ...
    def size(self, path: Path) -> int: ...
    def read_from(self, path: Path, offset: int, limit: int = READ_LIMIT) -> str: ...
    def write_private(self, path: Path, text: str) -> None: ...
    def append_record(self, path: Path, record: dict) -> None: ...
    def replace(self, src: Path, dst: Path) -> None: ...
    def copy(self, src: Path, dst: Path) -> None: ...
    def unlink(self, path: Path) -> None: ...
    def mkdir(self, path: Path) -> None: ...
    def lock(self, path: Path, *, command: str, timeout: float) -> AbstractContextManager: ...
    def make_private_dir(self) -> Path: ...
    def remove_tree(self, path: Path) -> None: ...


class _Commands:
    """run/note/sleep of a connector, through its runner."""

    runner: Runner
    dry_run = False

    def run(self, command: Command, *, capture: bool = True) -> Result:
        return self.runner.run(command, capture=capture)

    def note(self, text: str) -> None:
        self.runner.note(text)

    def sleep(self, seconds: float, why: str = "") -> None:
        time.sleep(seconds)


class LocalHost(_Commands):
    remote = False

    def __init__(self, runner: Runner | None = None):
        self.runner = runner or LocalRunner()

    def read_text(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def size(self, path: Path) -> int:
        """Bytes in `path` (0 when it does not exist or cannot be read)."""
        try:
            return path.stat().st_size
        except OSError:
            return 0

    def read_from(self, path: Path, offset: int, limit: int = READ_LIMIT) -> str:
        """Up to `limit` bytes of `path` from `offset` on ('' when unreadable), e.g. what a
        log file gained since `size` was taken."""
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                return handle.read(limit).decode("utf-8", "replace")
        except OSError:
            return ""

    def write_private(self, path: Path, text: str) -> None:
        write_private_file(path, text)

    def append_record(self, path: Path, record: dict) -> None:
        append_release(path, record)

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def copy(self, src: Path, dst: Path) -> None:
        if src.exists():
            shutil.copy2(src, dst)

    def unlink(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def mkdir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def lock(self, path: Path, *, command: str, timeout: float) -> EnvLock:
        return EnvLock(path, command=command, timeout=timeout)

    def make_private_dir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="odoo-ai-"))  # 0700

    def remove_tree(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)


# Remote scripts: "$1", "$2"... are paths; contents come on stdin.
_WRITE = 'umask 077; mkdir -p "$(dirname "$1")" && t=$(mktemp "$1.XXXXXX") && cat > "$t" && mv -f "$t" "$1"'
_APPEND = ('umask 027; mkdir -p "$(dirname "$1")" && exec 9>>"$1" && flock 9 && '
           'if [ -s "$1" ] && [ "$(tail -c 1 "$1" | wc -l)" -eq 0 ]; then printf "\\n" >&9; fi && cat >&9')
_READ = 'if [ -f "$1" ]; then cat "$1"; else exit 3; fi'
# Holds the flock for as long as our stdin stays open: when this process exits or
# dies, ssh closes, the remote shell ends, and the kernel drops the lock.
_LOCK = ('umask 077; mkdir -p "$(dirname "$1")" && exec 9<>"$1" || exit 70; '
         'if ! flock -w "$2" 9; then printf "HELD %s\\n" "$(cat "$1")"; exit 75; fi; '
         'printf "LOCKED %s\\n" "$(cat "$1")"; printf "%s" "$3" > "$1"; cat > /dev/null; : > "$1"')


class RemoteLock:
    def __init__(self, target: SshTarget, path: Path, *, command: str, timeout: float):
        self.target, self.path, self.command, self.timeout = target, path, command, timeout
        self.recovered: Holder | None = None
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> RemoteLock:
        note = json.dumps(Holder.me(self.command).__dict__)
        line = remote_line(Command(["sh", "-c", _LOCK, "sh", str(self.path), str(int(self.timeout)), note]))
        self._proc = subprocess.Popen(  # noqa: S603 - argv list, quoted remote line
            self.target.ssh_argv(line), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        first = self._proc.stdout.readline().decode("utf-8", "replace").rstrip("\n")
        state, _, previous = first.partition(" ")
        holder = _holder(previous)
        if state == "LOCKED":
            self.recovered = holder
            return self
        self._proc.kill()
        err = self._proc.stderr.read().decode("utf-8", "replace").strip() if self._proc.stderr else ""
        self._proc.wait()
        if state == "HELD":
            who = holder.describe() if holder else "another process"
            raise LockHeld(f"{self.path.parent.name}: locked by {who} after waiting {self.timeout:.0f}s",
                           hint="wait for it to finish, or pass --lock-timeout SECONDS to wait longer")
        raise OdooAiError(f"cannot take the deploy lock on {self.target}: {err or 'no answer'}",
                          exit_code=ExitCode.INFRA)

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def _holder(text: str) -> Holder | None:
    try:
        return Holder(**json.loads(text)) if text.strip() else None
    except (ValueError, TypeError):
        return None


class RemoteHost(_Commands):
    remote = True

    def __init__(self, target: SshTarget, runner: SshRunner | None = None):
        self.target = target
        self.runner = runner or SshRunner(target)

    def _sh(self, script: str, *args: str, stdin: bytes | None = None, timeout: float = 120) -> tuple[int, str]:
        result = self.runner.run(Command(["sh", "-c", script, "sh", *args], stdin=stdin, timeout=timeout),
                                 capture=True)
        return result.returncode, result.stdout if result.returncode != 255 else result.stderr

    def _must(self, what: str, script: str, *args: str, stdin: bytes | None = None) -> str:
        code, out = self._sh(script, *args, stdin=stdin)
        if code != 0:
            raise OdooAiError(f"{self.target}: {what} failed (exit {code}): {out.strip()[-200:]}",
                              exit_code=ExitCode.INFRA)
        return out

    def read_text(self, path: Path) -> str | None:
        code, out = self._sh(_READ, str(path))
        if code == 3:
            return None
        if code != 0:
            raise OdooAiError(f"{self.target}: cannot read {path} (exit {code})", exit_code=ExitCode.INFRA)
        return out

    def size(self, path: Path) -> int:
        code, out = self._sh('if [ -r "$1" ]; then wc -c < "$1"; else echo 0; fi', str(path))
        return int(out.strip()) if code == 0 and out.strip().isdigit() else 0

    def read_from(self, path: Path, offset: int, limit: int = READ_LIMIT) -> str:
        code, out = self._sh('if [ -r "$1" ]; then tail -c "+$(($2 + 1))" "$1" | head -c "$3"; fi',
                             str(path), str(int(offset)), str(int(limit)))
        return out if code == 0 else ""

    def write_private(self, path: Path, text: str) -> None:
        self._must(f"writing {path}", _WRITE, str(path), stdin=text.encode("utf-8"))

    def append_record(self, path: Path, record: dict) -> None:
        from odoo_ai.releases import SCHEMA

        line = json.dumps({"schema": SCHEMA, **record}, separators=(",", ":")) + "\n"
        self._must(f"appending to {path}", _APPEND, str(path), stdin=line.encode("utf-8"))

    def replace(self, src: Path, dst: Path) -> None:
        self._must(f"renaming {src}", 'mv -f "$1" "$2"', str(src), str(dst))

    def copy(self, src: Path, dst: Path) -> None:
        self._must(f"copying {src}", 'if [ -f "$1" ]; then cp -p "$1" "$2"; fi', str(src), str(dst))

    def unlink(self, path: Path) -> None:
        self._must(f"removing {path}", 'rm -f "$1"', str(path))

    def mkdir(self, path: Path) -> None:
        self._must(f"creating {path}", 'mkdir -p "$1"', str(path))

    def lock(self, path: Path, *, command: str, timeout: float) -> RemoteLock:
        return RemoteLock(self.target, path, command=command, timeout=timeout)

    def make_private_dir(self) -> Path:
        return Path(self._must("creating a private temp dir", 'mktemp -d "${TMPDIR:-/tmp}/odoo-ai-XXXXXX"').strip())

    def remove_tree(self, path: Path) -> None:
        self._sh('rm -rf -- "$1"', str(path))

    def sync_stack_files(self, repo_root: Path, remote_dir: Path) -> None:
        """Copy the Compose files of the repo to the host (tar over stdin)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name in STACK_FILES:
                tar.add(repo_root / name, arcname=name)
        self._must(f"syncing the stack files to {remote_dir}",
                   'mkdir -p "$1" && tar -x -m --no-same-owner -f - -C "$1"', str(remote_dir),
                   stdin=buffer.getvalue())
