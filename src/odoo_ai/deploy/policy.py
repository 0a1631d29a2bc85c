"""Pure decisions of a deploy: no subprocess, no file, no clock. Table-tested in
tests/unit/test_deploy_decisions.py and tests/unit/test_deploy_table.py."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from odoo_ai import releases
from odoo_ai.errors import ConfigError

SNAPSHOT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$")
# Odoo's update can lose a race with the running server's cron for a row lock
# (DESIGN fact 11): retry those, and only those.
LOCK_ERRORS = re.compile(r"could not obtain lock|LockNotAvailable|could not serialize access|deadlock detected",
                         re.IGNORECASE)


@dataclass(frozen=True)
class UpdatePlan:
    """What the module step runs: `-i install` and/or `-u update` (None: no -u)."""

    install: tuple[str, ...] = ()
    update: str | None = None
    reason: str = ""

    @property
    def runs(self) -> bool:
        return bool(self.install or self.update)

    def describe(self) -> str:
        parts = ([f"-i {','.join(self.install)}"] if self.install else []) + \
            ([f"-u {self.update}"] if self.update else [])
        return " ".join(parts) or "nothing"


def plan_update(*, db_exists: bool, mode: str, required: list[str], missing: list[str],
                update_modules: str, addons_hash: str | None, previous_hash: str | None) -> UpdatePlan:
    """Pure: which modules the deploy installs and updates.

    A new database gets `-i` of every required module. Otherwise the required modules
    that are not installed get `-i` (a `-u` of an uninstalled module does nothing in
    Odoo), and the update list gets `-u` when an addon changed (the image's addons hash
    differs from the current release's, or either is unknown) or with `--update always`.
    `--update never` runs nothing (the gate then fails if a required module is missing)."""
    if not db_exists:
        return UpdatePlan(install=tuple(required), reason="new database")
    if mode == "never":
        return UpdatePlan(reason="--update never")
    install = tuple(m for m in required if m in missing)
    if mode == "always":
        update, why = update_modules, "--update always"
    elif addons_hash and previous_hash and addons_hash == previous_hash:
        update, why = None, "no addon changed"
    else:
        update, why = update_modules, ("an addon changed" if addons_hash and previous_hash
                                       else "addons hash unknown")
    reasons = ([f"required module(s) not installed: {', '.join(install)}"] if install else []) + [why]
    return UpdatePlan(install=install, update=update, reason="; ".join(reasons))



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




def parse_db_state(stdout: str) -> tuple[bool | None, dict[str, str]]:
    """plan.DB_STATE_SQL's answer: (database exists, {module: state} not installed);
    None when the answer is not one."""
    exists: bool | None = None
    missing: dict[str, str] = {}
    for line in stdout.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "exists" and words[1] in ("0", "1"):
            exists = words[1] == "1"
        elif "\t" in line:
            name, state = line.split("\t", 1)
            missing[name] = state
    return exists, missing


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
