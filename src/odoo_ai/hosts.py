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
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from odoo_ai.config.envfile import write_private_file
from odoo_ai.config.stateroot import (
    DirFacts,
    PurgeListing,
    decide_marked_dir,
    inspect_purge,
    local_dir_facts,
    parse_dir_facts,
    purge_listing_from_entries,
    read_local_marker,
    remove_marked_tree,
    user_homes,
    write_local_marker,
)
from odoo_ai.errors import ExitCode, OdooAiError
from odoo_ai.lock import (
    HELD_BY_HAND,
    EnvLock,
    Holder,
    LockState,
    held_error,
    hold_in_background,
    inspect_lock,
    parse_state,
    stop_holder,
)
from odoo_ai.releases import append_release
from odoo_ai.runners.base import Command, CommandTimedOut, Result, Runner
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
    def together(self, *calls: Callable[[], Any]) -> list[Any]: ...
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
    def read_marker(self, path: Path) -> str | None: ...
    def write_marker(self, path: Path, text: str) -> None: ...
    def probe_http(self, base_url: str, paths: list[str]) -> dict[str, dict]: ...
    def run_attached(self, command: Command) -> int: ...
    def purge_listing(self, root: Path, project: str, *, parts: list[tuple[str, Path]], repo_root: Path | None,
                      env: str) -> PurgeListing | None: ...
    def remove_marked_tree(self, root: Path, project: str, *, repo_root: Path | None, env: str) -> bool: ...
    def registry(self, settings: Any, transport: Any = None) -> Any: ...
    def stream(self, command: Command, on_line: Callable[[str], None]) -> int: ...
    def mkdir_private(self, path: Path) -> None: ...


def run_together(calls: Sequence[Callable[[], Any]], *, at_once: bool) -> list[Any]:
    """Host.together: `calls` in threads (at_once) or one after the other."""
    if not at_once or len(calls) < 2:
        return [call() for call in calls]
    outcomes: list[tuple[bool, Any]] = [(False, None)] * len(calls)

    def work(index: int) -> None:
        try:
            outcomes[index] = (True, calls[index]())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcomes[index] = (False, exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(1, len(calls))]
    for thread in threads:
        thread.start()
    try:
        work(0)  # the first in this thread: a signal handler's exception lands here, not lost
    finally:
        for thread in threads:
            thread.join()
    for done, value in outcomes:
        if not done:
            raise value
    return [value for _, value in outcomes]


class _Commands:
    """run/note/sleep of a connector, through its runner."""

    runner: Runner
    dry_run = False

    def run(self, command: Command, *, capture: bool = True) -> Result:
        return self.runner.run(command, capture=capture)

    def together(self, *calls: Callable[[], Any]) -> list[Any]:
        """Run the calls at once, each in its own thread; their results, in order. They must
        not depend on each other (probes, or steps on different containers). Once all have
        ended, the first exception raised (in order) is raised. A dry runner runs them one
        after the other, so the printed plan reads in order."""
        return run_together(calls, at_once=not self.dry_run)

    def note(self, text: str) -> None:
        self.runner.note(text)

    def sleep(self, seconds: float, why: str = "") -> None:
        time.sleep(seconds)

    def registry(self, settings: Any, transport: Any = None) -> Any:
        """The registry's API client (HTTP from this machine, whichever host runs the stack)."""
        from odoo_ai.registry import open_backend

        return open_backend(settings, transport=transport)

    def stream(self, command: Command, on_line: Callable[[str], None]) -> int:
        """Run `command`, each line of its output (stdout and stderr merged) to `on_line` as
        it arrives; its exit code. CommandTimedOut after `command.timeout`."""
        return self.runner.stream(command, on_line)  # type: ignore[attr-defined]


class LocalHost(_Commands):
    remote = False

    def __init__(self, runner: Runner | None = None):
        self.runner = runner or LocalRunner()

    @property
    def dry_run(self) -> bool:  # type: ignore[override]
        """True around a dry runner (the stack commands' --dry-run): commands are printed."""
        return bool(getattr(self.runner, "dry_run", False))

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

    def read_marker(self, path: Path) -> str | None:
        """A state root's marker, never through a symlink (stateroot.read_local_marker)."""
        return read_local_marker(path)

    def write_marker(self, path: Path, text: str) -> None:
        write_local_marker(path, text)

    def probe_http(self, base_url: str, paths: list[str]) -> dict[str, dict]:
        """GET each path from here: {path: {path, status, ms, error}}."""
        from odoo_ai import health

        answers = {}
        for path in paths:
            probe = health.probe(base_url + path)
            answers[path] = {"path": path, "status": probe.status, "ms": round(probe.seconds * 1000, 1),
                             "error": None if probe.status else probe.detail}
        return answers

    def run_attached(self, command: Command) -> int:
        return self.runner.run(command, capture=False).returncode

    # ------------------------------------------------------------ the purge guard (down --purge)
    def dir_facts(self, root: Path) -> DirFacts:
        return local_dir_facts(root)

    def purge_listing(self, root: Path, project: str, *, parts: list[tuple[str, Path]], repo_root: Path | None,
                      env: str) -> PurgeListing | None:
        return inspect_purge(root, project, parts=parts, homes=user_homes(), repo_root=repo_root, env=env)

    def remove_marked_tree(self, root: Path, project: str, *, repo_root: Path | None, env: str) -> bool:
        return remove_marked_tree(root, project, homes=user_homes(), repo_root=repo_root, env=env)

    # ------------------------------------------------------------ the lock by hand (odoo-ai lock)
    def lock_state(self, path: Path) -> LockState:
        return inspect_lock(path)

    def hold_lock(self, path: Path, *, message: str, timeout: float) -> Holder:
        return hold_in_background(path, message=message, timeout=timeout)

    def stop_lock_holder(self, path: Path, pid: int, *, wait: float) -> bool:
        return stop_holder(path, pid, wait=wait)

    def mkdir_private(self, path: Path) -> None:
        """Create exactly `path` (0700; its parents as needed); OSError when it exists."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700)


# Remote scripts: "$1", "$2"... are paths; contents come on stdin.
_WRITE = 'umask 077; mkdir -p "$(dirname "$1")" && t=$(mktemp "$1.XXXXXX") && cat > "$t" && mv -f "$t" "$1"'
_APPEND = ('umask 027; mkdir -p "$(dirname "$1")" && exec 9>>"$1" && flock 9 && '
           'if [ -s "$1" ] && [ "$(tail -c 1 "$1" | wc -l)" -eq 0 ]; then printf "\\n" >&9; fi && cat >&9')
_READ = 'if [ -f "$1" ]; then cat "$1"; else exit 3; fi'
# Holds the flock for as long as our stdin stays open: when this process exits or
# dies, ssh closes, the remote shell ends, and the kernel drops the lock.
# The note names this shell ($$, `lock_pid`): the process on the host that holds the flock
# (`cat` does not inherit it), which `odoo-ai lock release --force` may stop. It is written
# before LOCKED is said (with the previous note: a holder that died).
_LOCK = ('umask 077; mkdir -p "$(dirname "$1")" && exec 9<>"$1" || exit 70; '
         'if ! flock -w "$2" 9; then printf "HELD %s\\n" "$(cat "$1")"; exit 75; fi; '
         'p=$(cat "$1"); printf \'{"lock_pid":%s,%s\' "$$" "${3#?}" > "$1"; printf "LOCKED %s\\n" "$p"; '
         'cat > /dev/null 9>&-; : > "$1"')
# The lock without taking it: ABSENT, or FREE/HELD and the note (a shared flock tried
# without waiting fails exactly when someone holds it).
_LOCK_STATE = ('[ -e "$1" ] || { echo ABSENT; exit 0; }; exec 9<"$1" || exit 70; '
               'if flock -n -s 9; then s=FREE; else s=HELD; fi; '
               'printf "%s %s\\n" "$s" "$(head -c 4096 "$1" | tr -d "\\n")"')
# Take the lock by hand: a detached shell of its own session ($4) keeps the flock (fd 9)
# until SIGTERM, then empties the note; its `sleep` does not inherit the lock.
_HOLDER = ("trap '' HUP INT; trap 'kill \"$s\" 2>/dev/null; : > \"$1\"; exit 0' TERM; "
           'while :; do sleep 3600 9>&- & s=$!; wait "$s"; done')
_HOLD = ('umask 077; mkdir -p "$(dirname "$1")" && exec 9<>"$1" || exit 70; '
         'if ! flock -w "$2" 9; then printf "HELD %s\\n" "$(head -c 4096 "$1" | tr -d "\\n")"; exit 75; fi; '
         'setsid sh -c "$4" odoo-ai-lock "$1" </dev/null >/dev/null 2>&1 & pid=$!; '
         'printf \'{"pid":%s,"host":"%s",%s\' "$pid" "$(uname -n)" "${3#?}" > "$1"; '
         'printf "LOCKED %s\\n" "$(cat "$1")"')
# Stop the process $2 that holds the lock $1 (only if it has that file open), then wait
# up to $3 tenths of a second for the lock to be free: exit 0 free, 3 not the holder, 5 still held.
_STOP_HOLDER = ('t=$(readlink -f "$1") || exit 3; ok=; for f in /proc/"$2"/fd/*; do '
                'if [ "$(readlink "$f" 2>/dev/null)" = "$t" ]; then ok=1; break; fi; done; [ -n "$ok" ] || exit 3; '
                'kill -TERM "$2" 2>/dev/null; i=0; while [ "$i" -lt "$3" ]; do exec 8<"$1"; '
                'if flock -n -s 8; then exec 8<&-; exit 0; fi; exec 8<&-; sleep 0.1; i=$((i + 1)); done; exit 5')


# The purge guard's facts about a state root $1 (stateroot.parse_dir_facts reads them):
# the user's HOME, what $1 is (never followed if a symlink), its real path, and its marker.
_DIR_FACTS = ('printf "HOME %s\\n" "$HOME"; r=$1; m=$1/$2; '
              'if [ -L "$r" ]; then printf "KIND link %s\\n" "$(readlink -- "$r")"; exit 0; fi; '
              'if [ ! -e "$r" ]; then echo "KIND absent"; exit 0; fi; '
              'if [ ! -d "$r" ]; then echo "KIND notdir"; exit 0; fi; '
              'printf "KIND dir\\nREAL %s\\n" "$(readlink -f -- "$r")"; '
              'if [ -L "$m" ]; then echo "MARKER link"; elif [ ! -e "$m" ]; then echo "MARKER absent"; '
              'elif [ ! -f "$m" ]; then echo "MARKER other"; elif [ ! -r "$m" ]; then echo "MARKER unreadable"; '
              'elif [ "$(wc -c < "$m")" -gt "$3" ]; then echo "MARKER big"; '
              'else echo "MARKER file"; head -c "$3" -- "$m"; fi')
# Every entry under $1 (symlinks not followed): type, size, inode, path; folders that could
# not be listed show as find's errors (counted, their size missing).
_TREE = '{ find -P "$1" -mindepth 1 -printf "%y %s %D:%i %p\\n" 2>&1 1>&3 | grep -c . 1>&2; } 3>&1; exit 0'
# Delete $1 after checking again that it is the real directory $3 carrying exactly the
# marker $2: the contents first, the marker last (a half-done delete stays recognisable).
_PURGE = ('r=$1; m=$1/.odoo-ai-stack; [ -L "$r" ] && exit 3; [ -d "$r" ] || exit 3; '
          '[ "$(readlink -f -- "$r")" = "$3" ] || exit 3; { [ -f "$m" ] && [ ! -L "$m" ]; } || exit 3; '
          '[ "$(head -c 4096 -- "$m")" = "$2" ] || exit 3; cd -P -- "$r" || exit 3; '
          'find . -mindepth 1 -maxdepth 1 ! -name .odoo-ai-stack -exec rm -rf -- {} + 2>&1 || exit 6; '
          'rm -f -- .odoo-ai-stack && cd / && rmdir -- "$r" 2>&1 || exit 6')


class RemoteLock:
    def __init__(self, target: SshTarget, path: Path, *, command: str, timeout: float):
        self.target, self.path, self.command, self.timeout = target, path, command, timeout
        self.recovered: Holder | None = None
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> RemoteLock:
        note = Holder.me(self.command).note()
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
            raise held_error(self.path.parent.name, holder, self.timeout)
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
    return Holder.parse(text) if text.strip() else None


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

    def read_marker(self, path: Path) -> str | None:
        return self.read_text(path)

    def write_marker(self, path: Path, text: str) -> None:
        self.write_private(path, text)

    def probe_http(self, base_url: str, paths: list[str]) -> dict[str, dict]:
        """The probes from the Docker host's own loopback (python3, else curl, there)."""
        from odoo_ai.plan import status as splan

        result = self.run(splan.http_probe(base_url, paths))
        answers = splan.parse_probe(result.stdout)
        if not answers:
            why = "no python3 or curl on the host" if result.returncode == 127 else (result.tail(1) or "no answer")
            answers = {p: {"path": p, "status": None, "ms": None, "error": why} for p in paths}
        return answers

    # ------------------------------------------------------------ the purge guard (down --purge --host)
    def dir_facts(self, root: Path) -> DirFacts:
        from odoo_ai.config.stateroot import MARKER, MARKER_MAX

        code, out = self._sh(_DIR_FACTS, str(root), MARKER, str(MARKER_MAX), timeout=60)
        if code != 0:
            raise OdooAiError(f"{self.target}: cannot inspect {root} (exit {code}): {out.strip()[-200:]}",
                              exit_code=ExitCode.INFRA)
        return parse_dir_facts(out)

    def purge_listing(self, root: Path, project: str, *, parts: list[tuple[str, Path]], repo_root: Path | None,
                      env: str) -> PurgeListing | None:
        """The same checks as on this machine, on the host's disk (its own HOME), then every
        entry under the state root listed there and measured here."""
        facts = self.dir_facts(root)
        marker = decide_marked_dir(root, project, facts, homes=facts.homes, repo_root=repo_root, env=env)
        if marker is None:
            return None
        result = self.runner.run(Command(["sh", "-c", _TREE, "sh", str(root)], timeout=600),
                                 capture=True)
        if result.returncode != 0:
            raise OdooAiError(f"{self.target}: cannot list {root} (exit {result.returncode}): {result.tail(1)}",
                              exit_code=ExitCode.INFRA)
        unreadable = int(result.stderr.strip() or 0) if result.stderr.strip().isdigit() else 0
        return purge_listing_from_entries(root, project, marker, parts, result.stdout, unreadable=unreadable)

    def remove_marked_tree(self, root: Path, project: str, *, repo_root: Path | None, env: str) -> bool:
        facts = self.dir_facts(root)  # checked again: what was listed may have changed
        if decide_marked_dir(root, project, facts, homes=facts.homes, repo_root=repo_root, env=env) is None:
            return False
        code, out = self._sh(_PURGE, str(root), (facts.marker_text or "").rstrip("\n"), str(facts.real),
                             timeout=1800)
        if code == 3:
            raise OdooAiError(f"refusing to delete {root}: it changed since it was checked; nothing deleted",
                              exit_code=ExitCode.USAGE)
        if code != 0:
            raise OdooAiError(f"cannot delete all of {root} on {self.target}: {out.strip()[-200:] or f'exit {code}'}; "
                              "the rest stays, marked: purge again once it can be deleted",
                              hint="files written by the database container may belong to its own user")
        return True

    # ------------------------------------------------------------ the lock by hand (odoo-ai lock)
    def lock_state(self, path: Path) -> LockState:
        code, out = self._sh(_LOCK_STATE, str(path), timeout=60)
        if code != 0:
            raise OdooAiError(f"{self.target}: cannot read the lock {path} (exit {code}): {out.strip()[-200:]}",
                              exit_code=ExitCode.INFRA)
        return parse_state(path, out)

    def hold_lock(self, path: Path, *, message: str, timeout: float) -> Holder:
        """Take the lock by hand on the host: a detached shell there holds it until
        stop_lock_holder (the note names it, and the host, as `pid` and `host`)."""
        note = {k: v for k, v in json.loads(Holder.me(HELD_BY_HAND, message=message, manual=True).note()).items()
                if k not in ("pid", "host")}
        code, out = self._sh(_HOLD, str(path), str(int(timeout)), json.dumps(note), _HOLDER, timeout=timeout + 60)
        state, _, rest = out.strip().partition(" ")
        holder = Holder.parse(rest) if rest.strip() else None
        if code == 0 and state == "LOCKED" and holder is not None:
            return holder
        if code == 75:
            raise held_error(path.parent.name, holder, timeout)
        raise OdooAiError(f"{self.target}: cannot take the lock {path} (exit {code}): {out.strip()[-200:]}",
                          exit_code=ExitCode.INFRA)

    def stop_lock_holder(self, path: Path, pid: int, *, wait: float) -> bool:
        code, out = self._sh(_STOP_HOLDER, str(path), str(int(pid)), str(int(wait * 10)), timeout=wait + 60)
        if code in (0, 5):
            return code == 0
        if code == 3:
            raise OdooAiError(f"{self.target}: pid {pid} does not hold the lock {path} there (not running, or "
                              "another process): nothing stopped", exit_code=ExitCode.FAILED)
        raise OdooAiError(f"{self.target}: cannot stop the lock's holder (exit {code}): {out.strip()[-200:]}",
                          exit_code=ExitCode.INFRA)

    def run_attached(self, command: Command) -> int:
        """Run `command` on the host with its output on this terminal (logs -f, compose). On a
        terminal ssh gets one there too (-t): Ctrl-C and closing the terminal reach the
        remote command (it gets SIGINT/SIGHUP) instead of leaving it running on the host."""
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            return self.runner.run(command, capture=False).returncode
        argv = self.target.ssh_argv(remote_line(command))
        proc = subprocess.run([argv[0], "-t", *argv[1:]], check=False)  # noqa: S603 - argv list, quoted line
        return proc.returncode

    def sync_stack_files(self, repo_root: Path, remote_dir: Path) -> None:
        """Copy the Compose files of the repo to the host (tar over stdin)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name in STACK_FILES:
                tar.add(repo_root / name, arcname=name)
        self._must(f"syncing the stack files to {remote_dir}",
                   'mkdir -p "$1" && tar -x -m --no-same-owner -f - -C "$1"', str(remote_dir),
                   stdin=buffer.getvalue())

    def mkdir_private(self, path: Path) -> None:
        """Create exactly `path` on the host (0700; its parents as needed); fails when it exists."""
        self._must(f"creating {path}", 'umask 077; mkdir -p -- "$(dirname -- "$1")" && mkdir -- "$1"', str(path))

    def stream(self, command: Command, on_line: Callable[[str], None]) -> int:
        """`command` on the host, its output streamed back line by line over ssh. At the
        timeout ssh is killed (the caller removes what it started there) and CommandTimedOut
        is raised, as locally."""
        ssh = Command(self.target.ssh_argv(remote_line(command)), timeout=command.timeout)
        try:
            return LocalRunner().stream(ssh, on_line)
        except CommandTimedOut:
            raise CommandTimedOut.of(command, f" on {self.target}") from None
