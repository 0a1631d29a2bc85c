"""The runner seam: the only place where planned commands touch the world."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from odoo_ai.errors import ExitCode, OdooAiError


@dataclass(frozen=True)
class Command:
    """One planned external command. argv only: never a shell string.

    `env` adds non-secret variables; secrets travel via `stdin` or 0600 files.
    """

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    stdin: bytes | None = None
    cwd: str | None = None
    # What the command is for (the planning function's name, e.g. "db_exists"): how a dry
    # or scripted connector knows what to answer, and what table tests assert.
    purpose: str = ""
    # Only reads (inspect, list, SELECT): a dry run may run it for real.
    reads: bool = False

    def display(self) -> str:
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        line = shlex.join(self.argv)
        return f"{prefix} {line}" if prefix else line


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 20) -> str:
        text = (self.stderr or self.stdout).rstrip()
        return "\n".join(text.splitlines()[-lines:])


class Runner(Protocol):
    dry_run: bool

    def run(self, command: Command, *, capture: bool = False) -> Result:
        """Run `command`; with capture=False its output goes straight to the terminal."""
        ...

    def note(self, text: str) -> None:
        """Say what a step does besides running a command (shown in dry-run)."""
        ...


class CommandTimedOut(OdooAiError):
    """A command ran past its timeout; it was killed (with its process group). Every
    connector (local, ssh) raises this one error."""

    exit_code = ExitCode.INFRA

    @classmethod
    def of(cls, command: Command, where: str = "") -> CommandTimedOut:
        return cls(f"timed out after {command.timeout:.0f}s{where}: {command.display()}")


class StreamingRunner(Runner, Protocol):
    def stream(self, command: Command, on_line: Callable[[str], None]) -> int:
        """Run `command`, hand each line of its output (stdout and stderr merged, decoded,
        without the line ending) to `on_line` as it arrives; return the exit code.
        Raises CommandTimedOut after `command.timeout` seconds."""
        ...
