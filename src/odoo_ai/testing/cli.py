"""`test` command line: `test parse` (an Odoo log from elsewhere) and `test run` (to come).

Both share `report_result()`, which writes every requested output for a RunResult and
returns the exit code. The app object is `app`, so the main CLI can mount it as
`odoo-ai test`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console

from odoo_ai.errors import ConfigError
from odoo_ai.testing.logparse import LogParser, iter_lines
from odoo_ai.testing.report import (
    PathMap,
    ProgressPrinter,
    append_step_summary,
    github_annotations,
    render_human,
    write_junit,
)
from odoo_ai.testing.results import RunResult, TestExitCode

EXIT_CODES_HELP = (
    "Exit codes: 0 all tests passed; 1 tests failed or errored; 2 usage or configuration "
    "error (nothing written); 3 Odoo or the infrastructure failed before the tests could "
    "complete; 4 no test ran (0 instead with --allow-empty)."
)

app = typer.Typer(
    name="test",
    help=f"Run Odoo 18 tests and report their results.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    app()


# ---------------------------------------------------------------- input validation


def parse_odoo_exit_code(value: str | None) -> int | None:
    """`--odoo-exit-code`: a process exit status, 0-255."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or int(text) > 255:
        raise ConfigError(f"--odoo-exit-code must be an integer from 0 to 255, got {value!r}")
    return int(text)


def check_output_path(value: str, option: str) -> Path:
    """A file we may create: its directory must exist, and it must not be a directory."""
    path = Path(value)
    if not value or path.is_dir():
        raise ConfigError(f"{option} {value!r} is a directory, not a file path")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"{option}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{option}: directory {str(parent)!r} is not writable")
    return path


def parse_path_map(values: list[str] | None) -> PathMap:
    """`--path-map FROM=TO`: rewrite traceback paths (seen in a container) for annotations."""
    pairs = []
    for value in values or []:
        source, sep, target = value.partition("=")
        if not sep or not source:
            raise ConfigError(f"--path-map expects FROM=TO, got {value!r}")
        pairs.append((source, target))
    return tuple(pairs)


def open_log(value: str) -> BinaryIO:
    if value == "-":
        return sys.stdin.buffer
    path = Path(value)
    if not path.exists():
        raise ConfigError(f"log file {value!r} does not exist")
    if path.is_dir():
        raise ConfigError(f"log file {value!r} is a directory")
    try:
        return path.open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read log file {value!r}: {exc.strerror or exc}") from exc


# ---------------------------------------------------------------- shared by parse and run


def stderr_console() -> Console:
    # highlight=False: never colour numbers/paths found in untrusted log text.
    return Console(stderr=True, highlight=False)


def report_result(
    result: RunResult,
    *,
    json_output: bool,
    junit_path: Path | None,
    allow_empty: bool = False,
    path_map: PathMap = (),
    console: Console | None = None,
    environ: Mapping[str, str] | None = None,
) -> TestExitCode:
    """Write every requested rendering of `result`; return the exit code to use.

    stdout carries only the JSON document with --json; human output and (then) GitHub
    annotations go to stderr, which GitHub Actions also reads workflow commands from.
    """
    env = os.environ if environ is None else environ
    console = console or stderr_console()
    workspace = env.get("GITHUB_WORKSPACE") or None
    if junit_path is not None:
        try:
            write_junit(result, junit_path, path_map=path_map, workspace=workspace)
        except OSError as exc:
            raise ConfigError(f"cannot write --junit {str(junit_path)!r}: {exc}") from exc
    if env.get("GITHUB_ACTIONS") == "true":
        _github_outputs(result, env, path_map, workspace, to_stderr=json_output)
    if json_output:
        sys.stdout.write(result.to_json(allow_empty=allow_empty) + "\n")
        sys.stdout.flush()
    else:
        render_human(result, console, allow_empty=allow_empty)
    return result.exit_code(allow_empty=allow_empty)


def _github_outputs(
    result: RunResult,
    env: Mapping[str, str],
    path_map: PathMap,
    workspace: str | None,
    *,
    to_stderr: bool,
) -> None:
    summary = env.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            append_step_summary(result, Path(summary))
        except OSError as exc:  # the summary is a nicety: say so, keep the real verdict
            typer.echo(f"warning: cannot write GITHUB_STEP_SUMMARY: {exc}", err=True)
    stream = sys.stderr if to_stderr else sys.stdout
    for line in github_annotations(result, path_map=path_map, workspace=workspace):
        stream.write(line + "\n")
    stream.flush()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(int(TestExitCode.USAGE))


# ---------------------------------------------------------------- commands


@app.command(epilog=EXIT_CODES_HELP)
def parse(
    logfile: Annotated[
        str, typer.Argument(metavar="LOGFILE", help="Odoo log file to read, or - for stdin.")
    ],
    odoo_exit_code: Annotated[
        str | None,
        typer.Option(
            "--odoo-exit-code",
            metavar="N",
            help="Exit code of the Odoo process; non-zero (other than 1 with failing "
            "tests) makes the run an error.",
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON document (schema odoo-ai.test-results/1)."),
    ] = False,
    junit: Annotated[
        str | None, typer.Option("--junit", metavar="PATH", help="Write JUnit XML to PATH.")
    ] = None,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Exit 0 instead of 4 when no test ran.")
    ] = False,
    path_map: Annotated[
        list[str] | None,
        typer.Option(
            "--path-map",
            metavar="FROM=TO",
            help="Rewrite traceback path prefix FROM to TO in annotations and JUnit "
            "(e.g. /mnt/extra-addons=addons). Repeatable.",
        ),
    ] = None,
) -> None:
    """Turn an Odoo 18 log (a CI artifact, a server log) into test results."""
    try:
        exit_code = parse_odoo_exit_code(odoo_exit_code)
        junit_path = check_output_path(junit, "--junit") if junit is not None else None
        mapping = parse_path_map(path_map)
        stream = open_log(logfile)
    except ConfigError as exc:
        raise _fail(exc.message) from None
    console = stderr_console()
    parser = LogParser()
    try:
        # Progress only makes sense for a log that is still being written (a pipe).
        if logfile == "-" and not json_output:
            with ProgressPrinter(console) as progress:
                for line in iter_lines(stream):
                    for event in parser.feed(line):
                        progress.handle(event)
        else:
            for line in iter_lines(stream):
                parser.feed(line)
    except OSError as exc:
        raise _fail(f"cannot read log file {logfile!r}: {exc}") from None
    finally:
        if logfile != "-":
            stream.close()
    result = parser.finish(exit_code)
    try:
        code = report_result(
            result,
            json_output=json_output,
            junit_path=junit_path,
            allow_empty=allow_empty,
            path_map=mapping,
            console=console,
        )
    except ConfigError as exc:
        raise _fail(exc.message) from None
    raise typer.Exit(int(code))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=EXIT_CODES_HELP,
)
def run() -> None:
    """Run Odoo tests (not implemented yet)."""
    typer.echo("test run: not implemented yet", err=True)
    raise typer.Exit(int(TestExitCode.USAGE))
