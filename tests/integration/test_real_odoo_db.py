"""`odoo-ai db` against REAL Odoo 18.0 Community (the images of `scripts/build-test-images.sh
--real`, scenario v1: the module oai_demo with its record "first"), real PostgreSQL, nginx and
the TEST mail catcher. What the stand-in could not show:

- the manifest of `db backup` carries real Odoo's release (odoo/release.py) and modules, and
  Odoo's own restore code (odoo.service.db.restore_db) restores our zip, filestore included;
- a backup made by Odoo's own code (odoo.service.db.dump_db, what its database manager
  downloads) restores with `db restore --neutralize`: real `odoo-bin neutralize` ran (crons
  off, database.is_neutralized) and the mail server it leaves is pointed at the catcher, so
  a mail Odoo sends lands there;
- the restore drill gates a throw-away web of real Odoo.

Skipped when the real images are absent, unless ODOO_AI_REQUIRE_REAL_ODOO=1 (.ci/run)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import zipfile

import httpx
import pytest

from odoo_ai.deploy.policy import CONNECT_ERRORS
from tests.integration.conftest import DOCKER, REPO, Cli, force_cleanup, free_port, image_exists

IMAGE = "odoo-ai-test/odoo-realdb"
TAG = "testing-9100001"
DB = "opw_realdb"
SECRETS = {"ODOO_DB_PASSWORD": "real db $pw", "ODOO_MASTER_PASSWORD": "real-master"}
REQUIRED = os.environ.get("ODOO_AI_REQUIRE_REAL_ODOO") == "1"
ODOO = "import sys\nsys.path.insert(0, '/odoo')\nimport odoo\nodoo.tools.config.parse_config([])\n"
# Odoo's own database manager code, with the database manager allowed for this one process.
ODOO_RESTORE = ODOO + ("odoo.tools.config['list_db'] = True\nfrom odoo.service import db\n"
                       "db.restore_db(sys.argv[1], sys.argv[2])\n")
ODOO_DUMP = ODOO + ("odoo.tools.config['list_db'] = True\nfrom odoo.service import db\n"
                    "with open(sys.argv[2], 'wb') as fh:\n    db.dump_db(sys.argv[1], fh, 'zip')\n")
ODOO_SEND_MAIL = ODOO + """
registry = odoo.modules.registry.Registry(sys.argv[1])
with registry.cursor() as cr:
    env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
    server = env['ir.mail_server']
    message = server.build_email('odoo@testing.example', ['customer@example.com'], 'sent by real odoo', 'body')
    server.send_email(message)
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    needed = ("odoo-ai-test/odoo-web:real-v1", "odoo-ai-test/odoo-script-runner:real-v1", "odoo-ai-test/mailcatcher:1")
    missing = [ref for ref in needed if not image_exists(ref)]
    if missing:
        why = f"images missing ({', '.join(missing)}): run scripts/build-test-images.sh --real"
        if REQUIRED:
            pytest.fail(f"ODOO_AI_REQUIRE_REAL_ODOO=1 but {why}")
        pytest.skip(why)
    for target in ("web", "script-runner"):
        subprocess.run([DOCKER, "tag", f"odoo-ai-test/odoo-{target}:real-v1", f"{IMAGE}-{target}:{TAG}"], check=True)
    tmp = tmp_path_factory.mktemp("realdb")
    (tmp / "config").mkdir()
    (tmp / "home").mkdir()
    project = f"oairdb-{os.getpid()}"
    state_root = tmp / "state"
    cli = Cli(REPO, tmp / "config", tmp / "home", {**os.environ, "HOME": str(tmp / "home"),
                                                   "ODOO_AI_DOCKER": DOCKER, **SECRETS})
    cli.write_env("testing", "\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={state_root}", f"ODOO_PUBLISHED_PORT={free_port()}",
        f"ODOO_IMAGE={IMAGE}", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15", "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1",
        "ODOO_MAIL_CATCHER_IMAGE=odoo-ai-test/mailcatcher:1", "ODOO_MAIL_CATCHER_PORT=0", f"ODOO_DB_NAME={DB}",
        "ODOO_INSTALL=oai_demo", "ODOO_DEPLOY_GATE_TIMEOUT=180", "",
    ]))
    try:
        cli("up", "testing", "--tag", TAG, "--wait-timeout", "300", timeout=900)
        yield cli, project, state_root
    finally:
        force_cleanup(project, state_root)
        for target in ("web", "script-runner"):
            subprocess.run([DOCKER, "rmi", f"{IMAGE}-{target}:{TAG}"], capture_output=True)


def sql(cli: Cli, query: str, db: str = DB) -> str:
    return cli("compose", "testing", "--", "exec", "-T", "db", "psql", "-U", "odoo", "-d", db, "-X", "-q",
               "-tAc", query).stdout.strip()


def odoo_python(cli: Cli, code: str, *args: str) -> None:
    """Odoo's own code in a one-off script-runner of the env (its config, as the Odoo user).
    Run again when the new container could not resolve `db` (Docker's embedded DNS fails
    now and then under load; the script never reached PostgreSQL)."""
    for attempt in range(3):
        proc = cli("compose", "testing", "--", "run", "--rm", "--no-deps", "-T", "script-runner", "python3", "-c",
                   code, *args, timeout=600, check=False)
        if proc.returncode == 0:
            return
        if attempt == 2 or not CONNECT_ERRORS.search(proc.stdout + proc.stderr):
            raise AssertionError(f"odoo_python -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        time.sleep(1)


def test_our_backup_has_odoos_manifest_and_odoos_restore_reads_it(stack) -> None:
    cli, _, state_root = stack
    assert sql(cli, "SELECT name FROM oai_demo") == "first"
    made = cli.json("db", "backup", "testing")
    zip_path = state_root / "backups" / made["name"]
    with zipfile.ZipFile(zip_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        filestore = [n for n in zf.namelist() if n.startswith("filestore/")]
    assert manifest["version"].startswith("18.0") and manifest["major_version"] == "18.0"
    assert manifest["version_info"][:2] == [18, 0] and manifest["modules"]["oai_demo"] == "18.0.1.0.0"
    assert filestore  # real Odoo keeps its asset bundles there
    # Odoo's own restore (what its database manager runs) of our zip: data and filestore
    (state_root / "snapshots" / "ours.zip").write_bytes(zip_path.read_bytes())
    odoo_python(cli, ODOO_RESTORE, "odoo_restored", "/volumes/snapshots/ours.zip")
    assert sql(cli, "SELECT name FROM oai_demo", db="odoo_restored") == "first"
    restored = state_root / "filestore" / "filestore" / "odoo_restored"
    assert sorted(str(p.relative_to(restored)) for p in restored.rglob("*") if p.is_file()) == \
        sorted(n[len("filestore/"):] for n in filestore)
    cli("compose", "testing", "--", "exec", "-T", "db", "dropdb", "-U", "odoo", "odoo_restored")


def test_odoos_own_backup_restores_neutralized_and_mails_go_to_the_catcher(stack) -> None:
    cli, project, state_root = stack
    # what the database manager downloads, written where the Odoo user may write (its data dir)
    odoo_python(cli, ODOO_DUMP, DB, "/volumes/data/from-odoo.zip")
    sql(cli, "INSERT INTO oai_demo (name) VALUES ('written after the backup')")
    active_crons = int(sql(cli, "SELECT count(*) FROM ir_cron WHERE active"))
    assert active_crons > 1
    result = cli.json("db", "restore", "testing", str(state_root / "filestore" / "from-odoo.zip"), "--neutralize",
                      "--yes", timeout=900)
    assert result["status"] == "done" and result["neutralized"] is True
    assert sql(cli, "SELECT string_agg(name, ',' ORDER BY id) FROM oai_demo") == "first"
    assert sql(cli, "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'") == "true"
    assert int(sql(cli, "SELECT count(*) FROM ir_cron WHERE active")) <= 1  # only the autovacuum stays
    assert sql(cli, "SELECT smtp_host || ':' || smtp_port FROM ir_mail_server WHERE active") == "mailcatcher:1025"
    odoo_python(cli, ODOO_SEND_MAIL, DB)
    port = subprocess.run([DOCKER, "port", f"{project}-proxy-1", "8025"], capture_output=True,
                          text=True).stdout.split()[0]
    messages = httpx.get(f"http://{port}/api/v1/messages", timeout=10).json()["messages"]
    assert [m["Subject"] for m in messages] == ["sent by real odoo"]


def test_the_drill_gates_a_throw_away_real_odoo(stack) -> None:
    cli, _, _ = stack
    result = cli.json("db", "drill", "testing", timeout=900)
    assert result["status"] == "passed" and result["installed_modules"] > 1, result
    assert sorted(sql(cli, "SELECT datname FROM pg_database WHERE NOT datistemplate", db="postgres").split()) == \
        sorted(["postgres", DB])
