"""Use-cases of a local stack: render its .env, up, down, status, logs, compose."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from odoo_ai import releases
from odoo_ai.config.envfile import format_env, parse_env_text
from odoo_ai.config.render import (
    APP_ENV,
    GENERATED_SECRETS,
    IMAGE_GID,
    IMAGE_UID,
    build_dotenv,
    rendered_value,
    resolve_secrets,
)
from odoo_ai.config.stack import StackConfig, required_modules
from odoo_ai.config.stateroot import PurgeListing, check_claim, marker_path, marker_text
from odoo_ai.errors import CommandFailed, ConfigError, ExitCode, OdooAiError
from odoo_ai.excerpt import failure_excerpt
from odoo_ai.lock import LOCK_FILE, Holder, LockState
from odoo_ai.plan import compose as plan
from odoo_ai.plan import deploy as dplan
from odoo_ai.plan import status as splan

if TYPE_CHECKING:
    from odoo_ai.hosts import Host

LOCK_TIMEOUT = 30.0
JOURNAL = "deploy-journal.json"  # deploy/journal.py's (not imported: it loads the deploy engine)


def health_url(stack: StackConfig) -> str:
    host = "127.0.0.1" if stack.bind_address in ("0.0.0.0", "::") else stack.bind_address
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{stack.published_port}/web/health"


def resolve_tag(stack: StackConfig, cli_tag: str | None) -> str | None:
    """--tag > ODOO_IMAGE_TAG (env file) > the tag of the last rendered .env."""
    return cli_tag or stack.image_tag or rendered_value(stack, "ODOO_IMAGE_TAG")


def require_rendered_on(stack: StackConfig, host: Host) -> None:
    """The stack's rendered .env (and, on a remote host, its Compose files): what `compose`
    and `logs` need. A dry run reads them too, and refuses the same way."""
    if host.read_text(stack.dotenv_path) is None:
        if not host.remote:
            raise ConfigError(f"{stack.env}: no rendered {stack.dotenv_path}: run `odoo-ai up {stack.env}` "
                              f"or `odoo-ai env render {stack.env} --tag TAG` first")
        raise ConfigError(f"{stack.env}: no rendered {stack.dotenv_path} on {_where(host)}: deploy first, or "
                          f"`odoo-ai up {stack.env} --host …` / `odoo-ai env render {stack.env} --host …`")
    compose_file = stack.compose_files[0]
    if host.remote and host.read_text(compose_file) is None:
        raise ConfigError(f"{stack.env}: no {compose_file} on {_where(host)}: a deploy or `odoo-ai up "
                          f"{stack.env} --host …` puts the Compose files there")


def _where(host: Host) -> str:
    return str(getattr(host, "target", "this machine"))


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


def _generated(stack: StackConfig, host: Host) -> dict[str, str]:
    text = host.read_text(stack.state_root / GENERATED_SECRETS)
    return parse_env_text(text, source=str(stack.state_root / GENERATED_SECRETS)) if text else {}


def render(stack: StackConfig, host: Host, *, environ: Mapping[str, str], tag: str | None, tag_from_cli: bool,
           allow_generate: bool = False) -> dict[str, Any]:
    """<state_root>/.env and odoo.env, written through the connector (0600, atomic; over
    ssh the contents on stdin); the first render marks the state root as this project's.
    Every check (another project's marker, a missing secret, a bad setting) runs before
    the first write. A local stack may generate its missing secrets (`allow_generate`,
    kept in <state_root>/.secrets.env); a remote one takes them from the environment, and
    Odoo runs as the image's user (1000) there unless ODOO_RUN_UID says otherwise."""
    root = stack.state_root
    marked = check_claim(root, stack.project, host.read_marker)  # another project's state root: refused
    ids = {"uid": IMAGE_UID, "gid": IMAGE_GID} if host.remote else {}
    generated = {} if host.remote else _generated(stack, host)
    _, missing = resolve_secrets(stack, environ, generated)
    generate = bool(missing and allow_generate and not host.remote)
    # Validate everything first: a bad setting must not leave a marker or a secrets file behind.
    _, dotenv_text, app_env_text = build_dotenv(
        stack, environ, tag=tag, tag_from_cli=tag_from_cli,
        generated={**generated, **dict.fromkeys(missing, "x")} if generate else generated, **ids)
    host.mkdir(root)
    if not marked:  # the first render marks the state root as this project's
        host.write_marker(marker_path(root), marker_text(stack.project, stack.env))
    if generate:
        generated = {**generated, **{name: secrets.token_urlsafe(24) for name in missing}}
        host.write_private(root / GENERATED_SECRETS,
                           format_env(generated, header="Secrets generated by odoo-ai for a local stack. Do not commit."))
        _, dotenv_text, app_env_text = build_dotenv(stack, environ, tag=tag, tag_from_cli=tag_from_cli,
                                                    generated=generated, **ids)
    host.write_private(root / APP_ENV, app_env_text)
    host.write_private(stack.dotenv_path, dotenv_text)
    done = {"dotenv": str(stack.dotenv_path), "written": not host.dry_run, "tag": tag, "mode": "0o600"}
    return {**done, "host": _where(host)} if host.remote else done


def _init_database(stack: StackConfig, host: Host) -> list[str] | None:
    """A new database is created and loaded by a one-off script-runner (`-i base` plus the
    env's required modules; no demo data unless ODOO_WITHOUT_DEMO says so) BEFORE web
    starts: Odoo's web would otherwise create it at start, answer /web/health while it
    loads, and race its own workers. Returns the modules installed, None if it existed."""
    result = host.run(plan.up(stack, ["--wait", "db"]), capture=True)
    if not result.ok:
        raise CommandFailed(f"{stack.env}: the database service did not start: {result.tail(3)}",
                            hint=f"odoo-ai logs {stack.env} db")
    modules = required_modules(stack)
    exists = host.run(dplan.db_exists(stack), capture=True)
    if not exists.ok:
        raise CommandFailed(f"{stack.env}: cannot query the database server: {exists.tail(3)}")
    if exists.stdout.strip() == "1":
        return None
    init = host.run(dplan.init_database(stack, modules), capture=True)
    if not init.ok:
        host.run(dplan.drop_db(stack, stack.db_name), capture=True)  # half loaded: the next up starts over
        raise OdooAiError(
            f"{stack.env}: initialising the database {stack.db_name} (-i {','.join(modules)}) failed "
            f"(exit {init.returncode})", output=failure_excerpt(init.stdout + init.stderr),
            exit_code=ExitCode.FAILED, hint=f"the database was dropped; fix the cause and run odoo-ai up {stack.env}")
    return modules


def _purge_scope(stack: StackConfig) -> dict[str, Any]:
    """What the purge guard needs besides the state root and the project (the user's home
    is the Docker host's: the connector knows it)."""
    return {"repo_root": stack.repo_root, "env": stack.env}


def purge_listing(stack: StackConfig, host: Host) -> PurgeListing | None:
    """What `down --purge` would delete (None: the state root does not exist), read on the
    Docker host's disk; a refusal (ConfigError, exit 2, nothing changed) unless the state
    root is a real directory, a path a stack may own, and carries this project's marker."""
    parts = [("database", stack.db_dir), ("filestore", stack.data_dir),
             ("snapshots", stack.state_root / "snapshots"), ("logs", stack.log_dir)]
    return host.purge_listing(stack.state_root, stack.project, parts=parts, **_purge_scope(stack))


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
    answers = host.probe_http(base, paths)
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


def logs(stack: StackConfig, host: Host, services: list[str], *, follow: bool, tail: int | None) -> int:
    """The containers' logs; with -f they stream (over ssh too) until interrupted."""
    for service in services:
        if service not in plan.SERVICES:
            raise ConfigError(f"unknown service {service!r} (known: {', '.join(plan.SERVICES)})")
    require_rendered_on(stack, host)
    return host.run_attached(plan.logs(stack, services, follow=follow, tail=tail))


def compose_passthrough(stack: StackConfig, host: Host, args: list[str]) -> int:
    """`docker compose` with the stack's project, files and .env; its output is the user's
    (with a terminal on both ends over ssh when there is one here)."""
    require_rendered_on(stack, host)
    return host.run_attached(plan.compose(stack, *args))


def is_local_docker() -> bool:
    return not os.environ.get("DOCKER_HOST", "").startswith("ssh://")


def up(stack: StackConfig, host: Host, *, environ: Mapping[str, str], tag: str | None, tag_from_cli: bool,
       wait_timeout: float) -> dict[str, Any]:
    """Render the .env and start the stack, under the env's lock (the deploys' own), then
    wait for /web/health through the published port and the deploy's gate on every web
    container. On a remote host without --tag, a .env
    already rendered there (a deploy's, pinned by digest) is kept as it is."""
    root = stack.state_root
    check_claim(root, stack.project, host.read_marker)  # another project's: refused before writing
    host.mkdir(root)
    with host.lock(root / LOCK_FILE, command=f"up {stack.env}", timeout=LOCK_TIMEOUT):
        current = rendered_on(stack, host) if host.remote and not tag_from_cli else None
        if current is not None:
            rendered = {"dotenv": str(stack.dotenv_path), "written": False, "tag": current.get("ODOO_IMAGE_TAG"),
                        "host": _where(host), "note": "kept the .env rendered on the host (pass --tag to change it)"}
        else:
            rendered = render(stack, host, environ=environ, tag=tag, tag_from_cli=tag_from_cli,
                              allow_generate=not host.remote)
        for path in (stack.data_dir, stack.db_dir, stack.log_dir, root / "proxy", root / "snapshots"):
            host.mkdir(path)
        initialised = _init_database(stack, host)
        result = host.run(plan.up(stack), capture=False)
        if not result.ok:
            where = f" on {_where(host)}" if host.remote else ""
            raise CommandFailed(f"docker compose up failed for {stack.env}{where} (exit {result.returncode})",
                                hint=f"odoo-ai logs {stack.env}" + (" --host …" if host.remote else ""))
    url = health_url(stack)
    done = {"env": stack.env, "project": stack.project, "tag": rendered["tag"], "url": url,
            "initialised": initialised, **rendered}
    if wait_timeout <= 0:
        return {**done, "healthy": None}
    # a local stack: /web/health from here; a remote one: also /web/login, from the host
    paths = probe_paths(stack) if host.remote else ["/web/health"]
    deadline = time.monotonic() + wait_timeout
    while True:
        started = time.monotonic()
        answers = host.probe_http(base_url(stack), paths)
        ok = all((answers.get(p) or {}).get("status") == 200 for p in paths)
        if ok or time.monotonic() >= deadline:
            break
        host.sleep(max(0.0, 0.5 - (time.monotonic() - started)), "for /web/health")
    first = answers.get(paths[0]) or {}
    where = f" on {_where(host)}" if host.remote else ""
    hint = f"odoo-ai logs {stack.env} web" + (" --host …" if host.remote else "")
    if not ok:
        raise OdooAiError(f"{stack.env}: {url}{where} did not answer 200 within {wait_timeout:.0f}s "
                          f"(last: {first.get('status') or first.get('error')})", exit_code=ExitCode.FAILED, hint=hint)
    # /web/health answers before Odoo's bus does (its gevent process imports Odoo anew):
    # ready is what a deploy's gate checks, on every web container.
    last = _wait_web_gate(stack, host, deadline)
    if last is not None:
        raise OdooAiError(f"{stack.env}: the web did not pass the gate{where} within {wait_timeout:.0f}s "
                          f"(/web/login?db={stack.db_name} 200 and /websocket 101; last: {last})",
                          exit_code=ExitCode.FAILED, hint=hint)
    return {**done, "healthy": True, "health_ms": first.get("ms")}


def _wait_web_gate(stack: StackConfig, host: Host, deadline: float) -> str | None:
    """Until every running web container passes the deploy's gate probe (/web/health and
    /web/login?db= 200, /websocket 101, from inside it) or the deadline: None, or the last
    answer that was not a pass."""
    while True:
        found = host.run(dplan.web_container_ids(stack))
        webs = [cid for cid, _ in dplan.web_containers(found.stdout)] if found.ok else []
        last = None if webs else "no web container runs"
        for cid in webs:
            probe = host.run(dplan.gate_probe(cid, stack.db_name, wait=min(2.0, max(0.0, deadline - time.monotonic()))))
            if not probe.ok:
                last = probe.stdout.strip() or probe.tail(2) or f"probe exit {probe.returncode}"
                break
        if last is None or time.monotonic() >= deadline:
            return last
        host.sleep(0.5, "for the web's gate")


def down(
    stack: StackConfig,
    host: Host,
    *,
    volumes: bool,
    purge: bool = False,
    yes: bool = False,
    confirm: Callable[[str], bool | None] = ask_on_terminal,
    say: Callable[[str], None] = _say_stderr,
) -> dict[str, Any]:
    """Remove the stack's containers and networks; with purge, its state root too.

    A purge deletes only a real directory carrying this project's marker, checked on the
    Docker host's own disk (through the connector, over ssh with --host): it lists what it
    deletes with sizes (`say`: stderr), then asks (`confirm`, y/N on a terminal) unless
    `yes` (CLI --yes); without a terminal it needs `yes`. Any refusal, a declined question
    included, is a ConfigError (exit 2) before anything is stopped or deleted. The dry run
    lists and refuses the same way (it asks nothing), and deletes nothing."""
    where = f" on {_where(host)}" if host.remote else ""
    data: dict[str, Any] = {"env": stack.env, "project": stack.project, "removed": False, "purged": False,
                            **({"host": _where(host)} if host.remote else {})}
    listing = None
    if purge:
        listing = purge_listing(stack, host)
        if listing is None:
            say(f"nothing to purge: {stack.state_root} does not exist{where}")
        else:
            for line in listing.lines(dry_run=host.dry_run):
                say(line)
            if not (yes or host.dry_run):
                answer = confirm(f"Delete {listing.root}{where} and everything in it?")
                if answer is None:
                    raise ConfigError(f"refusing to delete {listing.root} without confirmation (no terminal to ask "
                                      "on): pass --yes; nothing stopped, nothing deleted")
                if not answer:
                    raise ConfigError(f"not confirmed: nothing stopped, nothing deleted ({listing.root} stays)")
    rendered = host.read_text(stack.dotenv_path) is not None
    if not rendered and listing is None:
        data["note"] = (f"no containers to remove: {stack.env} was never brought up{where} "
                        f"(no {stack.dotenv_path})")
        return data
    if rendered and host.remote:
        require_rendered_on(stack, host)
    with host.lock(stack.state_root / LOCK_FILE, command=f"down {stack.env}", timeout=LOCK_TIMEOUT):
        if rendered:
            result = host.run(plan.down(stack, volumes=volumes), capture=False)
            if not result.ok:
                raise CommandFailed(f"docker compose down failed for {stack.env}{where} (exit {result.returncode})")
            data["removed"] = True
        else:
            data["note"] = f"no containers to remove: {stack.env} was never brought up (no {stack.dotenv_path})"
        if listing is not None:
            data["purge"] = listing.as_dict()
            data["purged"] = host.remove_marked_tree(stack.state_root, stack.project, **_purge_scope(stack))
    return data


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
