"""The runner seam: the only place where planned commands touch the world."""

from __future__ import annotations

import re
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


# What the docker CLI says when it cannot reach its engine (local socket or DOCKER_HOST).
UNREACHABLE = re.compile(
    r"Cannot connect to the Docker daemon|error during connect|Is the docker daemon running"
    r"|dial unix [^ ]+: connect: (?:no such file or directory|permission denied|connection refused)")


class EngineUnreachable(OdooAiError):
    """The Docker engine cannot be reached: exit 3, with the last line docker said."""

    exit_code = ExitCode.INFRA


def check_reachable(command: Command, result: Result) -> Result:
    """Raise EngineUnreachable when a failed command says the engine is out of reach."""
    if result.returncode != 0 and UNREACHABLE.search(result.stderr or ""):
        last = [line for line in result.stderr.strip().splitlines() if UNREACHABLE.search(line)]
        raise EngineUnreachable(f"the Docker engine cannot be reached: {(last or [result.stderr.strip()])[-1]}",
                                hint="start it (Debian: dockerd; scripts/provision-host.sh does) or check "
                                     "DOCKER_HOST / ODOO_AI_DOCKER")
    return result


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
