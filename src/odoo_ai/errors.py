"""One error type and one exit-code enum for every command (the CLI maps them in
odoo_ai.cli.common.report_error)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of `odoo-ai` and of `test` / `odoo-ai test` (README: Commands)."""

    __test__ = False  # not a pytest test class under its alias TestExitCode

    OK = 0  # ok; for test run / test parse: every test passed (also no test with --allow-empty)
    FAILED = 1  # the operation ran and failed (a command exited non-zero; tests failed or errored)
    USAGE = 2  # bad input or config: nothing was changed
    INFRA = 3  # the machinery around (Docker, Odoo, the network) failed
    NO_TESTS = 4  # test run / test parse: no test ran (0 instead with --allow-empty)

    PASSED = 0  # alias of OK, the name the test runner uses


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
