"""Use-case: the Docker host's housekeeping (`odoo-ai housekeeping`, the scheduled workflow).

On the Docker host, for the envs whose state roots live there:

1. local images: `prune-images --local` (the images of the last N successful releases of
   every env, what runs and what is pinned stay; only images that can be pulled again go)
   plus, with `builds_older_than`, builds of `<env>-<sha>` that never left this host (never
   pushed: e.g. their tests failed) and are older than that;
2. the builder cache not used for `build_cache_hours` (`docker builder prune --all --filter until=`);
3. per env, holding its deploy lock (an env whose deploy is running is skipped, never waited
   for): creates `<state_root>/cache/` (the cache service's data), removes the snapshots no
   rollback can use (those of the last ODOO_DEPLOY_KEEP_SNAPSHOTS successful releases stay;
   nothing while an interrupted deploy's journal is there), and rotates Odoo's log file
   under logs/ once it reaches `log_max_bytes`, keeping `log_keep` rotated files.

Everything is decided before it is done and reported, and done through one connector:
`--dry-run` runs this same code against the dry one (odoo_ai.dryhost), which lists the
images for real and prints every removal, mkdir and lock.
A failure of one part is reported and the others still run (the CLI then exits 1).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from odoo_ai import images, releases
from odoo_ai.config.stack import StackConfig
from odoo_ai.errors import OdooAiError
from odoo_ai.hosts import Host
from odoo_ai.lock import LockHeld
from odoo_ai.plan import housekeeping as plan
from odoo_ai.plan.compose import docker_binary

CACHE_DIR = "cache"
LOCK = "deploy.lock"
JOURNAL = "deploy-journal.json"  # odoo_ai.deploy.journal.JOURNAL (not imported: deploy pulls in much more)


def housekeeping(all_stacks: list[StackConfig], scope: list[StackConfig], host: Host, *,
                 keep: int, all_envs: bool, build_cache_hours: float | None, log_max_bytes: int, log_keep: int,
                 builds_older_than: dt.timedelta | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    failures: list[str] = []
    result: dict[str, Any] = {"dry_run": host.dry_run, "keep": keep, "envs": [s.env for s in scope]}
    try:
        result["images"] = images.prune_local(all_stacks, scope, host, keep=keep, all_envs=all_envs,
                                              builds_older_than=builds_older_than, now=now)
        failures += result["images"].get("failures", [])
    except OdooAiError as exc:
        failures.append(f"local images: {exc.message}")
    docker = all_stacks[0].docker if all_stacks else docker_binary()
    if build_cache_hours is not None:
        done = host.run(plan.builder_prune(docker, build_cache_hours), capture=True)
        result["build_cache"] = {"older_than_hours": build_cache_hours, "ok": done.ok,
                                 "reclaimed": plan.reclaimed(done.stdout)}
        if not done.ok:
            failures.append(f"docker builder prune: {done.tail(1)}")
    result["stacks"] = [_stack(stack, host, log_max_bytes=log_max_bytes, log_keep=log_keep, failures=failures)
                        for stack in scope]
    result["failures"] = failures
    return result


def _stack(stack: StackConfig, host: Host, *, log_max_bytes: int, log_keep: int,
           failures: list[str]) -> dict[str, Any]:
    root = stack.state_root
    report: dict[str, Any] = {"env": stack.env, "state_root": str(root), "notes": []}
    notes: list[str] = report["notes"]
    if not root.is_dir():
        notes.append(f"no state root {root} on this host: nothing to do")
        return report
    try:
        with host.lock(root / LOCK, command=f"housekeeping {stack.env}", timeout=0):
            host.mkdir(root / CACHE_DIR)
            report["cache_dir"] = str(root / CACHE_DIR)
            report["snapshots"] = _snapshots(stack, host, notes, failures)
            report["log"] = _log(stack, host, log_max_bytes, log_keep, notes, failures)
    except LockHeld as exc:
        notes.append(f"skipped: a deploy holds the lock ({exc.message})")
    return report


def _snapshots(stack: StackConfig, host: Host, notes: list[str], failures: list[str]) -> dict[str, Any]:
    folder = stack.state_root / "snapshots"
    on_disk = plan.snapshot_ids(p.name for p in folder.iterdir()) if folder.is_dir() else []
    found = {"on_disk": on_disk, "removed": [], "kept": on_disk}
    if not on_disk:
        return found
    log = releases.release_log_path(stack)
    if not log.exists():
        notes.append(f"snapshots kept: no release log ({log}) tells which ones a rollback needs")
        return found
    if (stack.state_root / JOURNAL).exists():
        notes.append("snapshots kept: an interrupted deploy's journal is there (the next deploy recovers it first)")
        return found
    if not stack.dotenv_path.exists():
        notes.append(f"snapshots kept: no rendered {stack.dotenv_path} to run the removal container with")
        return found
    history = releases.read_releases(log, on_error=lambda *a: None)
    stale = plan.stale_snapshots(on_disk, history, stack.deploy.keep_snapshots)
    found["kept"] = [sid for sid in on_disk if sid not in stale]
    if not stale:
        return found
    # the deploy's own removal: as root, in a one-off script-runner (pg_dump wrote them as root)
    from odoo_ai.plan.deploy import remove_snapshots

    done = host.run(remove_snapshots(stack, stale, stack.dotenv_path), capture=True)
    if done.ok:
        found["removed"] = stale
    else:
        failures.append(f"{stack.env}: removing snapshots {', '.join(stale)}: {done.tail(1)}")
    return found


def _log(stack: StackConfig, host: Host, max_bytes: int, keep: int, notes: list[str],
         failures: list[str]) -> dict[str, Any]:
    path, _ = plan.odoo_log(stack)
    size = path.stat().st_size if path.is_file() else None
    found: dict[str, Any] = {"file": str(path), "bytes": size, "max_bytes": max_bytes, "keep": keep,
                             "rotated": False}
    if size is None or size < max_bytes:
        return found
    if not stack.dotenv_path.exists():
        notes.append(f"log not rotated: no rendered {stack.dotenv_path} to run the rotation container with")
        return found
    done = host.run(plan.rotate_log(stack, keep=keep, max_bytes=max_bytes), capture=True)
    if done.ok:
        found["rotated"] = "rotated" in done.stdout
    else:
        failures.append(f"{stack.env}: rotating {path}: {done.tail(1)}")
    return found
