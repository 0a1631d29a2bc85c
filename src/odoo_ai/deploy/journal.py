"""The state of one deploy as it goes, and the journal that persists it
(<state_root>/deploy-journal.json, 0600) so that the next run can undo what a killed
one left half done."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

JOURNAL = "deploy-journal.json"


@dataclass
class PhaseRecord:
    name: str
    seconds: float
    ok: bool
    detail: str = ""


@dataclass
class Deployment:
    """The state of one deploy as it goes (also what the journal persists)."""

    env: str
    kind: str
    tag: str
    started: str
    deploy_id: str = ""
    previous_tag: str | None = None
    phase: str = "start"
    snapshot: str | None = None
    snapshot_time: str | None = None  # the database's UTC clock when the snapshot was taken
    kept_database: str | None = None  # the database a failed update touched, kept for recovery
    maintenance: bool = False  # the proxy answers 503 (ODOO_DEPLOY_WEB_DURING_UPDATE=maintenance)
    restored_snapshot: str | None = None  # rollback --restore-db: the target's data
    replaced_db: str | None = None  # ... and the data it replaced (db + filestore), dropped after the switch
    db_may_change: bool = False  # set (and journaled) before anything can change the database
    db_created: bool = False  # the database did not exist: this deploy creates it
    update_container: str | None = None
    updated: bool = False
    install: list[str] = field(default_factory=list)
    update_modules: str | None = None
    update_reason: str = ""
    changed: list[str] = field(default_factory=list)  # modules whose checksum changed
    removed: list[str] = field(default_factory=list)  # installed, no longer in the image
    web_stopped: bool = False
    old_containers: list[str] = field(default_factory=list)
    new_container: str | None = None
    log_offset: int = 0
    images: dict[str, str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    commit: str | None = None
    addons_hash: str | None = None
    phases: list[PhaseRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    snapshots_pruned: list[str] = field(default_factory=list)
    kept_databases_pruned: list[str] = field(default_factory=list)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")




def dump(dep: Deployment) -> str:
    return json.dumps({k: v for k, v in dep.__dict__.items() if k != "phases"}, indent=2) + "\n"


def load(text: str) -> Deployment:
    """A journal read back; ValueError/TypeError when it is not one."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return Deployment(**{k: v for k, v in data.items() if k in Deployment.__dataclass_fields__ and k != "phases"})
