"""A stack's settings and its local life: config show, env render, up, down, status, logs, compose."""

import os
from typing import Annotated

import typer

from odoo_ai.cli.common import (
    TYPER_SETTINGS,
    CliGroup,
    DryRunOpt,
    EnvArg,
    JsonOpt,
    TagOpt,
    emit,
    load,
    out,
    runner,
    state,
    tag_for,
)
from odoo_ai.errors import ExitCode, OdooAiError

app = typer.Typer(**TYPER_SETTINGS)
config_app = typer.Typer(help="Inspect a stack's resolved settings.", cls=CliGroup, no_args_is_help=True,
                         **TYPER_SETTINGS)
env_app = typer.Typer(help="Render a stack's .env for Compose.", cls=CliGroup, no_args_is_help=True, **TYPER_SETTINGS)
app.add_typer(config_app, name="config")
app.add_typer(env_app, name="env")


# ---------------------------------------------------------------- config / env
@config_app.command("show")
def config_show(env: EnvArg, as_json: JsonOpt = False) -> None:
    """Print ENV's resolved settings (secrets masked)."""
    state.json = as_json
    view = load(env).public_view()
    if as_json:
        emit(view)
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=False, box=None)
    for key, value in view.items():
        if isinstance(value, dict):
            value = "\n".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = "\n".join(map(str, value))
        table.add_row(Text(key, style="bold"), Text("-" if value is None else str(value)))
    out.print(table)


@env_app.command("render")
def env_render(
    env: EnvArg,
    tag: TagOpt = None,
    generate_missing: Annotated[bool, typer.Option("--generate-missing", help="Generate missing secrets (kept in <state_root>/.secrets.env); for local stacks.")] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write <state_root>/.env (mode 600, atomic) from the env file plus secrets taken from the process environment (names in ODOO_SECRETS)."""
    from odoo_ai import stack as stack_uc

    state.json = as_json
    stack = load(env)
    resolved = tag_for(stack, tag)
    result = stack_uc.render(
        stack, runner(dry_run), environ=os.environ, tag=resolved, tag_from_cli=bool(tag),
        allow_generate=generate_missing,
    )
    what = "would write" if dry_run else "wrote"
    emit({"env": env, **result}, f"{what} {result['dotenv']}" + (f" (tag {resolved})" if resolved else ""))


# ---------------------------------------------------------------- stack
@app.command()
def up(
    env: EnvArg,
    tag: TagOpt = None,
    build_first: Annotated[bool, typer.Option("--build", help="Build the images first (inputs from ODOO_BUILD_* settings; default Odoo 18.0 from GitHub) and start that tag.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds to wait for /web/health through the published port (0 = don't wait).")] = 180.0,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Render the .env and start ENV's stack (db, web, proxy), then wait until /web/health answers 200 through the published port."""
    from odoo_ai import build as build_uc
    from odoo_ai import stack as stack_uc

    state.json = as_json
    stack = load(env)
    if build_first:
        if tag:
            raise OdooAiError("--build and --tag exclude each other: --build starts the tag it builds",
                              exit_code=ExitCode.USAGE)
        record = build_uc.build(stack, runner(dry_run), build_uc.build_inputs(stack, sha=None))
        tag = record["tag"]
    resolved = tag_for(stack, tag)
    result = stack_uc.up(
        stack, runner(dry_run), environ=os.environ, tag=resolved, tag_from_cli=bool(tag),
        wait_timeout=wait_timeout,
    )
    human = f"{env} is up at {result['url'].removesuffix('/web/health')} (tag {resolved})"
    emit(result, None if dry_run else human)


@app.command()
def down(
    env: EnvArg,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also remove named volumes (bind-mounted data under the state root stays).")] = False,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the state root (database, filestore, snapshots, logs, .env), only if it carries this stack's marker; lists what goes with sizes and asks y/N (--yes when not on a terminal). Irreversible.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm --purge without asking (required when not on a terminal).")] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop and remove ENV's containers and networks; the data under the state root stays unless --purge."""
    from odoo_ai import stack as stack_uc

    state.json = as_json
    result = stack_uc.down(load(env), runner(dry_run), volumes=volumes, purge=purge, yes=yes)
    emit(result, None if dry_run else result.get("note") or f"{env} is down")


@app.command()
def status(env: EnvArg, dry_run: DryRunOpt = False, as_json: JsonOpt = False) -> None:
    """Show ENV's containers, their health, and /web/health through the published port."""
    from odoo_ai import stack as stack_uc

    state.json = as_json
    result = stack_uc.status(load(env), runner(dry_run))
    if dry_run:
        return
    if as_json:
        emit(result)
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{env} ({result['project']}) tag {result['tag'] or '-'}")
    for col in ("service", "state", "health", "image", "status"):
        table.add_column(col)
    for row in result["services"]:
        table.add_row(*(escape(str(row.get(c) or "-")) for c in ("service", "state", "health", "image", "status")))
    out.print(table)
    probe = result["health"]
    out.print(f"{probe['url']}: {'200 OK' if probe['ok'] else probe['status'] or 'unreachable'}", markup=False)
    unfinished = result["unfinished_deploy"]
    if unfinished:
        out.print(f"[bold red]UNFINISHED {escape(str(unfinished.get('kind') or 'deploy').upper())}[/bold red] of "
                  + escape(f"{unfinished.get('tag')}, in phase {unfinished.get('phase')} since {unfinished.get('started')}: "
                           "running now, or killed (the next deploy undoes it)"))
    if result["update_containers"]:
        out.print("[bold red]MODULE UPDATE CONTAINER(S) RUNNING[/bold red]: "
                  + escape(f"{', '.join(result['update_containers'])} (a killed deploy's update goes on changing "
                           "the database until the next deploy stops it)"))
    if not probe["ok"]:
        raise typer.Exit(ExitCode.FAILED)


@app.command()
def logs(
    env: EnvArg,
    services: Annotated[list[str] | None, typer.Argument(help="Services (default: all).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming.")] = False,
    tail: Annotated[int | None, typer.Option(help="Lines from the end of each log.", min=0)] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Show the container logs of ENV (Odoo's own log file is under the state root's logs/)."""
    from odoo_ai import stack as stack_uc

    code = stack_uc.logs(load(env), runner(dry_run), services or [], follow=follow, tail=tail)
    raise typer.Exit(code)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def compose(
    ctx: typer.Context,
    env: EnvArg,
    dry_run: DryRunOpt = False,
) -> None:
    """Run `docker compose` for ENV with the right -p/-f/--env-file: odoo-ai compose ENV -- ARGS..."""
    from odoo_ai import stack as stack_uc

    args = list(ctx.args)
    if not args:
        raise OdooAiError("nothing to run: odoo-ai compose ENV -- ARGS...", exit_code=ExitCode.USAGE)
    raise typer.Exit(stack_uc.compose_passthrough(load(env), runner(dry_run), args))
