"""Table tests of the deploy engine: scripted connector answers in, the whole command
sequence out (by `Command.purpose`: the planning function that made each command, whose
argv tests/unit/test_plan.py checks), plus the key argv, journal and release record.
Every scenario of a deploy and a rollback, and the recovery after a kill at each phase."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from odoo_ai.config.stack import load_stack
from odoo_ai.deploy import JOURNAL, Deployer, DeployFailed, Deployment, DeploySettings
from odoo_ai.deploy import journal as journal_mod
from odoo_ai.runners.base import Result
from tests.unit.deploy_script import ScriptedHost, ok

SECRETS = {"ODOO_DB_PASSWORD": "db-secret", "ODOO_MASTER_PASSWORD": "master-secret"}
OLD, NEW = "dev-1111111", "dev-2222222"

# The phases every deploy goes through, by the commands they run.
# pull, pin digests, read the addons hash, the project's containers (db and proxy already
# up: no `compose up`), the database and the required modules' states in one psql
HEAD = ["pull", "image_inspect", "image_inspect", "read_addons_hash", "project_containers", "db_state"]
START_GATE_SWITCH = ["proxy_reload_in",  # pin the proxy to the old one (its name from docker ps)
                     "start_web_beside", "web_container_ids",
                     "container_state", "gate_probe", "gate_modules",
                     "proxy_switch"]  # switch: nginx's workers listed and the reload in one exec
DRAIN_CONVERGE = ["config_hashes",  # read while the old web drains: something to converge (the script says so)
                  "inflight_requests",  # nginx's old workers unknown, none in flight: no wait
                  "signal_container", "wake_workers", "wait_container", "remove_container", "proxy_reload_in",
                  "converge", "web_container_ids"]
SWAP = ["restore_db_into", "restore_db_into", "restore_db_into",
        "tools_start", "prepare_filestore",  # in a sleeping tools container: the swap is a docker exec
        "web_container_ids",
        "pause", "inflight_requests",  # the proxy holds new requests, the old web's own finish
        "pause", "swap_restored_db", "swap_filestore", "unpause", "unpause", "remove_container"]
UNDO_RESTORE = [*SWAP, "user_writes"]  # a failed update: its database is kept, checked for users' writes
UNDO_HEAD = ["update_containers", "paused_containers"]


@pytest.fixture
def stack(repo: Path, home: Path):
    (repo / "docker" / "config" / "dev.env").write_text("ODOO_UPDATE=demo\nODOO_INSTALL=extra\n")
    return load_stack("dev", repo_root=repo, home=home)


def release(tag: str, **extra) -> str:
    record = {"schema": 1, "env": "dev", "kind": "deploy", "image_tag": tag, "status": "success",
              "addons_hash": "hash-old", "images": {"web": f"odoo-ai/odoo-web:{tag}",
                                                     "script-runner": f"odoo-ai/odoo-script-runner:{tag}"},
              **extra}
    return json.dumps(record) + "\n"


def serving(stack, log: str = "", **answers) -> ScriptedHost:
    """A stack serving OLD: its .env, its release, one web container."""
    files = {stack.dotenv_path: "ODOO_IMAGE_TAG=dev-1111111\n",
             stack.state_root / "releases.log": log or release(OLD)}
    return ScriptedHost(answers, files=files)


def deploy(stack, host: ScriptedHost, tag: str = NEW, **kw) -> dict:
    return Deployer(stack, host, settings=DeploySettings.from_stack(stack), environ=SECRETS).run(tag, **kw)


def fails(stack, host: ScriptedHost, tag: str = NEW, **kw) -> DeployFailed:
    with pytest.raises(DeployFailed) as info:
        deploy(stack, host, tag, **kw)
    return info.value


def test_first_deploy_installs_every_required_module(stack) -> None:
    host = ScriptedHost({"db_state": ok("exists 0\n")}, webs=[], services_up=False)
    result = deploy(stack, host)
    assert host.trace() == ["pull", "image_inspect", "image_inspect", "read_addons_hash", "project_containers",
                            "ensure_services", "project_containers", "db_state", "module_update",
                            "start_web_beside", "web_container_ids", "container_state", "gate_probe", "gate_modules",
                            "proxy_switch", "config_hashes", "proxy_reload_in",
                            "converge", "web_container_ids"]
    argv = host.argv("module_update")
    assert argv[argv.index("-i") + 1] == "base,extra,demo" and "-u" not in argv
    assert result["modules"] == {"install": ["base", "extra", "demo"], "update": None, "reason": "new database",
                                 "changed": [], "removed": []}
    assert host.records[-1]["status"] == "success" and host.records[-1]["snapshot"] is None
    assert stack.state_root / JOURNAL not in host.files and stack.state_root / ".env.next" not in host.files
    assert stack.dotenv_path in host.files


def test_same_addons_skip_the_update_and_the_snapshot(stack) -> None:
    host = serving(stack, read_addons_hash=ok("hash-old\n"))
    result = deploy(stack, host)
    assert host.trace() == [*HEAD, *START_GATE_SWITCH, *DRAIN_CONVERGE]
    assert "module update skipped: no addon changed" in result["release"]["notes"]
    assert host.slept == []  # nothing in flight: the drain does not wait


def test_changed_addons_snapshot_then_update(stack) -> None:
    host = serving(stack)
    result = deploy(stack, host)
    assert host.trace() == [*HEAD, "db_now", "snapshot_db", "snapshot_filestore", "module_update",
                            *START_GATE_SWITCH, *DRAIN_CONVERGE]
    argv = host.argv("module_update")
    assert argv[argv.index("-u") + 1] == "demo" and "-i" not in argv
    assert argv[argv.index("--name") + 1].startswith("opw-dev-update-")
    assert result["release"]["updated"] is True and result["release"]["snapshot"].startswith(NEW)


def test_a_required_module_missing_is_installed_even_without_an_addon_change(stack) -> None:
    host = serving(stack, read_addons_hash=ok("hash-old\n"), db_state=ok("exists 1\ninitialized t\nchecksums f\nextra\tuninstalled\n"))
    result = deploy(stack, host)
    argv = host.argv("module_update")
    assert argv[argv.index("-i") + 1] == "extra" and "-u" not in argv
    assert "snapshot_db" in host.trace()
    assert result["modules"]["install"] == ["extra"]


def test_update_failure_restores_the_snapshot_and_keeps_the_old_web(stack) -> None:
    host = serving(stack, module_update=Result(255, "", "2026-01-01 00:00:00,000 1 CRITICAL db odoo.x: boom\n"))
    exc = fails(stack, host)
    assert exc.phase == "update" and "exited 255" in exc.message and "boom" in exc.output
    assert host.trace() == [*HEAD, "db_now", "snapshot_db", "snapshot_filestore", "module_update",
                            *UNDO_HEAD, "oneoff_containers", *UNDO_RESTORE, "web_container_ids", "proxy_reload_in"]
    # the swap is invisible: new requests wait at the proxy, the old web pauses, both go on after
    paused = [c.argv[-1] for c in host.calls if c.purpose == "pause"]
    assert paused == ["proxy1", "old"] and [c.argv[-1] for c in host.calls if c.purpose == "unpause"] == ["old", "proxy1"]
    record = host.records[-1]
    assert record["status"] == "failed" and record["phase"] == "update"
    assert any("restored database and filestore" in line for line in record["undone"])
    # nothing lost: the database the failed update touched is kept, with its filestore beside it
    kept = record["kept_database"]
    assert kept.startswith("opw_dev__failed_") and host.argv("swap_restored_db")[-4:] == ["-v", f"failed={kept}",
                                                                                         "-f", "-"] or \
        f"failed={kept}" in host.argv("swap_restored_db")
    assert host.argv("swap_filestore")[-1] == f"/volumes/data/filestore/{kept}"
    assert "drop_db" not in host.trace()
    assert record["warnings"] == []  # no user wrote after the snapshot
    assert stack.state_root / JOURNAL not in host.files


def test_lock_race_is_retried_once(stack) -> None:
    host = serving(stack, module_update=[Result(1, "", "could not obtain lock on row"), ok()])
    deploy(stack, host)
    assert host.trace().count("module_update") == 2 and 2 in host.slept


DNS_HICCUP = ('psycopg2.OperationalError: could not translate host name "db" to address: '
              'Name or service not known\n')


def test_an_update_that_never_reached_postgresql_is_retried_once(stack) -> None:
    host = serving(stack, module_update=[Result(1, "", DNS_HICCUP), ok()])
    result = deploy(stack, host)
    assert host.trace().count("module_update") == 2 and 2 in host.slept
    assert any('could not reach PostgreSQL (could not translate host name "db" to address)' in n
               for n in result["release"]["notes"])


def test_an_update_that_never_reaches_postgresql_fails_after_the_retry(stack) -> None:
    host = serving(stack, module_update=[Result(1, "", DNS_HICCUP), Result(1, "", DNS_HICCUP)])
    exc = fails(stack, host)
    assert exc.phase == "update" and host.trace().count("module_update") == 2


@pytest.mark.parametrize(("output", "reason"), [
    ("ERROR: could not obtain lock on row in relation", "lost a lock race"),
    (DNS_HICCUP, 'could not reach PostgreSQL (could not translate host name "db" to address)'),
    ('connection to server at "db" (172.18.0.2), port 5432 failed: Connection refused',
     'could not reach PostgreSQL (connection to server at "db" (172.18.0.2), port 5432 failed)'),
    ("could not connect to server: Connection refused", "could not reach PostgreSQL (could not connect to server)"),
    ("odoo.tools.convert.ParseError: while parsing data.xml", None),
    ("server closed the connection unexpectedly", None),  # mid-update: it may have changed something
])
def test_which_update_failures_are_run_again(output: str, reason: str | None) -> None:
    from odoo_ai.deploy.policy import update_retry_reason

    assert update_retry_reason(output) == reason


def test_gate_failure_removes_the_new_web_and_restores(stack) -> None:
    host = serving(stack, gate_probe=ok('{"health": 500, "login": null}\n'))
    host.answers["gate_probe"] = Result(1, '{"health": 500, "login": null}\n')
    exc = fails(stack, host)
    assert exc.phase == "gate" and "HTTP 500" in exc.message
    assert host.trace().count("gate_probe") == 3  # three 500s in a row, then it fails at once
    undo = host.trace()[host.trace().index("update_containers"):]
    assert undo[:4] == [*UNDO_HEAD, "web_container_ids", "remove_container"]
    assert undo[4:5] == ["oneoff_containers"] and undo[5:5 + len(UNDO_RESTORE)] == UNDO_RESTORE
    assert host.webs == ["old"]


def test_crash_at_start_fails_the_gate_at_once(stack) -> None:
    host = serving(stack, read_addons_hash=ok("hash-old\n"),
                   container_state=lambda c: ok(json.dumps({"name": "/x", "status": "exited", "restarts": 0,
                                                            "exit": 1})))
    exc = fails(stack, host)
    assert exc.phase == "gate" and "crashed (exited, exit 1" in exc.message
    assert "gate_probe" not in host.trace() and "restore_db_into" not in host.trace()  # no update ran


def test_required_module_not_installed_fails_the_gate(stack) -> None:
    host = serving(stack, gate_modules=ok("pending\t0\nextra\tuninstalled\n"))
    exc = fails(stack, host)
    assert exc.phase == "gate" and "required module(s) not installed: extra (uninstalled)" in exc.message


def test_rollback_without_restore_runs_no_update(stack) -> None:
    log = release(OLD) + release(NEW, snapshot="s-new")
    host = serving(stack, log)
    result = deploy(stack, host, OLD, kind="rollback", update="never",
                    pinned={"web": "odoo-ai/odoo-web@sha256:" + "a" * 64}, warnings=["data changed"])
    assert host.trace() == [*HEAD, *START_GATE_SWITCH, *DRAIN_CONVERGE]
    assert result["kind"] == "rollback" and result["warnings"] == ["data changed"]
    assert "odoo-ai/odoo-web@sha256:" + "a" * 64 in host.files[stack.dotenv_path]


def test_rollback_with_restore_snapshots_first_then_restores(stack) -> None:
    """The current data into a snapshot, the target's restored beside the live data; then,
    before the swap, the maintenance page and the old web drained and stopped: its (newer)
    code never runs on the restored (older) data. No pause: no web is left to hold."""
    host = serving(stack, release(OLD) + release(NEW, snapshot="s-new"))
    upstream = stack.state_root / "proxy" / "upstream.conf"
    at_swap: list[str | None] = []
    host.answers["swap_restored_db"] = lambda c: (at_swap.append(host.files.get(upstream)), ok())[1]
    result = deploy(stack, host, OLD, kind="rollback", update="never", restore_snapshot="s-new")
    assert host.trace() == [*HEAD, "db_now", "snapshot_db", "snapshot_filestore",
                            "restore_db_into", "restore_db_into", "restore_db_into", "tools_start", "prepare_filestore",
                            "proxy_switch", "inflight_requests",  # the maintenance page; the old web drained
                            "signal_container", "wake_workers", "wait_container", "remove_container",  # and stopped
                            "web_container_ids", "swap_restored_db", "swap_filestore", "remove_container",
                            "db_state",
                            "start_web_beside", "web_container_ids", "container_state", "gate_probe", "gate_modules",
                            "proxy_switch", "config_hashes", "proxy_reload_in", "converge", "web_container_ids",
                            "drop_db", "remove_filestore"]  # the replaced data, once the target serves
    assert at_swap and "503" in (at_swap[0] or "")
    replaced = host.argv("swap_restored_db")
    kept = host.argv("swap_filestore")[-1].rsplit("/", 1)[-1]
    assert kept.startswith(stack.db_name + "__replaced_") and any(kept in arg for arg in replaced)
    assert host.argv("drop_db")[-1] == kept and host.argv("remove_filestore")[-1].endswith("/" + kept)
    assert any(n.startswith(f"dropped the replaced database {kept}") for n in result["release"]["notes"])
    assert host.argv("restore_db_into", 2)[-1].endswith("/s-new.dump")
    assert result["release"]["restored_snapshot"] == "s-new" and result["release"]["snapshot"].startswith(OLD)
    assert any("maintenance page" in n for n in result["release"]["notes"])


def test_failed_rollback_with_restore_puts_the_current_data_back(stack) -> None:
    host = serving(stack, release(OLD) + release(NEW, snapshot="s-new"), gate_probe=Result(1, "refused"))
    host.answers["container_state"] = lambda c: ok(json.dumps({"name": "/x", "status": "exited", "restarts": 1,
                                                               "exit": 1}))
    fails(stack, host, OLD, kind="rollback", update="never", restore_snapshot="s-new")
    restores = [c.argv[-1] for c in host.calls if c.purpose == "restore_db_into" and c.argv[-1].endswith(".dump")]
    assert restores[0].endswith("/s-new.dump") and restores[1].split("/")[-1].startswith(OLD)
    # the old web, stopped for the swap, runs again on its own data; the maintenance page is gone
    trace = host.trace()
    assert "restart_web" in trace and trace.index("restart_web") > trace.index("restore_db_into", 5)
    assert stack.state_root / "proxy" / "upstream.conf" not in host.files


def journal_at(stack, phase: str, **fields) -> dict[Path, str]:
    dep = Deployment(env="dev", kind="deploy", tag=NEW, started="2026-11-29T10:00:00Z", deploy_id="42",
                     previous_tag=OLD, phase=phase, old_containers=["old"], **fields)
    return {stack.state_root / JOURNAL: journal_mod.dump(dep)}


# (phase killed, journal fields at the kill, what recovery must do before the new deploy)
KILLS = [
    ("render", {}, []),
    ("pull", {}, []),
    ("snapshot", {}, []),
    ("update", {"snapshot": "s-killed", "db_may_change": True, "update_container": "opw-dev-update-42-1"},
     ["restore"]),
    ("start", {"snapshot": "s-killed", "db_may_change": True, "updated": True}, ["remove_new", "restore"]),
    ("gate", {"new_container": "new-x"}, ["remove_new"]),
    ("switch", {"new_container": "new-x"}, ["remove_new"]),
    ("drain", {"new_container": "new-x"}, ["complete"]),
]


@pytest.mark.parametrize(("phase", "fields", "expect"), KILLS, ids=[k[0] for k in KILLS])
def test_recovery_after_a_kill_at_each_phase(stack, phase: str, fields: dict, expect: list[str]) -> None:
    host = serving(stack, read_addons_hash=ok("hash-old\n"))
    host.files.update(journal_at(stack, phase, **fields))
    if "remove_new" in expect or "complete" in expect:
        host.webs.append("new-x")
    host.answers["update_containers"] = ok("orphan1\n" if phase == "update" else "")
    result = deploy(stack, host, OLD)
    trace = host.trace()
    first_deploy_call = trace.index("pull")
    recovery = trace[:first_deploy_call]
    # no orphan first, before anything else: the killed run's update container is removed
    assert recovery[0] == "update_containers"
    if phase == "update":
        assert recovery[1] == "remove_container" and host.argv("remove_container")[-1] == "orphan1"
    if "restore" in expect:
        assert recovery.count("restore_db_into") == 3 and "pause" in recovery and "unpause" in recovery
    else:
        assert "restore_db_into" not in recovery
    if "complete" in expect:
        assert "signal_container" in recovery and "converge" in recovery
        assert host.records[0]["status"] == "success"
    else:
        assert host.records[0]["status"] == "failed" and host.records[0]["phase"] == phase
    if "remove_new" in expect:
        assert "new-x" in [c.argv[-1] for c in host.calls[:first_deploy_call] if c.purpose == "remove_container"]
    assert host.records[0]["note"] == f"interrupted in phase {phase}; " + \
        ("completed" if "complete" in expect else "rolled back") + " by the next run"
    assert any("recovered an interrupted deploy" in n for n in result["release"]["notes"])
    assert stack.state_root / JOURNAL not in host.files


@pytest.mark.parametrize("workers", [ok(""), Result(0, "", "sh: 1: tr: not found")], ids=["none-listed", "unreadable"])
def test_drain_waits_while_the_old_web_has_requests_in_flight(stack, workers) -> None:
    """nginx's workers cannot be told apart: the old web's own connections decide."""
    host = serving(stack, read_addons_hash=ok("hash-old\n"), inflight_requests=[ok("2\n"), ok("1\n"), ok("0\n")],
                   proxy_switch=workers)
    deploy(stack, host)
    assert host.trace().count("inflight_requests") == 3 and host.slept == [0.1, 0.1]
    assert host.argv("inflight_requests")[2] == "old"


def test_a_known_image_needs_no_container_to_read_its_addons(stack) -> None:
    """Its addons hash is in the release log, its per-addon checksums in the state root."""
    known = "f" * 64
    log = release(OLD, digests={"web": "sha256:w", "script-runner": "sha256:" + "1" * 64}, addons_hash=known)
    host = serving(stack, log)
    host.files[stack.state_root / "checksums" / f"{known}.json"] = json.dumps({"base": "a" * 64})
    deploy(stack, host)
    assert "read_addons_hash" not in host.trace() and "module_update" not in host.trace()


def test_per_module_update_records_the_checksums(stack, repo: Path, home: Path) -> None:
    (repo / "docker" / "config" / "dev.env").write_text("ODOO_INSTALL=extra\n")  # ODOO_UPDATE: auto
    stack = load_stack("dev", repo_root=repo, home=home)
    sums = {"base": "a" * 64, "extra": "b" * 64, "web": "c" * 64}
    host = serving(stack, read_addons_hash=ok("h" * 64 + "\n---\n" + json.dumps(sums)),
                   db_state=ok("exists 1\ninitialized t\nchecksums t\ninstalled\tbase\t" + "a" * 64 +
                               "\ninstalled\textra\t" + "0" * 64 + "\ninstalled\tweb\t" + "c" * 64 + "\n"))
    result = deploy(stack, host)
    argv = host.argv("module_update")
    assert argv[argv.index("-u") + 1] == "extra" and "-i" not in argv  # exactly the changed one
    assert result["modules"]["changed"] == ["extra"] and result["modules"]["reason"] == "checksum changed: extra"
    record = [c for c in host.calls if c.purpose == "record_checksums"][0]
    assert json.dumps(sums, separators=(",", ":"), sort_keys=True) in record.stdin.decode()
    assert host.trace().index("record_checksums") > host.trace().index("module_update")
    assert stack.state_root / "checksums" / f"{'h' * 64}.json" not in host.files  # 'h…' is not hex: not cached


def test_nothing_changed_per_module_means_no_snapshot_no_update(stack, repo: Path, home: Path) -> None:
    (repo / "docker" / "config" / "dev.env").write_text("")
    stack = load_stack("dev", repo_root=repo, home=home)
    sums = {"base": "a" * 64}
    host = serving(stack, read_addons_hash=ok("e" * 64 + "\n---\n" + json.dumps(sums)),
                   db_state=ok("exists 1\ninitialized t\nchecksums t\ninstalled\tbase\t" + "a" * 64 + "\n"))
    result = deploy(stack, host)
    assert "snapshot_db" not in host.trace() and "module_update" not in host.trace()
    assert "module update skipped: no module changed" in result["release"]["notes"]
    assert json.loads(host.files[stack.state_root / "checksums" / f"{'e' * 64}.json"]) == sums  # cached


def unchanged_host(stack, **answers) -> ScriptedHost:
    from odoo_ai.config.envfile import format_env
    from odoo_ai.deploy.engine import Deployer as D

    digest = "sha256:" + "1" * 64
    images = {"web": f"odoo-ai/odoo-web@{digest}", "script-runner": f"odoo-ai/odoo-script-runner@{digest}"}
    probe = D(stack, ScriptedHost(), settings=DeploySettings.from_stack(stack), environ=SECRETS)
    mapping, app_env = probe._candidate(OLD)
    mapping.update({"ODOO_WEB_IMAGE": images["web"], "ODOO_SCRIPT_RUNNER_IMAGE": images["script-runner"]})
    host = serving(stack, release(OLD, digests={"web": digest, "script-runner": digest}, images=images),
                   container_image=ok(digest + "\n"), **answers)
    host.files[stack.dotenv_path] = format_env(mapping)
    host.files[stack.state_root / "odoo.env"] = app_env
    return host


def test_deploying_what_already_serves_changes_nothing(stack) -> None:
    host = unchanged_host(stack)
    result = deploy(stack, host, OLD)
    assert result["status"] == "unchanged" and result["phases"] == []
    assert host.trace() == ["image_inspect", "image_inspect", "project_containers", "container_image", "db_state"]
    assert host.records == [] and stack.state_root / JOURNAL not in host.files


@pytest.mark.parametrize("change", ["module missing", "other image running", "settings changed"])
def test_anything_different_makes_it_a_real_deploy(stack, change: str) -> None:
    host = unchanged_host(stack)
    if change == "module missing":
        host.answers["db_state"] = ok("exists 1\ninitialized t\nchecksums f\nextra\tuninstalled\n")
    elif change == "other image running":
        host.answers["container_image"] = ok("sha256:" + "9" * 64 + "\n")
    else:
        host.files[stack.dotenv_path] += 'ODOO_WORKERS="4"\n'
    result = deploy(stack, host, OLD)
    assert result["status"] == "success" and host.records[-1]["status"] == "success"


def test_users_writes_after_the_snapshot_are_reported_with_the_kept_database(stack) -> None:
    host = serving(stack, module_update=Result(255, "", "boom"), user_writes=ok("res_partner\t3\nsale_order\t1\n"))
    exc = fails(stack, host)
    record = host.records[-1]
    warning = record["warnings"][0]
    assert "users wrote 4 row(s) through the old web after the snapshot" in warning
    assert "res_partner (3), sale_order (1)" in warning and record["kept_database"] in warning
    assert host.argv("user_writes")[host.argv("user_writes").index("-d") + 1] == record["kept_database"]
    assert exc.report["warnings"] == record["warnings"]


def test_kept_databases_beyond_the_last_n_are_dropped_by_a_success(stack) -> None:
    kept = [f"opw_dev__failed_2026112910000{i}" for i in range(5)]
    log = release(OLD) + "".join(json.dumps({"env": "dev", "kind": "deploy", "image_tag": NEW, "status": "failed",
                                             "kept_database": k}) + "\n" for k in kept)
    log += json.dumps({"env": "dev", "kind": "deploy", "image_tag": NEW, "status": "failed",
                       "kept_database": "postgres"}) + "\n"  # the log is input: never a foreign name
    host = serving(stack, log, read_addons_hash=ok("hash-old\n"))
    result = deploy(stack, host)
    dropped = [c.argv[-1] for c in host.calls if c.purpose == "drop_db"]
    assert dropped == kept[:2]  # keep the last 3 (ODOO_DEPLOY_KEEP_SNAPSHOTS)... of this env's form
    assert result["release"]["kept_databases_pruned"] == kept[:2]
    assert any("dropped the database(s) kept by older failed updates" in n for n in result["release"]["notes"])


def test_maintenance_mode_serves_a_503_page_during_the_update(stack, repo: Path, home: Path) -> None:
    (repo / "docker" / "config" / "dev.env").write_text("ODOO_UPDATE=demo\nODOO_DEPLOY_WEB_DURING_UPDATE=maintenance\n")
    stack = load_stack("dev", repo_root=repo, home=home)
    host = serving(stack)
    upstream = stack.state_root / "proxy" / "upstream.conf"
    seen = []
    host.answers["module_update"] = lambda c: (seen.append(host.files.get(upstream, "")), ok())[1]
    deploy(stack, host)
    assert "return 503" in seen[0] and "Retry-After" in seen[0]
    trace = host.trace()
    # no pin to the old web after the update: the maintenance page stays until the switch
    assert trace[trace.index("module_update") + 1] == "start_web_beside"
    assert upstream not in host.files


def test_an_update_blocked_by_the_live_web_is_stopped_and_retried_with_the_web_held(stack) -> None:
    import threading

    removed = threading.Event()
    attempts = []

    def update(command):
        attempts.append(command.argv[command.argv.index("--name") + 1])
        if len(attempts) == 1:  # blocked on a lock until the watcher removes the container
            assert removed.wait(15)
            return Result(137, "", "killed")
        return ok()

    def remove(command):
        if command.argv[-1].endswith("-1"):
            removed.set()
        return ok()

    host = serving(stack, module_update=update, remove_container=remove, container_addresses=ok("10.9.0.7 \n"),
                   lock_waits=ok("77\t75\t42,43\n"))
    result = deploy(stack, host)
    assert result["status"] == "success" and len(attempts) == 2
    trace = host.trace()
    assert "lock_waits" in trace and host.argv("lock_waits")[-3:-2] == ["addrs=10.9.0.7"] or \
        "addrs=10.9.0.7" in host.argv("lock_waits")
    held = trace.index("pause")
    assert trace[held + 1] == "terminate_backends" and "pids=42,43" in host.argv("terminate_backends")
    assert trace.index("unpause") > [i for i, p in enumerate(trace) if p == "module_update"][1]
    assert any("retrying with the web held" in n for n in result["release"]["notes"])


def test_the_drain_waits_for_nginx_workers_of_the_old_configuration(stack) -> None:
    """After the switch, nginx's old workers (pinned to the old web) may still serve what
    they accepted: the old web is stopped only once they are gone."""
    host = serving(stack, read_addons_hash=ok("hash-old\n"),
                   proxy_switch=ok("11:33\n12:33\n"), proxy_workers_gone=ok("gone\n"))
    deploy(stack, host)
    trace = host.trace()
    drain = trace[trace.index("proxy_switch") + 1:trace.index("signal_container")]
    # one exec waits in the proxy; once they are gone, what they proxied was answered: no
    # in-flight probe of the old web
    assert drain == ["config_hashes", "proxy_workers_gone"]
    assert host.argv("proxy_workers_gone")[-2:] == ["11", "12"]
    assert host.argv("proxy_workers_gone")[1:4] == ["exec", "--user", "33"]  # the workers' user reads their fds


def test_nginx_workers_still_serving_at_the_drain_bound_fall_back_to_nothing_more(stack) -> None:
    """Workers that outlive ODOO_DEPLOY_DRAIN_SECONDS (a long download): the bound is spent,
    the old web is stopped (its stop grace is what is left for them)."""
    host = serving(stack, read_addons_hash=ok("hash-old\n"), proxy_switch=ok("11\n"),
                   proxy_workers_gone=ok("left\n"), inflight_requests=ok("3\n"))
    settings = DeploySettings.from_stack(stack)
    Deployer(stack, host, settings=dataclasses.replace(settings, drain_seconds=0.0),
             environ=SECRETS).run(NEW)
    trace = host.trace()
    assert trace[trace.index("proxy_workers_gone") + 1] == "signal_container"
    assert "inflight_requests" not in trace


def test_converge_is_skipped_when_every_service_runs_its_configuration(stack) -> None:
    host = serving(stack, read_addons_hash=ok("hash-old\n"), config_hashes=ok("db h-db\nproxy h-proxy\nweb h-web\n"))
    host.ps = lambda: ("db1\tdb\trunning\tUp (healthy)\tFalse\th-db\n"  # type: ignore[method-assign]
                       "proxy1\tproxy\trunning\tUp\tFalse\th-proxy\n"
                       + "".join(f"{w}\tweb\trunning\tUp\tFalse\th-web\n" for w in host.webs))
    result = deploy(stack, host)
    assert "converge" not in host.trace()
    assert "converge: every service already runs its configuration" in result["release"]["notes"]
    host.answers["config_hashes"] = ok("db h-db2\nproxy h-proxy\nweb h-web\n")  # the db's definition changed
    deploy(stack, host, "dev-3333333")
    assert "converge" in host.trace()


def test_the_web_this_deploy_started_counts_as_converged_whatever_config_hash_says(stack) -> None:
    """`compose config --hash` leaves env_file out, the label `up` writes does not: the web
    this deploy started from the committed files is current; another web still converges."""
    host = serving(stack, read_addons_hash=ok("hash-old\n"), config_hashes=ok("db h-db\nproxy h-proxy\nweb h-cfg\n"))
    host.ps = lambda: ("db1\tdb\trunning\tUp (healthy)\tFalse\th-db\n"  # type: ignore[method-assign]
                       "proxy1\tproxy\trunning\tUp\tFalse\th-proxy\n"
                       + "".join(f"{w}\tweb\trunning\tUp\tFalse\th-label\n" for w in host.webs))
    deploy(stack, host)
    assert "converge" not in host.trace()
    # a web that is not the one this deploy started (and whose label differs): converge
    host.ps = lambda: ("db1\tdb\trunning\tUp (healthy)\tFalse\th-db\n"  # type: ignore[method-assign]
                       "proxy1\tproxy\trunning\tUp\tFalse\th-proxy\n"
                       "other\tweb\trunning\tUp\tFalse\th-label\n")
    deploy(stack, host, "dev-3333333")
    assert "converge" in host.trace()


def test_a_web_compose_recreated_while_converging_must_pass_the_gate_too(stack) -> None:
    """The web the gate passed is replaced by `compose up --remove-orphans`: the proxy follows
    `web` to the new one, so it is gated before the deploy says success; none left fails."""
    def recreate(command):
        host.webs[:] = ["recreated"]
        return ok()

    host = serving(stack, read_addons_hash=ok("hash-old\n"), converge=recreate)
    result = deploy(stack, host)
    trace = host.trace()
    assert trace[trace.index("converge"):] == ["converge", "web_container_ids",
                                               "container_state", "gate_probe", "gate_modules"]
    assert host.calls[-2].argv[2] == "recreated"  # the probe ran in the recreated web
    assert "compose recreated web while converging: the new one passed the gate" in result["release"]["notes"]

    def lose(command):
        host.webs[:] = []
        return ok()

    host = serving(stack, converge=lose)  # with a module update: the data is the new release's
    failed = fails(stack, host)
    assert failed.phase == "converge" and "no web container runs" in failed.message
    trace = host.trace()
    assert trace[trace.index("converge"):trace.index("converge") + 3] == ["converge", "web_container_ids",
                                                                          "web_container_ids"]  # asked twice
    assert "restore_db_into" not in trace and "restart_web" not in trace  # newer code never meets older data
    assert failed.hint.startswith(f"{NEW} was serving when this failed") and f"--to {OLD} --restore-db" in failed.hint
    assert host.records[-1]["status"] == "failed" and host.records[-1]["phase"] == "converge"
    assert host.records[-1]["undone"][-1].startswith(f"kept {NEW} serving with its data")


def _interrupt(command):
    raise KeyboardInterrupt


def test_an_interrupted_deploy_is_undone_until_the_new_release_serves(stack) -> None:
    host = serving(stack, gate_probe=[_interrupt, ok()])  # a deploy with a module update (snapshot first)
    failed = fails(stack, host)
    assert failed.phase == "gate" and failed.message.endswith("interrupted by SIGINT")
    trace = host.trace()
    assert "restore_db_into" in trace  # the previous release serves: its data back
    new_web = host.calls[trace.index("gate_probe")].argv[2]
    assert [c.argv[-1] for c in host.calls[trace.index("gate_probe"):] if c.purpose == "remove_container"] == [
        new_web, "tools1"]


@pytest.mark.parametrize("purpose, phase", [("signal_container", "drain"), ("converge", "converge")])
def test_an_interrupt_once_the_new_release_serves_finishes_it(stack, purpose, phase) -> None:
    """From the drain on the previous web is going: undoing would put the new code on the old
    data. The deploy finishes as a killed run's recovery does, and says so."""
    host = serving(stack, **{purpose: [_interrupt, ok()]})
    result = deploy(stack, host)
    trace = host.trace()
    assert "restore_db_into" not in trace and result["status"] == "success"
    after = trace[trace.index(purpose) + 1:]
    assert after[-1] == "converge" and "proxy_reload_in" in after  # unpinned, converged
    if phase == "drain":  # the previous web stopped and removed all the same
        assert "old" in [c.argv[-1] for c in host.calls if c.purpose == "remove_container"]
    assert f"SIGINT in phase {phase}: completed, the new release was already serving" in result["release"]["notes"]
    assert stack.dotenv_path in host.files and stack.state_root / JOURNAL not in host.files


def test_a_failure_once_the_new_release_serves_keeps_it_with_its_data(stack) -> None:
    host = serving(stack, converge=Result(1, "", "compose: boom"))
    failed = fails(stack, host)
    assert failed.phase == "converge" and "restore_db_into" not in host.trace()
    assert host.records[-1]["undone"][-1] == f"kept {NEW} serving with its data: the previous release's " \
        "web was already replaced"
    assert failed.hint.startswith(f"{NEW} was serving when this failed") and f"--to {OLD} --restore-db" in failed.hint


def test_a_rollback_whose_images_are_still_on_the_host_pulls_nothing(stack) -> None:
    log = release(OLD, digests={"web": "sha256:" + "1" * 64, "script-runner": "sha256:" + "1" * 64}) + release(NEW)
    host = serving(stack, log)
    result = deploy(stack, host, OLD, kind="rollback", update="never",
                    known_digests={"web": "sha256:" + "1" * 64, "script-runner": "sha256:" + "1" * 64})
    assert "pull" not in host.trace()
    assert host.trace()[:3] == ["image_inspect", "image_inspect", "read_addons_hash"]  # inspected once
    assert "the release's images (same digests) are still on the host: no pull" in result["release"]["notes"]
    # the tag now names other content on the host: pull
    host = serving(stack, log)
    deploy(stack, host, OLD, kind="rollback", update="never", known_digests={"web": "sha256:" + "2" * 64,
                                                                          "script-runner": "sha256:" + "1" * 64})
    assert host.trace()[0] == "image_inspect" and "pull" in host.trace()


def test_the_old_web_is_removed_once_odoos_master_has_reaped_its_workers(stack) -> None:
    """Its last worker gone, Odoo's prefork master holds nothing but Python's exit: the
    container is removed then (the wait for its exit runs beside and ends with it)."""
    host = serving(stack, read_addons_hash=ok("hash-old\n"), wake_workers=ok("gone\n"))
    deploy(stack, host)
    trace = host.trace()
    stop = trace[trace.index("signal_container"):trace.index("wait_container") + 1]
    assert stop == ["signal_container", "wake_workers", "remove_container", "wait_container"]
    assert trace.count("remove_container") == 1


@pytest.mark.parametrize("woke", [ok("none\n"), ok("left\n"), Result(1, "", "python3: not found")])
def test_an_old_web_without_reaped_workers_is_waited_for(stack, woke) -> None:
    """Threaded Odoo (no worker), workers still busy at the wake's end, or no python3 in the
    image: the stop waits for the container's exit (up to the stop grace), then removes it."""
    host = serving(stack, read_addons_hash=ok("hash-old\n"), wake_workers=woke)
    deploy(stack, host)
    trace = host.trace()
    stop = trace[trace.index("signal_container"):trace.index("remove_container") + 1]
    assert stop == ["signal_container", "wake_workers", "wait_container", "remove_container"]


def test_a_failed_early_removal_of_the_old_web_is_done_again_after_its_exit(stack) -> None:
    host = serving(stack, read_addons_hash=ok("hash-old\n"), wake_workers=ok("gone\n"),
                   remove_container=[Result(1, "", "Error response from daemon: conflict"), ok()])
    deploy(stack, host)
    trace = host.trace()
    stop = trace[trace.index("signal_container"):trace.index("wait_container") + 2]
    assert stop == ["signal_container", "wake_workers", "remove_container", "wait_container", "remove_container"]


def test_a_run_killed_mid_swap_leaves_the_proxy_and_web_paused_the_next_unpauses_both(stack) -> None:
    """Killed between the swap's pauses (proxy, then web): the site hangs until the next run,
    whose recovery unpauses every paused container of the project before anything else."""
    host = serving(stack, read_addons_hash=ok("hash-old\n"))
    host.files.update(journal_at(stack, "update", snapshot="s-killed", db_may_change=True))
    host.answers["paused_containers"] = ok("proxy1\nold\n")
    deploy(stack, host, OLD)
    trace = host.trace()
    assert trace[:3] == ["update_containers", "paused_containers", "unpause"]
    assert host.argv("unpause")[-2:] == ["proxy1", "old"]
