"""Run commands on this machine with subprocess (argv lists, no shell)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable

from odoo_ai.errors import ExitCode, OdooAiError
from odoo_ai.runners.base import Command, CommandTimedOut, Result, check_reachable

MAX_STREAM_LINE_BYTES = 1_048_576  # longer lines are cut; the rest of the line is dropped


class LocalRunner:
    dry_run = False

    def __init__(self, *, echo=None):
        self._echo = echo  # callable(str) shown before each command (human log), or None

    def note(self, text: str) -> None:
        if self._echo:
            self._echo(f"# {text}")

    def run(self, command: Command, *, capture: bool = False) -> Result:
        if self._echo:
            self._echo(command.display())
        env = {**os.environ, **command.env}
        try:
            proc = subprocess.run(  # noqa: S603 - argv list, never a shell
                command.argv,
                input=command.stdin,
                stdin=None if command.stdin is not None else subprocess.DEVNULL,
                capture_output=capture,
                env=env,
                cwd=command.cwd,
                timeout=command.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise OdooAiError(f"{command.argv[0]}: command not found", exit_code=ExitCode.INFRA) from None
        except subprocess.TimeoutExpired:
            raise CommandTimedOut.of(command) from None
        return check_reachable(command, Result(proc.returncode, _decode(proc.stdout), _decode(proc.stderr)))

    def stream(self, command: Command, on_line: Callable[[str], None]) -> int:
        """Run `command` with stdout+stderr merged into one pipe, `on_line(line)` per line.

        The command gets its own process group so that a timeout (or Ctrl-C) kills it and
        its children (e.g. `docker` and its compose plugin); that raises CommandTimedOut.
        """
        if self._echo:
            self._echo(command.display())
        try:
            proc = subprocess.Popen(  # noqa: S603 - argv list, never a shell
                command.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, **command.env},
                cwd=command.cwd,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise OdooAiError(f"{command.argv[0]}: command not found", exit_code=ExitCode.INFRA) from None
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            _kill_group(proc)

        timer = threading.Timer(command.timeout, kill) if command.timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            assert proc.stdout is not None
            for line in _capped_lines(proc.stdout):
                on_line(line)
            returncode = proc.wait()
        except BaseException:  # Ctrl-C or a failing callback: never leave the command running
            _kill_group(proc)
            proc.wait()
            raise
        finally:
            if timer:
                timer.cancel()
            if proc.stdout is not None:
                proc.stdout.close()
        if timed_out.is_set():
            raise CommandTimedOut(f"timed out after {command.timeout:.0f}s and was killed: {command.display()}")
        return returncode


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _capped_lines(stream, max_bytes: int = MAX_STREAM_LINE_BYTES):
    """Lines of a binary pipe as soon as they arrive, decoded; a line longer than
    `max_bytes` keeps its first `max_bytes` and drops the rest."""
    dropping = False
    while chunk := stream.readline(max_bytes):
        complete = chunk.endswith(b"\n")
        if not dropping:
            yield _decode(chunk).rstrip("\r\n")
        dropping = not complete


def _decode(data: bytes | None) -> str:
    return data.decode("utf-8", "replace") if data else ""
