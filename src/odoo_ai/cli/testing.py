"""`test` (also `odoo-ai test`, `odoo-test`): `test parse` (an Odoo log from elsewhere) and
`test run` (Odoo's tests in a throw-away Compose project, see odoo_ai.testing.run).

Both share `report_result()`, which writes every requested output for a RunResult and
returns the exit code. Their human output (progress, the verdict) goes to stderr: stdout
carries only the JSON document with --json (and, without it, GitHub annotations).
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from odoo_ai.cli.common import (
    CONTEXT_SETTINGS,
    TYPER_SETTINGS,
    CliGroup,
    ConfigDirOpt,
    HostOpt,
    KnownHostsOpt,
    RepoOpt,
    SshKeyOpt,
    VerboseOpt,
    check_host,
    state,
)
from odoo_ai.errors import ConfigError, ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from odoo_ai.testing.report import PathMap
    from odoo_ai.testing.results import RunResult

EXIT_CODES_HELP = (
    "Exit codes: 0 all tests passed; 1 tests failed or errored; 2 usage or configuration "
    "error (nothing written); 3 Odoo or the infrastructure failed before the tests could "
    "complete; 4 no test ran (0 instead with --allow-empty)."
)

app = typer.Typer(
    name="test",
    help=f"Run Odoo 18 tests and report their results.\n\n{EXIT_CODES_HELP}",
    cls=CliGroup,
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
    **TYPER_SETTINGS,
)


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


def parse_path_map(values: list[str] | None) -> "PathMap":
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


def stderr_console() -> "Console":
    from rich.console import Console

    # highlight=False: never colour numbers/paths found in untrusted log text.
    return Console(stderr=True, highlight=False)


def report_result(
    result: "RunResult",
    *,
    json_output: bool,
    junit_path: Path | None,
    allow_empty: bool = False,
    path_map: "PathMap" = (),
    console: "Console | None" = None,
    environ: Mapping[str, str] | None = None,
) -> ExitCode:
    """Write every requested rendering of `result`; return the exit code to use.

    stdout carries only the JSON document with --json; human output and (then) GitHub
    annotations go to stderr, which GitHub Actions also reads workflow commands from.
    """
    from odoo_ai.testing.report import render_human, write_junit

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
    result: "RunResult",
    env: Mapping[str, str],
    path_map: "PathMap",
    workspace: str | None,
    *,
    to_stderr: bool,
) -> None:
    from odoo_ai.testing.report import append_step_summary, github_annotations

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


# ---------------------------------------------------------------- commands
# A bad option or input raises ConfigError: the CLI's one error path prints it
# (`error: …` on stderr; with --json also a JSON document on stdout) and exits 2.


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
    from odoo_ai.testing.logparse import LogParser, iter_lines
    from odoo_ai.testing.report import ProgressPrinter

    state.json = json_output
    exit_code = parse_odoo_exit_code(odoo_exit_code)
    junit_path = check_output_path(junit, "--junit") if junit is not None else None
    mapping = parse_path_map(path_map)
    stream = open_log(logfile)
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
        raise ConfigError(f"cannot read log file {logfile!r}: {exc}") from None
    finally:
        if logfile != "-":
            stream.close()
    result = parser.finish(exit_code)
    code = report_result(
        result,
        json_output=json_output,
        junit_path=junit_path,
        allow_empty=allow_empty,
        path_map=mapping,
        console=console,
    )
    raise typer.Exit(int(code))


@app.command(epilog=EXIT_CODES_HELP)
def run(
    ctx: typer.Context,
    env: Annotated[
        str,
        typer.Argument(
            metavar="ENV",
            help="Stack env (environments/ENV.yaml): its compose files, settings and default image.",
        ),
    ] = "dev",
    image: Annotated[
        str | None,
        typer.Option(
            "--image",
            metavar="REF",
            help="The script-runner image under test, e.g. what CI just built "
            "(default: --tag, else ENV's image: pinned ref, ODOO_IMAGE_TAG, rendered .env, last build).",
        ),
    ] = None,
    tag: Annotated[
        str | None,
        typer.Option("--tag", metavar="TAG", help="Test ENV's script-runner image of this tag, e.g. dev-1a2b3c4."),
    ] = None,
    modules: Annotated[
        str | None,
        typer.Option(
            "--modules",
            metavar="MODS",
            help="Comma list of modules to install and test; only their own tests run "
            "(--test-tags=/m1,/m2 unless --tags is given). Default: x-odoo-ai.test_modules of the "
            "overlay, else every addon with a __manifest__.py in the addons dir.",
        ),
    ] = None,
    tags: Annotated[
        str | None,
        typer.Option(
            "--tags",
            metavar="TAGS",
            help="Odoo --test-tags, e.g. '/my_module:MyTest', 'at_install,-slow'; replaces the "
            "default /m1,/m2 of the modules (so it can select tests of other installed modules).",
        ),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option("--shards", metavar="N", help="Split the modules into N shards (round-robin over the sorted list)."),
    ] = None,
    shard: Annotated[
        int | None,
        typer.Option("--shard", metavar="K", help="Run shard K (1..N) of --shards N; an empty shard is no-tests."),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", help="Time the Odoo test run may take; then it is killed (exit 3)."),
    ] = 3600.0,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Load demo data into the test database (the image's default is without)."),
    ] = False,
    keep_db: Annotated[
        bool,
        typer.Option("--keep-db", help="Keep the test project (database running) and print how to remove it."),
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="A fresh database: do not start from a template of the dependencies (the templates are left alone).",
        ),
    ] = False,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Exit 0 instead of 4 when no test ran.")
    ] = False,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON document (schema odoo-ai.test-results/1)."),
    ] = False,
    junit: Annotated[
        str | None, typer.Option("--junit", metavar="PATH", help="Write JUnit XML to PATH.")
    ] = None,
    path_map: Annotated[
        list[str] | None,
        typer.Option(
            "--path-map",
            metavar="FROM=TO",
            help="Rewrite traceback path prefix FROM to TO (repeatable; "
            "/opt/odoo/custom-addons maps to the addons dir by default).",
        ),
    ] = None,
    addons: Annotated[
        Path | None,
        typer.Option("--addons", metavar="DIR", help="Custom addons folder, relative to the repo (default: ODOO_BUILD_ADDONS_DIR, else addons/)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="The real run against a dry connector: every command and file write "
                                       "printed, none done; reads (e.g. is the image there) real, the rest "
                                       "assumed and said so."),
    ] = False,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    repo: RepoOpt = None,
    config_dir: ConfigDirOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run Odoo tests in a one-off script-runner container on a throw-away database.

    Each run brings up its own Compose project <project>-test-<hex> (ENV's compose files, state in a fresh temp dir), runs `odoo-bin -d test_<hex> -i MODS --test-enable --stop-after-init` in it with progress on stderr, then removes the project (unless --keep-db). The database is a clone of a template that has the modules' dependencies installed (built once per Odoo source, dependency set and their checksums, in the env's templates server <project>-test-templates), or with --no-cache a fresh one in the project's own db. A running env's database is never touched.

    With --host the project runs on that Docker host over ssh (state in <ODOO_STATE_ROOT>/test-runs/ there, files over stdin, a fresh database: the template cache is on this machine); the modules come from the addons here, Odoo's output streams back here, the reports are written here.
    """
    from odoo_ai.cli.common import on_host
    from odoo_ai.config.stack import load_stack
    from odoo_ai.hosts import LocalHost
    from odoo_ai.runners import LocalRunner
    from odoo_ai.stack import is_local_docker
    from odoo_ai.testing import run as run_uc

    state.json = json_output
    check_host(host, ssh_key, known_hosts)
    root = ctx.find_root().params  # `odoo-ai --repo R --config-dir C -v test run ...`
    repo = repo or root.get("repo")
    config_dir = config_dir or root.get("config_dir")
    verbose = state.verbose = verbose or bool(root.get("verbose"))
    request = run_uc.RunRequest(
        env=env, image=image, tag=tag, modules=modules, tags=tags, shards=shards, shard=shard,
        timeout=timeout, keep_db=keep_db, addons_dir=addons, demo=demo, no_cache=no_cache,
    )
    junit_path = check_output_path(junit, "--junit") if junit is not None else None
    mapping = parse_path_map(path_map)
    stack = load_stack(
        env,
        repo_root=Path(repo).resolve() if repo else None,
        config_dir=Path(config_dir).resolve() if config_dir else None,
    )
    if not host and not is_local_docker():
        raise ConfigError(
            "test run needs a local Docker engine (DOCKER_HOST=ssh://... is not supported: the test "
            "project's files live in a local temp directory); for a remote Docker host use --host ssh://..."
        )
    console = stderr_console()
    echo = (
        (lambda line: console.print(f"$ {line}", style="dim", markup=False, soft_wrap=True))
        if verbose
        else None
    )
    host_stack = target = None
    if host:
        # The env as seen on the Docker host, and its connector (nothing is done there yet).
        host_stack, target = on_host(stack, host, ssh_key, known_hosts, sync=False)
    prepared = run_uc.prepare(stack, request, environ=os.environ, host_stack=host_stack,
                              tmp_root=host_stack.state_root / "test-runs" if host_stack else None)
    if target is None:
        target = LocalHost(LocalRunner(echo=echo))
    if dry_run:
        from odoo_ai.cli.common import dry_host

        dry = dry_host(target)
        if host_stack is not None and prepared.project is not None:
            dry.note(f"sync the Compose files to {host_stack.repo_root} on {target.target}")
        _dry_run_report(run_uc, prepared, dry, console, json_output=json_output)
        raise typer.Exit(0)
    if host_stack is not None and prepared.project is not None:
        target.sync_stack_files(stack.repo_root, host_stack.repo_root)  # its Compose files
    try:
        result = run_uc.execute(prepared, target, console)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    code = report_result(
        result,
        json_output=json_output,
        junit_path=junit_path,
        allow_empty=allow_empty,
        path_map=(*mapping, *prepared.path_map),
        console=console,
    )
    if result.kept:
        kept = result.kept
        where = f" on {kept['host']}" if kept.get("host") else ""
        console.print(
            f"kept test project {kept['project']}{where} (database {kept['database']}, files in "
            f"{kept['state_dir']}). Look: {kept['psql']}\nRemove it{where} with:\n  "
            + "\n  ".join(kept["cleanup"]),
            markup=False,
            soft_wrap=True,
        )
    raise typer.Exit(int(code))


def _dry_run_report(run_uc: Any, prepared: Any, target: Any, console: "Console", *, json_output: bool) -> None:
    """`test run --dry-run`: the real run against the dry connector (its lines on stdout, or
    on stderr with --json so that stdout stays one document), then what it assumed and read."""
    import json

    try:
        result, dry = run_uc.dry_run(prepared, target, console, out=sys.stderr if json_output else sys.stdout)
    except run_uc.DryRunFailed as exc:
        if json_output:
            raise  # the one error path: its JSON document on stdout
        raise typer.Exit(int(exc.exit_code)) from None  # its `error: …` line is out already, as in a real run
    if json_output:
        doc = {"schema": "odoo-ai/1", "dry_run": True, "run": result.run or prepared.run_info(),
               "plan": [c.display() for c in dry.commands], "assumptions": dry.assumptions, "reads": dry.reads}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    console.print(f"dry run: {len(dry.commands)} command(s), {len(dry.assumptions)} assumption(s), "
                  f"{len(dry.reads)} read(s); nothing was run or written", markup=False, soft_wrap=True)


@app.command()
def templates(
    ctx: typer.Context,
    env: Annotated[str, typer.Argument(metavar="ENV", help="Stack env whose test templates to show.")] = "dev",
    remove: Annotated[
        bool,
        typer.Option("--remove", help="Delete them: the templates server, its volume (with any kept clone) and the "
                                      "cache dir. Refused while a test run uses them."),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    repo: RepoOpt = None,
    config_dir: ConfigDirOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """The template databases `test run` keeps for ENV (its dependencies installed once), or --remove them."""
    import tempfile

    from odoo_ai.cli.common import emit
    from odoo_ai.config.stack import load_stack
    from odoo_ai.runners import LocalRunner
    from odoo_ai.stack import is_local_docker
    from odoo_ai.testing import templates as tmpl

    state.json = json_output
    root = ctx.find_root().params
    repo = repo or root.get("repo")
    config_dir = config_dir or root.get("config_dir")
    state.verbose = verbose or bool(root.get("verbose"))
    stack = load_stack(
        env,
        repo_root=Path(repo).resolve() if repo else None,
        config_dir=Path(config_dir).resolve() if config_dir else None,
    )
    with tempfile.TemporaryDirectory(prefix="odoo-ai-templates-") as tmp:
        cache = tmpl.plan_cache(stack, state_dir=Path(tmp), image=stack.db_image, environ=os.environ,
                                keep=stack.test_templates_keep)
        if cache is None:
            raise ConfigError("no cache directory: neither XDG_CACHE_HOME nor HOME is set")
        if not remove:
            doc = tmpl.describe(cache)
            lines = [f"test templates of {env}: server {doc['server']} (volume {doc['volume']}), "
                     f"cache {doc['cache_dir']}, keep {doc['keep']}"]
            for t in doc["templates"]:
                lines.append(f"  {t['database']}  -i {','.join(t['modules'])} ({t['installed']} installed)  "
                             f"built {t['created']} in {t['build_seconds']}s, last used {t['last_used']}")
            if not doc["templates"]:
                lines.append("  (none)")
            emit({"env": env, **doc}, "\n".join(lines))
            return
        if not is_local_docker():
            raise ConfigError("test templates --remove needs a local Docker engine (DOCKER_HOST=ssh://... is not supported)")
        tmpl.remove(cache, LocalRunner(), os.environ)
        emit({"env": env, "removed": True, "server": cache.server.name, "volume": cache.server.volume,
              "cache_dir": str(cache.root)},
             f"removed the test templates of {env}: {cache.server.name}, volume {cache.server.volume}, {cache.root}")
