"""Use-cases of a local stack: render its .env, up, down, status, logs, compose."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from odoo_ai import health
from odoo_ai.config.render import check_state_root, render_dotenv, rendered_value
from odoo_ai.config.stack import StackConfig, required_modules
from odoo_ai.config.stateroot import (
    MARKER,
    PurgeListing,
    inspect_purge,
    remove_marked_tree,
    user_homes,
)
from odoo_ai.errors import CommandFailed, ConfigError, ExitCode, OdooAiError
from odoo_ai.excerpt import failure_excerpt
from odoo_ai.lock import EnvLock
from odoo_ai.plan import compose as plan
from odoo_ai.plan import deploy as dplan
from odoo_ai.runners.base import Runner

LOCK_TIMEOUT = 30.0


def health_url(stack: StackConfig) -> str:
    host = "127.0.0.1" if stack.bind_address in ("0.0.0.0", "::") else stack.bind_address
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{stack.published_port}/web/health"


def require_rendered(stack: StackConfig, runner: Runner) -> None:
    if not runner.dry_run and not stack.dotenv_path.exists():
        raise ConfigError(
            f"{stack.env}: no rendered {stack.dotenv_path}: run `odoo-ai up {stack.env}` "
            f"or `odoo-ai env render {stack.env} --tag TAG` first"
        )


def resolve_tag(stack: StackConfig, cli_tag: str | None) -> str | None:
    """--tag > ODOO_IMAGE_TAG (env file) > the tag of the last rendered .env."""
    return cli_tag or stack.image_tag or rendered_value(stack, "ODOO_IMAGE_TAG")


def render(
    stack: StackConfig,
    runner: Runner,
    *,
    environ: Mapping[str, str],
    tag: str | None,
    tag_from_cli: bool,
    allow_generate: bool,
) -> dict[str, Any]:
    if runner.dry_run:
        marked = check_state_root(stack)  # the same refusal as the real render
        if not marked:
            runner.note(f"mark {stack.state_root} as {stack.project}'s ({stack.state_root / MARKER}, 0644)")
        runner.note(f"render {stack.dotenv_path} (0600) and {stack.state_root / 'odoo.env'} with tag {tag}")
        return {"dotenv": str(stack.dotenv_path), "written": False, "tag": tag}
    path = render_dotenv(stack, environ, tag=tag, tag_from_cli=tag_from_cli, allow_generate=allow_generate)
    return {"dotenv": str(path), "written": True, "tag": tag, "mode": oct(path.stat().st_mode & 0o777)}


def _up(
    stack: StackConfig,
    runner: Runner,
    *,
    environ: Mapping[str, str],
    tag: str | None,
    tag_from_cli: bool,
    wait_timeout: float,
    local: bool = True,
) -> dict[str, Any]:
    rendered = render(
        stack, runner, environ=environ, tag=tag, tag_from_cli=tag_from_cli, allow_generate=local
    )
    for path in (stack.data_dir, stack.db_dir, stack.log_dir, stack.state_root / "proxy",
                 stack.state_root / "snapshots"):
        if runner.dry_run:
            runner.note(f"mkdir -p {path}")
        else:
            path.mkdir(parents=True, exist_ok=True)
    initialised = _init_database(stack, runner)
    result = runner.run(plan.up(stack))
    if not result.ok:
        raise CommandFailed(f"docker compose up failed for {stack.env} (exit {result.returncode})",
                            hint=f"odoo-ai logs {stack.env}")
    url = health_url(stack)
    if runner.dry_run and wait_timeout > 0:
        runner.note(f"wait up to {wait_timeout:.0f}s for HTTP 200 from {url}")
    if runner.dry_run or wait_timeout <= 0:
        return {"env": stack.env, "project": stack.project, "tag": tag, "url": url, "healthy": None,
                "initialised": initialised, **rendered}
    last = health.wait_healthy(url, timeout=wait_timeout)
    if not last.ok:
        raise OdooAiError(
            f"{stack.env}: {url} did not answer 200 within {wait_timeout:.0f}s "
            f"(last: {last.status or last.detail})",
            exit_code=ExitCode.FAILED,
            hint=f"odoo-ai logs {stack.env} web",
        )
    return {"env": stack.env, "project": stack.project, "tag": tag, "url": url, "healthy": True,
            "health_seconds": round(last.seconds, 3), "initialised": initialised, **rendered}


def _init_database(stack: StackConfig, runner: Runner) -> list[str] | None:
    """A new database is created and loaded by a one-off script-runner (`-i base` plus the
    env's required modules; no demo data unless ODOO_WITHOUT_DEMO says so) BEFORE web
    starts: Odoo's web would otherwise create it at start, answer /web/health while it
    loads, and race its own workers. Returns the modules installed, None if it existed."""
    result = runner.run(plan.up(stack, ["--wait", "db"]), capture=True)
    if not result.ok:
        raise CommandFailed(f"{stack.env}: the database service did not start: {result.tail(3)}",
                            hint=f"odoo-ai logs {stack.env} db")
    modules = required_modules(stack)
    if runner.dry_run:
        runner.note("then, if the database does not exist yet:")
        runner.run(dplan.init_database(stack, modules))
        return None
    exists = runner.run(dplan.db_exists(stack), capture=True)
    if not exists.ok:
        raise CommandFailed(f"{stack.env}: cannot query the database server: {exists.tail(3)}")
    if exists.stdout.strip() == "1":
        return None
    init = runner.run(dplan.init_database(stack, modules), capture=True)
    if not init.ok:
        runner.run(dplan.drop_db(stack, stack.db_name), capture=True)  # half loaded: the next up starts over
        raise OdooAiError(
            f"{stack.env}: initialising the database {stack.db_name} (-i {','.join(modules)}) failed "
            f"(exit {init.returncode})", output=failure_excerpt(init.stdout + init.stderr),
            exit_code=ExitCode.FAILED, hint=f"the database was dropped; fix the cause and run odoo-ai up {stack.env}")
    return modules


def _purge_scope(stack: StackConfig) -> dict[str, Any]:
    """What the purge guard needs besides the state root and the project."""
    return {"homes": user_homes(), "repo_root": stack.repo_root, "env": stack.env}


def purge_listing(stack: StackConfig) -> PurgeListing | None:
    """What `down --purge` would delete (None: the state root does not exist); a refusal
    (ConfigError, exit 2, nothing changed) unless the state root is a real directory, a path
    a stack may own, and carries this project's marker."""
    parts = [("database", stack.db_dir), ("filestore", stack.data_dir),
             ("snapshots", stack.state_root / "snapshots"), ("logs", stack.log_dir)]
    return inspect_purge(stack.state_root, stack.project, parts=parts, **_purge_scope(stack))


def ask_on_terminal(question: str) -> bool | None:
    """y/N on the terminal (stdin and stderr both one); None when there is no terminal."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _say_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _down(stack: StackConfig, runner: Runner, *, volumes: bool, purge: PurgeListing | None = None) -> dict[str, Any]:
    """Compose down; then, with a purge listing (already checked and confirmed), delete the
    state root after checking it again."""
    result_data: dict[str, Any] = {"env": stack.env, "project": stack.project, "removed": False, "purged": False}
    if runner.dry_run or stack.dotenv_path.exists():
        result = runner.run(plan.down(stack, volumes=volumes))
        if not result.ok:
            raise CommandFailed(f"docker compose down failed for {stack.env} (exit {result.returncode})")
        result_data["removed"] = True
    else:
        result_data["note"] = f"no containers to remove: {stack.env} was never brought up (no {stack.dotenv_path})"
    if purge is not None:
        result_data["purge"] = purge.as_dict()
        if runner.dry_run:
            runner.note(f"rm -r {purge.root}  (after y on a terminal, or --yes; the marker of {stack.project} "
                        "checked again first)")
        else:
            result_data["purged"] = remove_marked_tree(stack.state_root, stack.project, **_purge_scope(stack))
    return result_data


def _parse_ps(stdout: str) -> list[dict[str, Any]]:
    text = stdout.strip()
    if not text:
        return []
    if text.startswith("["):  # older Compose prints one JSON array
        rows = json.loads(text)
    else:  # Compose >= 2.21 prints one object per line
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [
        {
            "service": row.get("Service"),
            "name": row.get("Name"),
            "image": row.get("Image"),
            "state": row.get("State"),
            "health": row.get("Health") or None,
            "status": row.get("Status"),
        }
        for row in rows
    ]


def status(stack: StackConfig, runner: Runner) -> dict[str, Any]:
    require_rendered(stack, runner)
    result = runner.run(plan.ps(stack), capture=True)
    if not result.ok:
        raise CommandFailed(f"docker compose ps failed: {result.tail(3)}")
    services = _parse_ps(result.stdout) if not runner.dry_run else []
    url = health_url(stack)
    probe = None if runner.dry_run else health.probe(url)
    orphans = runner.run(dplan.update_containers(stack), capture=True)
    return {
        "env": stack.env,
        "project": stack.project,
        "tag": rendered_value(stack, "ODOO_IMAGE_TAG"),
        "services": services,
        "health": None if probe is None else {"url": url, "ok": probe.ok, "status": probe.status},
        "unfinished_deploy": None if runner.dry_run else _unfinished(stack),
        "update_containers": orphans.stdout.split() if orphans.ok else [],
    }


def _unfinished(stack: StackConfig) -> dict[str, Any] | None:
    """The journal of a deploy that is running or was killed (the next deploy undoes it)."""
    path = stack.state_root / "deploy-journal.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"journal": str(path), "unreadable": True}
    keys = ("kind", "tag", "phase", "started", "previous_tag", "snapshot", "db_may_change", "update_container")
    return {"journal": str(path), **{k: data.get(k) for k in keys}}


def logs(stack: StackConfig, runner: Runner, services: list[str], *, follow: bool, tail: int | None) -> int:
    for service in services:
        if service not in plan.SERVICES:
            raise ConfigError(f"unknown service {service!r} (known: {', '.join(plan.SERVICES)})")
    require_rendered(stack, runner)
    return runner.run(plan.logs(stack, services, follow=follow, tail=tail)).returncode


def compose_passthrough(stack: StackConfig, runner: Runner, args: list[str]) -> int:
    require_rendered(stack, runner)
    return runner.run(plan.compose(stack, *args)).returncode


def is_local_docker() -> bool:
    return not os.environ.get("DOCKER_HOST", "").startswith("ssh://")


def _env_lock(stack: StackConfig, runner: Runner, command: str) -> AbstractContextManager:
    """up/down take the same lock as deploys, so they never run into one."""
    if runner.dry_run or not stack.state_root.exists():
        return nullcontext()
    return EnvLock(stack.state_root / "deploy.lock", command=command, timeout=LOCK_TIMEOUT)


def up(stack: StackConfig, runner: Runner, **kwargs: Any) -> dict[str, Any]:
    """Render the .env and start the stack; wait for /web/health through the proxy."""
    check_state_root(stack)  # another project's state root: refused before the first write
    if not runner.dry_run:
        stack.state_root.mkdir(parents=True, exist_ok=True)
    with _env_lock(stack, runner, f"up {stack.env}"):
        return _up(stack, runner, **kwargs)


def down(
    stack: StackConfig,
    runner: Runner,
    *,
    volumes: bool,
    purge: bool = False,
    yes: bool = False,
    confirm: Callable[[str], bool | None] = ask_on_terminal,
    say: Callable[[str], None] = _say_stderr,
) -> dict[str, Any]:
    """Remove the stack's containers and networks; with purge, its state root too.

    A purge deletes only a real directory carrying this project's marker: it lists what
    it deletes with sizes (`say`: stderr), then asks (`confirm`, y/N on a terminal) unless
    `yes` (CLI --yes); without a terminal it needs `yes`. Any refusal, a declined question
    included, is a ConfigError (exit 2) before anything is stopped or deleted. The dry run
    lists and refuses the same way, and deletes nothing."""
    listing = None
    if purge:
        listing = purge_listing(stack)
        if listing is None:
            say(f"nothing to purge: {stack.state_root} does not exist")
        else:
            for line in listing.lines(dry_run=runner.dry_run):
                say(line)
            if not runner.dry_run and not yes:
                answer = confirm(f"Delete {listing.root} and everything in it?")
                if answer is None:
                    raise ConfigError(f"refusing to delete {listing.root} without confirmation (no terminal to ask "
                                      "on): pass --yes; nothing stopped, nothing deleted")
                if not answer:
                    raise ConfigError(f"not confirmed: nothing stopped, nothing deleted ({listing.root} stays)")
    with _env_lock(stack, runner, f"down {stack.env}"):
        return _down(stack, runner, volumes=volumes, purge=listing)
