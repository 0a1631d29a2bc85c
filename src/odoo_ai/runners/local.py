"""Run commands on this machine with subprocess (argv lists, no shell)."""

from __future__ import annotations

import os
import subprocess

from odoo_ai.errors import ExitCode, OdooAiError
from odoo_ai.runners.base import Command, Result


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
            raise OdooAiError(
                f"timed out after {command.timeout:.0f}s: {command.display()}", exit_code=ExitCode.INFRA
            ) from None
        return Result(proc.returncode, _decode(proc.stdout), _decode(proc.stderr))


def _decode(data: bytes | None) -> str:
    return data.decode("utf-8", "replace") if data else ""
