"""`odoo-ai db copy dev testing` against a real engine (stand-in Odoo, real PostgreSQL):
refused without an explicit --neutralize/--no-neutralize; with --neutralize, dev's
database and filestore serve on testing after `odoo-bin neutralize` ran in a one-off
script-runner of testing's image (the stand-in records database.is_neutralized), with a
new database.uuid, recorded in testing's release log; dev is untouched."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import force_cleanup
from tests.integration.test_databases import (
    bring_up,
    hashes,
    health,
    nothing_left,
    records,
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
