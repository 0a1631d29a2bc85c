"""Pure planning of the docker commands a swarm env runs (argv lists, never shell strings),
and the one translation that lets the compose engine's database and filestore commands
(plan/deploy.py: snapshot, restore, swap, checksums) run unchanged against a stack:
`compose exec -T db ARGS` -> `docker exec -i <db task> ARGS`, `compose run --rm ... script-runner
ARGS` -> `docker run --rm -i` of the script-runner image with the stack's filestore volume."""

from __future__ import annotations

from pathlib import Path

from odoo_ai.config.stack import StackConfig
from odoo_ai.plan.compose import compose
from odoo_ai.plan.compose import purpose as _purpose
from odoo_ai.plan.deploy import SNAPSHOT_DIR_DB, SNAPSHOT_DIR_TOOLS
from odoo_ai.runners.base import Command
from odoo_ai.swarm.render import UPDATE_LABEL, volume_mount

# Compose's global options that take a value (plan/compose.compose_base writes them).
COMPOSE_OPTIONS = ("--project-name", "--project-directory", "--file", "--env-file", "--profile")


def service(stack: StackConfig, name: str) -> str:
    return f"{stack.project}_{name}"


def network(stack: StackConfig) -> str:
    return f"{stack.project}_default"


@_purpose(reads=True)
def swarm_state(docker: str) -> Command:
    return Command([docker, "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"],
                   timeout=30)


@_purpose(reads=True)
def stack_config(stack: StackConfig, env_file: Path) -> Command:
    """What Compose resolves for the env's files and this .env, script-runner included."""
    return compose(stack, "--profile", "tools", "config", "--format", "json", env_file=env_file, timeout=60)


@_purpose()
def stack_deploy(stack: StackConfig, stack_file: Path) -> Command:
    return Command([stack.docker, "stack", "deploy", "--with-registry-auth", "--prune", "--compose-file",
                    str(stack_file), stack.project], timeout=300)


@_purpose()
def stack_rm(stack: StackConfig) -> Command:
    return Command([stack.docker, "stack", "rm", stack.project], timeout=300)


@_purpose(reads=True)
def stack_services(stack: StackConfig) -> Command:
    """`name<TAB>replicas<TAB>image` of the stack's services."""
    return Command([stack.docker, "service", "ls", "--filter", f"label=com.docker.stack.namespace={stack.project}",
                    "--format", "{{.Name}}\t{{.Replicas}}\t{{.Image}}"], timeout=60)


@_purpose(reads=True)
def service_update_state(stack: StackConfig, name: str) -> Command:
    """`<update state>|<message>|<replicas>|<image>` of one service (state empty: never updated)."""
    fmt = ('{{if .UpdateStatus}}{{.UpdateStatus.State}}|{{.UpdateStatus.Message}}{{else}}|{{end}}'
           '|{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{end}}'
           '|{{.Spec.TaskTemplate.ContainerSpec.Image}}')
    return Command([stack.docker, "service", "inspect", "--format", fmt, service(stack, name)], timeout=30)


@_purpose(reads=True)
def service_tasks(stack: StackConfig, name: str) -> Command:
    """The tasks meant to run: `image<TAB>current state<TAB>error`."""
    return Command([stack.docker, "service", "ps", "--no-trunc", "--filter", "desired-state=running",
                    "--format", "{{.Image}}\t{{.CurrentState}}\t{{.Error}}", service(stack, name)], timeout=30)


@_purpose()
def service_scale(stack: StackConfig, replicas: dict[str, int]) -> Command:
    """Set services' replica counts (no wait: the caller watches the tasks)."""
    return Command([stack.docker, "service", "scale", "--detach",
                    *(f"{service(stack, name)}={count}" for name, count in replicas.items())], timeout=60)


@_purpose(reads=True)
def task_states(stack: StackConfig, name: str) -> Command:
    """The current state of each of the service's tasks, those shutting down included."""
    return Command([stack.docker, "service", "ps", "--no-trunc", "--format", "{{.CurrentState}}",
                    service(stack, name)], timeout=30)


@_purpose(reads=True)
def task_containers(stack: StackConfig, name: str, *, running: bool = True) -> Command:
    """Containers of one of the stack's services on this node (the manager odoo-ai talks to)."""
    argv = [stack.docker, "ps", "--quiet", "--no-trunc", "--filter",
            f"label=com.docker.swarm.service.name={service(stack, name)}"]
    if running:
        argv += ["--filter", "status=running"]
    return Command(argv, timeout=30)


@_purpose(reads=True)
def running_tasks(stack: StackConfig, name: str) -> Command:
    """Ids of the service's tasks meant to run (the current spec's; not those shutting down)."""
    return Command([stack.docker, "service", "ps", "--quiet", "--no-trunc", "--filter", "desired-state=running",
                    service(stack, name)], timeout=30)


@_purpose(reads=True)
def local_task_containers(stack: StackConfig, name: str, *, latest: bool = False) -> Command:
    """`container id<TAB>task id` of the service's containers on this node (--latest: the newest, any state)."""
    argv = [stack.docker, "ps", "--no-trunc", "--filter", f"label=com.docker.swarm.service.name={service(stack, name)}",
            "--format", '{{.ID}}\t{{.Label "com.docker.swarm.task.id"}}']
    return Command(argv + (["--all", "--latest"] if latest else ["--filter", "status=running"]), timeout=30)


@_purpose(reads=True)
def container_logs(stack: StackConfig, container: str, tail: int = 40) -> Command:
    return Command([stack.docker, "logs", "--tail", str(tail), container], timeout=30)


@_purpose(reads=True)
def container_health(container: str, docker: str) -> Command:
    return Command([docker, "inspect", "--format",
                    "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", container], timeout=30)


@_purpose()
def job_create(stack: StackConfig, name: str, image: str, env_file: Path, argv: list[str], *,
               deploy_id: str) -> Command:
    """The module update as a `replicated-job` service of the NEW image on the stack's
    network, the filestore mounted; it runs once (no restart) and is removed afterwards."""
    return Command([stack.docker, "service", "create", "--detach", "--name", name, "--mode", "replicated-job",
                    "--restart-condition", "none", "--with-registry-auth", "--network", network(stack),
                    "--env-file", str(env_file), "--label", f"{UPDATE_LABEL}={stack.project}",
                    "--label", f"org.odoo-ai.deploy={deploy_id}", "--mount", volume_mount(stack),
                    image, *argv], timeout=120)


@_purpose(reads=True)
def job_state(stack: StackConfig, name: str) -> Command:
    """`<task state>|<exit code>|<error>` of the job's task(s), one line each."""
    fmt = "{{.Status.State}}|{{.Status.ContainerStatus.ExitCode}}|{{.Status.Err}}"
    return Command([stack.docker, "inspect", "--type", "task", "--format", fmt, name], timeout=30)


@_purpose(reads=True)
def job_tasks(stack: StackConfig, name: str) -> Command:
    return Command([stack.docker, "service", "ps", "--quiet", "--no-trunc", name], timeout=30)


@_purpose(reads=True)
def service_logs(stack: StackConfig, name: str, *, tail: int | None = None, follow: bool = False,
                 timestamps: bool = False) -> Command:
    argv = [stack.docker, "service", "logs", "--no-task-ids"]
    if timestamps:
        argv.append("--timestamps")
    if follow:
        argv.append("--follow")
    if tail is not None:
        argv += ["--tail", str(tail)]
    return Command(argv + [name], timeout=None if follow else 30)


@_purpose()
def service_rm(stack: StackConfig, names: list[str]) -> Command:
    return Command([stack.docker, "service", "rm", *names], timeout=120)


@_purpose(reads=True)
def update_jobs(stack: StackConfig) -> Command:
    """Module update job services of this stack (a killed deploy's orphans)."""
    return Command([stack.docker, "service", "ls", "--quiet", "--filter", f"label={UPDATE_LABEL}={stack.project}"],
                   timeout=60)


@_purpose(reads=True)
def network_exists(stack: StackConfig) -> Command:
    return Command([stack.docker, "network", "ls", "--quiet", "--filter", f"name=^{network(stack)}$"], timeout=30)


@_purpose()
def volume_rm(stack: StackConfig, name: str) -> Command:
    return Command([stack.docker, "volume", "rm", "--force", name], timeout=60)


def translate(argv: list[str], *, stack: StackConfig, db_container: str | None, tools_image: str | None,
              pg_env: Path | None = None) -> list[str] | None:
    """The compose engine's `compose exec -T db …` and `compose run --rm … script-runner …`
    as the docker commands that do the same on a swarm stack (None: not one of them; it
    runs as it is). Pure: the db task's container and the script-runner image are given.
    With an external PostgreSQL (ODOO_SWARM_EXTERNAL_DB) the db commands run in a client
    container of ODOO_DB_IMAGE on the stack's network, PGHOST/PGPORT/PGPASSWORD from the
    0600 env file `pg_env`, the snapshots folder mounted where the db service has it."""
    if len(argv) < 2 or argv[1] != "compose":
        return None
    i = 2
    while i < len(argv) and argv[i] in COMPOSE_OPTIONS:
        i += 2
    sub = argv[i:]
    docker = argv[0]
    if sub[:3] == ["exec", "-T", "db"] and stack.swarm.external_db:
        return [docker, "run", "--rm", "-i", "--network", network(stack), "--env-file", str(pg_env),
                "--mount", f"type=bind,source={stack.state_root / 'snapshots'},target={SNAPSHOT_DIR_DB}",
                stack.db_image, *sub[3:]]
    if sub[:3] == ["exec", "-T", "db"]:
        if not db_container:
            return [docker, "exec", "-i", "odoo-ai-no-running-db-task", *sub[3:]]
        return [docker, "exec", "-i", db_container, *sub[3:]]
    if sub[:1] == ["run"] and "script-runner" in sub:
        at = sub.index("script-runner")
        options = sub[1:at]
        entrypoint: list[str] = []
        if "--entrypoint" in options:
            entrypoint = ["--entrypoint", options[options.index("--entrypoint") + 1]]
        attach = ["--detach"] if "--detach" in options else ["-i"]
        return [docker, "run", "--rm", *attach, "--network", "none", "--mount", volume_mount(stack),
                "--mount", f"type=bind,source={stack.state_root / 'snapshots'},target={SNAPSHOT_DIR_TOOLS}",
                *entrypoint, tools_image or "odoo-ai-no-script-runner-image", *sub[at + 1:]]
    return None
