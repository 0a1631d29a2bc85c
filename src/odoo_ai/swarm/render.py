"""Pure: the stack file of a swarm env, from what `docker compose config --format json`
resolved for the env's Compose files and .env (the same files a compose env runs), and
the env's settings. No subprocess, no file, no clock.

What changes from Compose to the stack (docs/multi-host.md):
- every service gets a `deploy:` section: replicas, placement, update/rollback order,
  restart policy, and `endpoint_mode: dnsrr` (DNS round robin: nginx resolves `web` to
  the healthy tasks and retries the next one on a connection error; no IPVS needed);
- `web` runs N replicas with `max_cron_threads=0`, its health check is our readiness
  probe (`/web/health` and `/web/login?db=<db>`: a task gets traffic only once the
  database loads), updated start-first one task at a time, failure: pause (odoo-ai
  puts the previous digests back itself, with the database);
- `cron` is `web`'s image and settings with `--no-http`, exactly one replica, updated
  stop-first (never two cron runners);
- the filestore is a named volume whose driver and options are settings (default: a
  local bind of ODOO_DATA_DIR); Odoo logs to its output (`docker service logs`);
- a file of the repository bind-mounted into a service (the proxy's nginx config) becomes
  a swarm config named by its content hash (configs are immutable);
- `script-runner` and profile services are not stack services: the module update runs
  as a `replicated-job` service made by the deploy (`job_spec`);
- the db service is placed by a node label (or on a manager), or dropped for an external
  PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from odoo_ai.config.stack import StackConfig
from odoo_ai.plan.deploy import GATE_PROBE

STACK_VERSION = "3.9"  # docker stack deploy (CLI 20.10 and later) reads this schema
FILESTORE_VOLUME = "filestore"
DATA_MOUNT = "/volumes/data"
LOG_MOUNT = "/volumes/logs"
PROXY_STATE_MOUNT = "/etc/nginx/odoo-ai"  # the compose engine's upstream pinning: not used on swarm
NOT_STACK_SERVICES = ("script-runner",)
# Keys of a Compose service that a stack service carries as they are.
KEEP_KEYS = ("image", "command", "entrypoint", "environment", "healthcheck", "labels", "stop_grace_period",
             "stop_signal", "user", "working_dir", "extra_hosts", "cap_add", "cap_drop", "ulimits", "logging",
             "tmpfs", "sysctls", "hostname", "init")
# A web task leaving (an update, a scale-down) is out of swarm's DNS at once, but nginx keeps
# the addresses it resolved for `valid=2s` (docker/proxy/odoo.conf): a container gone in that
# window is an address nobody answers (a connect timeout, not a refusal nginx retries at
# once). So the task's shell receives SIGTERM, keeps Odoo serving DRAIN seconds longer, then
# passes it on; Odoo then shuts down gracefully as it does on compose.
DRAIN_SH = (
    'odoo-entrypoint "$@" & pid=$!; '
    'trap \'sleep "$ODOO_AI_DRAIN"; kill -TERM "$pid" 2>/dev/null\' TERM INT; '
    'wait "$pid"; code=$?; if [ "$code" -gt 128 ]; then wait "$pid"; code=$?; fi; exit "$code"'
)
DNS_TTL = 2.0  # nginx's resolver valid= in docker/proxy/odoo.conf
IMAGE_CMD = ["/odoo/odoo-bin"]  # docker/Dockerfile's web target CMD (an entrypoint override resets it)
UPDATE_LABEL = "org.odoo-ai.update"  # the module update job services of a stack (value: the project)


def escape(value: str) -> str:
    """A value written into the stack file: `docker stack deploy` interpolates `$`."""
    return value.replace("$", "$$")


def unescape(value: str) -> str:
    """A value of `compose config`'s output as the container will see it (`$$` -> `$`)."""
    return value.replace("$$", "$")


def db_constraint(stack: StackConfig) -> str:
    label = stack.swarm.db_node_label
    if label:
        key, _, value = label.partition("=")
        return f"node.labels.{key}=={value}"
    return "node.role==manager"


def filestore_volume(stack: StackConfig) -> dict[str, Any]:
    """The filestore volume: the driver and options of the settings; the local driver without
    options binds ODOO_DATA_DIR (the filestore stays where a compose env keeps it)."""
    swarm = stack.swarm
    options = dict(swarm.filestore_options)
    if swarm.filestore_driver == "local" and not options:
        options = {"type": "none", "o": "bind", "device": str(stack.data_dir)}
    volume: dict[str, Any] = {"driver": swarm.filestore_driver}
    if options:
        volume["driver_opts"] = {k: escape(v) for k, v in options.items()}
    return volume


def config_key(path: str) -> str:
    """A swarm config's key in the stack file for a repository file (`docker/proxy/odoo.conf`
    -> `proxy_odoo_conf`)."""
    parts = Path(path).parts[-2:]
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts)).strip("_")[:40] or "file"


def _ports(ports: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    out = []
    for port in ports or []:
        published = port.get("published")
        entry: dict[str, Any] = {"target": int(port["target"]), "protocol": port.get("protocol") or "tcp",
                                 "mode": mode}
        if published not in (None, ""):
            entry["published"] = int(str(published).split("-", 1)[0])
        out.append(entry)
    return out


def _volumes(svc: Mapping[str, Any], stack: StackConfig, file_hashes: Mapping[str, str],
             configs: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, configs) of one service."""
    volumes: list[dict[str, Any]] = []
    used_configs: list[dict[str, Any]] = []
    for vol in svc.get("volumes") or []:
        target = vol.get("target")
        source = str(vol.get("source") or "")
        if vol.get("type") == "bind" and (target == DATA_MOUNT or source == str(stack.data_dir)):
            volumes.append({"type": "volume", "source": FILESTORE_VOLUME, "target": target})
        elif vol.get("type") == "bind" and (target in (LOG_MOUNT, PROXY_STATE_MOUNT)):
            continue  # Odoo logs to its output; the proxy follows the `web` name, never a pinned task
        elif vol.get("type") == "bind" and source in file_hashes:
            key = config_key(source)
            configs[key] = {"file": source, "name": f"{stack.project}_{key}_{file_hashes[source][:12]}"}
            used_configs.append({"source": key, "target": target})
        elif vol.get("type") == "bind":
            entry = {"type": "bind", "source": source, "target": target}
            if vol.get("read_only"):
                entry["read_only"] = True
            volumes.append(entry)
        else:
            entry = {k: v for k, v in vol.items() if k in ("type", "source", "target", "read_only")}
            volumes.append(entry)
    return volumes, used_configs


def _deploy(*, replicas: int, order: str, stop_grace: int, constraint: str | None = None,
            dnsrr: bool = True) -> dict[str, Any]:
    deploy: dict[str, Any] = {
        "mode": "replicated", "replicas": replicas,
        "update_config": {"parallelism": 1, "delay": "0s", "order": order, "failure_action": "pause",
                          "monitor": "2s", "max_failure_ratio": 0},
        "rollback_config": {"parallelism": 1, "order": order, "failure_action": "pause"},
        "restart_policy": {"condition": "any", "delay": "2s"},
    }
    if dnsrr:
        deploy["endpoint_mode"] = "dnsrr"
    if constraint:
        deploy["placement"] = {"constraints": [constraint]}
    return deploy


def web_healthcheck(stack: StackConfig, *, interval: float, start_period: float) -> dict[str, Any]:
    """The readiness probe of the compose engine's gate as the task's health check: swarm
    sends a task no traffic (and an update does not go on) until the database loads."""
    return {"test": ["CMD", "python3", "-c", escape(GATE_PROBE), "8069", escape(stack.db_name)],
            "interval": f"{max(interval, 1):g}s", "timeout": "10s", "retries": 3,
            "start_period": f"{max(start_period, 1):g}s"}


def _db_environment(env: dict[str, Any], stack: StackConfig) -> dict[str, Any]:
    if stack.swarm.external_db:
        host, _, port = stack.swarm.external_db.rpartition(":")
        env = {**env, "ODOO_DB_HOST": host, "ODOO_DB_PORT": port}
    return env


def with_drain(service: dict[str, Any], seconds: float, default_command: list[str]) -> dict[str, Any]:
    """The service run under DRAIN_SH (unless the Compose files set their own entrypoint)."""
    if service.get("entrypoint"):
        return service
    command = service.get("command") or default_command
    return {**service, "entrypoint": ["/bin/sh", "-c", escape(DRAIN_SH), "odoo-drain"], "command": command,
            "environment": {**(service.get("environment") or {}), "ODOO_AI_DRAIN": f"{seconds:g}"}}


def render_stack(config: Mapping[str, Any], stack: StackConfig, *, file_hashes: Mapping[str, str],
                 gate_interval: float = 2.0, start_period: float = 180.0, stop_grace: int = 30,
                 web_replicas: int | None = None, drain_seconds: float = 2.0) -> dict[str, Any]:
    """The stack file (as data, to be written as YAML) of `config` (compose config's JSON).
    `file_hashes`: sha256 of each repository file a service bind-mounts (they become swarm
    configs). `web_replicas`: override (0 for the services a first deploy starts before
    the database exists)."""
    services: dict[str, Any] = {}
    configs: dict[str, dict[str, Any]] = {}
    replicas = stack.swarm.web_replicas if web_replicas is None else web_replicas
    for name, svc in (config.get("services") or {}).items():
        if name in NOT_STACK_SERVICES or svc.get("profiles"):
            continue
        if name == "db" and stack.swarm.external_db:
            continue
        out: dict[str, Any] = {k: svc[k] for k in KEEP_KEYS if svc.get(k) is not None}
        out["networks"] = sorted(svc.get("networks") or {"default": None})
        volumes, used = _volumes(svc, stack, file_hashes, configs)
        if volumes:
            out["volumes"] = volumes
        if used:
            out["configs"] = used
        if svc.get("ports"):
            out["ports"] = _ports(svc["ports"], stack.swarm.publish_mode)
        out["stop_grace_period"] = f"{stop_grace}s"
        if name == "db":
            out["deploy"] = _deploy(replicas=1, order="stop-first", stop_grace=stop_grace,
                                    constraint=db_constraint(stack))
        elif name == "web":
            env = _db_environment(dict(out.get("environment") or {}), stack)
            out["environment"] = {**env, "ODOO_MAX_CRON_THREADS": "0", "ODOO_LOGFILE": ""}
            out["healthcheck"] = web_healthcheck(stack, interval=gate_interval, start_period=start_period)
            out["deploy"] = _deploy(replicas=replicas, order="start-first", stop_grace=stop_grace)
            cron = {k: v for k, v in out.items() if k not in ("ports", "healthcheck", "deploy")}
            cron["environment"] = {**env, "ODOO_MAX_CRON_THREADS": str(max(1, stack.max_cron_threads)),
                                   "ODOO_WORKERS": "0", "ODOO_LOGFILE": ""}
            cron["command"] = ["--no-http"]
            cron["healthcheck"] = {"disable": True}
            out = with_drain(out, DNS_TTL + max(drain_seconds, 1.0), IMAGE_CMD)
            cron["deploy"] = _deploy(replicas=1 if replicas else 0, order="stop-first", stop_grace=stop_grace)
            services["cron"] = cron
        elif out.get("ports"):
            # A host-mode port can be bound by one task per node: the old task goes first.
            out["deploy"] = _deploy(replicas=1, order="stop-first", stop_grace=stop_grace,
                                    dnsrr=stack.swarm.publish_mode == "host")
        else:
            out["deploy"] = _deploy(replicas=1, order="stop-first", stop_grace=stop_grace)
        services[name] = out
    doc: dict[str, Any] = {
        "version": STACK_VERSION,
        "services": dict(sorted(services.items())),
        "networks": {"default": {"driver": "overlay", "attachable": True}},
        "volumes": {FILESTORE_VOLUME: filestore_volume(stack)},
    }
    if configs:
        doc["configs"] = configs
    return doc


def job_spec(config: Mapping[str, Any], stack: StackConfig) -> tuple[str, dict[str, str]]:
    """(image, environment as the container sees it) of the module update job: the
    script-runner service of the same config (the NEW image), logging to its output."""
    svc = (config.get("services") or {}).get("script-runner")
    if not svc:
        raise ValueError("compose config has no script-runner service")
    env = {k: unescape(str(v)) for k, v in _db_environment(dict(svc.get("environment") or {}), stack).items()
           if v is not None}
    env["ODOO_LOGFILE"] = ""
    return unescape(str(svc["image"])), env


def env_file_text(env: Mapping[str, str]) -> str:
    """`docker service create --env-file` format: KEY=VALUE lines, taken verbatim."""
    for key, value in env.items():
        if "\n" in value or "\r" in value or "\n" in key:
            raise ValueError(f"{key}: a value with a line break cannot go into an env file")
    return "".join(f"{k}={v}\n" for k, v in env.items())


def volume_mount(stack: StackConfig, target: str = DATA_MOUNT) -> str:
    """`--mount` of the stack's filestore volume for a container outside the stack (the
    update job, the tools container): the same driver and options, so that the first one
    to create the volume on a node creates it right. CSV: values with commas are quoted."""
    volume = filestore_volume(stack)
    fields = ["type=volume", f"source={stack.project}_{FILESTORE_VOLUME}", f"target={target}",
              f"volume-driver={volume['driver']}"]
    for key, value in (volume.get("driver_opts") or {}).items():
        fields.append(f"volume-opt={key}={unescape(value)}")
    return ",".join('"' + f.replace('"', '""') + '"' if "," in f or '"' in f else f for f in fields)
