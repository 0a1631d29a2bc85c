"""What every command shares: the run's state, the option declarations, the output
helpers and the one error path.

Results (JSON documents, tables, the one-line outcome of a command) go to stdout so they
can be piped; progress, warnings and errors go to stderr. `--json` anywhere before `--`
makes stdout one JSON document, also on an error (usage errors included).

This module is imported to build the command tree (also for `--help`): it imports
typer and the standard library only. rich and the use-case modules are imported by the
commands that need them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from odoo_ai.errors import ExitCode, OdooAiError

try:  # typer >= 0.20 carries its own click
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as _click_exceptions

if TYPE_CHECKING:
    from odoo_ai.config.stack import StackConfig
    from odoo_ai.runners import DryRunner, Runner

JSON_SCHEMA = "odoo-ai/1"

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 the operation failed; 2 bad input or config (nothing changed); "
    "3 Docker/infrastructure failure; 4 no test ran (test run/parse)."
)

# Typer's rich help would import rich's markdown and syntax modules (≈ 0.15 s) for every
# --help and usage error: Click's plain formatter prints the same texts.
TYPER_SETTINGS: dict[str, Any] = {
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
}
CONTEXT_SETTINGS: dict[str, Any] = {"max_content_width": 120}


# ---------------------------------------------------------------- the run's state
class State:
    """What the global options and the command line said, for the helpers below."""

    def __init__(self) -> None:
        self.reset()

    def reset(self, *, json: bool = False, label: str = "error:") -> None:
        self.json = json  # set from argv before parsing, then from the command's --json
        self.verbose = False
        self.repo: Path | None = None
        self.config_dir: Path | None = None
        self.dry_runner: DryRunner | None = None
        self.label = label  # how an error line starts: `odoo-ai: error:` or `error:`


state = State()


class _LazyConsole:
    """A rich Console created on first use (rich is not needed to build the commands)."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._kwargs)
        return getattr(self._console, name)


err: Any = _LazyConsole(stderr=True, highlight=False, soft_wrap=True)  # progress, warnings
out: Any = _LazyConsole(highlight=False, soft_wrap=True)  # results: tables


# ---------------------------------------------------------------- shared options
EnvArg = Annotated[str, typer.Argument(help="Stack env: a name with environments/<ENV>.yaml (dev, testing).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the exact commands; run and write nothing.")]
TagOpt = Annotated[str | None, typer.Option("--tag", help="Image tag, e.g. dev-1a2b3c4 (default: ODOO_IMAGE_TAG, then the last rendered or built tag).")]
RepoOpt = Annotated[Path | None, typer.Option("--repo", help="Stack repository (default: ODOO_AI_REPO, else found upwards from the current directory).")]
ConfigDirOpt = Annotated[Path | None, typer.Option("--config-dir", help="Folder of <env>.env files (default: ODOO_AI_CONFIG_DIR, else docker/config).")]
VerboseOpt = Annotated[bool, typer.Option("-v", "--verbose", help="Show commands as they run; tracebacks on errors.")]
HostOpt = Annotated[str | None, typer.Option("--host", help="Remote Docker host, ssh://USER@HOST[:PORT] (OpenSSH, host key checked). Default: this machine.")]
SshKeyOpt = Annotated[Path | None, typer.Option("--ssh-key", envvar="ODOO_AI_SSH_KEY", help="Private key for --host (env ODOO_AI_SSH_KEY).")]
KnownHostsOpt = Annotated[Path | None, typer.Option("--known-hosts", envvar="ODOO_AI_KNOWN_HOSTS", help="Pinned known_hosts file for --host (env ODOO_AI_KNOWN_HOSTS).")]
LockTimeoutOpt = Annotated[float | None, typer.Option("--lock-timeout", help="Seconds to wait for another deploy of ENV to finish (default 30; setting ODOO_DEPLOY_LOCK_TIMEOUT).", min=0)]
GateTimeoutOpt = Annotated[float | None, typer.Option("--gate-timeout", help="Seconds the new web gets to pass the health gate (default 180; setting ODOO_DEPLOY_GATE_TIMEOUT).", min=1)]


# ---------------------------------------------------------------- helpers of the commands
def load(env: str, tag: str | None = None) -> StackConfig:
    """ENV's settings, from the --repo / --config-dir of this run."""
    from odoo_ai.config.stack import load_stack

    return load_stack(env, repo_root=state.repo, config_dir=state.config_dir, tag=tag)


def runner(dry_run: bool) -> Runner:
    if dry_run:
        from odoo_ai.runners import DryRunner

        # With --json the plan goes into the JSON document; stdout carries only that.
        state.dry_runner = DryRunner(out=sys.stderr if state.json else sys.stdout)
        return state.dry_runner
    from odoo_ai.runners import LocalRunner

    return LocalRunner(echo=(lambda line: err.print(f"[dim]$ {line}[/dim]")) if state.verbose else None)


def tag_for(stack: StackConfig, tag: str | None) -> str | None:
    from odoo_ai import build as build_uc
    from odoo_ai import stack as stack_uc
    from odoo_ai.config.stack import validate_tag

    if tag:
        validate_tag(tag)
    return stack_uc.resolve_tag(stack, tag) or build_uc.last_built_tag(stack)


def emit(data: dict[str, Any], human: str | None = None) -> None:
    """A command's result: its JSON document with --json, else the human line(s); stdout."""
    if state.json:
        import json

        if state.dry_runner is not None:
            data = {**data, "plan": [c.display() for c in state.dry_runner.commands]}
        print(json.dumps({"schema": JSON_SCHEMA, **data}, default=str), flush=True)
    elif human:
        print(human, flush=True)


# ---------------------------------------------------------------- the one error path
def _error_line(message: str, hint: str | None) -> None:
    typer.secho(state.label, fg="red", bold=True, err=True, nl=False)
    typer.echo(f" {message}", err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)


def report_error(exc: OdooAiError, *, extra: dict[str, Any] | None = None,
                 output_title: str | None = None) -> int:
    """Say what failed and return the exit code: with --json one document on stdout
    (`extra` keys first), else the failing command's output on stderr (framed by
    `output_title` when given); then always the error line and its hint on stderr."""
    code = int(exc.exit_code)
    if state.json:
        import json

        doc = {"schema": JSON_SCHEMA, **(extra or {}), "error": exc.message, "hint": exc.hint}
        if exc.output:
            doc["output"] = exc.output
        print(json.dumps({**doc, "exit_code": code}, default=str), flush=True)
    elif exc.output:
        if output_title:
            typer.echo(f"--- {output_title} ---", err=True)
        typer.echo(exc.output, err=True)
        if output_title:
            typer.echo("---", err=True)
    _error_line(exc.message, exc.hint)
    return code


def fail(exc: OdooAiError, **kwargs: Any) -> NoReturn:
    """report_error, then exit with its code (for a command that adds `extra` keys)."""
    raise typer.Exit(report_error(exc, **kwargs))


def report_usage_error(exc: _click_exceptions.ClickException) -> int:
    """A command line Click refused (missing option, bad value, unknown command): Click's
    own message, or with --json one document {schema, error, hint, exit_code}."""
    no_args_help = getattr(_click_exceptions, "NoArgsIsHelpError", ())
    if not state.json or isinstance(exc, no_args_help):
        exc.show()
        return exc.exit_code
    import json

    ctx = getattr(exc, "ctx", None)
    hint = f"see '{ctx.command_path} --help'" if ctx is not None else None
    print(json.dumps({"schema": JSON_SCHEMA, "error": exc.format_message(), "hint": hint,
                      "exit_code": exc.exit_code}), flush=True)
    _error_line(exc.format_message(), hint)
    return exc.exit_code


def json_requested(argv: list[str]) -> bool:
    """`--json` anywhere in the command line (not in the ARGS after `--` of `compose`)."""
    return "--json" in (argv[: argv.index("--")] if "--" in argv else argv)


class CliGroup(TyperGroup):
    """The root command: runs the command line and maps every error to one exit code.

    Used for `odoo-ai` and for the `test` program (the same sub-app), also when a test
    invokes the app through typer's CliRunner."""

    error_label = "error:"

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command's first sentence, wrapped (Click's default cuts it at the width)."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        state.reset(json=json_requested(argv), label=self.error_label)
        try:
            rv = super().main(args=argv, prog_name=prog_name, complete_var=complete_var,
                              standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else ExitCode.OK
        except _click_exceptions.ClickException as exc:
            code = report_usage_error(exc)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            code = ExitCode.FAILED
        except OdooAiError as exc:
            if state.verbose:
                err.print_exception()
            code = report_error(exc)
        if standalone_mode:
            sys.exit(int(code))
        return int(code)


class OdooAiGroup(CliGroup):
    error_label = "odoo-ai: error:"
