"""The release record a deploy, rollback or recovery appends to <state_root>/releases.log:
one typed record, built in one place (readers stay tolerant: releases.parse_releases)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from odoo_ai.deploy.journal import Deployment, now


@dataclass
class Release:
    timestamp: str
    env: str
    kind: str  # deploy | rollback
    image_tag: str
    commit: str | None
    digests: dict[str, str]
    images: dict[str, str]
    status: str  # success | failed
    phase: str | None  # the failing phase (or, for a recovered run, where it was killed)
    duration: float | None
    previous_tag: str | None
    snapshot: str | None  # taken before this release changed the data
    restored_snapshot: str | None  # rollback --restore-db: the target's data
    updated: bool
    modules: dict[str, Any]
    addons_hash: str | None
    actor: str
    ci_run_url: str | None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    snapshots_pruned: list[str] = field(default_factory=list)
    kept_database: str | None = None  # failed: the database the failed update touched, renamed
    kept_databases_pruned: list[str] = field(default_factory=list)
    error: str | None = None
    undone: list[str] | None = None
    output: str | None = None  # failed: Odoo's cause and last lines
    note: str | None = None  # recovered: what happened to the killed run
    # Each phase that ran, in order: {name, seconds, ok} (the failing one last, ok false);
    # empty for a recovered run (a killed run's timings die with it).
    phases: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, dep: Deployment, status: str, *, duration: float | None, phase: str | None = None,
           **extra: Any) -> Release:
        ok = status == "success"
        return cls(
            timestamp=now(), env=dep.env, kind=dep.kind, image_tag=dep.tag, commit=dep.commit,
            digests=dep.digests, images=dep.images, status=status, phase=phase, duration=duration,
            previous_tag=dep.previous_tag, snapshot=dep.snapshot,
            restored_snapshot=dep.restored_snapshot if ok else None, updated=dep.updated if ok else False,
            modules=modules_view(dep), addons_hash=dep.addons_hash, actor=actor(), ci_run_url=ci_url(),
            notes=list(dep.notes), warnings=list(dep.warnings), snapshots_pruned=list(dep.snapshots_pruned),
            kept_database=dep.kept_database, kept_databases_pruned=list(dep.kept_databases_pruned),
            phases=[{"name": p.name, "seconds": p.seconds, "ok": p.ok} for p in dep.phases], **extra,
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("error", "undone", "output", "note"):  # only where they say something
            if data[key] is None:
                del data[key]
        return data


def modules_view(dep: Deployment) -> dict[str, Any]:
    return {"install": dep.install, "update": dep.update_modules, "reason": dep.update_reason,
            "changed": dep.changed, "removed": dep.removed}


def actor() -> str:
    return os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or str(os.getuid())


def ci_url() -> str | None:
    server, repo, run_id = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run_id}" if server and repo and run_id else None
