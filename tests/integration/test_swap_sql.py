"""The swaps' quiet check on a real PostgreSQL (plan.QUIET_SQL, first in every swap): a
session inside a transaction on the live database (a request the paused web was serving)
makes the swap print `busy N` and change nothing; once it ended, or with force, the swap
renames. Run as the deploy runs them: psql in the db container, SQL on stdin, values as
psql variables."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from odoo_ai.plan import db as dbplan
from odoo_ai.plan import deploy as plan
from tests.integration.conftest import DOCKER, image_exists

DB_IMAGE = "odoo-ai-test/postgres:15"


def docker(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    if not image_exists(DB_IMAGE):
        pytest.fail(f"{DB_IMAGE} is missing: run scripts/build-test-images.sh")
    name = f"swapsql-{uuid.uuid4().hex[:10]}"
    docker("run", "-d", "--name", name, "-e", "POSTGRES_USER=odoo", "-e", "POSTGRES_PASSWORD=unused", DB_IMAGE)
    try:
        deadline = time.monotonic() + 90
        while docker("exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "odoo", "-d", "postgres",
                     check=False).returncode != 0:
            assert time.monotonic() < deadline, docker("logs", name, check=False).stderr
            time.sleep(0.5)
        yield name
    finally:
        docker("rm", "-f", "-v", name, check=False)


def psql(pg: str, sql: str, **variables: str) -> str:
    args = [f"{k}={v}" for k, v in variables.items()]
    return docker("exec", "-i", pg, "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-U", "odoo",
                  "-d", "postgres", *[x for a in args for x in ("-v", a)], "-f", "-", input=sql).stdout


def databases(pg: str) -> set[str]:
    return set(psql(pg, "SELECT datname FROM pg_database WHERE datname LIKE 'q\\_%';").split())


def open_transaction(pg: str, database: str) -> subprocess.Popen:
    """A client inside a transaction on DATABASE, as a request the paused web froze in."""
    client = subprocess.Popen([DOCKER, "exec", "-i", pg, "psql", "-X", "-q", "-U", "odoo", "-d", database],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert client.stdin is not None
    client.stdin.write("BEGIN; SELECT 1;\n")
    client.stdin.flush()
    deadline = time.monotonic() + 30
    while psql(pg, "SELECT count(*) FROM pg_stat_activity WHERE datname = :'d' AND state = 'idle in transaction';",
               d=database).strip() != "1":
        assert time.monotonic() < deadline, "the client's transaction never showed"
        time.sleep(0.1)
    return client


def end(client: subprocess.Popen) -> None:
    assert client.stdin is not None
    client.stdin.close()
    client.wait(timeout=30)


@pytest.mark.parametrize("which", ["deploy", "db restore"])
def test_a_swap_waits_for_a_transaction_in_flight_and_force_ends_it(pg: str, which: str) -> None:
    tag = uuid.uuid4().hex[:6]
    live, restored, aside = f"q_live_{tag}", f"q_restored_{tag}", f"q_aside_{tag}"
    psql(pg, f'CREATE DATABASE "{live}";\nCREATE DATABASE "{restored}";\n')
    live_oid = psql(pg, "SELECT oid FROM pg_database WHERE datname = :'d';", d=live).strip()

    def swap(force: bool, aside: str = aside) -> str:
        if which == "deploy":
            return psql(pg, plan.SWAP_SQL, force=str(force).lower(), dbname=live, restored=restored, failed=aside)
        return psql(pg, dbplan.SWAP_IN_SQL, force=str(force).lower(), dbname=live, restored=restored, kept=aside)

    idle = subprocess.Popen([DOCKER, "exec", "-i", pg, "psql", "-X", "-q", "-U", "odoo", "-d", live],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = open_transaction(pg, live)
    try:
        # an idle session (a pooled connection) does not hold the swap; one in a transaction does
        assert swap(False).split() == ["busy", "1"]
        assert databases(pg) >= {live, restored} and aside not in databases(pg)  # nothing renamed
        assert client.poll() is None  # and nobody ended
        end(client)
        out = swap(False)
        assert "busy" not in out
        assert aside in databases(pg) and restored not in databases(pg)
        assert psql(pg, "SELECT oid FROM pg_database WHERE datname = :'d';", d=aside).strip() == live_oid
    finally:
        end(idle)
        if client.poll() is None:
            end(client)

    # force: a transaction that never ends (a long cron job) does not hold the swap forever
    psql(pg, f'CREATE DATABASE "{restored}";\n')
    stuck = open_transaction(pg, live)
    try:
        assert "busy" not in swap(True, aside + "_2")
        assert restored not in databases(pg) and aside + "_2" in databases(pg)
        # its session was ended
        assert psql(pg, "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction';").strip() == "0"
    finally:
        if stuck.poll() is None:
            end(stuck)
