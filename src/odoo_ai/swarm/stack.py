"""status, logs and down of a swarm env (ODOO_ENGINE=swarm), on the manager odoo-ai talks
to (this machine or --host). The release log, the lock and the health probe are the
compose engine's; what runs is asked of swarm (services, their tasks)."""

from __future__ import annotations

import time
from typing import Any

from odoo_ai import releases
from odoo_ai.config.stack import StackConfig
from odoo_ai.deploy.engine import read_history
from odoo_ai.deploy.policy import pick_rollback
from odoo_ai.errors import ConfigError, OdooAiError
from odoo_ai.hosts import Host
from odoo_ai.swarm import plan as splan
from odoo_ai.swarm.engine import NEXT_STACK_FILE, STACK_FILE

SERVICES = ("web", "cron", "db", "proxy")


def services(stack: StackConfig, host: Host) -> list[dict[str, Any]]:
    """Each service of the stack: name, replicas running/wanted, the spec's image, the
    update state (swarm's), and its tasks meant to run."""
    listed = host.run(splan.stack_services(stack), capture=True)
    out = []
    for line in listed.stdout.splitlines() if listed.ok else []:
        name, replicas, _image = (line.split("\t") + ["", ""])[:3]
        short = name.removeprefix(f"{stack.project}_")
        info = host.run(splan.service_update_state(stack, short), capture=True)
        state, message, _want, image = (info.stdout.strip().split("|") + ["", "", "", ""])[:4]
        tasks = host.run(splan.service_tasks(stack, short), capture=True)
        rows = [dict(zip(("image", "state", "error"), t.split("\t"), strict=False))
                for t in tasks.stdout.splitlines() if t.strip()] if tasks.ok else []
        out.append({"service": short, "name": name, "replicas": replicas, "image": image,
                    "update": state or None, "update_message": message or None, "tasks": rows})
    return out


def _matches(image: str, release: dict[str, Any] | None) -> bool:
    if not release:
        return True
    ref = (release.get("images") or {}).get("web")
    digest = (release.get("digests") or {}).get("web")
    return image == ref or bool(ref and image.startswith(ref + "@")) or bool(digest and digest in image)


def status(stack: StackConfig, host: Host) -> dict[str, Any]:
    from odoo_ai.stack import probe_http

    history = read_history(host, stack)
    current = releases.current_release(history)
    previous = None
    if current:
        try:
            target, snapshot = pick_rollback(history, None, env=stack.env)
            previous = {"image_tag": target.get("image_tag"), "timestamp": target.get("timestamp"),
                        "data_snapshot": snapshot}
        except ConfigError:
            previous = None
    svcs = services(stack, host)
    drift = []
    for svc in svcs:
        running, _, wanted = svc["replicas"].partition("/")
        if running != wanted.split(" ")[0]:
            drift.append(f"{svc['service']}: {svc['replicas']} replicas running")
        if svc["service"] in ("web", "cron") and not _matches(svc["image"], current):
            drift.append(f"{svc['service']} runs {svc['image']}, not the release's {(current or {}).get('images', {}).get('web')}")
        if svc["update"] and svc["update"] != "completed":
            drift.append(f"{svc['service']}: swarm's update is {svc['update']} ({svc['update_message'] or '-'})")
    if not svcs:
        drift.append(f"no service of stack {stack.project} on this swarm")
    lock = host.lock_state(stack.state_root / "deploy.lock")
    health = probe_http(stack, host)
    unfinished = host.read_text(stack.state_root / NEXT_STACK_FILE) is not None
    return {
        "env": stack.env, "project": stack.project, "engine": "swarm",
        "host": getattr(host, "target", None) or "this machine", "state_root": str(stack.state_root),
        "release": current, "previous": previous, "services": svcs, "drift": drift, "health": health,
        "lock": lock.as_dict(), "unfinished_deploy": unfinished,
        "stack_file": str(stack.state_root / STACK_FILE),
        "ok": bool(svcs) and not drift and health["ok"],
    }


def status_lines(r: dict[str, Any]) -> list[str]:
    lines = [f"stack        {r['env']} ({r['project']}, swarm) on {r['host']}, state root {r['state_root']}"]
    release = r["release"]
    if release:
        lines.append(f"release      {release.get('image_tag')} ({release.get('kind') or 'deploy'}) at "
                     f"{release.get('timestamp')} by {release.get('actor') or '-'}")
    else:
        lines.append("release      none recorded")
    if r["previous"]:
        lines.append(f"rollback to  {r['previous']['image_tag']} (deployed {r['previous']['timestamp']})")
    for line in r["drift"]:
        lines.append(f"MISMATCH     {line}")
    checks = "; ".join(f"{c['path']} {c['status'] or c.get('error') or 'no answer'}" for c in r["health"]["checks"])
    lines.append(f"health       {checks}")
    lines.append(f"lock         {'held' if r['lock'].get('held') else 'free'}")
    if r["unfinished_deploy"]:
        lines.append("UNFINISHED   a deploy's stack.next.yml is there (running now, or killed: the next deploy undoes it)")
    for svc in r["services"]:
        lines.append(f"  {svc['service']:<10} {svc['replicas']:<8} {svc['image']}"
                     + (f"  (update {svc['update']})" if svc["update"] else ""))
    return lines


def logs(stack: StackConfig, host: Host, names: list[str], *, follow: bool, tail: int | None) -> int:
    """`docker service logs` of each service (default: web, cron, db, proxy); -f one service."""
    for name in names:
        if name not in SERVICES and name != "mailcatcher":
            raise ConfigError(f"unknown service {name!r} (known: {', '.join(SERVICES)})")
    chosen = names or list(SERVICES)
    if follow and len(chosen) != 1:
        raise ConfigError("logs --follow on swarm takes one service (e.g. odoo-ai logs ENV web -f)")
    code = 0
    for name in chosen:
        command = splan.service_logs(stack, splan.service(stack, name), tail=tail, follow=follow, timestamps=True)
        result = host.run_attached(command) if hasattr(host, "run_attached") else host.run(command, capture=False).returncode
        code = code or result
    return code


def down(stack: StackConfig, host: Host, *, volumes: bool, purge: bool) -> dict[str, Any]:
    """`docker stack rm`, under the env's lock; waits until the stack's network is gone (a
    deploy right after would otherwise race its removal). The data stays."""
    if purge:
        raise OdooAiError("down --purge is not available with ODOO_ENGINE=swarm: remove the state root by hand "
                          "after `odoo-ai down`", exit_code=2)
    with host.lock(stack.state_root / "deploy.lock", command=f"down {stack.env}", timeout=30):
        result = host.run(splan.stack_rm(stack), capture=True)
        if not result.ok:
            raise OdooAiError(f"docker stack rm {stack.project} failed: {result.tail(2)}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = host.run(splan.network_exists(stack), capture=True)
            if left.ok and not left.stdout.strip():
                break
            host.sleep(0.5, "waiting for the stack's network to go")
        removed = []
        if volumes:
            name = f"{stack.project}_filestore"
            if host.run(splan.volume_rm(stack, name), capture=True).ok:
                removed.append(name)
    return {"env": stack.env, "project": stack.project, "engine": "swarm", "volumes_removed": removed,
            "note": f"{stack.env} is down (stack {stack.project} removed; the data under {stack.state_root} stays)"}
