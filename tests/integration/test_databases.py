"""`odoo-ai db` against a real engine: real PostgreSQL (Debian's, odoo-ai-test/postgres:15),
the stand-in Odoo (real Dockerfile), real nginx, the TEST mail catcher. One testing stack
for the module; the tests run in order and each leaves it serving.

Backup -> restore keeps every table's row count and every filestore file's hash; a zip
laid out as Odoo's database manager writes it restores; a corrupt backup, or one of
another Odoo series, is refused with nothing changed; a restore that fails the readiness
gate is swapped back; a mail sent from testing lands in the catcher, read through the
proxy; the restore drill passes and leaves nothing behind; prune-backups. (A copy
dev -> testing: test_db_copy.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from odoo_ai.plan.db import ROW_COUNTS_SQL, parse_row_counts
from tests.integration.conftest import (
    BASE_IMAGE,
    DOCKER,
    REPO,
    Cli,
    answers_during,
    force_cleanup,
    free_port,
    image_exists,
    standin_build_args,
)

SHA = "d1b2c3d4e5f"
SECRETS = {"ODOO_DB_PASSWORD": "db $ecret 'x'", "ODOO_MASTER_PASSWORD": "master$$"}
DB = {"testing": "opw_it_db", "dev": "opw_it_dev"}
SEND_MAIL = """
import configparser, os, smtplib
from email.message import EmailMessage
cfg = configparser.RawConfigParser()
cfg.read(os.environ["ODOO_RC"])
msg = EmailMessage()
msg["From"], msg["To"], msg["Subject"] = "odoo@testing.example", "customer@example.com", "invoice from testing"
msg.set_content("sent through the smtp_server of testing's Odoo config")
with smtplib.SMTP(cfg.get("options", "smtp_server"), cfg.getint("options", "smtp_port"), timeout=10) as smtp:
    smtp.send_message(msg)
"""


def bring_up(tmp_path_factory, names: tuple[str, ...]):
    """The stand-in stacks `names` (testing, dev), up and serving, with their own projects."""
    for image in ("odoo-ai-test/postgres:15", "odoo-ai-test/nginx:1", "odoo-ai-test/mailcatcher:1", BASE_IMAGE):
        if not image_exists(image):
            pytest.fail(f"{image} missing: run scripts/build-test-images.sh")
    tmp = tmp_path_factory.mktemp("db")
    (tmp / "config").mkdir()
    (tmp / "home").mkdir()
    env = {**os.environ, "HOME": str(tmp / "home"), "ODOO_AI_DOCKER": DOCKER, **SECRETS}
    cli = Cli(REPO, tmp / "config", tmp / "home", env)
    projects = {name: f"oaidb-{name}-{os.getpid()}" for name in names}
    roots = {name: tmp / f"state-{name}" for name in names}
    for name in names:
        cli.write_env(name, "\n".join([
            f"ODOO_PROJECT_NAME={projects[name]}", f"ODOO_STATE_ROOT={roots[name]}", f"ODOO_PUBLISHED_PORT={free_port()}",
            "ODOO_IMAGE=odoo-ai-test/odoo", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15",
            "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1", "ODOO_MAIL_CATCHER_IMAGE=odoo-ai-test/mailcatcher:1",
            "ODOO_MAIL_CATCHER_PORT=0", f"ODOO_DB_NAME={DB[name]}", "ODOO_DEPLOY_GATE_TIMEOUT=30",
            f"ODOO_REMOTE_REPO_DIR={tmp / f'host-repo-{name}'}", "",
        ]))
        cli(*standin_build_args(name, SHA, addons="ok"), timeout=1200)
        cli("up", name, "--tag", f"{name}-{SHA[:7]}", timeout=600)
    return cli, projects, roots, tmp


@pytest.fixture(scope="module")
def envs(tmp_path_factory):
    cli, projects, roots, tmp = bring_up(tmp_path_factory, ("testing",))
    try:
        sql(cli, "testing", "CREATE TABLE probe (n int, note text); "
                            "INSERT INTO probe SELECT g, 'row ' || g FROM generate_series(1, 2000) g")
        fs = filestore(roots["testing"], "testing")
        (fs / "3f").mkdir(parents=True, exist_ok=True)
        (fs / "3f" / "3f0123456789").write_bytes(os.urandom(200_000))
        yield cli, projects, roots, tmp
    finally:
        for name in projects:
            force_cleanup(projects[name], roots[name])


def sql(cli: Cli, env: str, query: str, db: str | None = None) -> str:
    return cli("compose", env, "--", "exec", "-T", "db", "psql", "-U", "odoo", "-d", db or DB[env], "-X", "-q",
               "-tAc", query).stdout.strip()


def row_counts(cli: Cli, env: str = "testing") -> dict[str, int]:
    """Every public table's row count (`odoo-ai compose` gives a command no stdin: docker exec -i)."""
    project = next(line.split("=", 1)[1] for line in (cli.config_dir / f"{env}.env").read_text().splitlines()
                   if line.startswith("ODOO_PROJECT_NAME="))
    out = subprocess.run([DOCKER, "exec", "-i", f"{project}-db-1", "psql", "-U", "odoo", "-d", DB[env], "-X", "-q",
                          "-tA", "-f", "-"], input=ROW_COUNTS_SQL, capture_output=True, text=True, check=True).stdout
    counts = parse_row_counts(out)
    assert counts, out
    return counts


def filestore(root: Path, env: str) -> Path:
    return root / "filestore" / "filestore" / DB[env]


def hashes(root: Path, env: str = "testing") -> dict[str, str]:
    base = filestore(root, env)
    return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()}


def databases(cli: Cli, env: str = "testing") -> list[str]:
    return sorted(sql(cli, env, "SELECT datname FROM pg_database WHERE NOT datistemplate", db="postgres").split())


def health(cli: Cli, env: str = "testing") -> int:
    port = next(line.split("=", 1)[1] for line in (cli.config_dir / f"{env}.env").read_text().splitlines()
                if line.startswith("ODOO_PUBLISHED_PORT="))
    return httpx.get(f"http://127.0.0.1:{port}/web/login", timeout=10).status_code


def records(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "releases.log").read_text().splitlines() if line.strip()]


def nothing_left(cli: Cli, root: Path) -> None:
    """No database but the live one, no staged filestore, no journal, no temp dump."""
    assert databases(cli) == sorted(["postgres", DB["testing"]])
    assert sorted(p.name for p in (root / "filestore" / "filestore").iterdir()) == [DB["testing"]]
    assert not (root / "db-journal.json").exists()
    assert not [p for p in (root / "snapshots").iterdir() if p.name.startswith(".odoo-ai")]


def mutate(cli: Cli, root: Path) -> None:
    sql(cli, "testing", "DELETE FROM probe WHERE n > 100; INSERT INTO probe VALUES (-1, 'after the backup'); "
                        "CREATE TABLE later (x int)")
    (filestore(root, "testing") / "3f" / "3f0123456789").unlink()
    (filestore(root, "testing") / "3f" / "new-after").write_text("x")


def test_backup_is_odoos_zip_while_the_stack_serves(envs) -> None:
    cli, _, roots, _ = envs
    codes: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            codes.append(health(cli))
            time.sleep(0.05)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        result = cli.json("db", "backup", "testing")
    finally:
        stop.set()
        thread.join()
    assert codes and set(codes) == {200}, codes  # online: the stack kept serving
    assert result["format"] == "zip" and result["filestore_files"] == 3
    path = roots["testing"] / "backups" / result["name"]
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "dump.sql" and "manifest.json" in names and "filestore/3f/3f0123456789" in names
        manifest = json.loads(zf.read("manifest.json"))
    assert list(manifest) == ["odoo_dump", "db_name", "version", "version_info", "major_version", "pg_version", "modules"]
    assert (manifest["odoo_dump"], manifest["db_name"], manifest["major_version"]) == ("1", DB["testing"], "18.0")
    assert manifest["pg_version"] == "15.0" and set(manifest["modules"]) == {"base", "web"}
    check = subprocess.run(["sha256sum", "-c", path.with_suffix(".sha256").name], cwd=path.parent,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_restore_round_trip_keeps_row_counts_and_filestore_hashes(envs) -> None:
    cli, _, roots, _ = envs
    before_counts, before_files = row_counts(cli), hashes(roots["testing"])
    assert before_counts["probe"] == 2000 and len(before_files) == 3
    mutate(cli, roots["testing"])
    assert row_counts(cli) != before_counts and hashes(roots["testing"]) != before_files
    # clients whose requests hold their database connection 0.3 s before querying: the swap
    # waits for them (new requests wait at the proxy meanwhile), none fails; those that come
    # after it see the restored database
    port = next(line.split("=", 1)[1] for line in (cli.config_dir / "testing.env").read_text().splitlines()
                if line.startswith("ODOO_PUBLISHED_PORT="))
    slow = f"http://127.0.0.1:{port}/web/login?db={DB['testing']}&standin_hold=0.3"
    with answers_during(slow, clients=3) as answers:
        result = cli.json("db", "restore", "testing", "latest", "--yes")
    assert answers and set(answers) == {"200"}, answers
    assert result["status"] == "done" and [p["name"] for p in result["phases"]] == ["load", "prepare", "swap", "gate"]
    assert row_counts(cli) == before_counts
    assert hashes(roots["testing"]) == before_files
    assert health(cli) == 200
    nothing_left(cli, roots["testing"])
    last = records(roots["testing"])[-1]
    assert (last["kind"], last["status"], last["neutralized"]) == ("db-restore", "done", False)


def test_dump_format_to_here_and_back(envs) -> None:
    cli, _, roots, tmp = envs
    out = tmp / "out"
    out.mkdir()
    result = cli.json("db", "backup", "testing", "--format", "dump", "--out", f"{out}/")
    names = sorted(p.name for p in out.iterdir())
    assert [n.rsplit(".", 1)[-1] if not n.endswith("filestore.tar") else "filestore.tar" for n in names] == \
        ["dump", "filestore.tar", "json", "sha256"]
    assert subprocess.run(["sha256sum", "-c", next(n for n in names if n.endswith(".sha256"))], cwd=out,
                          capture_output=True).returncode == 0
    assert not list((roots["testing"] / "backups").glob("*.dump"))  # moved here, not left on the host
    before_counts, before_files = row_counts(cli), hashes(roots["testing"])
    mutate(cli, roots["testing"])
    cli("db", "restore", "testing", str(out / result["name"]), "--yes")
    assert row_counts(cli) == before_counts and hashes(roots["testing"]) == before_files
    nothing_left(cli, roots["testing"])


def odoo_zip(cli: Cli, root: Path, path: Path, *, series: str = "18.0") -> None:
    """A backup as Odoo 18's database manager writes it (odoo.service.db.dump_db +
    odoo.tools.osutil.zip_dir): pg_dump --no-owner as dump.sql, the filestore, the manifest."""
    dump = cli("compose", "testing", "--", "exec", "-T", "db", "pg_dump", "-U", "odoo", "--no-owner",
               DB["testing"]).stdout
    manifest = {"odoo_dump": "1", "db_name": DB["testing"], "version": f"{series}+e-20250101",
                "version_info": [int(series.split(".")[0]), 0, 0, "final", 0, "e"], "major_version": series,
                "pg_version": "15.0", "modules": {"base": "18.0.1.3", "web": "18.0.1.0"}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        zf.writestr("dump.sql", dump)
        zf.writestr("manifest.json", json.dumps(manifest, indent=4))
        base = filestore(root, "testing")
        for file in sorted(base.rglob("*")):
            if file.is_file():
                zf.write(file, f"filestore/{file.relative_to(base)}")


def test_a_zip_in_odoos_layout_restores(envs) -> None:
    cli, _, roots, tmp = envs
    path = tmp / f"{DB['testing']}_2026-01-02_03-04-05.zip"  # Odoo's download name, no .sha256 beside it
    odoo_zip(cli, roots["testing"], path)
    before_counts, before_files = row_counts(cli), hashes(roots["testing"])
    mutate(cli, roots["testing"])
    result = cli.json("db", "restore", "testing", str(path), "--yes")
    assert result["manifest_version"] == "18.0+e-20250101" and result["image_version"] == "18.0-standin"
    assert row_counts(cli) == before_counts and hashes(roots["testing"]) == before_files
    nothing_left(cli, roots["testing"])


def refused(cli: Cli, *args: str) -> dict:
    proc = cli("db", "restore", "testing", *args, "--yes", "--json", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_a_corrupt_backup_is_refused_with_nothing_changed(envs) -> None:
    cli, _, roots, tmp = envs
    good = sorted((roots["testing"] / "backups").glob("*.zip"))[-1]
    data = good.read_bytes()
    before_counts, before_files = row_counts(cli), hashes(roots["testing"])
    bad = tmp / "bad"
    bad.mkdir()
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF
    (bad / good.name).write_bytes(bytes(flipped))  # beside its (now wrong) checksum
    (bad / good.with_suffix(".sha256").name).write_text(good.with_suffix(".sha256").read_text())
    assert "checksum mismatch" in refused(cli, str(bad / good.name))["error"]
    (bad / "no-sums.zip").write_bytes(bytes(flipped))
    error = refused(cli, str(bad / "no-sums.zip"))["error"]
    assert "damaged zip" in error or "CRC mismatch" in error, error
    (bad / "cut.zip").write_bytes(data[: len(data) // 2])
    assert "damaged zip" in refused(cli, str(bad / "cut.zip"))["error"]
    assert row_counts(cli) == before_counts and hashes(roots["testing"]) == before_files
    nothing_left(cli, roots["testing"])


def test_a_backup_of_another_odoo_series_is_refused(envs) -> None:
    cli, _, roots, tmp = envs
    path = tmp / "odoo17.zip"
    odoo_zip(cli, roots["testing"], path, series="17.0")
    doc = refused(cli, str(path))
    assert "series 17.0" in doc["error"] and "series 18.0" in doc["error"]
    nothing_left(cli, roots["testing"])


def test_a_restore_that_fails_the_gate_is_swapped_back(envs) -> None:
    cli, _, roots, tmp = envs
    path = tmp / "no_base.zip"
    odoo_zip(cli, roots["testing"], path)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp / "broken.zip", "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "dump.sql":  # base not installed: Odoo sends /web/login to the database selector
                data += b"\nUPDATE public.ir_module_module SET state = 'uninstalled' WHERE name = 'base';\n"
            dst.writestr(name, data)
    before_counts, before_files = row_counts(cli), hashes(roots["testing"])
    proc = cli("db", "restore", "testing", str(tmp / "broken.zip"), "--yes", "--gate-timeout", "5", "--json",
               check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert "did not pass the readiness gate" in doc["error"] and '"login": 303' in doc["error"]
    assert doc["status"] == "failed" and doc["undone"] == [f"put the previous database back under {DB['testing']}"]
    assert row_counts(cli) == before_counts and hashes(roots["testing"]) == before_files
    assert health(cli) == 200
    nothing_left(cli, roots["testing"])
    assert records(roots["testing"])[-1]["status"] == "failed"


def test_the_restore_drill_passes_and_leaves_nothing(envs) -> None:
    cli, projects, roots, _ = envs
    result = cli.json("db", "drill", "testing")
    assert result["status"] == "passed" and result["gate"]["ok"] and result["verify"]["ok"]
    assert result["installed_modules"] == 2
    nothing_left(cli, roots["testing"])
    leftovers = subprocess.run([DOCKER, "ps", "-aq", "--filter", f"label=com.docker.compose.project={projects['testing']}",
                                "--filter", "label=com.docker.compose.oneoff=True"], capture_output=True, text=True)
    assert leftovers.stdout.split() == []
    assert records(roots["testing"])[-1]["kind"] == "db-drill"


def test_a_mail_sent_from_testing_lands_in_the_catcher(envs) -> None:
    cli, projects, _, _ = envs
    cli("compose", "testing", "--", "run", "--rm", "--no-deps", "-T", "script-runner", "python3", "-c", SEND_MAIL)
    port = subprocess.run([DOCKER, "port", f"{projects['testing']}-proxy-1", "8025"], capture_output=True,
                          text=True).stdout.split()[0]
    messages = httpx.get(f"http://{port}/api/v1/messages", timeout=10).json()["messages"]  # through the proxy
    assert [(m["Subject"], m["To"][0]["Address"]) for m in messages] == [("invoice from testing", "customer@example.com")]


def test_prune_backups_keeps_the_rotation(envs) -> None:
    cli, _, roots, _ = envs
    folder = roots["testing"] / "backups"
    for day in ("2026-01-05", "2026-01-04", "2026-01-03", "2025-12-20", "2025-11-20"):
        for hour in ("01", "13"):
            (folder / f"{DB['testing']}_{day}_{hour}-00-00.zip").write_text("old")
            (folder / f"{DB['testing']}_{day}_{hour}-00-00.sha256").write_text("old")
    (folder / "notes.txt").write_text("not a backup")
    zips = sorted((p.name for p in folder.glob(f"{DB['testing']}_*.zip")), reverse=True)  # newest first
    by_day: dict[str, str] = {}
    for name in zips:
        by_day.setdefault(name[len(DB["testing"]) + 1:][:10], name)
    expected = sorted(list(by_day.values())[:2])  # the newest backup of each of the 2 newest days
    args = ("db", "prune-backups", "testing", "--keep-daily", "2", "--keep-weekly", "0", "--keep-monthly", "0")
    dry = cli.json(*args, "--dry-run")
    assert sorted(b["name"] for b in dry["kept"]) == expected and all((folder / b["name"]).exists() for b in dry["deleted"])
    result = cli.json(*args)
    assert sorted(b["name"] for b in result["kept"]) == expected
    assert sorted(p.name for p in folder.glob("*.zip")) == expected and (folder / "notes.txt").exists()
    assert sorted(p.name for p in folder.glob("*.sha256")) == [k.replace(".zip", ".sha256") for k in expected]
