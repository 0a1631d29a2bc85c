"""Use-case: health-gated, blue/green deploys and rollbacks of one stack.

    lock → recover a killed deploy → render .env.next → pull → inspect (pin digests)
    → snapshot (db + filestore) → module install/update in a one-off script-runner of
    the NEW image → start the new web BESIDE the old one (proxy pinned to the old) →
    gate (liveness, readiness, no pending module, every required module installed)
    → switch the proxy → drain and remove the old web → converge → release log → unlock.

Any failure before the switch leaves the old web serving on the old .env; if the
database may have changed (the update container started), the database and
filestore are restored from the snapshot first. A journal (journal.py), written
before every step that changes something, lets the next run undo what a killed one
left half done; SIGTERM, SIGINT and SIGHUP are turned into the same undo while this
process lives.

Every side effect goes through the connector (`host`: local, ssh or dry); the
decisions are the pure functions of policy.py.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from odoo_ai import releases
from odoo_ai.config.envfile import format_env, parse_env_text
from odoo_ai.config.render import APP_ENV, build_dotenv, load_generated
from odoo_ai.config.stack import LOG_MOUNT, StackConfig, required_modules, validate_tag
from odoo_ai.config.stateroot import check_claim, claim_state_root
from odoo_ai.deploy import journal
from odoo_ai.deploy.journal import JOURNAL, Deployment, PhaseRecord, now
from odoo_ai.deploy.policy import (
    HEX,
    DbState,
    UpdatePlan,
    answers_500,
    gate_rows,
    kept_databases_to_prune,
    kept_name,
    known_addons_hash,
    parse_db_state,
    parse_image_addons,
    pick_rollback,
    plan_update,
    repository_of,
    running,
    services_ready,
    snapshots_to_prune,
    state_text,
    update_retry_reason,
)
from odoo_ai.deploy.record import Release, modules_view
from odoo_ai.deploy.settings import DeploySettings
from odoo_ai.deploy.swap import paused_swap, wait_idle
from odoo_ai.errors import ConfigError, ExitCode, OdooAiError
from odoo_ai.excerpt import failure_excerpt
from odoo_ai.hosts import Host
from odoo_ai.plan import deploy as plan
from odoo_ai.plan import images as images_plan
from odoo_ai.plan.compose import docker_binary
from odoo_ai.registry import registry_settings, split_image
from odoo_ai.runners.base import Command, CommandTimedOut, Result

NEXT_ENV = ".env.next"
# From the drain on, the new release serves and the previous web is going: a failure or a
# kill there finishes or keeps the release, never undoes its data.
SERVING_PHASES = ("drain", "converge", "record")
MAINTENANCE = "<maintenance>"  # _write_upstream's target for the maintenance page
# Probes in a row that must answer HTTP 500 before the gate gives up at once: Odoo
# answers 500 to every request when the database's registry cannot load.
GATE_ERROR_PROBES = 3
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Fault injection (tests, drills): a deploy whose phase is named here stops at the start of
# that phase, journal written, for FAULT_HOLD_SECONDS, so that a kill lands in that phase.
FAULT_HOLD_ENV = "ODOO_AI_FAULT_HOLD_PHASE"
FAULT_HOLD_SECONDS = 600


class DeployFailed(OdooAiError):
    exit_code = ExitCode.FAILED

    def __init__(self, phase: str, message: str, *, output: str = "", hint: str | None = None,
                 report: dict[str, Any] | None = None):
        super().__init__(f"deploy failed in phase {phase}: {message}", hint=hint)
        self.phase = phase
        self.output = output
        self.report = report or {}


def _serving(dep: Deployment) -> bool:
    """Did the deploy stop (or fail) once its new release was serving?"""
    return dep.phase in SERVING_PHASES and bool(dep.new_container)


class Interrupted(KeyboardInterrupt):
    """SIGTERM/SIGINT/SIGHUP during a deploy (e.g. a cancelled CI job)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signame = signal.Signals(signum).name


@contextmanager
def _signals(mode: str) -> Iterator[None]:
    """`raise`: the handled signals raise Interrupted (so the deploy undoes itself);
    `ignore`: they are ignored (while undoing: a second Ctrl-C must not leave it half
    done; SIGKILL still can, and the journal covers that)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    previous = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
    for sig in HANDLED_SIGNALS:
        signal.signal(sig, _raise if mode == "raise" else signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Deployer:
    update_how = ""  # how the update runs, said after its reason (an engine's own words)

    def __init__(self, stack: StackConfig, host: Host, *, settings: DeploySettings,
                 environ: Mapping[str, str], progress: Callable[[str], None] | None = None):
        self.stack = stack
        self.host = host
        self._next_values: dict[str, str] = {}
        # The .env Compose reads for commands on running services: the candidate until it
        # is committed (a first deploy has no other), then the real one.
        self._active_env: Path = stack.dotenv_path
        self.settings = settings
        self.environ = environ
        self.progress = progress or (lambda _line: None)
        self.next_env = stack.state_root / NEXT_ENV
        self.journal_path = stack.state_root / JOURNAL
        self.log_path = stack.state_root / releases.RELEASE_LOG
        self.upstream_path = stack.state_root / "proxy" / plan.UPSTREAM_CONF
        self.odoo_log = stack.log_dir / PurePosixPath(stack.logfile).relative_to(LOG_MOUNT)
        self._history: list[dict[str, Any]] = []
        self._image_sums: dict[str, str] | None = None
        self._proxy_id: str | None = None  # the running proxy container, once known
        self._db_id: str | None = None  # the running db container, once known
        self._webs_before: list[str] = []  # the web containers serving when the deploy began
        self._inspected: dict[str, Result] = {}  # image ref -> its inspect, when no pull came after
        self._old_proxy_workers: set[str] = set()
        self._proxy_worker_uid: str | None = None  # nginx's workers' user: the drain's check runs as it
        self._names: dict[str, str] = {}  # container id -> name, from `docker ps`

    # ------------------------------------------------------------ helpers
    def _run(self, command: Command, *, capture: bool = True) -> Result:
        return self.host.run(command, capture=capture)

    def _must(self, command: Command, phase: str, what: str) -> Result:
        result = self._run(command)
        if not result.ok:
            raise DeployFailed(phase, f"{what} (exit {result.returncode})", output=result.tail())
        return result

    def _phase(self, dep: Deployment, name: str):
        deployer = self

        class _Timer:
            def __enter__(self_inner):
                dep.phase = name
                deployer._save_journal(dep)
                self_inner.start = time.monotonic()
                deployer.progress(f"… {name}")
                if os.environ.get(FAULT_HOLD_ENV) == name:  # fault injection: wait here to be killed
                    deployer.host.sleep(FAULT_HOLD_SECONDS, f"fault injection: held in phase {name}")
                return self_inner

            def __exit__(self_inner, exc_type, exc, tb):
                seconds = round(time.monotonic() - self_inner.start, 3)
                ok = exc_type is None
                detail = "" if ok else (getattr(exc, "message", None) or str(exc) or exc_type.__name__)
                dep.phases.append(PhaseRecord(name, seconds, ok, detail))
                deployer.progress(f"{'✓' if ok else '✗'} {name} {seconds:.1f}s" + ("" if ok else f": {detail}"))
                return False

        return _Timer()

    def _save_journal(self, dep: Deployment) -> None:
        self.host.write_private(self.journal_path, journal.dump(dep))

    def _write_upstream(self, container: str | None, *, note_workers: bool = False) -> None:
        """Pin the proxy to one container, to the maintenance page (MAINTENANCE), or (None)
        back to the `web` alias; nginx reloads gracefully. With `note_workers`, nginx's
        workers before the reload (listed by the same exec: their pids and user) are noted
        for the drain, which waits for them."""
        if container is None:
            self.host.unlink(self.upstream_path)
        else:  # the temp file of the atomic write never ends in .conf, so nginx never includes it
            conf = plan.MAINTENANCE_CONF if container == MAINTENANCE else plan.upstream_conf(container)
            self.host.write_private(self.upstream_path, conf)
        if self._proxy_id:
            command = plan.proxy_switch(self._proxy_id) if note_workers else plan.proxy_reload_in(self._proxy_id)
        else:
            command = plan.proxy_reload(self.stack, env_file=self._active_env)
        result = self._run(command)
        if not result.ok:
            raise OdooAiError(f"proxy reload failed: {result.tail(3)}")
        if note_workers:
            pids, self._proxy_worker_uid = plan.proxy_worker_rows(result.stdout) if self._proxy_id else ([], None)
            self._old_proxy_workers = set(pids)

    def _web_ids(self) -> list[str]:
        result = self._run(plan.web_container_ids(self.stack))
        found = plan.web_containers(result.stdout) if result.ok else []
        for container_id, name in found:
            self._note_name(container_id, name)
        return [container_id for container_id, _ in found]

    def _note_name(self, container_id: str, name: str) -> None:
        if name:
            self._names[container_id] = name.lstrip("/")

    def _container_name(self, container_id: str) -> str:
        """The name the proxy reaches the container by: known from `docker ps`, else inspected."""
        if container_id in self._names:
            return self._names[container_id]
        result = self._run(plan.container_state(container_id))
        try:
            return json.loads(result.stdout)["name"].lstrip("/")
        except (ValueError, KeyError):
            return container_id

    def _odoo_log_since(self, offset: int) -> str:
        """What Odoo's log file (the web's; script-runner logs to its output) gained since
        `offset`, cut to the cause and the last lines."""
        return failure_excerpt(self.host.read_from(self.odoo_log, offset))

    # ------------------------------------------------------------ steps
    def _render_next(self, dep: Deployment, tag: str, pinned: Mapping[str, str] | None) -> None:
        mapping, app_env_text = self._candidate(tag)
        # The first render marks the state root as this project's; another project's marker is refused.
        claim_state_root(self.stack.state_root, self.stack.project, self.stack.env,
                         read_text=self.host.read_text, write=self.host.write_private)
        self._next_values = mapping
        app_env = self.stack.state_root / APP_ENV
        self.host.copy(app_env, app_env.with_name(APP_ENV + ".prev"))
        self.host.write_private(app_env, app_env_text)
        self._rewrite_next(pinned or {})
        self._active_env = self.next_env
        dep.images = {"web": mapping["ODOO_WEB_IMAGE"], "script-runner": mapping["ODOO_SCRIPT_RUNNER_IMAGE"]}

    def _candidate(self, tag: str) -> tuple[dict[str, str], str]:
        """The candidate .env mapping and odoo.env text; ConfigError (exit 2) before any write
        when a secret is missing or a value cannot be carried."""
        # A remote host's uid is unknown here: Odoo runs as the image's default (1000) unless set.
        ids = {"uid": 1000, "gid": 1000} if self.host.remote else {}
        generated = {} if self.host.remote else load_generated(self.stack)
        mapping, _, app_env_text = build_dotenv(self.stack, self.environ, tag=tag, tag_from_cli=True,
                                                generated=generated, **ids)
        return mapping, app_env_text

    def _rewrite_next(self, refs: Mapping[str, str]) -> None:
        for target, key in (("web", "ODOO_WEB_IMAGE"), ("script-runner", "ODOO_SCRIPT_RUNNER_IMAGE")):
            if refs.get(target):
                self._next_values[key] = refs[target]
        self.host.write_private(self.next_env, format_env(
            self._next_values, header="Candidate .env of a deploy in progress (mode 0600)."))

    def _registry_login(self) -> Path | None:
        """With registry credentials in the environment, log the host's docker in
        for this deploy only: a private DOCKER_CONFIG, the password on stdin."""
        if split_image(self.stack.image)[0] is None:
            return None
        try:
            settings = registry_settings(self.stack, self.environ)
        except ConfigError:
            return None
        if settings.credentials is None:
            return None
        config_dir = self.host.make_private_dir()
        creds = settings.credentials
        result = self._run(images_plan.login(docker_binary(), settings.host, creds.user, creds.password,
                                             config_dir=str(config_dir)))
        if not result.ok:
            self.host.remove_tree(config_dir)
            return None  # the pull then fails, and images already on the host may still do
        return config_dir

    def _local_digests(self, ref: str) -> set[str]:
        """What names the content of the image `ref` on this host: its ID and its registry
        digests for that repository (empty: the host does not have it)."""
        result = self._run(plan.image_inspect(ref))
        if not result.ok:
            return set()
        self._inspected[ref] = result  # no pull follows: what `_inspect` would read again
        info = json.loads(result.stdout)
        repo = repository_of(ref)
        return {info.get("id"), *(d.split("@", 1)[1] for d in info.get("repo_digests") or []
                                  if d.split("@")[0] == repo)} - {None}

    def _pull(self, dep: Deployment, known: Mapping[str, str]) -> None:
        by_digest = all("@sha256:" in ref for ref in dep.images.values())
        rollback = bool(known) and set(known) >= set(dep.images)
        # What the host has of each image, inspected at once (no pull: see below).
        local = dict(zip(dep.images, self.host.together(
            *(functools.partial(self._local_digests, ref) for ref in dep.images.values())), strict=True)) \
            if by_digest or rollback else {}
        if by_digest and all(local.values()):
            dep.notes.append("images pinned by digest are already on the host: no pull")
            return  # a digest names one content: what is here is exactly what was asked for
        if rollback and all(known[target] in local[target] for target in dep.images):
            # a rollback: the host still has exactly the recorded content under these names
            dep.notes.append("the release's images (same digests) are still on the host: no pull")
            return
        self._inspected.clear()  # a pull may change what a tag names
        config_dir = self._registry_login()
        command = plan.pull(self.stack, self.next_env)
        if config_dir is not None:
            command = dataclasses.replace(command, env={**command.env, "DOCKER_CONFIG": str(config_dir)})
        try:
            result = self._run(command)
        finally:
            if config_dir is not None:
                self.host.remove_tree(config_dir)
        if result.ok:
            return
        missing = [ref for ref in dep.images.values() if not self._run(plan.image_inspect(ref)).ok]
        if missing:
            raise DeployFailed("pull", f"image {missing[0]} is not in the registry nor on this host",
                               output=result.tail(), hint="check the tag: odoo-ai releases ENV lists known ones")
        dep.notes.append("registry unreachable or image not pushed: using the images already on the host")

    def _inspect(self, dep: Deployment) -> None:
        pinned: dict[str, str] = {}
        for target, ref in dep.images.items():
            result = self._inspected.pop(ref, None) or \
                self._must(plan.image_inspect(ref), "inspect", f"docker image inspect {ref}")
            info = json.loads(result.stdout)
            repo = repository_of(ref)
            digest = next((d.split("@", 1)[1] for d in info.get("repo_digests") or [] if d.split("@")[0] == repo), None)
            dep.digests[target] = digest or info["id"]
            if digest:
                pinned[target] = f"{repo}@{digest}"  # DESIGN fact 6: name@sha256, never tag@sha256
            labels = info.get("labels") or {}
            dep.commit = dep.commit or labels.get("org.opencontainers.image.revision") or None
        if pinned:
            self._rewrite_next(pinned)
            dep.images.update(pinned)
        self._inspect_addons(dep)

    def _inspect_addons(self, dep: Deployment, *, cache: bool = True) -> None:
        """The image's addons hash and per-addon checksums: from the release log and the
        state root when the image was deployed here before, else read from the image."""
        dep.addons_hash = known_addons_hash(self._history, dep.digests.get("script-runner"))
        cached = self._cached_sums(dep.addons_hash)
        if dep.addons_hash is None or cached is None:  # an image never deployed here: read what it carries
            result = self._run(plan.read_addons_hash(dep.images["script-runner"]))
            dep.addons_hash, cached = parse_image_addons(result.stdout) if result.ok else (None, None)
            if cache and dep.addons_hash and HEX.match(dep.addons_hash) and cached is not None:
                self.host.write_private(self._sums_path(dep.addons_hash), json.dumps(cached, sort_keys=True))
        self._image_sums = cached

    def _sums_path(self, addons_hash: str) -> Path:
        return self.stack.state_root / "checksums" / f"{addons_hash}.json"

    def _cached_sums(self, addons_hash: str | None) -> dict[str, str] | None:
        """The per-addon checksums of an image read before (kept by its addons hash)."""
        if not addons_hash or not HEX.match(addons_hash):
            return None
        text = self.host.read_text(self._sums_path(addons_hash))
        if text is None:
            return None
        _, sums = parse_image_addons(f"{addons_hash}\n---\n{text}")
        return sums

    def _record_checksums(self, dep: Deployment, *, replace: bool) -> None:
        """After a successful update: the database records the checksum of each installed
        module (what the next deploy compares the new image's checksums with)."""
        if self._image_sums is None:
            return
        result = self._run(plan.record_checksums(self.stack, self._image_sums, replace=replace,
                                                 env_file=self.next_env))
        if not result.ok:
            dep.notes.append(f"could not record the module checksums: {result.tail(1)}")

    def _ensure_services(self) -> None:
        # db and proxy must run for snapshots, the update and the switch; `--no-recreate`
        # keeps a running proxy and db untouched (converge applies their changes).
        result = self._run(plan.ensure_services(self.stack, self.next_env))
        if not result.ok:
            raise DeployFailed("services", "db/proxy did not start", output=result.tail())

    def _containers(self) -> list[dict[str, str]]:
        """The project's containers (one `docker ps`): id, service, state, status, oneoff."""
        result = self._run(plan.project_containers(self.stack))
        rows = plan.container_rows(result.stdout) if result.ok else []
        for row in rows:
            self._note_name(row["id"], row.get("name", ""))
        return rows

    def _db_state(self, required: list[str], phase: str) -> DbState:
        """(does the database exist, {required module: state} of those not installed)."""
        result = self._must(plan.db_state(self.stack, required, self.next_env, container=self._db_id), phase,
                            "reading the database")
        state = parse_db_state(result.stdout)
        if state is None:
            raise DeployFailed(phase, f"unexpected answer from psql: {result.stdout.strip()[:200]!r}")
        return state

    def _snapshot(self, dep: Deployment) -> None:
        snapshot_id = f"{dep.tag}-{dep.started.replace(':', '').replace('-', '')}"
        self.host.mkdir(self.stack.state_root / "snapshots")
        clock = self._run(plan.db_now(self.stack, self._active_env))
        dep.snapshot_time = clock.stdout.strip() or None if clock.ok else None
        self._must(plan.snapshot_db(self.stack, snapshot_id, self._active_env), "snapshot", "pg_dump")
        self._must(plan.snapshot_filestore(self.stack, snapshot_id, self._active_env), "snapshot", "filestore copy")
        dep.snapshot = snapshot_id
        self._save_journal(dep)

    def restore_snapshot(self, snapshot_id: str, *, keep_as: str | None = None,
                         before_swap: Callable[[], None] | None = None) -> None:
        """Bring the database and filestore back to `snapshot_id`: restored beside the live
        ones while the web serves, then (after `before_swap`) swapped in by rename while the
        web containers left are paused at an instant none of their requests is inside the
        database (deploy/swap.py), so requests wait a moment instead of failing (nginx holds
        them). The replaced database is dropped, or kept as `keep_as` with its
        filestore beside it."""
        stamp = f"{int(time.time())}_{os.getpid()}"
        restored = f"{self.stack.db_name}__restore_{stamp}"[-63:]
        replaced = keep_as or f"{self.stack.db_name}__replaced_{stamp}"[-63:]
        env_file = self._active_env
        for command in plan.restore_db_into(self.stack, snapshot_id, restored, env_file):
            result = self._run(command)
            if not result.ok:
                self._run(plan.drop_db(self.stack, restored, env_file))
                raise OdooAiError(f"restoring snapshot {snapshot_id} failed: {result.tail(3)}")
        started = self._run(plan.tools_start(self.stack, env_file))
        tools = started.stdout.split()[-1] if started.ok and started.stdout.split() else None
        try:
            result = self._run(plan.prepare_filestore(self.stack, snapshot_id, tools)) if tools else \
                Result(1, "", started.tail(3) or "the tools container did not start")
            if not result.ok:
                self._run(plan.drop_db(self.stack, restored, env_file))
                raise OdooAiError(f"restoring the filestore of {snapshot_id} failed: {result.tail(3)}")
            if before_swap:
                before_swap()
            with paused_swap(self._run, self.host.sleep, self._web_ids(),
                             lambda force: plan.swap_restored_db(self.stack, restored, replaced, env_file,
                                                                 force=force), proxy=self._proxy_id) as swap:
                if not swap.ok:
                    raise OdooAiError(f"swapping in snapshot {snapshot_id} failed: {swap.tail(3)}")
                result = self._run(plan.swap_filestore(self.stack, tools, keep_as=keep_as))
                if not result.ok:
                    raise OdooAiError(f"swapping in the filestore of {snapshot_id} failed: {result.tail(3)}")
        finally:
            if tools:
                self._run(plan.remove_container(tools))
        if not keep_as:
            self._run(plan.drop_db(self.stack, replaced, env_file))

    def _retire_web(self, dep: Deployment) -> None:
        """Before a rollback's restored data is swapped in: the proxy answers the maintenance
        page (503, Retry-After), the old web finishes what it had in flight and stops. Its
        code is not the restored data's (newer code on older tables fails): no release
        serves from the swap to the switch."""
        dep.maintenance = dep.web_stopped = True
        self._save_journal(dep)
        dep.old_containers = list(self._webs_before)
        self._write_upstream(MAINTENANCE, note_workers=True)
        self._drain(dep)
        dep.old_containers = self._webs_before = []
        self._save_journal(dep)
        dep.notes.append("maintenance page from the data swap to the switch: the old web's code does not run on "
                         "the restored data")

    def _user_writes(self, database: str, since: str | None) -> str | None:
        """What users wrote through the old web after the snapshot (rows whose write_date is
        later and whose write_uid is not Odoo's superuser, which the update runs as), as a
        sentence; None when nothing (or when it cannot be told)."""
        if not since:
            return None
        result = self._run(plan.user_writes(self.stack, database, since, self._active_env))
        rows = [line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line] if result.ok else []
        counts = {table: int(n) for table, n in rows if n.strip().isdigit() and int(n) > 0}
        if not counts:
            return None
        tables = ", ".join(f"{table} ({n})" for table, n in sorted(counts.items()))
        return (f"users wrote {sum(counts.values())} row(s) through the old web after the snapshot "
                f"(write_date > {since} UTC): {tables}")

    def _unpause_web(self) -> list[str]:
        """A run killed during a swap leaves the web paused: unpause it (idempotent)."""
        result = self._run(plan.paused_containers(self.stack))
        paused = result.stdout.split() if result.ok else []
        if paused:
            self._run(plan.unpause(paused))
            return [f"unpaused {len(paused)} web container(s) a killed run had paused"]
        return []

    def _remove_update_containers(self) -> list[str]:
        """Stop and remove every module update container of the stack: a killed CLI's
        `compose run` leaves its container running, changing the database on its own."""
        result = self._run(plan.update_containers(self.stack))
        ids = result.stdout.split() if result.ok else []
        for cid in ids:
            self._run(plan.remove_container(cid))
        return [f"stopped and removed {len(ids)} module update container(s)"] if ids else []

    def _update(self, dep: Deployment, step: UpdatePlan) -> None:
        if self.settings.web_during_update == "stop" and not dep.db_created:
            self._run(plan.stop_web(self.stack, self._active_env))
            dep.web_stopped = True
        elif self.settings.web_during_update == "maintenance" and not dep.db_created:
            dep.maintenance = True
            self._save_journal(dep)
            self._write_upstream(MAINTENANCE)  # nothing can be written while the schema changes
        attempts = 1 + self.settings.update_retries
        held: list[str] = []
        try:
            for attempt in range(1, attempts + 1):
                name = f"{self.stack.project}-update-{dep.deploy_id}-{attempt}"
                # Journal first: from here on the database may change, even if this process dies.
                dep.db_may_change = True
                dep.update_container = name
                self._save_journal(dep)
                command = plan.module_update(self.stack, self.next_env, install=list(step.install),
                                             update=step.update, name=name, deploy_id=dep.deploy_id)
                result, blockers = self._run_watched(command, name)
                if result.ok:
                    dep.updated = True
                    return
                output = result.stdout + result.stderr
                if attempt < attempts and blockers:
                    # The live web held a lock the update needed: hold the web (paused, its
                    # requests wait in nginx), end the blocking sessions, and try once more.
                    dep.notes.append(f"update waited over {self.settings.lock_wait:g}s on a lock held by "
                                     f"session(s) {', '.join(map(str, blockers))}: stopped it; retrying with the "
                                     "web held")
                    held = [cid for cid in self._web_ids() if cid not in held]
                    if held:
                        self._run(plan.pause(held))
                    self._run(plan.terminate_backends(self.stack, blockers, self.next_env))
                    continue
                retry = update_retry_reason(output) if attempt < attempts else None
                if retry:
                    dep.notes.append(f"update {retry} (attempt {attempt}), retrying")
                    self.host.sleep(2, "before retrying the update")
                    continue
                restored = "the database was created by this deploy and is dropped" if dep.db_created else \
                    "the database and filestore are restored from the snapshot"
                why = f" after waiting on locks held by session(s) {', '.join(map(str, blockers))}" if blockers else ""
                raise DeployFailed("update", f"odoo-bin {step.describe()} exited {result.returncode}{why}",
                                   output=failure_excerpt(output), hint=restored)
        finally:
            if held:
                self._run(plan.unpause(held))

    def _run_watched(self, command: Command, container: str) -> tuple[Result, list[int]]:
        """Run the update while watching its database sessions: one that waits on a lock
        for longer than ODOO_DEPLOY_LOCK_WAIT (the live web's cron or a request holding a
        row, DESIGN fact 11) gets the update stopped instead of hanging the deploy and the
        users behind it. Returns the result and the blocking sessions (empty: no wait)."""
        box: dict[str, Result] = {}
        worker = threading.Thread(target=lambda: box.setdefault("result", self._run(command)), daemon=True)
        worker.start()
        addresses: list[str] = []
        blockers: list[int] = []
        while worker.is_alive():
            worker.join(1.0)
            if not worker.is_alive():
                break
            if not addresses:
                found = self._run(plan.container_addresses(container))
                addresses = found.stdout.split() if found.ok else []
                continue
            waits = self._run(plan.lock_waits(self.stack, addresses, self.next_env))
            for line in waits.stdout.splitlines() if waits.ok else []:
                parts = line.split("\t")
                if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) >= self.settings.lock_wait:
                    blockers = sorted({int(p) for p in parts[2].split(",") if p.isdigit()})
            if blockers:
                self._run(plan.remove_container(container))
                worker.join()
                break
        worker.join()
        return box.get("result", Result(1, "", "the update did not return")), blockers

    def _start_new_web(self, dep: Deployment) -> None:
        if dep.old_containers and not dep.web_stopped and not dep.maintenance:
            self._write_upstream(self._container_name(dep.old_containers[0]))
        if dep.web_stopped:
            for cid in dep.old_containers:
                self._run(plan.remove_container(cid))
            dep.old_containers = []
        dep.log_offset = self.host.size(self.odoo_log)
        self._save_journal(dep)
        result = self._run(plan.start_web_beside(self.stack, self.next_env, len(dep.old_containers) + 1))
        new = [cid for cid in self._web_ids() if cid not in dep.old_containers]
        if not result.ok or not new:
            if new:
                dep.new_container = new[0]
            raise DeployFailed("start", "the new web container did not start", output=result.tail())
        dep.new_container = new[0]
        self._save_journal(dep)

    def _gate(self, dep: Deployment) -> None:
        assert dep.new_container
        deadline = time.monotonic() + self.settings.gate_timeout
        last = "no answer yet"
        errors = 0
        required = required_modules(self.stack)
        while True:
            state = self._run(plan.container_state(dep.new_container))
            try:
                info = json.loads(state.stdout)
            except ValueError:
                info = {"status": "missing", "restarts": 0}
            if info["status"] in ("exited", "dead", "missing") or info.get("restarts", 0) > 0:
                logs = self._run(plan.container_logs(dep.new_container))
                output = self._odoo_log_since(dep.log_offset) or failure_excerpt(logs.stdout + logs.stderr)
                raise DeployFailed("gate", f"the new web container crashed ({info['status']}, exit "
                                   f"{info.get('exit')}, restarts {info.get('restarts')})", output=output)
            probe = self._run(plan.gate_probe(dep.new_container, self.stack.db_name,
                                              wait=min(self.settings.gate_interval * 5, deadline - time.monotonic())))
            if probe.ok:
                errors = 0
                check = self._run(plan.gate_modules(self.stack, required, self.next_env, container=self._db_id))
                pending, missing = gate_rows(check.stdout) if check.ok else (None, {})
                if pending == 0 and not missing:
                    return
                if pending == 0:
                    raise DeployFailed(
                        "gate", "required module(s) not installed: "
                        + ", ".join(f"{name} ({state_text(st)})" for name, st in sorted(missing.items())),
                        hint="a module listed in ODOO_INSTALL / x-odoo-ai.install (or ODOO_UPDATE) must be in "
                             "the image's addons path and install cleanly")
                last = f"{pending} module(s) pending (to upgrade/install/remove)" if check.ok \
                    else f"module check failed: {check.tail(2)}"
            else:
                last = probe.stdout.strip() or probe.tail(2) or f"probe exit {probe.returncode}"
                errors = errors + 1 if answers_500(probe.stdout) else 0
                if errors >= GATE_ERROR_PROBES:
                    raise DeployFailed(
                        "gate", f"the new web answers HTTP 500 ({last}, {errors} probes in a row): "
                        "Odoo cannot serve the database", output=self._odoo_log_since(dep.log_offset),
                        hint="the output shows the first error Odoo logged (e.g. an addon that fails to import)")
            if time.monotonic() + self.settings.gate_interval > deadline:
                raise DeployFailed(
                    "gate",
                    f"timed out after {self.settings.gate_timeout:.0f}s waiting for /web/health and "
                    f"/web/login?db={self.stack.db_name} to answer 200, /websocket 101, with no pending module "
                    f"(last: {last})",
                    output=self._odoo_log_since(dep.log_offset),
                    hint="raise ODOO_DEPLOY_GATE_TIMEOUT if Odoo needs longer to boot",
                )
            self.host.sleep(self.settings.gate_interval, "gate: next probe")

    def _switch(self, dep: Deployment) -> None:
        assert dep.new_container
        # nginx's workers of the old configuration (pinned to the old web) finish what they
        # accepted after the reload: the drain waits for them to be gone.
        self._write_upstream(self._container_name(dep.new_container), note_workers=True)

    def _drain(self, dep: Deployment) -> None:
        """The old web keeps serving what it had in flight: wait until nginx's workers of the
        old configuration are gone (a worker exits once what it proxied is answered), or, when
        they cannot be known, until the old web has no HTTP request left (nginx opens one
        connection per request); at most ODOO_DEPLOY_DRAIN_SECONDS."""
        deadline = time.monotonic() + self.settings.drain_seconds
        drained = False
        if self._old_proxy_workers and self._proxy_id:  # one exec waits in the proxy
            gone = self._run(plan.proxy_workers_gone(self._proxy_id, sorted(self._old_proxy_workers),
                                                     self.settings.drain_seconds, user=self._proxy_worker_uid))
            drained = gone.ok and gone.stdout.strip() == "gone"
        if not drained:
            wait_idle(self._run, self.host.sleep, dep.old_containers, deadline, 0.1, "drain: the old web")
        for cid in dep.old_containers:
            self._stop(cid)

    def _stop(self, container: str) -> None:
        """`docker stop`, with Odoo's prefork workers woken if they slept through the signal
        (plan.WAKE_WORKERS), killed after the stop grace (30 s, as `docker stop`); then removed.
        Once the prefork master has reaped its last worker it holds nothing: its listening
        socket closed at SIGTERM, its database connections before it forked the workers;
        what is left is Python's exit (0.4 s for the trimmed Odoo 18, more with a big
        registry): the container is removed then, without waiting for it."""
        self._run(plan.signal_container(container, "TERM"))

        def wake() -> bool:
            woke = self._run(plan.wake_workers(container))
            # removed here, or (the removal failed too) after the wait below
            return woke.ok and woke.stdout.split()[-1:] == ["gone"] and \
                self._run(plan.remove_container(container)).ok

        def exited() -> bool:
            try:
                self._run(plan.wait_container(container, self.settings.stop_grace))
            except CommandTimedOut:
                return False
            return True

        removed, stopped = self.host.together(wake, exited)
        if not stopped:
            self.progress(f"  {container[:12]} did not stop within {self.settings.stop_grace}s: killed")
        if not removed:
            self._run(plan.remove_container(container))  # --force: SIGKILL for what is left

    def _commit_env(self) -> None:
        self.host.replace(self.next_env, self.stack.dotenv_path)
        self._active_env = self.stack.dotenv_path
        self.host.unlink(self.stack.state_root / (APP_ENV + ".prev"))

    def _converge(self, dep: Deployment, hashes: Result | None = None) -> None:
        _, converged = self.host.together(lambda: self._write_upstream(None),
                                          lambda: self._converged(dep.new_container, hashes))
        if converged:
            dep.notes.append("converge: every service already runs its configuration")
            return
        result = self._run(plan.converge(self.stack))
        if not result.ok:
            raise DeployFailed("converge", "docker compose up --remove-orphans failed", output=result.tail())
        now = self._web_ids()
        if dep.new_container and not now:  # a listing that failed is asked again before it counts
            self.host.sleep(1.0, "converge: no web container listed")
            now = self._web_ids()
        if dep.new_container and dep.new_container not in now:
            # Compose replaced (or lost) the web the gate passed; the proxy follows `web`
            # already: the one serving now must pass the gate too before this is a success.
            if not now:
                raise DeployFailed("converge", "no web container runs after `docker compose up --remove-orphans`",
                                   output=result.tail())
            dep.notes.append("compose recreated web while converging: the new one passed the gate")
            dep.new_container = now[0]
            self._save_journal(dep)
            self._gate(dep)

    def _converged(self, new_web: str | None = None, hashes: Result | None = None) -> bool:
        """Does every active service run exactly one container of its current configuration
        (Compose's config hash: `hashes`, else read now) and no container of a service the
        files no longer have? Then `compose up --remove-orphans` would change nothing: skip its ~1 s."""
        hashes = hashes or self._run(plan.config_hashes(self.stack))
        wanted = dict(line.split(None, 1) for line in hashes.stdout.splitlines() if len(line.split()) == 2) \
            if hashes.ok else {}
        if not wanted:
            return False
        running_now = [c for c in self._containers() if c.get("oneoff") != "True"]
        for service, digest in wanted.items():
            mine = [c for c in running_now if c.get("service") == service]
            if len(mine) != 1 or mine[0].get("state") != "running":
                return False
            # `config --hash` leaves out what env_file brings in, `up` does not (Compose 2.x):
            # the web this deploy started from the committed files is current by construction.
            if mine[0].get("hash") != digest and not (service == "web" and new_web and mine[0].get("id") == new_web):
                return False
        return all(c.get("service") in wanted for c in running_now)

    # ------------------------------------------------------------ rollback of a failed attempt
    def _undo(self, dep: Deployment) -> list[str]:
        """Put the previous release back: old web serving on the old .env, data restored."""
        # No orphan first: an update container still running would keep changing the data.
        done: list[str] = self._remove_update_containers()
        done += self._unpause_web()
        if dep.phase in ("start", "gate", "switch"):
            # Every web container that was not serving before this deploy is new (a
            # killed deploy may not have recorded the one it started).
            for cid in self._web_ids():
                if cid not in dep.old_containers:
                    self._run(plan.remove_container(cid))
                    done.append("removed the new web container")
        for cid in self._oneoff_ids():
            self._run(plan.remove_container(cid))
        if dep.db_may_change:
            done += self._undo_data(dep)
        done += self._drop_replaced(dep)
        self._active_env = self.stack.dotenv_path
        if self.host.read_text(self.stack.dotenv_path) is not None:
            if not self._web_ids():
                result = self._run(plan.restart_web(self.stack))
                if result.ok:
                    done.append("restarted the previous web")
            try:
                self._write_upstream(None)
            except OdooAiError:
                pass
        else:
            # A first deploy failed: there is no previous release, so take down what this
            # one started (db, proxy) while its .env still exists; the data stays on disk.
            self.host.unlink(self.upstream_path)
            if self.host.read_text(self.next_env) is not None:
                result = self._run(plan.take_down(self.stack, self.next_env))
                if result.ok:
                    done.append("removed the services this first deploy had started")
        self.host.unlink(self.next_env)
        prev = self.stack.state_root / (APP_ENV + ".prev")
        if self.host.read_text(prev) is not None:
            self.host.replace(prev, self.stack.state_root / APP_ENV)
        return done

    def _finish(self, dep: Deployment) -> list[str]:
        """The new release was already serving when the deploy stopped (killed, or a signal):
        finish it instead of undoing it — the previous web drained and stopped, the .env
        committed, the proxy unpinned, the stack converged."""
        done = self._remove_update_containers() + self._unpause_web()
        self._drain(dep)
        if self.host.read_text(self.next_env) is not None:
            self._commit_env()
        self._write_upstream(None)
        self._run(plan.converge(self.stack))
        return done + self._drop_replaced(dep)

    def _keep_serving(self, dep: Deployment) -> list[str]:
        """A failure once the new release serves (drain, converge): the previous web is gone
        or going and the data is the new release's, so undoing the data would put newer
        code on older data. What the deploy left is cleaned up; the release stays."""
        done: list[str] = self._remove_update_containers()
        done += self._unpause_web()
        for cid in self._oneoff_ids():
            self._run(plan.remove_container(cid))
        alive = self._web_ids()
        for cid in [c for c in dep.old_containers if c in alive]:  # its older code must not meet the new data
            self._stop(cid)
            done.append("stopped the previous web")
        if self.host.read_text(self.next_env) is not None:
            self._commit_env()
        try:
            self._write_upstream(None)
        except OdooAiError:
            pass
        return [*done, f"kept {dep.tag} serving with its data: the previous release's web was already replaced"]

    def _undo_data(self, dep: Deployment) -> list[str]:
        """The database back as it was before this deploy changed it (both engines)."""
        done: list[str] = []
        if dep.db_created:
            self._run(plan.drop_db(self.stack, self.stack.db_name, self._active_env))
            done.append(f"dropped the database {self.stack.db_name} this deploy had started to create")
        elif dep.snapshot:
            kept = kept_name(self.stack.db_name, time.time())
            self.restore_snapshot(dep.snapshot, keep_as=kept)
            dep.kept_database = kept
            done.append(f"restored database and filestore from snapshot {dep.snapshot}")
            done.append(f"kept the database the failed update touched as {kept} (filestore: filestore/{kept})")
            writes = self._user_writes(kept, dep.snapshot_time)
            if writes:
                dep.warnings.append(f"{writes}: they are in {kept}, not in the restored database")
        else:
            done.append("WARNING: the database may have changed and no snapshot was taken")
        return done

    def _oneoff_ids(self) -> list[str]:
        result = self._run(plan.oneoff_containers(self.stack))
        return result.stdout.split() if result.ok else []

    def recover(self) -> str | None:
        """Undo what a killed deploy left behind (found by its journal)."""
        text = self.host.read_text(self.journal_path)
        if text is None:
            return None
        try:
            dep = journal.load(text)
        except (ValueError, TypeError):
            self.host.unlink(self.journal_path)
            return "discarded an unreadable deploy journal"
        self.progress(f"! recovering from an interrupted {dep.kind} of {dep.tag} (stopped in phase {dep.phase})")
        if self.host.read_text(self.next_env) is not None:
            self._active_env = self.next_env
        if _serving(dep):
            done = self._finish(dep)
            outcome = "completed"
            status = "success"
        else:
            done = self._undo(dep)
            outcome = "rolled back"
            status = "failed"
        note = f"interrupted in phase {dep.phase}; {outcome} by the next run"
        dep.notes = [note, *done]
        release = Release.of(dep, status, duration=None, phase=dep.phase, note=note, undone=done)
        self.host.append_record(self.log_path, release.as_dict())
        self.host.unlink(self.journal_path)
        what = f"; {'; '.join(done)}" if done else ""
        return f"recovered an interrupted {dep.kind} of {dep.tag} ({outcome}; it stopped in phase {dep.phase}{what})"

    # ------------------------------------------------------------ the whole thing
    def run(self, tag: str, *, kind: str = "deploy", pinned: Mapping[str, str] | None = None,
            update: str = "auto", restore_snapshot: str | None = None,
            warnings: list[str] | None = None, expected_digests: Mapping[str, str] | None = None,
            known_digests: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Deploy (or roll back to) `tag`. `expected_digests` must match what is deployed
        (--digest); `known_digests` (a rollback's record) only spare the pull when the host
        still has images with exactly those digests."""
        validate_tag(tag)
        self._candidate(tag)  # refuse a missing secret or a bad value before the first write (exit 2)
        # ... and a state root that another stack owns (its marker), before the lock or the journal
        check_claim(self.stack.state_root, self.stack.project, self.host.read_text)
        started_clock = time.monotonic()
        self.host.mkdir(self.stack.state_root)
        with self.host.lock(self.stack.state_root / "deploy.lock", command=f"{kind} {self.stack.env} {tag}",
                            timeout=self.settings.lock_timeout) as lock, _signals("raise"):
            recovered = self.recover()
            if lock.recovered and not recovered:
                recovered = f"took over the lock left by {lock.recovered.describe()}"
            history = read_history(self.host, self.stack)
            self._history = history
            current = releases.current_release(history)
            dep = Deployment(env=self.stack.env, kind=kind, tag=tag, started=now(),
                             deploy_id=f"{int(time.time())}{os.getpid() % 100000:05d}",
                             previous_tag=(current or {}).get("image_tag"), warnings=list(warnings or []))
            if recovered:
                dep.notes.append(recovered)
            elif kind == "deploy" and update == "auto" and not restore_snapshot and not pinned:
                unchanged = self._unchanged(dep, current)
                if unchanged is not None:
                    return unchanged
            try:
                self._steps(dep, current, pinned=pinned, update=update, restore_snapshot=restore_snapshot,
                            expected_digests=expected_digests or {}, known_digests=known_digests or {})
                dep.snapshots_pruned = self._prune_snapshots(history, dep)
                dep.kept_databases_pruned = self._prune_kept_databases(history, dep)
            except KeyboardInterrupt as exc:
                if not _serving(dep):
                    raise self._fail(dep, exc, started_clock) from None
                # A signal once the new release serves: finish it, as a killed run's recovery does.
                with _signals("ignore"):
                    try:
                        done = self._finish(dep)
                    except OdooAiError as finish_exc:
                        raise self._fail(dep, finish_exc, started_clock) from None
                dep.notes += [f"{getattr(exc, 'signame', 'SIGINT')} in phase {dep.phase}: completed, the new "
                              "release was already serving", *done]
            except (DeployFailed, OdooAiError) as exc:
                raise self._fail(dep, exc, started_clock) from None
            record = self._record(dep, "success", started_clock)
            self.host.unlink(self.journal_path)
            return self._report(dep, "success", record)

    def _unchanged(self, dep: Deployment, current: dict[str, Any] | None) -> dict[str, Any] | None:
        """A deploy of what already serves — same tag, same digests running, same .env and
        app env, every required module installed — changes nothing and records nothing.
        Only reads; None as soon as anything differs (the full deploy then runs)."""
        if not current or current.get("image_tag") != dep.tag or not current.get("digests"):
            return None
        digests, ids = {}, {}
        for target in ("web", "script-runner"):
            result = self._run(plan.image_inspect(self.stack.image_ref(target, dep.tag)))
            if not result.ok:
                return None
            info = json.loads(result.stdout)
            repo = repository_of(self.stack.image_ref(target, dep.tag))
            digests[target] = next((d.split("@", 1)[1] for d in info.get("repo_digests") or []
                                    if d.split("@")[0] == repo), info["id"])
            ids[target] = info["id"]
        if digests != current["digests"]:
            return None
        mapping, app_env_text = self._candidate(dep.tag)
        pinned = current.get("images") or {}
        mapping.update({k: pinned[t] for t, k in (("web", "ODOO_WEB_IMAGE"), ("script-runner",
                                                                             "ODOO_SCRIPT_RUNNER_IMAGE"))
                        if pinned.get(t)})
        dotenv = self.host.read_text(self.stack.dotenv_path)
        if dotenv is None or parse_env_text(dotenv, source=str(self.stack.dotenv_path)) != \
                parse_env_text(format_env(mapping), source="candidate"):
            return None
        if (self.host.read_text(self.stack.state_root / APP_ENV) or "") != app_env_text:
            return None
        containers = self._containers()
        webs = running(containers, "web")
        if len(webs) != 1 or not services_ready(containers):
            return None
        image = self._run(plan.container_image(webs[0]))
        if not image.ok or image.stdout.strip() != ids["web"]:
            return None
        db = parse_db_state(self._run(plan.db_state(self.stack, required_modules(self.stack))).stdout)
        if db is None or not db.initialized or db.missing:
            return None
        dep.digests, dep.images = digests, dict(pinned)
        return {"status": "unchanged", "env": dep.env, "kind": dep.kind, "tag": dep.tag,
                "previous_tag": dep.previous_tag, "digests": digests, "images": dep.images,
                "modules": modules_view(dep), "warnings": dep.warnings, "phases": [], "release": current,
                "note": f"{dep.tag} already serves {self.stack.env} with the same digests and settings: "
                        "nothing to do (--update always forces a new release)"}

    def preview(self, tag: str, *, update: str = "auto") -> dict[str, Any]:
        """What a deploy of `tag` would install and update, and why, without changing
        anything: the image is inspected and read (a throw-away container, no network),
        the database only queried. Needs the env's db running (`odoo-ai up`/a deploy)."""
        validate_tag(tag)
        mapping, _ = self._candidate(tag)
        history = read_history(self.host, self.stack)
        self._history = history
        current = releases.current_release(history)
        dep = Deployment(env=self.stack.env, kind="preview", tag=tag, started=now())
        dep.images = {"web": mapping["ODOO_WEB_IMAGE"], "script-runner": mapping["ODOO_SCRIPT_RUNNER_IMAGE"]}
        for target, ref in dep.images.items():
            result = self._run(plan.image_inspect(ref))
            if not result.ok:
                raise OdooAiError(f"image {ref} is not on this host: pull it first (odoo-ai pull {self.stack.env} "
                                  f"--tag {tag})", exit_code=ExitCode.USAGE)
            info = json.loads(result.stdout)
            repo = repository_of(ref)
            dep.digests[target] = next((d.split("@", 1)[1] for d in info.get("repo_digests") or []
                                        if d.split("@")[0] == repo), info["id"])
        self._inspect_addons(dep, cache=False)
        required = required_modules(self.stack)
        if not self._run(plan.db_exists(self.stack)).ok:
            raise OdooAiError(f"{self.stack.env}: the database service is not running: odoo-ai up {self.stack.env}",
                              exit_code=ExitCode.INFRA)
        self.next_env = self.stack.dotenv_path
        db = self._db_state(required, "preview")
        step = plan_update(db=db, mode=update, required=required, update_modules=self.stack.update_modules,
                           addons_hash=dep.addons_hash, previous_hash=(current or {}).get("addons_hash"),
                           image_sums=self._image_sums)
        targets = [*step.install, *(step.update.split(",") if step.update and step.update != "all" else [])]
        deps: list[str] = []
        if targets and db.initialized:
            result = self._run(plan.dependents(self.stack, targets))
            deps = [line.strip() for line in result.stdout.splitlines() if line.strip()] if result.ok else []
        why = {m: "new (required, not installed)" for m in step.install}
        why.update({m: "checksum changed" for m in step.changed})
        if step.update and not step.per_module:
            why.update({m: step.reason for m in step.update.split(",")})
        return {
            "env": self.stack.env, "tag": tag, "current": (current or {}).get("image_tag"),
            "install": list(step.install), "update": step.update, "changed": list(step.changed),
            "removed": list(step.removed), "dependents": deps, "why": why, "reason": step.reason,
            "per_module": step.per_module, "snapshot": step.runs and db.initialized,
            "addons_hash": dep.addons_hash,
        }

    def _steps(self, dep: Deployment, current: dict[str, Any] | None, *, pinned: Mapping[str, str] | None,
               update: str, restore_snapshot: str | None, expected_digests: Mapping[str, str],
               known_digests: Mapping[str, str]) -> None:
        with self._phase(dep, "render"):
            self._render_next(dep, dep.tag, pinned)
        with self._phase(dep, "pull"):
            self._pull(dep, {**known_digests, **expected_digests})
        with self._phase(dep, "inspect"):
            self._inspect(dep)
            for target, digest in expected_digests.items():
                if dep.digests.get(target) != digest:
                    raise DeployFailed("inspect", f"the {target} image has digest {dep.digests.get(target)}, "
                                       f"not the {digest} that was asked for (--digest): refusing to deploy it",
                                       hint="deploy exactly what CI built and tested: check the build's digests")
        with self._phase(dep, "services"):
            self._services(dep)
            required = required_modules(self.stack)
            db = self._db_state(required, "services")
        if restore_snapshot:
            with self._phase(dep, "restore"):
                # The data of the release being left goes into a snapshot first: the undo
                # of a failed rollback restores it, and a later rollback forward finds it.
                self._snapshot(dep)
                dep.db_may_change = True
                # The replaced data is set aside under this name (journaled first, so that a
                # killed run drops it) and dropped once the target serves: not in the pause.
                dep.replaced_db = f"{self.stack.db_name}__replaced_{dep.deploy_id}"[-63:]
                self._save_journal(dep)
                self.restore_snapshot(restore_snapshot, keep_as=dep.replaced_db,
                                      before_swap=lambda: self._retire_web(dep))
                dep.restored_snapshot = restore_snapshot
            db = self._db_state(required, "restore")
        step = plan_update(db=db, mode=update, required=required, update_modules=self.stack.update_modules,
                           addons_hash=dep.addons_hash, previous_hash=(current or {}).get("addons_hash"),
                           image_sums=self._image_sums)
        dep.install, dep.update_modules, dep.update_reason = list(step.install), step.update, step.reason
        dep.changed, dep.removed = list(step.changed), list(step.removed)
        if step.removed:
            dep.warnings.append(f"installed module(s) no longer in the image: {', '.join(step.removed)} "
                                "(left as they are: uninstall them in Odoo first)")
        fresh = not db.exists or not db.initialized
        if step.runs:
            if not fresh and not dep.snapshot:
                with self._phase(dep, "snapshot"):
                    self._snapshot(dep)
            dep.db_created = fresh
            with self._phase(dep, "update"):
                self.progress(f"  odoo-bin {step.describe()} ({step.reason}){self.update_how}")
                self._update(dep, step)
                if self.stack.update_modules in ("auto", "all"):  # every installed module is at the image's code
                    self._record_checksums(dep, replace=True)
        else:
            dep.notes.append(f"module update skipped: {step.reason}")
            if update != "never" and db.recorded is None and step.reason.endswith("no addon changed") \
                    and self.stack.update_modules in ("auto", "all"):
                self._record_checksums(dep, replace=True)  # the code matches: start recording
        self._serve(dep)
        dep.notes += self._drop_replaced(dep)

    def _drop_replaced(self, dep: Deployment) -> list[str]:
        """The data a rollback --restore-db replaced (its snapshot was taken first): dropped
        with its filestore. A failure only warns: the release serves either way."""
        if not dep.replaced_db:
            return []
        name, dep.replaced_db = dep.replaced_db, None
        results = self.host.together(lambda: self._run(plan.drop_db(self.stack, name, self._active_env)),
                                     lambda: self._run(plan.remove_filestore(self.stack, name, self._active_env)))
        for what, result in zip((f"database {name}", f"filestore filestore/{name}"), results, strict=True):
            if not result.ok:
                dep.warnings.append(f"the replaced {what} could not be removed ({result.tail(1)}): remove it by hand")
        self._save_journal(dep)
        if not all(result.ok for result in results):
            return []
        return [f"dropped the replaced database {name} and its filestore (kept in the snapshot taken first)"]

    def _services(self, dep: Deployment) -> None:
        """The db and the proxy up (the web stays as it is), their containers noted."""
        containers = self._containers()
        if not services_ready(containers):
            self._ensure_services()
            containers = self._containers()
        self._proxy_id = next(iter(running(containers, "proxy")), None)
        self._db_id = next(iter(running(containers, "db")), None)
        self._webs_before = running(containers, "web")

    def _serve(self, dep: Deployment) -> None:
        """Blue/green: the new web beside the old, gated, the proxy switched, the old drained."""
        # Known (and journaled by the phase) before anything starts: an undo removes every
        # web container but these.
        dep.old_containers = self._webs_before
        with self._phase(dep, "start"):
            self._start_new_web(dep)
        with self._phase(dep, "gate"):
            self._gate(dep)
        with self._phase(dep, "switch"):
            self._switch(dep)

        def config_hashes() -> Result | None:
            try:
                return self._run(plan.config_hashes(self.stack, self.next_env))
            except OdooAiError:  # the drain goes on; converge reads them again
                return None

        with self._phase(dep, "drain"):
            # What Compose would run on the files being committed, read while the old web drains.
            hashes, _ = self.host.together(config_hashes, lambda: self._drain(dep))
        self._commit_env()
        with self._phase(dep, "converge"):
            self._converge(dep, hashes)

    def _fail(self, dep: Deployment, exc: BaseException, started_clock: float) -> DeployFailed:
        """Undo, record and describe a failed (or interrupted) deploy."""
        if isinstance(exc, KeyboardInterrupt):
            signame = getattr(exc, "signame", "SIGINT")
            phase, message, output, hint = dep.phase, f"interrupted by {signame}", "", None
        else:
            assert isinstance(exc, OdooAiError)
            phase = exc.phase if isinstance(exc, DeployFailed) else dep.phase
            message = exc.message.removeprefix(f"deploy failed in phase {phase}: ")
            output = exc.output if isinstance(exc, DeployFailed) else ""
            hint = exc.hint
        serving = _serving(dep)
        with _signals("ignore"):
            try:
                undone = self._keep_serving(dep) if serving else self._undo(dep)
            except OdooAiError as undo_exc:
                undone = [f"UNDO FAILED: {undo_exc.message}"]
            record = self._record(dep, "failed", started_clock, failed_phase=phase, error=message,
                                  undone=undone, output=output[-4000:] or None)
            self.host.unlink(self.journal_path)
        if serving:
            env = self.stack.env
            hint = f"{dep.tag} was serving when this failed (the previous web already replaced): its data is kept; " \
                f"see odoo-ai status {env}; odoo-ai rollback {env} --to {dep.previous_tag or 'TAG'} --restore-db goes back"
        hint = hint or f"the previous release ({dep.previous_tag or 'none'}) is still serving; " \
            f"see odoo-ai logs {self.stack.env} and odoo-ai releases {self.stack.env}"
        failed = DeployFailed(phase, message, output=output, hint=hint, report=self._report(dep, "failed", record))
        if isinstance(exc, OdooAiError) and exc.exit_code == ExitCode.INFRA:
            failed.exit_code = ExitCode.INFRA  # Docker, the registry or ssh out of reach: 3, not 1
        return failed

    def _prune_snapshots(self, history: list[dict[str, Any]], dep: Deployment) -> list[str]:
        """Delete the snapshots no longer needed: all but those of the last N successful
        releases (this one included). Best effort: a failure here is only a note."""
        stale = snapshots_to_prune(history, dep.snapshot, self.settings.keep_snapshots)
        if not stale:
            return []
        result = self._run(plan.remove_snapshots(self.stack, stale, self._active_env))
        if not result.ok:
            dep.notes.append(f"could not prune snapshots {', '.join(stale)}: {result.tail(1)}")
            return []
        return stale

    def _prune_kept_databases(self, history: list[dict[str, Any]], dep: Deployment) -> list[str]:
        """Drop the databases (and filestores) kept by failed updates beyond the last N,
        the same rule as snapshots; each one named in the release record and its notes."""
        stale = kept_databases_to_prune(history, self.settings.keep_snapshots, self.stack.db_name)
        dropped = []
        for name in stale:
            drop = self._run(plan.drop_db(self.stack, name, self._active_env))
            files = self._run(plan.remove_filestore(self.stack, name, self._active_env))
            if drop.ok and files.ok:
                dropped.append(name)
            else:
                dep.notes.append(f"could not drop the kept database {name}: {(drop if not drop.ok else files).tail(1)}")
        if dropped:
            dep.notes.append(f"dropped the database(s) kept by older failed updates: {', '.join(dropped)}")
        return dropped

    def _record(self, dep: Deployment, status: str, started_clock: float, *, failed_phase: str | None = None,
                **extra: Any) -> dict[str, Any]:
        release = Release.of(dep, status, duration=round(time.monotonic() - started_clock, 3), phase=failed_phase,
                             **extra)
        record = release.as_dict()
        self.host.append_record(self.log_path, record)
        return record

    def _report(self, dep: Deployment, status: str, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "status": status, "env": dep.env, "kind": dep.kind, "tag": dep.tag, "previous_tag": dep.previous_tag,
            "digests": dep.digests, "images": dep.images, "modules": modules_view(dep),
            "warnings": dep.warnings,
            "phases": [{"name": p.name, "seconds": p.seconds, "ok": p.ok} for p in dep.phases],
            "release": record,
        }


def read_history(host: Host, stack: StackConfig, problems: list[str] | None = None) -> list[dict[str, Any]]:
    path = stack.state_root / releases.RELEASE_LOG
    text = host.read_text(path)
    if text is None:
        return []

    def report(p: Path, lineno: int, why: str) -> None:
        if problems is not None:
            problems.append(f"{p}:{lineno}: {why}, skipped")

    return releases.parse_releases(text, path, on_error=report)


def rollback_target(host: Host, stack: StackConfig, to: str | None) -> tuple[dict[str, Any], str | None]:
    """(the release to go back to, the snapshot that holds its data) from the env's release log."""
    history = read_history(host, stack)
    if not releases.successful(history):
        raise ConfigError(f"{stack.env}: no successful release in {stack.state_root / releases.RELEASE_LOG}: "
                          "nothing to roll back to")
    if to:
        validate_tag(to)
    return pick_rollback(history, to, env=stack.env)




def dry_run(stack: StackConfig, host: Host, tag: str, *, settings: DeploySettings, environ: Mapping[str, str],
            out: Any = None, image_lookup: Callable[[str], bool | None] | None = None,
            progress: Callable[[str], None] | None = None, **run_args: Any) -> dict[str, Any]:
    """The real deploy/rollback code against the dry connector (odoo_ai.dryhost): every
    command and write printed, none run; reads real, the rest assumed and said so. Fails
    where the real run fails before its first write (exit 2), and where it would fail on
    what can be read (an image neither on the host nor in the registry: exit 1)."""
    from odoo_ai.dryhost import DryHost

    dry = DryHost(host, out=out, image_lookup=image_lookup)
    result = Deployer(stack, dry, settings=settings, environ=environ, progress=progress).run(tag, **run_args)
    return {**result, "status": "dry-run", "assumptions": dry.assumptions, "reads": dry.reads}

