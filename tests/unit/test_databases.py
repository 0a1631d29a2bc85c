"""`odoo-ai db` without Docker: the in-container packer (odoo_ai/dbtool.py, run here on temp
folders), the pure decisions and argv of plan/db.py, the settings, the restore's
undo order against a scripted connector, and the CLI's refusals."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from odoo_ai import dbtool
from odoo_ai.cli import app
from odoo_ai.config.settings import BackupConfig, MailConfig
from odoo_ai.config.stack import load_stack
from odoo_ai.errors import ConfigError
from odoo_ai.plan import db as plan
from odoo_ai.runners.base import Result
from tests.unit.deploy_script import ScriptedHost, ok

REPO = Path(__file__).resolve().parents[2]
INFO = {"db_name": "opw_testing", "pg_version": "16.0", "modules": {"base": "18.0.1.3", "web": "18.0.1.0"}}
ODOO_MANIFEST_KEYS = ["odoo_dump", "db_name", "version", "version_info", "major_version", "pg_version", "modules"]


def write_env(repo: Path, env: str, text: str) -> Path:
    path = repo / "docker" / "config" / f"{env}.env"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- dbtool (the packer)
@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state root, a filestore and a fake Odoo release file, as the container sees them."""
    (tmp_path / "state" / "snapshots").mkdir(parents=True)
    (tmp_path / "state" / "backups").mkdir()
    fs = tmp_path / "data" / "filestore" / "opw_testing"
    (fs / "ab").mkdir(parents=True)
    (fs / "ab" / "abcdef0123").write_bytes(b"\x00binary\xff" * 1000)
    (fs / "checklist").mkdir()
    (fs / "checklist" / "x").write_text("a file")
    release = tmp_path / "release.py"
    release.write_text("version_info = (18, 0, 0, 'final', 0, '')\nversion = '18.0'\nmajor_version = '18.0'\n"
                       "version += '-20250421'\n")
    monkeypatch.setattr(dbtool, "ODOO_RELEASE", str(release))
    monkeypatch.setattr(dbtool.odoo_release, "__defaults__", (str(release), dbtool.ODOO_BIN))
    return tmp_path


def dump_file(tree: Path, text: str = "CREATE TABLE t (a int);\n" * 5000) -> str:
    path = tree / "state" / "snapshots" / ".tmp.sql"
    path.write_text(text)
    return str(path)


def packed_zip(tree: Path) -> Path:
    dbtool.pack("zip", dump_file(tree), str(tree / "data/filestore/opw_testing"), str(tree / "state/backups"),
                "opw_testing_2026-01-02_03-04-05", INFO)
    return tree / "state/backups/opw_testing_2026-01-02_03-04-05.zip"


def test_a_zip_backup_is_odoos_layout_with_its_manifest(tree: Path) -> None:
    path = packed_zip(tree)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "dump.sql" and "manifest.json" in names  # Odoo writes dump.sql first
        assert sorted(n for n in names if n.startswith("filestore/")) == ["filestore/ab/abcdef0123",
                                                                          "filestore/checklist/x"]
        manifest = json.loads(zf.read("manifest.json"))
        assert list(manifest) == ODOO_MANIFEST_KEYS  # odoo.service.db.dump_db_manifest, key for key
        assert manifest["version"] == "18.0-20250421" and manifest["version_info"] == [18, 0, 0, "final", 0, ""]
        assert manifest["major_version"] == "18.0" and manifest["modules"] == INFO["modules"]
        assert zf.read("dump.sql").decode().count("CREATE TABLE") == 5000
        assert zf.testzip() is None
    sums = (tree / "state/backups/opw_testing_2026-01-02_03-04-05.sha256").read_text()
    assert sums == f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"  # sha256sum -c format
    assert not (tree / "state/snapshots/.tmp.sql").exists()  # the dump is removed
    assert not list((tree / "state/backups").glob(".*"))  # no partial file left


def test_verify_reads_the_manifest_and_checks_the_sums(tree: Path) -> None:
    info = dbtool.verify(str(packed_zip(tree)))
    assert info["format"] == "zip" and info["manifest"]["major_version"] == "18.0"
    assert info["checksums"] == ["opw_testing_2026-01-02_03-04-05.zip"] and info["filestore_files"] == 2
    assert info["image"]["major_version"] == "18.0"


@pytest.mark.parametrize("damage", ["flip", "truncate", "flip-no-sums", "not-a-backup"])
def test_a_damaged_backup_is_refused(tree: Path, damage: str) -> None:
    path = packed_zip(tree)
    data = bytearray(path.read_bytes())
    if damage.startswith("flip"):
        data[len(data) // 3] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray(b"hello, not a zip")
    path.write_bytes(bytes(data))
    if damage == "flip-no-sums":
        (tree / "state/backups/opw_testing_2026-01-02_03-04-05.sha256").unlink()
    with pytest.raises(dbtool.Refused):
        dbtool.verify(str(path))


def test_a_zip_with_an_escaping_member_is_refused(tree: Path) -> None:
    path = tree / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("dump.sql", "SELECT 1;\n")
        zf.writestr("filestore/../../etc/cron.d/x", "boom")
    with pytest.raises(dbtool.Refused, match="unsafe member"):
        dbtool.verify(str(path))
    with pytest.raises(dbtool.Refused, match="unsafe member"):
        dbtool.stage(str(path), str(tree / "out.sql"), str(tree / "data/filestore/x.restored"))
    assert not (tree / "etc").exists()


def test_stage_unpacks_dump_and_filestore(tree: Path) -> None:
    path = packed_zip(tree)
    out = tree / "data/filestore/opw_testing.restored"
    out.mkdir()
    (out / "stale").write_text("from an earlier attempt")
    result = dbtool.stage(str(path), str(tree / "state/snapshots/x.sql"), str(out))
    assert result == {"format": "zip", "filestore_files": 2, "dump_bytes": len("CREATE TABLE t (a int);\n") * 5000}
    assert (out / "ab/abcdef0123").read_bytes() == b"\x00binary\xff" * 1000
    assert not (out / "stale").exists()


def test_the_dump_format_round_trips(tree: Path) -> None:
    dump = tree / "state/snapshots/.tmp.dump"
    dump.write_bytes(b"PGDMP" + b"\x01" * 5000)
    result = dbtool.pack("dump", str(dump), str(tree / "data/filestore/opw_testing"), str(tree / "state/backups"),
                         "opw_testing_2026-01-02_03-04-05", INFO)
    names = [f["name"] for f in result["files"]]
    assert names == [f"opw_testing_2026-01-02_03-04-05.{s}" for s in ("dump", "filestore.tar", "manifest.json", "sha256")]
    main = tree / "state/backups/opw_testing_2026-01-02_03-04-05.dump"
    info = dbtool.verify(str(main))
    assert info["format"] == "dump" and info["filestore_files"] == 2 and len(info["checksums"]) == 3
    assert list(info["manifest"]) == ODOO_MANIFEST_KEYS
    out = tree / "data/filestore/other.restored"
    staged = dbtool.stage(str(main), str(tree / "state/snapshots/x.dump"), str(out))
    assert staged["filestore_files"] == 2 and (out / "checklist/x").read_text() == "a file"
    assert (tree / "state/snapshots/x.dump").read_bytes().startswith(b"PGDMP")


def test_odoo_version_from_odoo_bin_when_there_is_no_release_file(tmp_path: Path) -> None:
    fake = tmp_path / "odoo-bin"
    fake.write_text("print('Odoo Server 18.0-standin')\n")
    release = dbtool.odoo_release(str(tmp_path / "missing.py"), str(fake))
    assert release == {"version": "18.0-standin", "version_info": [18, 0, 0, "final", 0, ""], "major_version": "18.0"}
    assert dbtool.major_of("saas~18.1+e") == "saas~18.1"


def test_remove_only_under_the_mounts() -> None:
    with pytest.raises(RuntimeError):
        dbtool.remove(["/etc/passwd"])
    with pytest.raises(RuntimeError):
        dbtool.remove(["/volumes/state/../../etc"])
    assert dbtool.remove(["/volumes/state/nothing-here"]) == {"removed": []}


def test_dbtool_main_says_refused_with_exit_65(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"nope")
    assert dbtool.main(["verify", str(bad)]) == plan.EX_DATAERR
    assert "error" in json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------- pure decisions
def when(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H").replace(tzinfo=dt.UTC)


def test_backup_sets_take_only_this_databases_names() -> None:
    listing = [("opw_testing_2026-03-01_10-00-00.zip", 100), ("opw_testing_2026-03-01_10-00-00.sha256", 90),
               ("opw_testing_2026-03-02_10-00-00.dump", 5), ("opw_testing_2026-03-02_10-00-00.filestore.tar", 7),
               ("opw_testing_2026-03-02_10-00-00.manifest.json", 1), ("opw_testing_x_2026-03-03_10-00-00.zip", 1),
               ("opw_testing_2026-03-04_10-00-00.zip.partial", 1), ("notes.txt", 1), ("opw_testing_latest.zip", 1)]
    sets = plan.backup_sets(listing, "opw_testing")
    assert [(s.base, s.format, s.size) for s in sets] == [("opw_testing_2026-03-02_10-00-00", "dump", 13),
                                                         ("opw_testing_2026-03-01_10-00-00", "zip", 190)]
    assert sets[0].main == "opw_testing_2026-03-02_10-00-00.dump"
    assert plan.parse_listing("12\ta.zip\nbad line\n7\tb/c\n") == [("a.zip", 12)]


def backups(*stamps: str) -> list[plan.BackupSet]:
    return [plan.BackupSet(f"db_{s}", when(s), (f"db_{s}.zip",), 1) for s in stamps]


def test_prune_keeps_daily_weekly_monthly_like_restic() -> None:
    sets = backups("2026-03-10 22", "2026-03-10 03", "2026-03-09 03", "2026-03-08 03", "2026-03-02 03",
                   "2026-02-27 03", "2026-02-10 03", "2026-01-31 03", "2025-12-31 03")
    keep, delete = plan.plan_prune(sets, daily=2, weekly=2, monthly=3)
    assert keep == {
        "db_2026-03-10 22": ["daily 2026-03-10", "weekly 2026-W11", "monthly 2026-03"],
        "db_2026-03-09 03": ["daily 2026-03-09"],
        "db_2026-03-08 03": ["weekly 2026-W10"],
        "db_2026-02-27 03": ["monthly 2026-02"],
        "db_2026-01-31 03": ["monthly 2026-01"],
    }
    assert [s.base for s in delete] == ["db_2026-03-10 03", "db_2026-03-02 03", "db_2026-02-10 03", "db_2025-12-31 03"]


def test_prune_always_keeps_the_newest() -> None:
    keep, delete = plan.plan_prune(backups("2026-03-10 22", "2026-03-01 00"), daily=0, weekly=0, monthly=0)
    assert list(keep) == ["db_2026-03-10 22"] and [s.base for s in delete] == ["db_2026-03-01 00"]
    assert plan.plan_prune([], daily=7, weekly=4, monthly=3) == ({}, [])


@pytest.mark.parametrize(("manifest", "problem"), [
    ({"version": "18.0", "major_version": "18.0"}, None),
    ({"version": "18.0+e-20250101", "major_version": "18.0"}, None),
    ({"version": "18.0-20250421"}, None),  # no major_version: read from version
    ({"version": "17.0", "major_version": "17.0"}, "series 17.0"),
    ({"version": "saas~18.1", "major_version": "saas~18.1"}, "series saas~18.1"),
    (None, "no manifest.json"),
    ({"modules": {}}, "names no Odoo version"),
])
def test_version_check(manifest, problem) -> None:
    found = plan.version_problem(manifest, {"version": "18.0-standin", "major_version": "18.0"})
    assert (found is None) if problem is None else (problem in found)


def test_harmless_restore_errors_pass_the_rest_fails() -> None:
    output = "\n".join([
        'psql:/snapshots/x:12: ERROR:  unrecognized configuration parameter "transaction_timeout"',
        'psql:/snapshots/x:5: error: invalid command \\restrict',
        'psql:/snapshots/x:80: ERROR:  role "odoo_sh_user" does not exist',
        "psql:/snapshots/x:99: ERROR:  must be owner of extension plpgsql",
        "pg_restore: warning: errors ignored on restore: 3",
        "psql:/snapshots/x:1355: ERROR:  relation \"ir_module_module\" does not exist",
        "pg_restore: error: could not read from input file: end of file",
    ])
    assert plan.fatal_restore_errors(output) == [
        'psql:/snapshots/x:1355: ERROR:  relation "ir_module_module" does not exist',
        "pg_restore: error: could not read from input file: end of file",
    ]


def test_names_and_small_rules() -> None:
    assert plan.backup_base("opw_testing", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == \
        "opw_testing_2026-01-02_03-04-05"  # what Odoo's database manager names a download
    long = "d" * 63
    assert len(plan.db_name_with(long, "__restore_20260101000000123")) == 63
    assert plan.pg_version_text(150004) == "15.0" and plan.pg_version_text(90624) == "9.6"  # as Odoo computes it
    assert plan.copy_hook_argv(["rclone", "copy", "{file}", "r:b"], "/x y.zip") == ["rclone", "copy", "/x y.zip", "r:b"]
    assert plan.copy_hook_argv(["cp", "-t", "/mnt"], "/x.zip") == ["cp", "-t", "/mnt", "/x.zip"]
    with pytest.raises(ConfigError):
        plan.check_mount_path(Path("/tmp/a:b"), "x")
    with pytest.raises(ValueError):
        plan.delete_files(Path("/b"), ["../x"])


# ---------------------------------------------------------------- argv
@pytest.fixture
def stack(repo: Path, home: Path):
    write_env(repo, "testing", f"ODOO_STATE_ROOT={repo.parent}/state\nODOO_DB_NAME=opw-t.1\n")
    return load_stack("testing", repo_root=repo, home=home, environ={})


def test_values_travel_as_argv_items_and_psql_variables(stack) -> None:
    cmd = plan.dump_database(stack, stack.db_name, ".tmp.sql", custom=False)
    assert cmd.argv[-3:] == ["-f", "/snapshots/.tmp.sql", "opw-t.1"] and "-Fc" not in cmd.argv
    swap = plan.swap_in(stack, "opw-t.1__restore_1", "opw-t.1__before_restore_1")
    assert "dbname=opw-t.1" in swap.argv and b'ALTER DATABASE :"restored" RENAME TO :"dbname"' in swap.stdin
    tool = plan.verify(stack, "/volumes/in/x.zip", [("/home/u/b", plan.IN_MOUNT, True)])
    assert tool.stdin == plan.DBTOOL_SOURCE and tool.argv[-3:] == ["-", "verify", "/volumes/in/x.zip"]
    assert f"{stack.state_root}:/volumes/state" in tool.argv and "/home/u/b:/volumes/in:ro" in tool.argv
    assert plan.neutralize(stack, "x").argv[-4:] == ["/odoo/odoo-bin", "neutralize", "-d", "x"]
    web = plan.start_gate_web(stack, "p-dbgate-1", "opw-t.1__drill_1")
    assert "ODOO_DB_NAME=opw-t.1__drill_1" in web.argv and "ODOO_MAX_CRON_THREADS=0" in web.argv


# ---------------------------------------------------------------- settings
def test_backup_and_mail_settings(repo: Path, home: Path) -> None:
    stack = load_stack("testing", repo_root=repo, home=home, environ={})
    assert stack.backup == BackupConfig() and stack.mail.smtp == "mailcatcher:1025"
    assert load_stack("dev", repo_root=repo, home=home, environ={}).mail == MailConfig()
    write_env(repo, "dev", "ODOO_BACKUP_FORMAT=dump\nODOO_BACKUP_KEEP_DAILY=0\nODOO_DB_PROTECTED=True\n"
                           "ODOO_BACKUP_COPY_COMMAND=rclone copy {file} 'off site:b'\nODOO_MAIL_CATCHER_PORT=0\n")
    dev = load_stack("dev", repo_root=repo, home=home, environ={})
    assert (dev.backup.format, dev.backup.keep_daily, dev.backup.protected) == ("dump", 0, True)
    assert dev.backup.copy_command == ("rclone", "copy", "{file}", "off site:b") and dev.mail.catcher_port == 0
    for line, fragment in (("ODOO_BACKUP_FORMAT=tar", "'zip' or 'dump'"), ("ODOO_DB_PROTECTED=maybe", "True or False"),
                           ("ODOO_BACKUP_COPY_COMMAND=rclone 'x", "cannot be split"),
                           ("ODOO_BACKUP_KEEP_WEEKLY=-1", "out of range")):
        path = write_env(repo, "dev", line + "\n")
        with pytest.raises(ConfigError, match=f"{path}:1: .*{fragment}"):
            load_stack("dev", repo_root=repo, home=home, environ={})


def test_a_production_name_is_always_protected(repo: Path, home: Path) -> None:
    (repo / "environments" / "prod.yaml").write_text((repo / "environments" / "dev.yaml").read_text())
    write_env(repo, "prod", "ODOO_DB_PROTECTED=False\n")
    assert load_stack("prod", repo_root=repo, home=home, environ={}).backup.protected is True


# ---------------------------------------------------------------- the restore's steps (scripted connector)
def restore_with(stack, answers) -> tuple[ScriptedHost, Exception | dict]:
    from odoo_ai.databases import Databases, Source

    host = ScriptedHost({
        "verify": ok(json.dumps({"format": "zip", "manifest": {"version": "18.0", "major_version": "18.0", "modules": {}},
                                 "image": {"version": "18.0", "major_version": "18.0"}})),
        "stage": ok(json.dumps({"format": "zip", "filestore_files": 3})),
        "databases_named": ok(""), "swap_in": ok("swapped\tt\n"), "facts": ok("neutralized\ttrue\nchecksums\tt\n"),
        **answers,
    }, files={stack.dotenv_path: "ODOO_IMAGE_TAG=testing-1234567\n"})
    ops = Databases(stack.model_copy(update={"deploy": stack.deploy.model_copy(update={"gate_timeout": 0.01})}), host)
    try:
        return host, ops.restore(Source("/volumes/in/x.zip", "/tmp/x.zip"), neutralize=True, yes=True)
    except Exception as exc:  # noqa: BLE001 - the test looks at it
        return host, exc


def purposes(host: ScriptedHost) -> list[str]:
    return [c.purpose for c in host.calls if c.purpose not in ("db_exists", "container_state", "gate_modules")]


def test_a_restore_swaps_in_gates_then_drops_the_old_one(stack) -> None:
    host, result = restore_with(stack, {})
    assert isinstance(result, dict) and result["status"] == "done", result
    assert purposes(host) == [
        "start_tools", "verify", "create_database", "stage", "load_sql", "remove_paths", "neutralize", "point_mail_at_catcher",
        "new_identity", "facts", "signal_reload", "web_container_ids", "project_containers", "pause", "inflight_requests", "pause", "swap_in",
        "filestore_in", "unpause", "unpause",
        "web_container_ids", "gate_probe", "drop_database", "remove_filestore", "remove_container"]
    start = next(c for c in host.calls if c.purpose == "start_tools")
    tools = start.argv[start.argv.index("--name") + 1]
    assert [c.argv[1:4] for c in host.calls if c.purpose in ("stage", "filestore_in")] == \
        [["exec", "-i", tools], ["exec", tools, "sh"]]  # no container start while the web is paused
    assert host.records[-1]["kind"] == "db-restore" and host.records[-1]["status"] == "done"
    assert host.records[-1]["image_tag"] == "testing-1234567"
    probe = next(c for c in host.calls if c.purpose == "gate_probe")
    assert "/websocket" in probe.argv[5]  # the deploy's probe: Odoo's bus answers after a restore too


def test_a_restore_that_fails_the_gate_is_swapped_back(stack) -> None:
    host, exc = restore_with(stack, {"gate_probe": Result(1, '{"health": 200, "login": 303}\n')})
    from odoo_ai.databases import DbFailed

    assert isinstance(exc, DbFailed) and "did not pass the readiness gate" in exc.message
    tail = purposes(host)[purposes(host).index("gate_probe") + 1:]
    # the web paused again, the old database and filestore back, the web reloads, the restored one dropped
    assert tail == ["paused_containers", "databases_named", "web_container_ids", "project_containers", "pause",
                    "inflight_requests", "pause", "swap_back", "filestore_back", "unpause", "unpause", "signal_reload",
                    "drop_database", "remove_container"]
    assert host.records[-1]["status"] == "failed" and host.records[-1]["undone"]


NEUTRALIZE_UNREACHABLE = ("2026-11-30 08:17:21,952 1 INFO ? odoo.cli.neutralize: Starting x database neutralization \n"
                          "2026-11-30 08:17:21,955 1 INFO ? odoo.sql_db: Connection to the database failed \n"
                          "2026-11-30 08:17:21,955 1 CRITICAL ? odoo.cli.neutralize: An error occurred during the "
                          "neutralization. THE DATABASE IS NOT NEUTRALIZED!\n")


def test_a_neutralize_that_never_reached_postgresql_runs_again(stack) -> None:
    host, result = restore_with(stack, {"neutralize": [Result(1, NEUTRALIZE_UNREACHABLE), ok()]})
    assert isinstance(result, dict) and result["status"] == "done", result
    assert purposes(host).count("neutralize") == 2 and host.slept == [1.0]
    assert "odoo-bin neutralize ran again: could not reach PostgreSQL" in result["notes"]


@pytest.mark.parametrize("output", [NEUTRALIZE_UNREACHABLE, "ERROR: relation ir_cron does not exist\n"])
def test_a_neutralize_that_keeps_failing_drops_the_copy(stack, output: str) -> None:
    from odoo_ai.databases import DbFailed

    host, exc = restore_with(stack, {"neutralize": Result(1, output)})
    assert isinstance(exc, DbFailed) and "is NOT neutralized and is dropped" in exc.message
    # a connection that never came is tried three times; any other failure once
    assert purposes(host).count("neutralize") == (3 if output == NEUTRALIZE_UNREACHABLE else 1)
    assert "swap_in" not in purposes(host)


def test_a_restore_that_fails_to_load_drops_its_database_and_changes_nothing(stack) -> None:
    host, exc = restore_with(stack, {"load_sql": ok("psql:x:3: ERROR:  syntax error at or near \"garbage\"\n")})
    assert "loading the backup" in str(exc)
    assert purposes(host)[5:] == ["remove_paths", "paused_containers", "databases_named", "drop_database",
                                  "remove_filestore", "remove_container"]  # no swap, no pause: the live database never changed


def test_a_corrupt_backup_is_refused_before_anything_changes(stack) -> None:
    from odoo_ai.databases import Refused

    host, exc = restore_with(stack, {"verify": Result(plan.EX_DATAERR, '{"error": "member x is corrupt (CRC mismatch)"}')})
    assert isinstance(exc, Refused) and exc.exit_code == 2 and "CRC mismatch" in exc.message
    assert purposes(host) == ["start_tools", "verify", "remove_container"] and not host.records


def test_another_odoo_series_is_refused(stack) -> None:
    from odoo_ai.databases import Refused

    host, exc = restore_with(stack, {"verify": ok(json.dumps({
        "format": "zip", "manifest": {"version": "17.0", "major_version": "17.0"},
        "image": {"version": "18.0", "major_version": "18.0"}}))})
    assert isinstance(exc, Refused) and "series 17.0" in exc.message
    assert purposes(host) == ["start_tools", "verify", "remove_container"]


# ---------------------------------------------------------------- the CLI's refusals
def run_cli(repo: Path, *args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["--repo", str(repo), "--config-dir", str(repo / "docker/config"), *args, "--json"])
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def test_copy_needs_an_explicit_neutralize_choice(repo: Path) -> None:
    code, doc = run_cli(repo, "db", "copy", "dev", "testing")
    assert code == 2 and "--neutralize" in doc["error"] and "--no-neutralize" in doc["error"]
    code, doc = run_cli(repo, "db", "copy", "dev", "dev", "--neutralize")
    assert code == 2 and "same env" in doc["error"]


def test_copy_never_goes_into_a_protected_env(repo: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(home))
    write_env(repo, "testing", f"ODOO_DB_PROTECTED=True\nODOO_STATE_ROOT={repo.parent}/state-t\n")
    code, doc = run_cli(repo, "db", "copy", "dev", "testing", "--no-neutralize", "--yes")
    assert code == 2 and "protected" in doc["error"]


def test_the_db_commands_exist() -> None:
    result = CliRunner().invoke(app, ["db", "--help"])
    for name in ("backup", "restore", "copy", "drill", "prune-backups", "backups"):
        assert name in result.output


def test_dry_runs_print_the_commands_and_change_nothing(repo: Path, home: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(home))
    state = tmp_path / "state"
    write_env(repo, "testing", f"ODOO_STATE_ROOT={state}\n")
    state.mkdir()
    (state / ".env").write_text("ODOO_IMAGE_TAG=testing-1234567\n")
    before = sorted(p.name for p in state.iterdir())
    for args in (["db", "backup", "testing"], ["db", "restore", "testing", str(REPO / "README.md")],
                 ["db", "drill", "testing", "--backup", str(REPO / "README.md")]):
        result = CliRunner().invoke(app, ["--repo", str(repo), "--config-dir", str(repo / "docker/config"), *args,
                                          "--dry-run", "--json"])
        doc = json.loads(result.stdout.strip().splitlines()[-1])
        assert result.exit_code == 0 and doc["status"] == "dry-run", result.output
    assert sorted(p.name for p in state.iterdir()) == before  # nothing written
