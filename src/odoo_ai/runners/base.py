"""The runner seam: the only place where planned commands touch the world."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Protocol


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
