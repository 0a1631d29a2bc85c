"""The deploy's pure decisions: what the module step runs, which release a rollback
targets and which snapshot holds its data, and what a failure report shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odoo_ai.deploy.policy import (
    DbState,
    UpdatePlan,
    answers_500,
    gate_rows,
    parse_image_addons,
    pick_rollback,
    plan_update,
)
from odoo_ai.errors import ConfigError
from odoo_ai.excerpt import cause, failure_excerpt

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "odoo18-logs"
REQ = ["base", "oai_demo"]


def db(*, exists: bool = True, missing=(), installed=None, recorded: bool = False) -> DbState:
    installed = installed if installed is not None else {"base": "", "oai_demo": ""}
    return DbState(exists=exists, initialized=exists, missing={m: "uninstalled" for m in missing},
                   installed=installed, has_checksums=recorded)


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        # a new database: -i of every required module, nothing else
        (dict(db=db(exists=False), mode="auto", previous_hash=None),
         UpdatePlan(install=("base", "oai_demo"), update=None, reason="new database")),
        # same image again: nothing to run
        (dict(db=db(), mode="auto", previous_hash="h1"), UpdatePlan(reason="no addon changed")),
        # an addon changed: -u of the update list
        (dict(db=db(), mode="auto", previous_hash="h0"), UpdatePlan(update="all", reason="an addon changed")),
        # a required module is missing although no addon changed: -i of it (a -u would do nothing)
        (dict(db=db(missing=["oai_demo"]), mode="auto", previous_hash="h1"),
         UpdatePlan(install=("oai_demo",), reason="new: oai_demo; no addon changed")),
        # both
        (dict(db=db(missing=["oai_demo"]), mode="auto", previous_hash="h0"),
         UpdatePlan(install=("oai_demo",), update="all", reason="new: oai_demo; an addon changed")),
        # unknown hashes: update, to be safe
        (dict(db=db(), mode="auto", previous_hash=None), UpdatePlan(update="all", reason="addons hash unknown")),
        (dict(db=db(), mode="always", previous_hash="h1"), UpdatePlan(update="all", reason="--update always")),
        (dict(db=db(missing=["oai_demo"]), mode="never", previous_hash="h0"), UpdatePlan(reason="--update never")),
    ],
)
def test_plan_update(kw: dict, expected: UpdatePlan) -> None:
    got = plan_update(required=REQ, update_modules="all", addons_hash="h1", **kw)
    assert got == expected
    assert got.runs == bool(expected.install or expected.update)


SUMS = {"base": "a" * 64, "web": "b" * 64, "oai_demo": "c" * 64, "oai_extra": "d" * 64}


@pytest.mark.parametrize(
    ("installed", "missing", "expected_update", "expected_reason"),
    [
        # the database recorded the image's checksums: nothing to do, not even a snapshot
        ({"base": "a" * 64, "oai_demo": "c" * 64}, [], None, "no module changed"),
        # one module's code changed: exactly that one is updated (Odoo cascades to dependents)
        ({"base": "a" * 64, "oai_demo": "0" * 64}, [], "oai_demo", "checksum changed: oai_demo"),
        # Odoo itself changed: base too
        ({"base": "0" * 64, "oai_demo": "0" * 64}, [], "base,oai_demo", "checksum changed: base, oai_demo"),
        # a module installed by hand, never recorded: updated once
        ({"base": "a" * 64, "oai_demo": "c" * 64, "web": ""}, [], "web", "checksum changed: web"),
        # a new required module: -i, and the rest untouched
        ({"base": "a" * 64, "oai_demo": "c" * 64}, ["oai_extra"], None, "new: oai_extra; no module changed"),
    ],
)
def test_per_module_checksums_decide_what_is_updated(installed, missing, expected_update, expected_reason) -> None:
    state = DbState(exists=True, initialized=True, missing={m: "uninstalled" for m in missing}, installed=installed,
                    has_checksums=True)
    got = plan_update(db=state, mode="auto", required=["base", "oai_demo", *missing], update_modules="auto",
                      addons_hash="h1", previous_hash="h0", image_sums=SUMS)
    assert got.update == expected_update and got.reason == expected_reason and got.per_module
    assert got.install == tuple(missing)


def test_removed_modules_are_reported_and_untouched() -> None:
    state = DbState(exists=True, initialized=True, installed={"base": "a" * 64, "gone_mod": "e" * 64},
                    has_checksums=True)
    got = plan_update(db=state, mode="auto", required=["base"], update_modules="auto", addons_hash="h1",
                      previous_hash="h0", image_sums=SUMS)
    assert got.removed == ("gone_mod",) and got.update is None


def test_without_recorded_checksums_auto_falls_back_to_the_addons_hash() -> None:
    state = DbState(exists=True, initialized=True, installed={"base": "", "oai_demo": ""}, has_checksums=False)
    got = plan_update(db=state, mode="auto", required=["base"], update_modules="auto", addons_hash="h1",
                      previous_hash="h0", image_sums=SUMS)
    assert got.update == "all" and "no checksums recorded in the database yet" in got.reason
    same = plan_update(db=state, mode="auto", required=["base"], update_modules="auto", addons_hash="h1",
                       previous_hash="h1", image_sums=SUMS)
    assert same.update is None
    # ODOO_UPDATE=all and a named list override the per-module decision
    recorded = DbState(exists=True, initialized=True, installed={"base": "a" * 64}, has_checksums=True)
    assert plan_update(db=recorded, mode="auto", required=["base"], update_modules="all", addons_hash="h1",
                       previous_hash="h0", image_sums=SUMS).update == "all"
    assert plan_update(db=recorded, mode="always", required=["base"], update_modules="auto", addons_hash="h1",
                       previous_hash="h1", image_sums=SUMS).update == "all"


def test_image_addons_answer() -> None:
    sums = {"base": "a" * 64, "Bad-Name": "b" * 64, "web": "not hex"}
    assert parse_image_addons("h1\n---\n" + json.dumps(sums)) == ("h1", {"base": "a" * 64})
    assert parse_image_addons("h1\n---\n") == ("h1", None)  # an image built before checksums
    assert parse_image_addons("h1\n") == ("h1", None)
    assert parse_image_addons("") == (None, None)


def test_update_plan_describes_its_command() -> None:
    assert UpdatePlan(install=("a", "b"), update="c").describe() == "-i a,b -u c"
    assert UpdatePlan().describe() == "nothing" and not UpdatePlan().runs


def rel(tag: str, *, kind: str = "deploy", snapshot: str | None = None, restored: str | None = None,
        status: str = "success") -> dict:
    return {"env": "dev", "image_tag": tag, "kind": kind, "snapshot": snapshot, "restored_snapshot": restored,
            "status": status}


def test_rollback_to_a_tag_finds_the_snapshot_taken_before_the_next_update() -> None:
    history = [rel("dev-a"), rel("dev-b", snapshot="s-b")]
    target, snap = pick_rollback(history, "dev-a", env="dev")
    assert target["image_tag"] == "dev-a" and snap == "s-b"
    target, snap = pick_rollback(history, None, env="dev")  # default: the one before the current
    assert target["image_tag"] == "dev-a" and snap == "s-b"


def test_restore_db_after_a_plain_rollback_still_finds_the_data() -> None:
    """A plain rollback to A leaves B's data: A's data is still the snapshot B took."""
    history = [rel("dev-a"), rel("dev-b", snapshot="s-b"), rel("dev-a", kind="rollback")]
    target, snap = pick_rollback(history, "dev-a", env="dev")
    assert target["image_tag"] == "dev-a" and snap == "s-b"
    # and a later deploy's snapshot (holding B's schema) is not mistaken for A's data
    history.append(rel("dev-c", snapshot="s-c"))
    assert pick_rollback(history, "dev-a", env="dev")[1] == "s-b"


def test_after_a_restoring_rollback_the_data_is_the_targets() -> None:
    history = [rel("dev-a"), rel("dev-b", snapshot="s-b"),
               rel("dev-a", kind="rollback", snapshot="s-rb", restored="s-b")]
    assert pick_rollback(history, "dev-a", env="dev")[1] is None  # nothing changed since
    # going forward again to B: B's data is what the restoring rollback saved first
    target, snap = pick_rollback(history, "dev-b", env="dev")
    assert target["image_tag"] == "dev-b" and snap == "s-rb"


def test_plain_rollback_to_the_previous_release_without_data_change() -> None:
    history = [rel("dev-a"), rel("dev-b", snapshot="s-b"), rel("dev-a", kind="rollback")]
    target, snap = pick_rollback(history, None, env="dev")  # back to B: its schema is the one in use
    assert target["image_tag"] == "dev-b" and snap is None


def test_failed_releases_are_never_targets() -> None:
    history = [rel("dev-a"), rel("dev-x", status="failed", snapshot="s-x"), rel("dev-b")]
    with pytest.raises(ConfigError, match="unknown rollback target 'dev-x'"):
        pick_rollback(history, "dev-x", env="dev")
    assert pick_rollback(history, "dev-a", env="dev")[1] is None


def test_an_invalid_snapshot_id_in_the_log_is_refused() -> None:
    with pytest.raises(ConfigError, match="invalid snapshot id"):
        pick_rollback([rel("dev-a"), rel("dev-b", snapshot="../../etc")], "dev-a", env="dev")


def test_gate_rows_and_500_detection() -> None:
    assert gate_rows("pending\t0\n") == (0, {})
    assert gate_rows("pending\t2\noai_demo\tuninstalled\nx\tabsent\n") == (2, {"oai_demo": "uninstalled",
                                                                             "x": "absent"})
    assert answers_500('{"health": 500, "login": null}\n')
    assert answers_500('{"health": 200, "login": 500}')
    assert not answers_500('{"health": 503, "login": null}')
    assert not answers_500("URLError: refused")


def test_failure_excerpt_keeps_the_cause_above_the_last_lines() -> None:
    text = (FIXTURES / "40-install-acc3-i-broken_data_mod-FAILS.log").read_text()
    first = cause(text)
    assert "Failed to load registry" in first[0]
    assert any("Failed to initialize database" in line for line in first)
    assert any("KeyError: 'x_acc.missing.model'" in line for line in first)
    assert "ParseError" in first[-4] or any("ParseError" in line for line in first[-6:])
    excerpt = failure_excerpt(text, tail=5)
    assert excerpt.splitlines()[0] == first[0] and "[…]" in excerpt
    assert excerpt.splitlines()[-1] == text.rstrip().splitlines()[-1]


def test_failure_excerpt_of_clean_output_is_its_tail() -> None:
    text = "\n".join(f"2026-11-25 23:25:04,026 1 INFO db odoo.x: line {i} " for i in range(40))
    assert failure_excerpt(text, tail=3).splitlines() == text.rstrip().splitlines()[-3:]
    bare = "boom\nTraceback (most recent call last):\n  File \"x\", line 1\nValueError: no\n" + "\n".join(
        f"2026-11-25 23:25:04,026 1 INFO db odoo.x: after {i} " for i in range(30))
    assert failure_excerpt(bare, tail=2).splitlines()[:3] == ["Traceback (most recent call last):",
                                                             '  File "x", line 1', "ValueError: no"]
