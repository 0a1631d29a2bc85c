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

import os
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
    from odoo_ai.dryhost import DryHost
    from odoo_ai.hosts import Host
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
        self.dry_runner: DryRunner | DryHost | None = None  # what --json's "plan" lists
        self.label = label  # how an error line starts: `odoo-ai: error:` or `error:`


state = State()


def no_color() -> bool:
    """NO_COLOR (no-color.org): set and not empty."""
    return bool(os.environ.get("NO_COLOR"))


UNABRIDGED = 100_000  # the width of a console that is not a terminal: nothing is cut or wrapped


class _LazyConsole:
    """A rich Console created on first use (rich is not needed to build the commands).

    NO_COLOR: no ANSI styling at all. Not a terminal (a pipe, a file, a CI log): rich
    writes no ANSI codes anyway, and tables are printed unabridged (no width to fit)."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            kwargs = dict(self._kwargs)
            if no_color():
                kwargs["color_system"] = None
            console = Console(**kwargs)
            if not console.is_terminal and not os.environ.get("COLUMNS"):
                console = Console(**kwargs, width=UNABRIDGED)
            self._console = console
        return getattr(self._console, name)


err: Any = _LazyConsole(stderr=True, highlight=False, soft_wrap=True)  # progress, warnings
out: Any = _LazyConsole(highlight=False, soft_wrap=True)  # results: tables


def unabridged_console() -> Any:
    """A console for stdout that never cuts a line to the terminal's width (--wide)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, width=UNABRIDGED, **({"color_system": None} if no_color() else {}))


def new_table(*, title: str | None = None, **kwargs: Any) -> Any:
    """A results table: boxed on a terminal; plain columns (no box, no rules) elsewhere, so
    that a pipe or a log gets lines a script can split."""
    from rich import box
    from rich.table import Table

    if not out.is_terminal:
        kwargs.setdefault("box", None)
        kwargs.setdefault("pad_edge", False)
    elif no_color():
        kwargs.setdefault("box", box.ASCII)
    return Table(title=title, **kwargs)


# ---------------------------------------------------------------- shell completion
def _root_param(ctx: Any, name: str) -> Any:
    root = ctx.find_root() if ctx is not None else None
    return (root.params or {}).get(name) if root is not None else None


def _repo_for_completion(ctx: Any) -> Path | None:
    """--repo given before, else ODOO_AI_REPO, else upwards from the current directory."""
    given = _root_param(ctx, "repo") or os.environ.get("ODOO_AI_REPO")
    if given:
        return Path(given).expanduser()
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "docker-compose.yml").is_file() and (candidate / "environments").is_dir():
            return candidate
    return None


def complete_env(ctx: typer.Context, incomplete: str) -> list[str]:
    """ENV: the names of environments/*.yaml (no settings are loaded)."""
    repo = _repo_for_completion(ctx)
    if repo is None:
        return []
    try:
        names = sorted(p.stem for p in (repo / "environments").glob("*.yaml"))
    except OSError:
        return []
    return [n for n in names if n.startswith(incomplete)]


def _logged_tags(ctx: Any, args: list[str], *, successful_only: bool) -> list[str]:
    env = (ctx.params or {}).get("env") or (ctx.params or {}).get("from_env")
    if not env:  # while completing, Click leaves the ENV argument among the words not parsed yet
        known = set(complete_env(ctx, ""))
        env = next((word for word in [*(getattr(ctx, "args", None) or []), *args] if word in known), None)
    if not env:
        return []
    try:
        from odoo_ai import releases
        from odoo_ai.config.stack import load_stack

        repo = _repo_for_completion(ctx)
        config_dir = _root_param(ctx, "config_dir")
        stack = load_stack(env, repo_root=repo.resolve() if repo else None,
                           config_dir=Path(config_dir).resolve() if config_dir else None)
        records = releases.read_releases(releases.release_log_path(stack), on_error=lambda *_: None)
    except Exception:  # noqa: BLE001 - completion never fails the shell
        return []
    if successful_only:
        records = releases.successful(records)
    return list(dict.fromkeys(str(r["image_tag"]) for r in reversed(records) if r.get("image_tag")))


def complete_tag(ctx: typer.Context, args: list[str], incomplete: str) -> list[str]:
    """--tag: the tags of ENV's release log on this machine, newest first."""
    return [t for t in _logged_tags(ctx, args, successful_only=False) if t.startswith(incomplete)]


def complete_release_tag(ctx: typer.Context, args: list[str], incomplete: str) -> list[str]:
    """rollback --to: the tags of ENV's successful releases, newest first."""
    return [t for t in _logged_tags(ctx, args, successful_only=True) if t.startswith(incomplete)]


# ---------------------------------------------------------------- shared options
EnvArg = Annotated[str, typer.Argument(help="Stack env: a name with environments/<ENV>.yaml (dev, testing).", autocompletion=complete_env)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the exact commands; run and write nothing.")]
TagOpt = Annotated[str | None, typer.Option("--tag", help="Image tag, e.g. dev-1a2b3c4 (default: ODOO_IMAGE_TAG, then the last rendered or built tag).", autocompletion=complete_tag)]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Confirm without asking (required when not on a terminal).")]
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


def check_host(host_url: str | None, ssh_key: Path | None, known_hosts: Path | None) -> None:
    """--host, checked before anything else: empty is an error (never "this machine")."""
    if host_url is None:
        return
    if not host_url.strip():
        raise OdooAiError("--host is empty: give ssh://USER@HOST[:PORT], or leave --host out for this machine",
                          exit_code=ExitCode.USAGE)
    from odoo_ai.runners.ssh import SshTarget

    SshTarget.parse(host_url, key_file=ssh_key, known_hosts=known_hosts)


def dry_host(inner: Host) -> DryHost:
    """The dry connector around `inner` (its reads are real): its lines on stdout, or on
    stderr with --json so that stdout stays one document (which then lists them)."""
    from odoo_ai.dryhost import DryHost

    state.dry_runner = DryHost(inner, out=sys.stderr if state.json else sys.stdout)
    return state.dry_runner


def local_host(dry_run: bool = False) -> Host:
    """This machine's connector (dry: printing around it)."""
    from odoo_ai.hosts import LocalHost

    host = LocalHost(runner(False))
    return dry_host(host) if dry_run else host


def on_host(stack: StackConfig, host_url: str | None, ssh_key: Path | None, known_hosts: Path | None,
            *, sync: bool = True, dry_run: bool = False) -> tuple[StackConfig, Host]:
    """The stack as seen from the Docker host it runs on, and that host's connector: this
    machine, or OpenSSH with the host key checked against the pinned file; with --dry-run
    the dry connector around it (reads real, commands and writes printed). `sync` copies
    the Compose files there first (a deploy, `up`; never in a dry run)."""
    from odoo_ai.hosts import RemoteHost
    from odoo_ai.runners.ssh import SshTarget

    check_host(host_url, ssh_key, known_hosts)
    if not host_url:
        return stack, local_host(dry_run)
    target = SshTarget.parse(host_url, key_file=ssh_key, known_hosts=known_hosts)
    if not stack.remote.state_root_set:
        raise OdooAiError(f"{stack.source}: a remote stack must set ODOO_STATE_ROOT (e.g. /opt/odoo-ai/data/"
                          f"{stack.project})", exit_code=ExitCode.USAGE)
    remote_dir = Path(stack.remote.repo_dir)  # absolute: load_stack checked ODOO_REMOTE_REPO_DIR
    host: Host = RemoteHost(target)
    if dry_run:
        host = dry_host(host)
        if sync:
            host.note(f"sync the Compose files ({', '.join(_stack_files())}) to {remote_dir} on {target}")
    elif sync:
        host.sync_stack_files(stack.repo_root, remote_dir)  # type: ignore[attr-defined]
    remote = stack.model_copy(update={
        "repo_root": remote_dir,
        "compose_files": [remote_dir / "docker-compose.yml", remote_dir / "environments" / f"{stack.env}.yaml"],
    })
    return remote, host


def _stack_files() -> tuple[str, ...]:
    from odoo_ai.hosts import STACK_FILES

    return STACK_FILES


def ask_on_terminal(question: str) -> bool | None:
    """y/N on the terminal (stdin and stderr both one); None when there is no terminal."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def confirm(question: str, *, yes: bool, what: str, lines: list[str] | None = None) -> None:
    """What a destructive command asks: nothing with --yes; else `lines` (what it is about
    to do) on stderr and y/N on a terminal; without a terminal a refusal. A refusal or a
    "no" is exit 2, nothing changed."""
    if yes:
        return
    for line in lines or []:
        err.print(line, markup=False)
    answer = ask_on_terminal(question)
    if answer is None:
        raise OdooAiError(f"refusing to {what} without confirmation (no terminal to ask on): pass --yes; "
                          "nothing changed", exit_code=ExitCode.USAGE)
    if not answer:
        raise OdooAiError(f"not confirmed: nothing changed ({what})", exit_code=ExitCode.USAGE)


def dry_summary() -> str | None:
    """The last line of a dry run against the dry connector: what it printed, assumed, read."""
    dry = state.dry_runner
    if dry is None or not hasattr(dry, "assumptions"):
        return None
    return (f"dry run: {len(dry.commands)} command(s) printed, {len(dry.assumptions)} assumption(s), "
            f"{len(dry.reads)} read(s); nothing was run or written")


def emit(data: dict[str, Any], human: str | None = None) -> None:
    """A command's result: its JSON document with --json, else the human line(s); stdout."""
    if state.json:
        import json

        if state.dry_runner is not None:
            data = {**data, "plan": [c.display() for c in state.dry_runner.commands]}
            for key in ("assumptions", "reads"):
                if hasattr(state.dry_runner, key):
                    data = {**data, key: list(getattr(state.dry_runner, key))}
        print(json.dumps({"schema": JSON_SCHEMA, **data}, default=str), flush=True)
    elif human:
        print(human, flush=True)


# ---------------------------------------------------------------- the one error path
def _error_line(message: str, hint: str | None) -> None:
    if no_color():
        typer.echo(state.label, err=True, nl=False)
    else:
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
