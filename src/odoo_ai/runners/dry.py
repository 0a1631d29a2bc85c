"""The dry-run runner: prints each command's exact argv and runs nothing."""

from __future__ import annotations

import sys
from collections.abc import Callable

from odoo_ai.runners.base import Command, Result


class DryRunner:
    dry_run = True

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.commands: list[Command] = []

    def run(self, command: Command, *, capture: bool = False) -> Result:
        self.commands.append(command)
        stdin_note = "  # stdin: <redacted>" if command.stdin is not None else ""
        print(command.display() + stdin_note, file=self.out)
        return Result(0)

    def note(self, text: str) -> None:
        print(f"# {text}", file=self.out)

    def stream(self, command: Command, on_line: Callable[[str], None]) -> int:
        return self.run(command).returncode
