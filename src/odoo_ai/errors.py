"""One error type, one place that maps it to an exit code (see cli.main)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the operation ran and failed (e.g. a command exited non-zero)
    USAGE = 2  # bad input or config: nothing was changed
    INFRA = 3  # the machinery around (Docker, Odoo, the network) failed


class OdooAiError(Exception):
    """An error with a one-line message for humans and an exit code."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, exit_code: ExitCode | None = None, hint: str | None = None,
                 output: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.output = output  # what the failing command said that names the cause (shown before the message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(OdooAiError):
    """Bad input: unknown env, malformed file, invalid value. Exit 2, nothing written."""

    exit_code = ExitCode.USAGE


class CommandFailed(OdooAiError):
    """An external command exited non-zero."""

    exit_code = ExitCode.FAILED
