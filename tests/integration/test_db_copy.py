"""`odoo-ai db copy dev testing` against a real engine (stand-in Odoo, real PostgreSQL):
refused without an explicit --neutralize/--no-neutralize; with --neutralize, dev's
database and filestore serve on testing after `odoo-bin neutralize` ran in a one-off
script-runner of testing's image (the stand-in records database.is_neutralized), with a
new database.uuid, recorded in testing's release log; dev is untouched.

And `--host` (a real OpenSSH server on 127.0.0.1 in front of this engine): a backup is
streamed here over ssh (--out), a file here is streamed to the host for a restore."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.conftest import force_cleanup
from tests.integration.sshd import start_sshd
from tests.integration.test_databases import (
    bring_up,
    hashes,
    health,
    nothing_left,
    records,
    row_counts,
    sql,
)


@pytest.fixture(scope="module")
def envs(tmp_path_factory):
    cli, projects, roots, tmp = bring_up(tmp_path_factory, ("testing", "dev"))
    try:
        sql(cli, "dev", "CREATE TABLE dev_only (note text); INSERT INTO dev_only VALUES ('written in dev')")
        yield cli, projects, roots, tmp
    finally:
        for name in projects:
            force_cleanup(projects[name], roots[name])


def test_copy_dev_to_testing_runs_neutralize(envs) -> None:
    cli, _, roots, _ = envs
    proc = cli("db", "copy", "dev", "testing", "--json", check=False)
    assert proc.returncode == 2 and "--no-neutralize" in json.loads(proc.stdout)["error"]
    assert sql(cli, "testing", "SELECT count(*) FROM pg_tables WHERE tablename = 'dev_only'") == "0"
    dev_uuid = sql(cli, "dev", "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'")
    result = cli.json("db", "copy", "dev", "testing", "--neutralize")
    assert result["status"] == "done" and result["kind"] == "db-copy" and result["neutralized"] is True
    assert sql(cli, "testing", "SELECT note FROM dev_only") == "written in dev"
    assert sql(cli, "testing", "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'") == "true"
    assert sql(cli, "dev", "SELECT count(*) FROM ir_config_parameter WHERE key = 'database.is_neutralized'") == "0"
    assert sql(cli, "testing", "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'") != dev_uuid
    assert sql(cli, "dev", "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'") == dev_uuid
    assert hashes(roots["testing"]).keys() == hashes(roots["dev"], "dev").keys()  # dev's filestore came along
    last = records(roots["testing"])[-1]
    assert (last["kind"], last["status"], last["source_env"], last["neutralized"]) == ("db-copy", "done", "dev", True)
    assert health(cli) == 200
    nothing_left(cli, roots["testing"])
    assert not list((roots["dev"] / "backups" / ".staging").iterdir())


def test_backup_and_restore_over_ssh(envs) -> None:
    cli, _, roots, tmp = envs
    sshd = start_sshd(tmp / "sshd")
    try:
        ssh = ("--host", sshd.url, "--ssh-key", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts))
        out = tmp / "from-host"
        out.mkdir()
        made = cli.json("db", "backup", "testing", "--out", str(out / "copy.zip"), *ssh)
        assert sorted(p.name for p in out.iterdir()) == ["copy.zip", "copy.zip.sha256"]
        assert subprocess.run(["sha256sum", "-c", "copy.zip.sha256"], cwd=out, capture_output=True).returncode == 0
        assert not list((roots["testing"] / "backups").glob(f"{made['name'][:-4]}*"))  # moved off the host
        before_counts, before_files = row_counts(cli), hashes(roots["testing"])
        sql(cli, "testing", "DELETE FROM dev_only")
        result = cli.json("db", "restore", "testing", str(out / "copy.zip"), "--yes", *ssh)
        assert result["status"] == "done"
        assert row_counts(cli) == before_counts and hashes(roots["testing"]) == before_files
        assert not (roots["testing"] / "backups" / ".incoming").exists() or \
            not list((roots["testing"] / "backups" / ".incoming").iterdir())  # the upload is removed
        listed = cli.json("db", "backups", "testing", *ssh)["backups"]
        assert all(b["name"] != made["name"] for b in listed)
        nothing_left(cli, roots["testing"])
    finally:
        sshd.stop()
