"""Use-cases of a local stack: render its .env, up, down, status, logs, compose."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from odoo_ai import health, releases
from odoo_ai.config.envfile import parse_env_text
from odoo_ai.config.render import (
    APP_ENV,
    IMAGE_GID,
    IMAGE_UID,
    build_dotenv,
    check_state_root,
    render_dotenv,
    rendered_value,
)
from odoo_ai.config.stack import StackConfig, required_modules
from odoo_ai.config.stateroot import (
    MARKER,
    PurgeListing,
    check_claim,
    claim_state_root,
    inspect_purge,
    remove_marked_tree,
    user_homes,
)
from odoo_ai.errors import CommandFailed, ConfigError, ExitCode, OdooAiError
from odoo_ai.excerpt import failure_excerpt
from odoo_ai.lock import LOCK_FILE, EnvLock, Holder, LockState
from odoo_ai.plan import compose as plan
from odoo_ai.plan import deploy as dplan
from odoo_ai.plan import status as splan
from odoo_ai.runners.base import Runner

if TYPE_CHECKING:
    from odoo_ai.hosts import Host

LOCK_TIMEOUT = 30.0
JOURNAL = "deploy-journal.json"  # deploy/journal.py's (not imported: it loads the deploy engine)


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


def require_rendered_on(stack: StackConfig, host: Host) -> None:
    """A remote stack's rendered .env and Compose files, on the host (what `compose` needs)."""
    if host.dry_run:
        return
    if host.read_text(stack.dotenv_path) is None:
        raise ConfigError(f"{stack.env}: no rendered {stack.dotenv_path} on {_where(host)}: deploy first, or "
                          f"`odoo-ai up {stack.env} --host …` / `odoo-ai env render {stack.env} --host …`")
    compose_file = stack.compose_files[0]
    if host.read_text(compose_file) is None:
        raise ConfigError(f"{stack.env}: no {compose_file} on {_where(host)}: a deploy or `odoo-ai up "
                          f"{stack.env} --host …` puts the Compose files there")


def _where(host: Host) -> str:
    return str(getattr(host, "target", "this machine"))


def render_remote(stack: StackConfig, host: Host, *, environ: Mapping[str, str], tag: str | None,
                  tag_from_cli: bool) -> dict[str, Any]:
    """<state_root>/.env and odoo.env on a remote Docker host, written through the connector
    (0600, atomic, contents on ssh's stdin): secrets from this process's environment, never
    generated; Odoo runs as the image's user (1000) unless ODOO_RUN_UID says otherwise. Every
    check (a missing secret, another project's marker) runs before the first write."""
    _, dotenv_text, app_env_text = build_dotenv(stack, environ, tag=tag, tag_from_cli=tag_from_cli, generated={},
                                                uid=IMAGE_UID, gid=IMAGE_GID)
    if host.dry_run:
        check_claim(stack.state_root, stack.project, host.read_text)
        host.note(f"render {stack.dotenv_path} (0600) and {stack.state_root / APP_ENV} on {_where(host)} "
                  f"with tag {tag}")
        return {"dotenv": str(stack.dotenv_path), "written": False, "tag": tag, "host": _where(host)}
    claim_state_root(stack.state_root, stack.project, stack.env, read_text=host.read_text, write=host.write_private)
    host.write_private(stack.state_root / APP_ENV, app_env_text)
    host.write_private(stack.dotenv_path, dotenv_text)
    return {"dotenv": str(stack.dotenv_path), "written": True, "tag": tag, "host": _where(host), "mode": "0o600"}


def rendered_on(stack: StackConfig, host: Host) -> dict[str, str] | None:
    """The rendered .env of the stack on its host (None: none yet); secrets included, so
    only for reading a value or two, never for printing."""
    text = host.read_text(stack.dotenv_path)
    if text is None:
        return None
    try:
        return parse_env_text(text, source=str(stack.dotenv_path))
    except ConfigError:
        return {}


def render(
    stack: StackConfig,
    runner: Runner,
    *,
    environ: Mapping[str, str],
    tag: str | None,
    tag_from_cli: bool,
    allow_generate: bool,
    host: Host | None = None,
) -> dict[str, Any]:
    if host is not None and host.remote:
        return render_remote(stack, host, environ=environ, tag=tag, tag_from_cli=tag_from_cli)
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


# ---------------------------------------------------------------- status
DISK_PARTS = ("database", "filestore", "snapshots", "logs")


def _disk_paths(stack: StackConfig) -> list[tuple[str, Path]]:
    return list(zip(DISK_PARTS, (stack.db_dir, stack.data_dir, stack.state_root / "snapshots", stack.log_dir),
                    strict=True))


def status_commands(stack: StackConfig, *, remote: bool) -> list:
    """The commands status runs on the host (what --dry-run prints); a local stack's HTTP
    probes are made from here, not by a command."""
    commands = [splan.container_ids(stack.docker, stack.project),
                splan.inspect_containers(stack.docker, ["<each container>"]),
                splan.disk_usage(stack.state_root, [p for _, p in _disk_paths(stack)])]
    return [*commands, splan.http_probe(base_url(stack), probe_paths(stack))] if remote else commands


def base_url(stack: StackConfig) -> str:
    return health_url(stack).removesuffix("/web/health")


def probe_paths(stack: StackConfig) -> list[str]:
    return ["/web/health", f"/web/login?db={quote(stack.db_name)}"]


def probe_http(stack: StackConfig, host: Host) -> dict[str, Any]:
    """/web/health and /web/login?db=DB through the published port, as a user sees them, with
    the latency: from this machine for a local stack, from the Docker host's own loopback
    over ssh (python3, else curl, there) for a remote one."""
    base, paths = base_url(stack), probe_paths(stack)
    answers: dict[str, dict[str, Any]] = {}
    if host.remote:
        result = host.run(splan.http_probe(base, paths))
        answers = splan.parse_probe(result.stdout)
        if not answers:
            why = "no python3 or curl on the host" if result.returncode == 127 else (result.tail(1) or "no answer")
            answers = {p: {"path": p, "status": None, "ms": None, "error": why} for p in paths}
    else:
        for path in paths:
            probe = health.probe(base + path)
            answers[path] = {"path": path, "status": probe.status, "ms": round(probe.seconds * 1000, 1),
                             "error": None if probe.status else probe.detail}
    checks = [answers.get(p) or {"path": p, "status": None, "ms": None, "error": "no answer"} for p in paths]
    first = checks[0]
    return {"url": base + paths[0], "ok": all(c["status"] == 200 for c in checks), "status": first["status"],
            "ms": first["ms"], "error": first["error"], "checks": checks}


def _containers(stack: StackConfig, host: Host) -> list[dict[str, Any]]:
    """The project's containers, inspected, with their images' repo digests."""
    ids = host.run(splan.container_ids(stack.docker, stack.project))
    if not ids.ok:
        raise CommandFailed(f"listing the containers of {stack.project} failed: {ids.tail(3)}")
    if not ids.stdout.split():
        return []
    inspected = host.run(splan.inspect_containers(stack.docker, ids.stdout.split()))
    if not inspected.ok:  # a container removed between the two reads: once more
        ids = host.run(splan.container_ids(stack.docker, stack.project))
        if ids.ok and not ids.stdout.split():
            return []
        inspected = host.run(splan.inspect_containers(stack.docker, ids.stdout.split()))
    if not inspected.ok:
        raise CommandFailed(f"inspecting the containers of {stack.project} failed: {inspected.tail(3)}")
    return splan.parse_containers(inspected.stdout)


def _parallel(tasks: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run independent reads at once (each over ssh is a round trip): their results by name;
    the first error is raised."""
    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        futures = {name: pool.submit(task) for name, task in tasks.items()}
        return {name: future.result() for name, future in futures.items()}


def _short(digest: str | None) -> str:
    return (digest or "-").removeprefix("sha256:")[:12]


def image_matches(container: Mapping[str, Any], digest: str | None) -> bool:
    """Does the container run the image a release recorded by `digest` (a repo digest when
    the image came from a registry, else its image id)?"""
    if not digest:
        return False
    return container.get("image_id") == digest or any(
        str(d).endswith("@" + digest) for d in container.get("repo_digests") or [])


def drift(release: Mapping[str, Any] | None, containers: list[dict[str, Any]],
          rendered: Mapping[str, str] | None) -> list[str]:
    """How what runs differs from the recorded release (empty: it is the release)."""
    if release is None:
        return []
    tag = release.get("image_tag")
    digest = (release.get("digests") or {}).get("web")
    problems = []
    webs = [c for c in containers if c.get("service") == "web" and not c.get("oneoff") and c.get("state") == "running"]
    if not webs:
        problems.append(f"no web container runs, but the release log says {tag} serves")
    for c in webs:
        if not image_matches(c, digest):
            problems.append(f"web container {c['name']} runs {c.get('image')} (image {_short(c.get('image_id'))}), "
                            f"not the release {tag} (web {_short(digest)})")
    rendered_tag = (rendered or {}).get("ODOO_IMAGE_TAG")
    if rendered is not None and rendered_tag != tag:
        problems.append(f"the rendered .env names tag {rendered_tag or '-'}, the release log {tag} "
                        "(started by hand, e.g. `odoo-ai up --tag`?)")
    return problems


def _release_view(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    keys = ("image_tag", "kind", "status", "timestamp", "actor", "commit", "digests", "images", "ci_run_url",
            "duration", "previous_tag", "snapshot")
    return {k: record.get(k) for k in keys}


def _disk(stack: StackConfig, result: Any) -> dict[str, Any]:
    parts_kib, total_kib = splan.parse_disk(result.stdout)
    problems = [line for line in result.stderr.splitlines() if line.strip()]
    parts = []
    for what, path in _disk_paths(stack):
        kib = parts_kib.get(str(path))
        incomplete = any(str(path) in line for line in problems)
        parts.append({"what": what, "path": str(path), "bytes": None if kib is None else kib * 1024,
                      "complete": not incomplete, "exists": kib is not None})
    return {"state_root": str(stack.state_root), "bytes": None if total_kib is None else total_kib * 1024,
            "complete": not problems, "parts": parts}


def _lock_view(state: LockState, journal: dict[str, Any] | None) -> dict[str, Any]:
    view = state.as_dict()
    holder = state.holder
    if state.held and holder is not None and not holder.manual and journal and not journal.get("unreadable"):
        view["phase"] = journal.get("phase")  # the deploy holding it is in this phase now
    return view


def status(stack: StackConfig, host: Host) -> dict[str, Any] | None:
    """What runs where: the current release and the one a rollback would go to, the
    containers and their image digests (and how they differ from the release), health as
    a user sees it, the lock, an unfinished deploy, disk use of the state root. Only reads,
    through the connector (all at once). The dry run prints the reads and returns None."""
    if host.dry_run:
        for command in status_commands(stack, remote=host.remote):
            host.run(command)
        if not host.remote:
            host.note(f"GET {base_url(stack)}{' and '.join(probe_paths(stack))} from here (latency measured)")
        host.note(f"read {stack.state_root}/releases.log, .env, {JOURNAL} and the note in {LOCK_FILE}")
        return None
    root = stack.state_root
    reads = _parallel({
        "log": lambda: host.read_text(root / releases.RELEASE_LOG),
        "rendered": lambda: rendered_on(stack, host),
        "journal": lambda: host.read_text(root / JOURNAL),
        "lock": lambda: host.lock_state(root / LOCK_FILE),
        "containers": lambda: _containers(stack, host),
        "disk": lambda: host.run(splan.disk_usage(root, [p for _, p in _disk_paths(stack)])),
        "health": lambda: probe_http(stack, host),
    })
    containers = reads["containers"]
    problems: list[str] = []
    history = releases.parse_releases(reads["log"] or "", root / releases.RELEASE_LOG,
                                      on_error=lambda p, n, why: problems.append(f"{p}:{n}: {why}, skipped"))
    current = releases.current_release(history)
    if current is None and reads["rendered"] is None and not containers:
        raise ConfigError(f"{stack.env}: nothing to show on {_where(host)}: no release log, no rendered "
                          f"{stack.dotenv_path}, no container of {stack.project} (`odoo-ai up {stack.env}` or a "
                          "deploy first)")
    previous = None
    if current is not None:
        from odoo_ai.deploy.policy import pick_rollback

        try:
            target, snapshot = pick_rollback(history, None, env=stack.env)
            previous = {**_release_view(target), "data_snapshot": snapshot}  # type: ignore[dict-item]
        except ConfigError:
            previous = None
    unfinished = _journal_view(root / JOURNAL, reads["journal"])
    rendered = reads["rendered"]
    differs = drift(current, containers, rendered)
    updates = [c["name"] for c in containers if c.get("update")]
    probe = reads["health"]
    return {
        "env": stack.env,
        "project": stack.project,
        "host": _where(host),
        "state_root": str(root),
        "tag": (rendered or {}).get("ODOO_IMAGE_TAG"),
        "rendered_images": {t: (rendered or {}).get(k) for t, k in (("web", "ODOO_WEB_IMAGE"),
                                                                   ("script-runner", "ODOO_SCRIPT_RUNNER_IMAGE"))},
        "release": _release_view(current),
        "previous": previous,
        "containers": containers,
        "services": [{"service": c["service"], "name": c["name"], "image": c["image"], "state": c["state"],
                      "health": c["health"], "status": c["started"]} for c in containers if not c["oneoff"]],
        "drift": differs,
        "health": probe,
        "lock": _lock_view(reads["lock"], unfinished),
        "unfinished_deploy": unfinished,
        "update_containers": updates,
        "disk": _disk(stack, reads["disk"]),
        "warnings": problems,
        # a failing check: the site does not answer, or runs something else than the release
        # (while no deploy is under way: one running changes the containers on purpose)
        "ok": bool(probe["ok"]) and (not differs or unfinished is not None),
    }


def _journal_view(path: Path, text: str | None) -> dict[str, Any] | None:
    """The journal of a deploy that is running or was killed (the next deploy undoes it)."""
    if text is None:
        return None
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        return {"journal": str(path), "unreadable": True}
    keys = ("kind", "tag", "phase", "started", "previous_tag", "snapshot", "db_may_change", "update_container")
    return {"journal": str(path), **{k: data.get(k) for k in keys}}


def logs(stack: StackConfig, runner: Runner, services: list[str], *, follow: bool, tail: int | None,
         host: Host | None = None) -> int:
    """The containers' logs; with -f they stream (over ssh too) until interrupted."""
    for service in services:
        if service not in plan.SERVICES:
            raise ConfigError(f"unknown service {service!r} (known: {', '.join(plan.SERVICES)})")
    command = plan.logs(stack, services, follow=follow, tail=tail)
    if host is not None and host.remote:
        require_rendered_on(stack, host)
        return _attached(host, command)
    require_rendered(stack, runner)
    return runner.run(command).returncode


def _attached(host: Host, command: Any) -> int:
    """A command whose output is the user's (logs, compose) on a remote host: with a
    terminal on both ends when there is one here (hosts.RemoteHost.run_attached)."""
    if host.dry_run:
        return host.run(command, capture=False).returncode
    return host.run_attached(command)  # type: ignore[attr-defined]  # RemoteHost


def compose_passthrough(stack: StackConfig, runner: Runner, args: list[str], host: Host | None = None) -> int:
    command = plan.compose(stack, *args)
    if host is not None and host.remote:
        require_rendered_on(stack, host)
        return _attached(host, command)
    require_rendered(stack, runner)
    return runner.run(command).returncode


def is_local_docker() -> bool:
    return not os.environ.get("DOCKER_HOST", "").startswith("ssh://")


def _env_lock(stack: StackConfig, runner: Runner, command: str) -> AbstractContextManager:
    """up/down take the same lock as deploys, so they never run into one."""
    if runner.dry_run or not stack.state_root.exists():
        return nullcontext()
    return EnvLock(stack.state_root / "deploy.lock", command=command, timeout=LOCK_TIMEOUT)


def _up_remote(stack: StackConfig, host: Host, *, environ: Mapping[str, str], tag: str | None,
               tag_from_cli: bool, wait_timeout: float) -> dict[str, Any]:
    """`up --host`: the same steps on the Docker host, through the connector, under the
    env's lock. Without --tag a .env already rendered there (a deploy's, pinned by digest)
    is kept as it is."""
    check_claim(stack.state_root, stack.project, host.read_text)  # another project's: refused before writing
    if not host.dry_run:
        host.mkdir(stack.state_root)
    lock = nullcontext() if host.dry_run else host.lock(stack.state_root / LOCK_FILE, command=f"up {stack.env}",
                                                        timeout=LOCK_TIMEOUT)
    with lock:
        current = None if (tag_from_cli or host.dry_run) else rendered_on(stack, host)
        if current is not None:
            rendered = {"dotenv": str(stack.dotenv_path), "written": False, "tag": current.get("ODOO_IMAGE_TAG"),
                        "host": _where(host), "note": "kept the .env rendered on the host (pass --tag to change it)"}
        else:
            rendered = render_remote(stack, host, environ=environ, tag=tag, tag_from_cli=tag_from_cli)
        for path in (stack.data_dir, stack.db_dir, stack.log_dir, stack.state_root / "proxy",
                     stack.state_root / "snapshots"):
            if host.dry_run:
                host.note(f"mkdir -p {path}")
            else:
                host.mkdir(path)
        initialised = _init_database(stack, host)  # type: ignore[arg-type]  # a connector runs commands too
        result = host.run(plan.up(stack), capture=False)
        if not result.ok:
            raise CommandFailed(f"docker compose up failed for {stack.env} on {_where(host)} (exit {result.returncode})",
                                hint=f"odoo-ai logs {stack.env} --host …")
    url = health_url(stack)
    done = {"env": stack.env, "project": stack.project, "tag": rendered["tag"], "url": url, "host": _where(host),
            "initialised": initialised, **rendered}
    if host.dry_run or wait_timeout <= 0:
        return {**done, "healthy": None}
    deadline = time.monotonic() + wait_timeout
    while True:
        probe = probe_http(stack, host)
        if probe["ok"] or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    if not probe["ok"]:
        raise OdooAiError(f"{stack.env}: {url} on {_where(host)} did not answer 200 within {wait_timeout:.0f}s "
                          f"(last: {probe['status'] or probe.get('error')})", exit_code=ExitCode.FAILED,
                          hint=f"odoo-ai logs {stack.env} web --host …")
    return {**done, "healthy": True, "health_ms": probe["ms"]}


def up(stack: StackConfig, runner: Runner, *, host: Host | None = None, **kwargs: Any) -> dict[str, Any]:
    """Render the .env and start the stack; wait for /web/health through the proxy."""
    if host is not None and host.remote:
        return _up_remote(stack, host, **kwargs)
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
    host: Host | None = None,
) -> dict[str, Any]:
    """Remove the stack's containers and networks; with purge, its state root too.

    A purge deletes only a real directory carrying this project's marker: it lists what
    it deletes with sizes (`say`: stderr), then asks (`confirm`, y/N on a terminal) unless
    `yes` (CLI --yes); without a terminal it needs `yes`. Any refusal, a declined question
    included, is a ConfigError (exit 2) before anything is stopped or deleted. The dry run
    lists and refuses the same way, and deletes nothing."""
    if host is not None and host.remote:
        if purge:
            raise ConfigError(f"down --purge with --host: run `odoo-ai down {stack.env} --purge` on the Docker host "
                              "itself (the purge checks and deletes on its own disk); nothing stopped, nothing deleted")
        return _down_remote(stack, host, volumes=volumes)
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


def _down_remote(stack: StackConfig, host: Host, *, volumes: bool) -> dict[str, Any]:
    result_data: dict[str, Any] = {"env": stack.env, "project": stack.project, "removed": False, "purged": False,
                                   "host": _where(host)}
    if not host.dry_run and host.read_text(stack.dotenv_path) is None:
        result_data["note"] = (f"no containers to remove: {stack.env} was never brought up on {_where(host)} "
                               f"(no {stack.dotenv_path})")
        return result_data
    require_rendered_on(stack, host)
    lock = nullcontext() if host.dry_run else host.lock(stack.state_root / LOCK_FILE, command=f"down {stack.env}",
                                                        timeout=LOCK_TIMEOUT)
    with lock:
        result = host.run(plan.down(stack, volumes=volumes), capture=False)
    if not result.ok:
        raise CommandFailed(f"docker compose down failed for {stack.env} on {_where(host)} (exit {result.returncode})")
    result_data["removed"] = True
    return result_data


# ---------------------------------------------------------------- the lock by hand (odoo-ai lock)
def lock_status(stack: StackConfig, host: Host) -> dict[str, Any]:
    root = stack.state_root
    journal = _journal_view(root / JOURNAL, host.read_text(root / JOURNAL))
    view = _lock_view(host.lock_state(root / LOCK_FILE), journal)
    if view["held"]:
        holder = view.get("holder")
        summary = f"locked by {Holder(**holder).describe()}" if holder else "locked by a process that left no note"
        if view.get("phase"):
            summary += f", now in phase {view['phase']}"
    else:
        summary = "free"
        if view.get("left_by"):
            summary += f" (last held by {Holder(**view['left_by']).describe()}, which ended without cleaning up)"
    return {"env": stack.env, "project": stack.project, "host": _where(host), **view, "unfinished_deploy": journal,
            "summary": summary}


def lock_acquire(stack: StackConfig, host: Host, *, message: str, timeout: float) -> dict[str, Any]:
    """Hold the env's lock by hand until lock_release: a detached process on the Docker host
    keeps the flock; every deploy, rollback, up and down waits, then refuses with `message`."""
    if not message.strip():
        raise ConfigError("--message is empty: say why the lock is held (every deploy it stops prints it)")
    check_claim(stack.state_root, stack.project, host.read_text)  # another project's state root: refused
    path = stack.state_root / LOCK_FILE
    holder = host.hold_lock(path, message=message.strip(), timeout=timeout)
    return {"env": stack.env, "project": stack.project, "host": _where(host), "path": str(path), "held": True,
            "holder": asdict(holder),
            "summary": f"locked by hand until `odoo-ai lock release {stack.env}` (holder pid {holder.pid} on "
                       f"{holder.host}): {holder.message}"}


def lock_release(stack: StackConfig, host: Host, *, force: bool, confirm: Callable[[Holder], None],
                 wait: float = 60.0) -> dict[str, Any]:
    """Free the env's lock: a lock taken by hand at once; one held by a live process (a
    deploy, up, down) only with `force`, after `confirm` (which raises to refuse): that
    process is stopped (SIGTERM; a deploy undoes itself), then the lock is free."""
    path = stack.state_root / LOCK_FILE
    state = host.lock_state(path)
    base = {"env": stack.env, "project": stack.project, "host": _where(host), "path": str(path)}
    if not state.held:
        return {**base, "released": False, "summary": "the lock is free: nothing to release"}
    holder = state.holder
    if holder is None:
        raise OdooAiError(f"{stack.env}: {path} is held by a process that left no note: cannot tell which one to "
                          "stop (on the host: fuser -v {path})", exit_code=ExitCode.FAILED)
    warnings = []
    if not holder.manual:
        if not force:
            raise ConfigError(f"{stack.env}: the lock is held by a live process, {holder.describe()}: "
                              "nothing released",
                              hint="wait for it, or `--force` to stop it (SIGTERM: a deploy undoes itself)")
        confirm(holder)
        if holder.lock_pid and holder.lock_pid != holder.pid:
            warnings.append(f"the lock's session on the host (pid {holder.lock_pid}) is stopped; the CLI that took it "
                            f"(pid {holder.pid} on {holder.host}) is not told: cancel it there (e.g. its CI job)")
    if not host.stop_lock_holder(path, holder.host_pid, wait=wait):
        raise OdooAiError(f"{stack.env}: pid {holder.host_pid} was asked to stop (SIGTERM) but still holds the lock "
                          f"after {wait:.0f}s (a deploy undoing itself takes its time)",
                          exit_code=ExitCode.FAILED, hint=f"odoo-ai lock status {stack.env}")
    what = "released the lock taken by hand" if holder.manual else "stopped the holder and released the lock"
    return {**base, "released": True, "forced": not holder.manual, "holder": asdict(holder), "warnings": warnings,
            "summary": f"{what}: {holder.describe()}"}
