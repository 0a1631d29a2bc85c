"""Use-case: deploys and rollbacks of a swarm env (ODOO_ENGINE=swarm).

    lock → recover a killed deploy → render .env.next → pull (swarm pulls on the other
    nodes, --with-registry-auth) → inspect (pin digests) → services (a swarm manager;
    the stack file rendered from the same Compose files; db running) → snapshot (db +
    filestore) → module install/update as a `replicated-job` service of the NEW image on
    the stack's network (exit code and logs collected) → rollout (`docker stack deploy`:
    web start-first one task at a time, each task's health check is the readiness probe;
    cron stop-first) → gate (every task on the new image and healthy, no pending module,
    every required module installed, the local web tasks probed) → release log → unlock.

Any failure: the services go back to the previous stack file (the previous digests),
the database and filestore are restored from the snapshot as on compose (kept as
<db>__failed_<ts>), and the failure is recorded.

The sequence is the compose engine's Deployer with the swarm steps put in its place:
the lock, journal, recovery, pull, inspect, snapshot, restore, checksums, release record
and pruning are the same code; the compose engine's database and filestore commands
run against the stack's tasks through SwarmHost (plan.translate).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import yaml

from odoo_ai.config.envfile import parse_env_text
from odoo_ai.config.render import APP_ENV
from odoo_ai.config.stack import StackConfig, required_modules
from odoo_ai.deploy.engine import Deployer, DeployFailed
from odoo_ai.deploy.journal import Deployment
from odoo_ai.deploy.policy import (
    UpdatePlan,
    gate_rows,
    state_text,
    update_retry_reason,
)
from odoo_ai.errors import ExitCode, OdooAiError
from odoo_ai.excerpt import failure_excerpt
from odoo_ai.hosts import Host
from odoo_ai.plan import deploy as plan
from odoo_ai.runners.base import Command, Result
from odoo_ai.swarm import plan as splan
from odoo_ai.swarm.render import env_file_text, job_spec, render_stack

STACK_FILE = "stack.yml"
NEXT_STACK_FILE = "stack.next.yml"
JOB_ENV = ".update-job.env"
PG_ENV = ".external-db.env"  # PGHOST/PGPORT/PGPASSWORD of ODOO_SWARM_EXTERNAL_DB for client containers
ROLLED = ("web", "cron")  # the services a deploy rolls
FAILED_UPDATE_STATES = ("paused", "rollback_started", "rollback_paused", "rollback_completed")
LIVE_TASK_STATES = ("New", "Pending", "Assigned", "Accepted", "Preparing", "Ready", "Starting", "Running")
FAILED_TASK_STATES = ("failed", "rejected", "orphaned", "remove", "shutdown")


class SwarmHost:
    """The deploy's connector for a swarm env: the wrapped host (local or ssh) runs every
    command; those of the compose engine that address Compose services (`exec db`, `run
    script-runner`) are translated to the stack's tasks first (plan.translate)."""

    def __init__(self, inner: Host, stack: StackConfig):
        self.inner = inner
        self.stack = stack
        self.db_container: str | None = None
        self.pg_env = stack.state_root / PG_ENV

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def find_db(self) -> str | None:
        result = self.inner.run(splan.task_containers(self.stack, "db"), capture=True)
        ids = result.stdout.split() if result.ok else []
        self.db_container = ids[0] if ids else None
        return self.db_container

    def _tools_image(self, argv: list[str]) -> str | None:
        env_file = argv[argv.index("--env-file") + 1] if "--env-file" in argv else None
        text = self.inner.read_text(Path(env_file)) if env_file else None
        if text is None:
            return None
        return parse_env_text(text, source=env_file or "").get("ODOO_SCRIPT_RUNNER_IMAGE")

    def run(self, command: Command, *, capture: bool = True) -> Result:
        argv = command.argv
        if len(argv) > 1 and argv[1] == "compose":
            if "exec" in argv and self.db_container is None and not self.stack.swarm.external_db:
                self.find_db()
            tools = self._tools_image(argv) if "run" in argv else None
            translated = splan.translate(argv, stack=self.stack, db_container=self.db_container, tools_image=tools,
                                         pg_env=self.pg_env)
            if translated is not None:
                command = Command(translated, env=command.env, timeout=command.timeout, stdin=command.stdin,
                                  purpose=command.purpose, reads=command.reads)
        return self.inner.run(command, capture=capture)


class SwarmDeployer(Deployer):
    update_how = " as a replicated-job service"

    def __init__(self, stack: StackConfig, host: Host, **kwargs: Any):
        self.swarm_host = SwarmHost(host, stack)
        super().__init__(stack, self.swarm_host, **kwargs)  # type: ignore[arg-type]
        self.stack_file = stack.state_root / STACK_FILE
        self.next_stack_file = stack.state_root / NEXT_STACK_FILE
        self.job_env = stack.state_root / JOB_ENV
        self._config: dict[str, Any] = {}

    # ------------------------------------------------------------ what is running
    def _web_ids(self, env_file: Path | None = None) -> list[str]:
        """The local containers of web and cron (paused around a restore's swap)."""
        ids: list[str] = []
        for name in ROLLED:
            result = self._run(splan.task_containers(self.stack, name))
            ids += result.stdout.split() if result.ok else []
        return ids

    def _unchanged(self, dep: Deployment, current: dict[str, Any] | None) -> dict[str, Any] | None:
        return None  # every swarm deploy is a release (docker stack deploy of the same spec changes nothing)

    def _check_manager(self) -> None:
        result = self._run(splan.swarm_state(self.stack.docker))
        words = result.stdout.split() if result.ok else []
        if words != ["active", "true"]:
            raise DeployFailed("services", f"the Docker engine is not a swarm manager ({' '.join(words) or result.tail(1)})",
                               hint="ODOO_ENGINE=swarm: run odoo-ai against a manager (locally or --host), "
                                    "or `docker swarm init` on a single host")

    def _render_stack_file(self, env_file: Path, path: Path, *, web_replicas: int | None = None) -> None:
        result = self._must(splan.stack_config(self.stack, env_file), "services", "docker compose config")
        try:
            self._config = json.loads(result.stdout)
        except ValueError:
            raise DeployFailed("services", "docker compose config did not answer JSON", output=result.tail()) from None
        hashes: dict[str, str] = {}
        for svc in (self._config.get("services") or {}).values():
            for vol in svc.get("volumes") or []:
                source = str(vol.get("source") or "")
                if vol.get("type") == "bind" and source.startswith(str(self.stack.repo_root) + "/"):
                    text = self.host.read_text(Path(source))
                    if text is not None:
                        hashes[source] = hashlib.sha256(text.encode()).hexdigest()
        doc = render_stack(self._config, self.stack, file_hashes=hashes, gate_interval=self.settings.gate_interval,
                           start_period=self.settings.gate_timeout, stop_grace=self.settings.stop_grace,
                           web_replicas=web_replicas, drain_seconds=self.settings.drain_seconds)
        self.host.write_private(path, "# odoo-ai: the stack file of a swarm env (rendered, mode 0600)\n"
                                + yaml.safe_dump(doc, sort_keys=False, width=1000))

    def _ensure_external_db(self, dep: Deployment) -> None:
        """ODOO_SWARM_EXTERNAL_DB: the stack's network exists (a first deploy starts the stack
        without web and cron) and the server answers from a client container on it."""
        host, _, port = (self.stack.swarm.external_db or "").rpartition(":")
        password = self._next_values.get("ODOO_DB_PASSWORD", "")
        self.host.write_private(self.swarm_host.pg_env, f"PGHOST={host}\nPGPORT={port}\nPGPASSWORD={password}\n")
        net = self._run(splan.network_exists(self.stack))
        if not (net.ok and net.stdout.strip()):
            source = self.stack.state_root / "stack.db.yml"
            self._render_stack_file(self.next_env, source, web_replicas=0)
            dep.notes.append("started the stack's services without web and cron (external PostgreSQL)")
            self._must(splan.stack_deploy(self.stack, source), "services", "docker stack deploy")
        deadline = time.monotonic() + max(self.settings.gate_timeout, 60)
        while True:
            probe = self._run(plan.db_exists(self.stack, self.next_env))
            if probe.ok:
                self._db_id = None  # every db command goes through a client container
                return
            if time.monotonic() > deadline:
                raise DeployFailed("services", f"the external PostgreSQL {self.stack.swarm.external_db} does not "
                                   "answer from the stack's network", output=probe.tail())
            self.host.sleep(1, "waiting for the external PostgreSQL")

    def _ensure_db(self, dep: Deployment) -> None:
        """db running and healthy: a first deploy starts the stack without web and cron."""
        for path in (self.stack.data_dir, self.stack.db_dir, self.stack.log_dir, self.stack.state_root / "snapshots"):
            self.host.mkdir(path)
        if self.stack.swarm.external_db:
            self._ensure_external_db(dep)
            return
        if self.swarm_host.find_db() is None:
            if self.host.read_text(self.stack_file) is not None:
                source = self.stack_file
            else:
                source = self.stack.state_root / "stack.db.yml"
                self._render_stack_file(self.next_env, source, web_replicas=0)
            dep.notes.append(f"started the stack's services from {source.name} (db was not running)")
            self._must(splan.stack_deploy(self.stack, source), "services", "docker stack deploy")
        deadline = time.monotonic() + max(self.settings.gate_timeout, 60)
        while True:
            cid = self.swarm_host.find_db()
            if cid:
                health = self._run(splan.container_health(cid, self.stack.docker))
                if health.ok and health.stdout.split()[-1:] == ["healthy"]:
                    self._db_id = cid
                    return
            if time.monotonic() > deadline:
                raise DeployFailed("services", "the db service did not become healthy")
            self.host.sleep(1, "waiting for the db task")

    def _services(self, dep: Deployment) -> None:
        """A manager, the stack file of the candidate .env, the db service up (or the external
        PostgreSQL reachable): the web services stay as they are until the rollout."""
        self._check_manager()
        self._render_stack_file(self.next_env, self.next_stack_file)
        self._ensure_db(dep)

    def _serve(self, dep: Deployment) -> None:
        """Swarm's rolling update (start-first, our readiness probe as the health check),
        then the gate through the tasks before the release counts."""
        dep.old_containers = self._web_ids()
        with self._phase(dep, "rollout"):
            deployed = self._with_registry(splan.stack_deploy(self.stack, self.next_stack_file))
            if not deployed.ok:
                raise DeployFailed("rollout", f"docker stack deploy (exit {deployed.returncode})", output=deployed.tail())
            self._wait_rollout("rollout", time.monotonic() + self.settings.gate_timeout + 60)
        with self._phase(dep, "gate"):
            self._swarm_gate(dep)
        self._commit_env()
        self.host.replace(self.next_stack_file, self.stack_file)
        self.host.unlink(self.job_env)
        self.host.unlink(self.stack.state_root / "stack.db.yml")

    def _with_registry(self, command: Command) -> Result:
        """Run a command that makes swarm pull (stack deploy, service create --with-registry-auth)
        logged in with the deploy's registry credentials when there are some (the nodes get
        them with the task); else with the manager's own docker login."""
        config_dir = self._registry_login()
        if config_dir is not None:
            command = dataclasses.replace(command, env={**command.env, "DOCKER_CONFIG": str(config_dir)})
        try:
            return self._run(command)
        finally:
            if config_dir is not None:
                self.host.remove_tree(config_dir)

    # ------------------------------------------------------------ the module update job
    def _update(self, dep: Deployment, step: UpdatePlan) -> None:
        if self.settings.web_during_update != "keep":
            dep.notes.append(f"ODOO_DEPLOY_WEB_DURING_UPDATE={self.settings.web_during_update} is for compose: "
                             "on swarm the web keeps serving during the update")
        image, env = job_spec(self._config, self.stack)
        image = dep.images.get("script-runner") or image
        self.host.write_private(self.job_env, env_file_text(env))
        argv = ["/odoo/odoo-bin", "-d", self.stack.db_name]
        if step.install:
            argv += ["-i", ",".join(step.install)]
        if step.update:
            argv += ["-u", step.update]
        argv += ["--stop-after-init", "--no-http"]
        attempts = 1 + self.settings.update_retries
        for attempt in range(1, attempts + 1):
            name = f"{self.stack.project}_update_{dep.deploy_id}_{attempt}"[-63:]
            dep.db_may_change = True
            dep.update_container = name
            self._save_journal(dep)
            code, output = self._run_job(name, image, argv, dep.deploy_id)
            if code == 0:
                dep.updated = True
                return
            retry = update_retry_reason(output) if attempt < attempts else None
            if retry:
                dep.notes.append(f"update {retry} (attempt {attempt}), retrying")
                self.host.sleep(2, "before retrying the update")
                continue
            restored = "the database was created by this deploy and is dropped" if dep.db_created else \
                "the database and filestore are restored from the snapshot"
            raise DeployFailed("update", f"odoo-bin {step.describe()} exited {code} (job service {name})",
                               output=failure_excerpt(output), hint=restored)

    def _run_job(self, name: str, image: str, argv: list[str], deploy_id: str) -> tuple[int | str, str]:
        """Create the job service, wait for its task to end, collect its exit code and its
        logs, remove it. (exit code or the task's state, output)."""
        created = self._with_registry(splan.job_create(self.stack, name, image, self.job_env, argv,
                                                       deploy_id=deploy_id))
        if not created.ok:
            return f"not started ({created.tail(1)})", created.stdout + created.stderr
        try:
            deadline = time.monotonic() + 7200
            state, code, error = "new", "", ""
            while time.monotonic() < deadline:
                tasks = self._run(splan.job_tasks(self.stack, name))
                ids = tasks.stdout.split() if tasks.ok else []
                if ids:
                    info = self._run(splan.job_state(self.stack, ids[0]))
                    state, code, error = ((info.stdout.strip().splitlines() or ["||"])[0].split("|") + ["", ""])[:3]
                    if state == "complete" or state in FAILED_TASK_STATES:
                        break
                self.host.sleep(0.5, "waiting for the update job")
            logs = self._run(splan.service_logs(self.stack, name))
            output = logs.stdout + logs.stderr
            if state == "complete":
                return 0, output
            if code.strip().isdigit() and int(code) != 0:
                return int(code), output
            return f"{state or 'unknown'} ({error})", output + (f"\n{error}" if error else "")
        finally:
            self._run(splan.service_rm(self.stack, [name]))

    def _retire_web(self, dep: Deployment) -> None:
        """Before a rollback's restored data is swapped in: web and cron scaled to 0, and
        waited for until none of their tasks runs (swarm stops them as `docker stop` does:
        SIGTERM, then the stop grace). Their code is not the restored data's: from the swap
        to the rollout's first ready task nothing serves (the proxy answers its "Odoo is
        restarting" page, 503 with Retry-After, as whenever no Odoo answers)."""
        dep.web_stopped = True
        self._save_journal(dep)
        self._scale_down("restore")
        dep.notes.append("web and cron scaled to 0 from the data swap to the rollout: the old release's code "
                         "does not run on the restored data")

    def _scale_down(self, phase: str) -> None:
        self._must(splan.service_scale(self.stack, dict.fromkeys(ROLLED, 0)), phase, "docker service scale")
        deadline = time.monotonic() + self.settings.stop_grace + 60
        while True:
            states = [self._run(splan.task_states(self.stack, name)) for name in ROLLED]
            live = [line for result in states for line in result.stdout.splitlines()
                    if (line.split() or [""])[0] in LIVE_TASK_STATES]
            if all(result.ok for result in states) and not live:
                return
            if time.monotonic() > deadline:
                raise DeployFailed(phase, f"web and cron tasks still run after scaling them to 0 ({'; '.join(live)})")
            self.host.sleep(0.5, "waiting for web and cron tasks to stop")

    def _remove_update_containers(self) -> list[str]:
        result = self._run(splan.update_jobs(self.stack))
        ids = result.stdout.split() if result.ok else []
        if ids:
            self._run(splan.service_rm(self.stack, ids))
            return [f"removed {len(ids)} module update job service(s)"]
        return []

    # ------------------------------------------------------------ rollout and gate
    def _wait_rollout(self, phase: str, deadline: float) -> None:
        """Until web and cron run their spec's image on every replica, healthy; a paused or
        rolled back update, or the deadline, fails the phase."""
        last = "no answer yet"
        while True:
            pending = []
            for name in ROLLED:
                info = self._run(splan.service_update_state(self.stack, name))
                if not info.ok:
                    pending.append(f"{name}: {info.tail(1)}")
                    continue
                state, message, replicas, image = (info.stdout.strip().split("|") + ["", "", "", ""])[:4]
                if state in FAILED_UPDATE_STATES:
                    raise DeployFailed(phase, f"swarm's update of {name} is {state}: {message}",
                                       output=self._service_output(name))
                tasks = self._run(splan.service_tasks(self.stack, name))
                rows = [line.split("\t") for line in tasks.stdout.splitlines() if line.strip()] if tasks.ok else []
                ready = [r for r in rows if r[0] == image and r[1].startswith("Running")]
                want = int(replicas) if replicas.isdigit() else 1
                if state not in ("", "completed") or len(ready) != want or len(rows) != want:
                    pending.append(f"{name}: {len(ready)}/{want} ready" + (f", update {state}" if state else ""))
            if not pending:
                return
            last = "; ".join(pending)
            if time.monotonic() > deadline:
                raise DeployFailed(phase, f"timed out waiting for the rolling update ({last})",
                                   output=self._service_output("web"),
                                   hint="a task that never passes its health check (/web/health and "
                                        f"/web/login?db={self.stack.db_name}) is never given traffic")
            self.host.sleep(1, "rollout: waiting for the tasks")

    def _service_output(self, name: str) -> str:
        """The last lines of the service's newest container on this node (a failed task's)."""
        latest = self._run(splan.local_task_containers(self.stack, name, latest=True))
        ids = [line.split("\t")[0] for line in latest.stdout.splitlines() if line.strip()] if latest.ok else []
        if not ids:
            return ""
        logs = self._run(splan.container_logs(self.stack, ids[0]))
        return failure_excerpt(logs.stdout + logs.stderr)

    def _current_web_tasks(self) -> list[str]:
        """This node's web containers of tasks meant to run (not those being shut down)."""
        wanted = self._run(splan.running_tasks(self.stack, "web"))
        tasks = set(wanted.stdout.split()) if wanted.ok else set()
        local = self._run(splan.local_task_containers(self.stack, "web"))
        rows = [line.split("\t") for line in local.stdout.splitlines() if "\t" in line] if local.ok else []
        return [cid for cid, task in rows if task in tasks]

    def _swarm_gate(self, dep: Deployment) -> None:
        required = required_modules(self.stack)
        check = self._run(plan.gate_modules(self.stack, required, self.next_env, container=self._db_id))
        pending, missing = gate_rows(check.stdout) if check.ok else (None, {})
        if pending is None:
            raise DeployFailed("gate", f"module check failed: {check.tail(2)}")
        if pending:
            raise DeployFailed("gate", f"{pending} module(s) left pending (to upgrade/install/remove)")
        if missing:
            raise DeployFailed("gate", "required module(s) not installed: "
                               + ", ".join(f"{n} ({state_text(s)})" for n, s in sorted(missing.items())))
        webs = self._current_web_tasks()
        for cid in webs:
            probe = self._run(plan.gate_probe(cid, self.stack.db_name))
            if not probe.ok:
                raise DeployFailed("gate", f"web task {cid[:12]} does not pass the readiness probe: "
                                   f"{probe.stdout.strip() or probe.tail(2)}", output=self._service_output("web"))
        dep.new_container = ",".join(webs) or None

    # ------------------------------------------------------------ undo
    def _undo(self, dep: Deployment) -> list[str]:
        done: list[str] = self._remove_update_containers()
        done += self._unpause_web()
        previous = self.host.read_text(self.stack_file) is not None
        rolled = dep.phase in ("rollout", "gate")

        def back() -> None:
            self._with_registry(splan.stack_deploy(self.stack, self.stack_file))
            try:
                self._wait_rollout("undo", time.monotonic() + self.settings.gate_timeout + 60)
                done.append("services back on the previous release's digests")
            except DeployFailed as exc:
                done.append(f"WARNING: the previous release's services did not all come back: {exc.message}")

        if dep.web_stopped and rolled:
            # a restore-db rollback's target runs on the restored data: stopped before that data goes back
            try:
                self._scale_down("undo")
                done.append("web and cron scaled to 0 while the data goes back")
            except OdooAiError as exc:
                done.append(f"WARNING: {exc.message}")
        elif previous and rolled:
            back()
        if dep.db_may_change:
            if self._db_id is None and not self.stack.swarm.external_db:
                self._db_id = self.swarm_host.find_db()
            done += self._undo_data(dep)
        done += self._drop_replaced(dep)
        if previous and dep.web_stopped:
            back()  # the previous release's code on its own data again
        if not previous:
            result = self._run(splan.stack_rm(self.stack))
            if result.ok:
                done.append("removed the stack this first deploy had started")
        self._active_env = self.stack.dotenv_path
        for path in (self.next_env, self.next_stack_file, self.job_env):
            self.host.unlink(path)
        prev = self.stack.state_root / (APP_ENV + ".prev")
        if self.host.read_text(prev) is not None:
            self.host.replace(prev, self.stack.state_root / APP_ENV)
        return done


def deployer(stack: StackConfig, host: Host, **kwargs: Any) -> SwarmDeployer:
    if stack.engine != "swarm":
        raise OdooAiError(f"{stack.env}: ODOO_ENGINE is {stack.engine}, not swarm", exit_code=ExitCode.USAGE)
    return SwarmDeployer(stack, host, **kwargs)
