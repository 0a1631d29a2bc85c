"""The `odoo-ai` command line: parse, call a use-case, render.

One package, one module per verb group: `stack` (config, env, up, down, status, logs,
compose), `deploy` (deploy, rollback, releases), `images` (build, pull, promote,
prune-images) and `testing` (test run / test parse, also the `test` and `odoo-test`
programs). `common` holds what they share: the options, the output helpers, and the one
error path that maps every error to an exit code (odoo_ai.errors.ExitCode).

Building the commands imports typer and the standard library only: each command imports
the use-case modules it calls, so `--help` and `config show` start fast
(bench/startup.py).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from odoo_ai.cli import db, deploy, images, stack, testing
from odoo_ai.cli.common import (
    CONTEXT_SETTINGS,
    EXIT_CODES_HELP,
    TYPER_SETTINGS,
    ConfigDirOpt,
    OdooAiGroup,
    RepoOpt,
    VerboseOpt,
    err,
    state,
)

app = typer.Typer(
    name="odoo-ai",
    help=f"Odoo 18 dev/testing stacks on a Docker host: config, images, local stacks.\n\n{EXIT_CODES_HELP}",
    cls=OdooAiGroup,
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
    # --install-completion / --show-completion (bash, zsh, fish): ENV and tags are completed
    # from environments/*.yaml and the env's release log (cli.common.complete_*).
    **{**TYPER_SETTINGS, "add_completion": True},
)
for _verbs in (stack.app, deploy.app, images.app):
    app.registered_commands += _verbs.registered_commands
    app.registered_groups += _verbs.registered_groups
app.add_typer(testing.app, name="test", help="Run Odoo tests / parse Odoo test logs (same as the `test` command).")
app.add_typer(deploy.modules_app, name="modules", help="What a deploy would install and update, and why.")
app.add_typer(db.app, name="db", help="Databases: backup, restore, copy between envs, restore drills, prune backups.")


def version_text() -> dict[str, str]:
    """The package's version and the Python running it (no docker call: --version stays instant)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    try:
        mine = version("odoo-ai")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without metadata
        mine = "unknown"
    return {"version": mine, "python": platform.python_version()}


def _version(value: bool) -> None:
    if not value:
        return
    info = version_text()
    print(f"odoo-ai {info['version']} (Python {info['python']})", flush=True)
    raise typer.Exit(0)


VersionOpt = Annotated[bool, typer.Option("--version", is_eager=True, callback=_version, expose_value=False,
                                          help="Print the version and exit.")]


@app.callback()
def _global(repo: RepoOpt = None, config_dir: ConfigDirOpt = None, verbose: VerboseOpt = False,
            version: VersionOpt = False) -> None:
    state.repo = repo.resolve() if repo else None
    state.config_dir = config_dir.resolve() if config_dir else None
    state.verbose = verbose


def _run(command: typer.Typer, argv: list[str] | None, prog_name: str | None) -> int:
    try:
        command(args=argv, prog_name=prog_name)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    """`odoo-ai ARGV...`: the exit code (errors are reported by common.CliGroup)."""
    return _run(app, argv, "odoo-ai")


def testing_main(argv: list[str] | None = None) -> int:
    """`test ARGV...` / `odoo-test ARGV...`: the same sub-app as `odoo-ai test`."""
    return _run(testing.app, argv, None)


def entry() -> None:
    sys.exit(main())


def testing_entry() -> None:
    sys.exit(testing_main())
