"""One rule for names the container also checks: the image's entrypoint (docker/entrypoint.sh,
run here with sh) and the CLI's config give the same verdict on the same names, and every
value the config accepts for a setting the entrypoint checks, the entrypoint accepts too."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from odoo_ai.config.settings import valid_db_name
from odoo_ai.config.stack import load_stack
from odoo_ai.errors import ConfigError

ENTRYPOINT = Path(__file__).resolve().parents[2] / "docker" / "entrypoint.sh"
TOOLS = ("sh", "grep", "sed", "awk", "sort", "mktemp", "stat", "getent") + (("setpriv",) if os.getuid() == 0 else ())
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason="the entrypoint's tools are missing")

EX_CONFIG = 78  # the entrypoint's exit status for a refused configuration

NAMES = [
    # accepted by both
    ("opw_dev", True), ("ab", True), ("a1", True), ("0db", True), ("DB.test-1", True), ("x" * 63, True),
    ("9_", True), ("a..b", True), ("a-", True),
    # refused by both (the first ones were accepted by the config before)
    ("a", False), ("_db", False), (".db", False), ("-db", False), ("x" * 64, False), ("x y", False),
    ("db;drop", False), ("db/1", False), ("db$x", False), ("dé", False), ("ödb", False), (" db", False),
    ("db ", False), ("a\tb", False), ("db'", False), ("db\\", False), ("Z" * 100, False),
]


def entrypoint(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real entrypoint, writing its config under tmp_path, then running `true` (as the
    current user: no chown to anyone else, no password needed for a command that is not Odoo)."""
    rc = tmp_path / "etc" / "odoo.conf"
    rc.parent.mkdir(parents=True, exist_ok=True)
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ODOO_RC": str(rc),
        "ODOO_CONF_DATA_DIR": str(tmp_path / "data"), "ODOO_LOGFILE": "",
        "ODOO_RUN_UID": str(os.getuid()), "ODOO_RUN_GID": str(os.getgid()),
    }
    return subprocess.run(["sh", str(ENTRYPOINT), "true"], env={**base, **env}, capture_output=True, text=True,
                          timeout=30, check=False)


def container_accepts(tmp_path: Path, key: str, value: str) -> bool:
    proc = entrypoint(tmp_path, **{key: value})
    if proc.returncode == 0:
        return True
    assert proc.returncode == EX_CONFIG and key in proc.stderr, (proc.returncode, proc.stderr)
    return False


def config_accepts(repo: Path, home: Path, key: str, value: str) -> bool:
    plain = "'" not in value and "\\" not in value
    quoted = f"'{value}'" if plain else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    (repo / "docker" / "config" / "dev.env").write_text(f"{key}={quoted}\n", encoding="utf-8")
    try:
        load_stack("dev", repo_root=repo, home=home, environ={})
    except ConfigError as exc:
        assert key in exc.message, exc.message
        return False
    return True


@pytest.mark.parametrize(("name", "valid"), NAMES)
def test_db_names_get_the_same_verdict_from_the_entrypoint_and_the_config(
        repo: Path, home: Path, tmp_path: Path, name: str, valid: bool) -> None:
    verdicts = {
        "entrypoint": container_accepts(tmp_path, "ODOO_DB_NAME", name),
        "valid_db_name": valid_db_name(name),
        "load_stack": config_accepts(repo, home, "ODOO_DB_NAME", name),
    }
    assert verdicts == dict.fromkeys(verdicts, valid)


@pytest.mark.parametrize(("key", "value"), [
    ("ODOO_DB_NAME", "opw_dev"), ("ODOO_DB_USER", "odoo"), ("ODOO_DB_USER", "_acme_1"),
    ("ODOO_WORKERS", "1"), ("ODOO_WORKERS", "64"), ("ODOO_MAX_CRON_THREADS", "0"),
    ("ODOO_WITHOUT_DEMO", "all"), ("ODOO_WITHOUT_DEMO", "sale,crm"), ("ODOO_WITHOUT_DEMO", "False"),
])
def test_what_the_config_accepts_the_container_accepts(repo: Path, home: Path, tmp_path: Path, key: str,
                                                        value: str) -> None:
    assert config_accepts(repo, home, key, value)
    assert container_accepts(tmp_path, key, value)


def test_the_check_fails_the_way_the_entrypoint_reports_it(tmp_path: Path) -> None:
    proc = entrypoint(tmp_path, ODOO_DB_NAME="_db")
    assert proc.returncode == EX_CONFIG
    assert "ODOO_DB_NAME '_db' is not a valid Odoo database name" in proc.stderr
    assert entrypoint(tmp_path, ODOO_DB_NAME="opw_dev").returncode == 0
