"""Pure decisions of a deploy: no subprocess, no file, no clock. Table-tested in
tests/unit/test_deploy_decisions.py and tests/unit/test_deploy_table.py."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from odoo_ai import releases
from odoo_ai.errors import ConfigError

SNAPSHOT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$")
# Odoo's update can lose a race with the running server's cron for a row lock
# (DESIGN fact 11): retry those, and only those.
LOCK_ERRORS = re.compile(r"could not obtain lock|LockNotAvailable|could not serialize access|deadlock detected",
                         re.IGNORECASE)
# The update never reached PostgreSQL (psycopg2 at connect: Docker's DNS did not answer for
# `db` for a moment, or the server refused): nothing was changed, so it is tried again.
CONNECT_ERRORS = re.compile(r"could not translate host name \S+ to address|could not connect to server|"
                            r"connection to server at \S+ (?:\(\S+\), )?port \d+ failed", re.IGNORECASE)
# What `odoo-bin neutralize` logs when its first connection fails (it catches the error and
# logs no traceback): it changed nothing and may be run again.
NEUTRALIZE_CONNECT_FAILED = re.compile(r"odoo\.sql_db: Connection to the database failed[\s\S]*"
                                       r"THE DATABASE IS NOT NEUTRALIZED")


def unreachable_reason(output: str) -> str | None:
    """Why `output` says a connection to PostgreSQL failed (None: it does not)."""
    found = CONNECT_ERRORS.search(output)
    return f"could not reach PostgreSQL ({found.group(0)})" if found else None


def neutralize_retry_reason(output: str) -> str | None:
    """Why a failed `odoo-bin neutralize` may simply be run again (None: it may not)."""
    return unreachable_reason(output) or \
        ("could not reach PostgreSQL" if NEUTRALIZE_CONNECT_FAILED.search(output) else None)


def update_retry_reason(output: str) -> str | None:
    """Why a failed module update may simply be run again (None: it may not)."""
    return "lost a lock race" if LOCK_ERRORS.search(output) else unreachable_reason(output)


@dataclass(frozen=True)
class UpdatePlan:
    """What the module step runs: `-i install` and/or `-u update` (None: no -u), and why:
    `changed` (per-module checksums differ from what the database recorded), `new` (to
    install), `removed` (installed, gone from the image: reported, never touched)."""

    install: tuple[str, ...] = ()
    update: str | None = None
    reason: str = ""
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    per_module: bool = False  # decided by per-module checksums (else by the addons hash)

    @property
    def runs(self) -> bool:
        return bool(self.install or self.update)

    def describe(self) -> str:
        parts = ([f"-i {','.join(self.install)}"] if self.install else []) + \
            ([f"-u {self.update}"] if self.update else [])
        return " ".join(parts) or "nothing"


@dataclass(frozen=True)
class DbState:
    """What the database says (plan.DB_STATE_SQL): exists and initialised, the required
    modules not installed (name -> state), the installed ones (name -> recorded checksum,
    "" when none), and whether checksums were ever recorded."""

    exists: bool
    initialized: bool = False
    missing: dict[str, str] = field(default_factory=dict)
    installed: dict[str, str] = field(default_factory=dict)
    has_checksums: bool = False

    @property
    def recorded(self) -> dict[str, str] | None:
        return self.installed if self.has_checksums else None


def plan_update(*, db: DbState, mode: str, required: list[str], update_modules: str, addons_hash: str | None,
                previous_hash: str | None, image_sums: dict[str, str] | None = None) -> UpdatePlan:
    """Pure: which modules the deploy installs and updates.

    A new (or empty) database gets `-i` of every required module. Otherwise the required
    modules that are not installed get `-i` (a `-u` of an uninstalled module does nothing
    in Odoo). What gets `-u`:
      - `ODOO_UPDATE=auto` (the default) with checksums on both sides: exactly the
        installed modules whose checksum in the image differs from the one the database
        recorded at its last successful update (Odoo's `-u` also updates what depends on
        them); nothing changed: no update at all;
      - otherwise, when an addon changed (the addons hash differs from the current
        release's, or either is unknown): `-u all` for `auto`/`all`, else the named list;
      - `--update always`: `-u all` (or the named list) whatever changed;
      - `--update never`: nothing (the gate then fails if a required module is missing)."""
    if not db.exists or not db.initialized:
        return UpdatePlan(install=tuple(required), reason="new database")
    if mode == "never":
        return UpdatePlan(reason="--update never")
    install = tuple(m for m in required if m in db.missing)
    news = [f"new: {', '.join(install)}"] if install else []
    whole = "all" if update_modules == "auto" else update_modules
    removed = tuple(sorted(m for m in db.installed if image_sums is not None and m not in image_sums))
    if mode == "always":
        return UpdatePlan(install=install, update=whole, reason="; ".join([*news, "--update always"]),
                          removed=removed)
    recorded = db.recorded
    if update_modules == "auto" and image_sums is not None and recorded is not None:
        changed = tuple(sorted(m for m in db.installed if m in image_sums and recorded.get(m) != image_sums[m]))
        why = f"checksum changed: {', '.join(changed)}" if changed else "no module changed"
        return UpdatePlan(install=install, update=",".join(changed) or None, reason="; ".join([*news, why]),
                          changed=changed, removed=removed, per_module=True)
    if addons_hash and previous_hash and addons_hash == previous_hash:
        return UpdatePlan(install=install, reason="; ".join([*news, "no addon changed"]), removed=removed)
    why = "an addon changed" if addons_hash and previous_hash else "addons hash unknown"
    if update_modules == "auto":
        why += " (no checksums recorded in the database yet)" if image_sums is not None else \
            " (the image has no per-module checksums)"
    return UpdatePlan(install=install, update=whole, reason="; ".join([*news, why]), removed=removed)


def parse_image_addons(stdout: str) -> tuple[str | None, dict[str, str] | None]:
    """plan.read_addons_hash's answer: (addons hash, per-addon checksums or None)."""
    head, sep, tail = stdout.partition("\n---\n")
    words = head.split()
    addons_hash = words[0] if words else None
    if not sep or not tail.strip():
        return addons_hash, None
    try:
        data = json.loads(tail)
    except ValueError:
        return addons_hash, None
    if not isinstance(data, dict):
        return addons_hash, None
    sums = {str(k): str(v) for k, v in data.items() if MODULE_NAME.match(str(k)) and HEX.match(str(v))}
    return addons_hash, sums


MODULE_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
HEX = re.compile(r"^[0-9a-f]{64}$")


def snapshots_to_prune(history: list[dict[str, Any]], new_snapshot: str | None, keep: int) -> list[str]:
    """The snapshots no longer needed: all but those of the last `keep` successful releases
    (the one being recorded included), minus those already pruned. Ids from the log are
    input too: anything that is not a plain snapshot id is never handed to `rm`."""
    taken = [r.get("snapshot") for r in releases.successful(history)] + [new_snapshot]
    kept = set([sid for sid in taken if sid][-keep:])
    already = {sid for r in history for sid in r.get("snapshots_pruned") or []}
    stale = sorted({r.get("snapshot") for r in history if r.get("snapshot")} - kept - already)
    return [sid for sid in stale if SNAPSHOT_RE.match(str(sid)) and ".." not in sid]


def gate_rows(stdout: str) -> tuple[int | None, dict[str, str]]:
    """GATE_SQL's answer: (pending count, {required module: state} of those not installed)."""
    pending: int | None = None
    missing: dict[str, str] = {}
    for line in stdout.splitlines():
        key, _, value = line.partition("\t")
        if key == "pending":
            pending = int(value) if value.strip().isdigit() else None
        elif value:
            missing[key] = value
    return pending, missing


def state_text(state: str) -> str:
    return "absent: not in the image's addons path" if state == "absent" else state


def answers_500(probe_stdout: str) -> bool:
    try:
        answer = json.loads(probe_stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return False
    return 500 in (answer.get("health"), answer.get("login"))


def repository_of(ref: str) -> str:
    """`reg:5000/a/b:tag` and `reg:5000/a/b@sha256:…` -> `reg:5000/a/b` (a registry port is not a tag)."""
    name = ref.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    return f"{head}/{last}" if head else last


def establishes_data(record: dict[str, Any]) -> bool:
    """Did this successful release leave the database holding ITS data? A deploy did (it
    updated the schema, or its code matched it already); so did a rollback that restored
    the target's snapshot. A plain rollback did not: the data stayed the newer release's."""
    return record.get("kind") != "rollback" or bool(record.get("restored_snapshot"))


def pick_rollback(history: list[dict[str, Any]], to: str | None, *, env: str) -> tuple[dict[str, Any], str | None]:
    """Pure: the release a rollback goes back to, and the snapshot holding its data.

    The target is the latest successful release of tag `to`, or the latest one before the
    current whose tag differs. Its data is the first snapshot taken after the release that
    last established it (see `establishes_data`): a deploy snapshots just before its
    update, a rollback with --restore-db just before its restore. None: nothing changed
    the data since, so the target's code matches the database as it is."""
    done = releases.successful(history)
    current = done[-1]
    target_index: int | None = None
    if to:
        matches = [i for i, r in enumerate(done) if r.get("image_tag") == to]
        if not matches:
            known = ", ".join(dict.fromkeys(r.get("image_tag", "?") for r in reversed(done))) or "none"
            raise ConfigError(f"{env}: unknown rollback target {to!r}: no successful release with that tag "
                              f"(known: {known})")
        target_index = matches[-1]
    else:
        for i in range(len(done) - 2, -1, -1):
            if done[i].get("image_tag") != current.get("image_tag"):
                target_index = i
                break
        if target_index is None:
            raise ConfigError(f"{env}: no earlier successful release than {current.get('image_tag')} to roll back to")
    tag = done[target_index].get("image_tag")
    established = next((i for i in range(target_index, -1, -1)
                        if done[i].get("image_tag") == tag and establishes_data(done[i])), target_index)
    snapshot = next((r.get("snapshot") for r in done[established + 1:] if r.get("snapshot")), None)
    if snapshot is not None and not SNAPSHOT_RE.match(str(snapshot)):
        raise ConfigError(f"{env}: release log names an invalid snapshot id {snapshot!r}")
    return done[target_index], snapshot




def parse_db_state(stdout: str) -> DbState | None:
    """plan.DB_STATE_SQL's answer; None when the answer is not one."""
    flags: dict[str, bool] = {}
    missing: dict[str, str] = {}
    installed: dict[str, str] = {}
    for line in stdout.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in ("exists", "initialized", "checksums"):
            flags[words[0]] = words[1] in ("1", "t", "true", "on")
        elif line.startswith("installed\t"):
            _, name, recorded = (line.split("\t") + [""])[:3]
            installed[name] = recorded
        elif "\t" in line:
            name, state = line.split("\t", 1)
            missing[name] = state
    if "exists" not in flags:
        return None
    return DbState(exists=flags["exists"], initialized=flags.get("initialized", False), missing=missing,
                   installed=installed, has_checksums=flags.get("checksums", False))


def running(containers: list[dict[str, str]], service: str) -> list[str]:
    """Ids of the service's running containers (one-off `run` containers excluded)."""
    return [c["id"] for c in containers
            if c.get("service") == service and c.get("state") == "running" and c.get("oneoff") != "True"]


def services_ready(containers: list[dict[str, str]]) -> bool:
    """db running and healthy, proxy running: no `compose up` needed before the update."""
    db = [c for c in containers if c.get("service") == "db" and c.get("state") == "running"
          and c.get("oneoff") != "True"]
    return bool(db) and all("(healthy)" in c.get("status", "") for c in db) and bool(running(containers, "proxy"))


def known_addons_hash(history: list[dict[str, Any]], digest: str | None) -> str | None:
    """The addons hash recorded for an image already deployed here (by its digest): a
    rollback or a redeploy need not run a container to read it again."""
    if not digest:
        return None
    for record in reversed(history):
        if (record.get("digests") or {}).get("script-runner") == digest and record.get("addons_hash"):
            return str(record["addons_hash"])
    return None


def kept_name(db_name: str, when: float) -> str:
    """`<db>__failed_<UTC timestamp>`: the name a failed update's database is kept under
    (cut to PostgreSQL's 63 characters from the left of the db name)."""
    import datetime as dt

    suffix = "__failed_" + dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y%m%d%H%M%S")
    return db_name[: 63 - len(suffix)] + suffix


def kept_databases_to_prune(history: list[dict[str, Any]], keep: int, db_name: str) -> list[str]:
    """The databases kept by failed updates, all but the last `keep`, minus those already
    dropped; only names of this env's form are ever handed to dropdb."""
    prefix = db_name[:40]
    valid = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*__failed_[0-9]{14}$")
    kept = list(dict.fromkeys(str(r["kept_database"]) for r in history if r.get("kept_database")
                              and valid.match(str(r["kept_database"])) and str(r["kept_database"]).startswith(prefix)))
    already = {n for r in history for n in r.get("kept_databases_pruned") or []}
    return [n for n in kept[:max(0, len(kept) - keep)] if n not in already]
