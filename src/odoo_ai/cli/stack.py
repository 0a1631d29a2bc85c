"""A stack's settings and its life, on this machine or a Docker host over ssh (--host):
config show, env render, up, down, status, logs, compose, and the env's lock."""

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from odoo_ai.cli.common import (
    TYPER_SETTINGS,
    CliGroup,
    DryRunOpt,
    EnvArg,
    HostOpt,
    JsonOpt,
    KnownHostsOpt,
    SshKeyOpt,
    TagOpt,
    YesOpt,
    confirm,
    dry_summary,
    emit,
    err,
    load,
    on_host,
    out,
    runner,
    state,
    tag_for,
)
from odoo_ai.errors import ExitCode, OdooAiError

if TYPE_CHECKING:
    from odoo_ai.config.stack import StackConfig

app = typer.Typer(**TYPER_SETTINGS)
config_app = typer.Typer(help="Inspect a stack's resolved settings.", cls=CliGroup, no_args_is_help=True,
                         **TYPER_SETTINGS)
env_app = typer.Typer(help="Render a stack's .env for Compose.", cls=CliGroup, no_args_is_help=True, **TYPER_SETTINGS)
lock_app = typer.Typer(help="See, take or free an env's deploy lock by hand.", cls=CliGroup, no_args_is_help=True,
                       **TYPER_SETTINGS)
app.add_typer(config_app, name="config")
app.add_typer(env_app, name="env")
app.add_typer(lock_app, name="lock")


def _tag(stack: "StackConfig", tag: str | None, remote: bool) -> str | None:
    """--tag, checked; else, for this machine, ODOO_IMAGE_TAG / the last rendered or built tag
    (a remote host's own .env is read there, by the use-case)."""
    if not remote:
        return tag_for(stack, tag)
    from odoo_ai.config.stack import validate_tag

    if tag:
        validate_tag(tag)
    return tag or stack.image_tag


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
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write <state_root>/.env (mode 600, atomic) from the env file plus secrets taken from the process environment (names in ODOO_SECRETS); with --host on the Docker host (contents over ssh's stdin)."""
    from odoo_ai import stack as stack_uc

    state.json = as_json
    stack, on = on_host(load(env), host, ssh_key, known_hosts, sync=False, dry_run=dry_run)
    if on.remote and generate_missing:
        raise OdooAiError("--generate-missing is for a local stack: a remote one takes its secrets from the "
                          "environment", exit_code=ExitCode.USAGE)
    resolved = _tag(stack, tag, on.remote)
    result = stack_uc.render(stack, on, environ=os.environ, tag=resolved, tag_from_cli=bool(tag),
                             allow_generate=generate_missing)
    what = "would write" if dry_run else "wrote"
    where = f" on {result['host']}" if result.get("host") else ""
    emit({"env": env, **result}, f"{what} {result['dotenv']}{where}" + (f" (tag {resolved})" if resolved else ""))


# ---------------------------------------------------------------- stack
@app.command()
def up(
    env: EnvArg,
    tag: TagOpt = None,
    build_first: Annotated[bool, typer.Option("--build", help="Build the images first (inputs from ODOO_BUILD_* settings; default Odoo 18.0 from GitHub) and start that tag.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds to wait until /web/health answers through the published port and every web container passes the deploy's gate (0 = don't wait).")] = 180.0,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Render the .env and start ENV's stack (db, web, proxy), then wait until /web/health answers 200 through the published port and every web container passes the deploy's gate (/web/login on the database 200, Odoo's bus /websocket 101). With --host on that Docker host: the Compose files are synced there, and without --tag the .env a deploy rendered there is kept."""
    from odoo_ai import build as build_uc
    from odoo_ai import stack as stack_uc

    state.json = as_json
    stack = load(env)
    if build_first:
        if tag:
            raise OdooAiError("--build and --tag exclude each other: --build starts the tag it builds",
                              exit_code=ExitCode.USAGE)
        if host is not None:
            raise OdooAiError("--build and --host exclude each other: build and push, then deploy (or up --tag) "
                              "on the host", exit_code=ExitCode.USAGE)
        record = build_uc.build(stack, runner(dry_run), build_uc.build_inputs(stack, sha=None))
        tag = record["tag"]
    stack, on = on_host(stack, host, ssh_key, known_hosts, sync=True, dry_run=dry_run)
    resolved = _tag(stack, tag, on.remote)
    result = stack_uc.up(stack, on, environ=os.environ, tag=resolved, tag_from_cli=bool(tag),
                         wait_timeout=wait_timeout)
    where = f" on {result['host']}" if result.get("host") else ""
    human = f"{env} is up at {result['url'].removesuffix('/web/health')}{where} (tag {result.get('tag') or resolved})"
    emit(result, dry_summary() if dry_run else human)


@app.command()
def down(
    env: EnvArg,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also remove named volumes (bind-mounted data under the state root stays).")] = False,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the state root (database, filestore, snapshots, logs, .env), only if it carries this stack's marker; lists what goes with sizes and asks y/N (--yes when not on a terminal). Irreversible.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm --purge without asking (required when not on a terminal).")] = False,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop and remove ENV's containers and networks; the data under the state root stays unless --purge."""
    if _swarm(env, dry_run):  # ODOO_ENGINE=swarm: docker stack rm
        from odoo_ai.swarm import stack as swarm_stack

        state.json = as_json
        stack, on = on_host(load(env), host, ssh_key, known_hosts, sync=False)
        result = swarm_stack.down(stack, on, volumes=volumes, purge=purge)
        emit(result, result["note"])
        return
    from odoo_ai import stack as stack_uc

    state.json = as_json
    stack, on = on_host(load(env), host, ssh_key, known_hosts, sync=False, dry_run=dry_run)
    result = stack_uc.down(stack, on, volumes=volumes, purge=purge, yes=yes)
    human = result.get("note") or ("" if dry_run else f"{env} is down")
    emit(result, "\n".join(filter(None, [human, dry_summary() if dry_run else None])))


@app.command()
def status(
    env: EnvArg,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """What runs where: the current release (tag, digests, commit, deployed at/by, CI run) and the one a rollback would go to, the containers and their image digests (a MISMATCH when they are not the release's), /web/health and /web/login through the published port with latency, the lock, an unfinished deploy, disk use of the state root. Exit 1 when the site does not answer or runs something else than the release."""
    if _swarm(env, dry_run):  # ODOO_ENGINE=swarm: the stack's services and tasks
        from odoo_ai.swarm import stack as swarm_stack

        state.json = as_json
        stack, on = on_host(load(env), host, ssh_key, known_hosts, sync=False)
        result = swarm_stack.status(stack, on)
        emit(result, "\n".join(swarm_stack.status_lines(result)))
        if not result["ok"]:
            raise typer.Exit(ExitCode.FAILED)
        return
    from odoo_ai import stack as stack_uc

    state.json = as_json
    stack, on = on_host(load(env), host, ssh_key, known_hosts, sync=False, dry_run=dry_run)
    result = stack_uc.status(stack, on)
    if result is None:  # the dry run printed its reads
        return
    if as_json:
        emit(result)
    else:
        _print_status(result)
    if not result["ok"]:
        raise typer.Exit(ExitCode.FAILED)


def _size(value: int | None, complete: bool = True) -> str:
    from odoo_ai.config.stateroot import human_size

    if value is None:
        return "-"
    return ("≥ " if not complete else "") + human_size(value)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _print_status(r: dict[str, Any]) -> None:
    from rich.markup import escape

    key_width = 12

    def row(key: str, value: str, style: str = "") -> None:
        text = escape(value)
        out.print(f"[bold]{escape(key.ljust(key_width))}[/bold] " + (f"[{style}]{text}[/{style}]" if style else text))

    def short(digest: str | None) -> str:
        return (digest or "-").removeprefix("sha256:")[:12]

    row("stack", f"{r['env']} ({r['project']}) on {r['host']}, state root {r['state_root']}")
    release = r["release"]
    if release:
        row("release", f"{release['image_tag']} ({release['kind'] or 'deploy'}) at {release['timestamp']} "
                       f"by {release['actor'] or '-'}")
        digests = release.get("digests") or {}
        row("", f"commit {release['commit'] or '-'}")
        row("", f"web {digests.get('web') or '-'}")
        row("", f"script-runner {digests.get('script-runner') or '-'}")
        if release.get("ci_run_url"):
            row("", f"CI run {release['ci_run_url']}")
    else:
        row("release", "none recorded (no deploy: started by `odoo-ai up`, or never)")
    previous = r["previous"]
    if previous:
        data = f"; --restore-db restores snapshot {previous['data_snapshot']}" if previous.get("data_snapshot") else ""
        row("rollback to", f"{previous['image_tag']} (deployed {previous['timestamp']}){data}")
    elif release:
        row("rollback to", "nothing: no earlier successful release")
    if r["tag"] and (not release or r["tag"] != release["image_tag"]):
        row("rendered", f".env names tag {r['tag']}")
    for line in r["drift"]:
        row("MISMATCH", line, "bold red")
    probe = r["health"]
    checks = "; ".join(f"{c['path']} {c['status'] or c.get('error') or 'no answer'} in {_ms(c['ms'])}"
                       for c in probe["checks"])
    row("health", f"{checks} ({probe['url'].removesuffix('/web/health')})", "" if probe["ok"] else "bold red")
    lock = r["lock"]
    if lock["held"]:
        holder = lock.get("holder")
        who = "a process that left no note" if not holder else _holder_line(holder)
        phase = f", now in phase {lock['phase']}" if lock.get("phase") else ""
        row("lock", f"held by {who}{phase}", "bold yellow")
    else:
        row("lock", "free")
    unfinished = r["unfinished_deploy"]
    if unfinished:
        what = "unreadable journal" if unfinished.get("unreadable") else (
            f"{(unfinished.get('kind') or 'deploy')} of {unfinished.get('tag')}, in phase {unfinished.get('phase')} "
            f"since {unfinished.get('started')}")
        state_of = "running now" if lock["held"] else "killed: the next deploy or rollback undoes it"
        row("UNFINISHED", f"{what} ({state_of}; {unfinished['journal']})", "bold red")
    if r["update_containers"]:
        row("UPDATE RUNS", f"{', '.join(r['update_containers'])} (a killed deploy's module update goes on "
                           "changing the database until the next deploy stops it)", "bold red")
    disk = r["disk"]
    parts = ", ".join(f"{p['what']} {_size(p['bytes'], p['complete'])}" for p in disk["parts"] if p["exists"])
    row("disk", f"{_size(disk['bytes'], disk['complete'])} in all" + (f" ({parts})" if parts else ""))
    for warning in r["warnings"]:
        row("warning", warning, "yellow")

    from rich.table import Table

    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for col in ("service", "container", "state", "health", "image", "digest"):
        table.add_column(col, no_wrap=col != "image", overflow="fold" if col == "image" else "ellipsis")
    web_digest = ((release or {}).get("digests") or {}).get("web")
    for c in r["containers"]:
        digest = next((d.split("@", 1)[1] for d in c["repo_digests"]), c["image_id"])
        mismatch = release and c["service"] == "web" and not c["oneoff"] and c["state"] == "running" \
            and not _matches(c, web_digest)
        table.add_row(escape(str(c["service"] or "-")) + (" (update)" if c["update"] else ""), escape(c["name"]),
                      escape(str(c["state"])), escape(str(c["health"] or "-")), escape(str(c["image"])),
                      f"[bold red]{short(digest)} (≠ release)[/bold red]" if mismatch else short(digest))
    if r["containers"]:
        out.print(table)


def _matches(container: dict[str, Any], digest: str | None) -> bool:
    from odoo_ai.stack import image_matches

    return image_matches(container, digest)


def _holder_line(holder: dict[str, Any]) -> str:
    import json

    from odoo_ai.lock import Holder

    parsed = Holder.parse(json.dumps(holder))
    return parsed.describe() if parsed else str(holder)


# ---------------------------------------------------------------- the lock by hand
@lock_app.command("status")
def lock_status(
    env: EnvArg,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Say whether ENV's lock is free or who holds it (command, actor, pid and host, since when, the message of a lock taken by hand, the phase of a deploy)."""
    from odoo_ai import stack as stack_uc

    state.json = as_json
    stack, on = on_host(load(env), host, ssh_key, known_hosts, sync=False)
    result = stack_uc.lock_status(stack, on)
    emit(result, f"{env}: {result['summary']}")


@lock_app.command("acquire")
def lock_acquire(
    env: EnvArg,
    message: Annotated[str, typer.Option("--message", "-m", help="Why (shown to every deploy it stops, and by `lock status`), e.g. 'database upgrade until 14:00 (alice)'.")],
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", min=0, help="Seconds to wait for a deploy that holds it now.")] = 30.0,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take ENV's deploy lock by hand (e.g. for maintenance) until `odoo-ai lock release ENV`: deploys, rollbacks, up and down then wait their lock timeout and refuse, saying MESSAGE. A small detached process on the Docker host holds it (an flock, like a deploy's)."""
    from odoo_ai import stack as stack_uc

    state.json = as_json
    stack, on = on_host(load(env), host, ssh_key, known_hosts, sync=False)
    result = stack_uc.lock_acquire(stack, on, message=message, timeout=lock_timeout)
    emit(result, f"{env}: {result['summary']}")


@lock_app.command("release")
def lock_release(
    env: EnvArg,
    force: Annotated[bool, typer.Option("--force", help="Also when a live process holds it (a deploy, up, down): stop that process (SIGTERM: a deploy undoes itself and records the failure). Asks y/N on a terminal; --yes otherwise.")] = False,
    yes: YesOpt = False,
    wait: Annotated[float, typer.Option("--wait", min=0, help="Seconds to wait for the lock to be free after stopping its holder.")] = 60.0,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Free ENV's lock taken by hand (`lock acquire`). A lock held by a live process (a deploy, up, down) is only released with --force, which names and stops that process."""
    from odoo_ai import stack as stack_uc

    state.json = as_json
    stack, on = on_host(load(env), host, ssh_key, known_hosts, sync=False)

    def ask(holder: Any) -> None:
        confirm(f"Stop {holder.describe()} on {on.target if on.remote else 'this machine'}?", yes=yes,
                what=f"stop the lock's holder (pid {holder.host_pid})",
                lines=[f"{env}: the lock is held by {holder.describe()}: --force stops that process (SIGTERM)"])

    result = stack_uc.lock_release(stack, on, force=force, confirm=ask, wait=wait)
    for warning in result.get("warnings", []):
        err.print(f"warning: {warning}", markup=False)
    emit(result, f"{env}: {result['summary']}")


@app.command()
def logs(
    env: EnvArg,
    services: Annotated[list[str] | None, typer.Argument(help="Services (default: all).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming.")] = False,
    tail: Annotated[int | None, typer.Option(help="Lines from the end of each log.", min=0)] = None,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Show the container logs of ENV (Odoo's own log file is under the state root's logs/); -f streams them, over ssh too."""
    if _swarm(env, dry_run):  # ODOO_ENGINE=swarm: docker service logs
        from odoo_ai.swarm import stack as swarm_stack

        stack, on = on_host(load(env), host, ssh_key, known_hosts, sync=False)
        raise typer.Exit(swarm_stack.logs(stack, on, services or [], follow=follow, tail=tail))
    from odoo_ai import stack as stack_uc

    stack, on = on_host(load(env), host, ssh_key, known_hosts, sync=False, dry_run=dry_run)
    code = stack_uc.logs(stack, on, services or [], follow=follow, tail=tail)
    raise typer.Exit(code)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def compose(
    ctx: typer.Context,
    env: EnvArg,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Run `docker compose` for ENV with the right -p/-f/--env-file: odoo-ai compose ENV [--host …] -- ARGS..."""
    from odoo_ai import stack as stack_uc

    args = list(ctx.args)
    if not args:
        raise OdooAiError("nothing to run: odoo-ai compose ENV -- ARGS...", exit_code=ExitCode.USAGE)
    stack, on = on_host(load(env), host, ssh_key, known_hosts, sync=False, dry_run=dry_run)
    raise typer.Exit(stack_uc.compose_passthrough(stack, on, args))


def _swarm(env: str, dry_run: bool) -> bool:
    """Is ENV run by Docker Swarm (ODOO_ENGINE=swarm)? Its status, logs and down are odoo_ai.swarm's."""
    if load(env).engine != "swarm":
        return False
    if dry_run:
        raise OdooAiError(f"{env}: --dry-run is not available with ODOO_ENGINE=swarm yet", exit_code=ExitCode.USAGE)
    return True
