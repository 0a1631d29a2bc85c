"""Conformance of the STAND-IN Odoo (tests/fixtures/standin-odoo) with REAL Odoo 18.

The same cases run on both flavours and expect the same outcome: database creation, `-i`,
`-u` of an uninstalled module, `-u`, a failing `-u`, a web server on a registry that cannot
load, and test selection (`--test-tags`, and what runs without it). Everything the rest of the
suite trusts the stand-in for at these interfaces is checked here against real Odoo.

Each case is a plain `docker run --rm` of the flavour's script-runner image (`docker run -d` of
the web image for the server case) on a user-defined network with one PostgreSQL container per
module run (alias `db`), with the environment docker-compose.yml gives those services. Each case
works on a fresh database, cloned with `CREATE DATABASE ... TEMPLATE` from the flavour's base-only
database (case 1) or from the database where case 2 installed the demo module. Module states
are read with psql in the PostgreSQL container.

The stand-in images are (re)built with scripts/build-test-images.sh (idempotent, cache hits).
The real images come from `scripts/build-test-images.sh --real`; when they are missing the real
flavour is skipped, unless ODOO_AI_REQUIRE_REAL_ODOO=1 (set by .ci/run), which fails it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.conftest import DOCKER, REPO, image_exists


@dataclass(frozen=True)
class Flavour:
    """One Odoo implementation: its image tags by role, and its module names and versions."""

    name: str
    tags: dict[str, str]  # role -> tag of odoo-ai-test/odoo-{web,script-runner}
    build_args: tuple[str, ...]  # scripts/build-test-images.sh arguments that build the tags
    module: str  # the demo module (ships in v1, v2, update_fails, import_error)
    v1: str
    v2: str
    tests_pass: str  # 2 passing tests
    tests_fail: str  # 1 passing test, 1 failing (test_02_fails)
    tests_bridge: str  # depends on tests_pass, auto_install, 1 passing test
    fail_tests: int  # N in "1 failed, 0 error(s) of N tests" for tests_fail

    def image(self, role: str, target: str = "script-runner") -> str:
        return f"odoo-ai-test/odoo-{target}:{self.tags[role]}"

    def images(self) -> list[str]:
        roles = [r for r in self.tags if r != "import_error"]
        return [self.image(r) for r in roles] + [self.image("import_error", "web")]


# The one table of what each flavour runs. Roles: base = no custom module (or one that is left
# alone), v1 / v2 = the demo module and a successful upgrade of it, update_fails = its update
# (and install) fails, import_error = its Python cannot be imported, tests = the test modules.
# The stand-in's `tests` scenario mirrors real-addons/tests (its replayed logs were cut from real
# Odoo 18 runs of those modules); the older tests_pass/tests_fail scenarios replay other logs
# (tests_fail: 1 FAIL + 1 ERROR of 3 tests) and have no auto-installed bridge.
FLAVOURS = {
    "standin": Flavour(
        name="standin",
        tags={"base": "standin", "v1": "standin", "v2": "standin-ok_v2",
              "update_fails": "standin-update_fails", "import_error": "standin-import_error",
              "tests": "standin-tests"},
        build_args=("--scenario", "ok_v2", "--scenario", "update_fails", "--scenario", "import_error",
                    "--scenario", "tests"),
        module="standin_demo", v1="18.0.1.0.0", v2="18.0.1.1.0",
        tests_pass="standin_suite_pass", tests_fail="standin_suite_fail",
        tests_bridge="standin_suite_bridge", fail_tests=2,
    ),
    "real": Flavour(
        name="real",
        tags={"base": "real-base", "v1": "real-v1", "v2": "real-v2",
              "update_fails": "real-update_fails", "import_error": "real-import_error",
              "tests": "real-tests"},
        build_args=("--real",),
        module="oai_demo", v1="18.0.1.0.0", v2="18.0.1.1.0",
        tests_pass="oai_tests_pass", tests_fail="oai_tests_fail",
        tests_bridge="oai_tests_bridge", fail_tests=2,
    ),
}

DB_IMAGE = "odoo-ai-test/postgres:15"
TARBALL = Path(os.environ.get("ODOO_AI_ODOO18_TARBALL")
               or REPO.parent / "shared/odoo18/odoo-18.0-community-core.tar.gz")
REQUIRE_REAL = os.environ.get("ODOO_AI_REQUIRE_REAL_ODOO") == "1"
LABEL = "odoo-ai-test.conformance"
RUN_TIMEOUT = 300  # one real Odoo run takes 3-15 s here
HTTP_UP_TIMEOUT = 90
TRANSIENT = ("to install", "to upgrade", "to remove")

# Run with the web container's own python, like src/odoo_ai/plan/deploy.py GATE_PROBE, but it
# asks both URLs every time (the gate skips /web/login while /web/health is not 200). It polls
# /web/health every 20 ms until HTTP answers, then records that answer and the next probes:
# [[health status, health content type, login status], ...] (JSON on stdout).
PROBE = r"""
import json, sys, time, urllib.error, urllib.request
port, db, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def get(path):
    try:
        with opener.open("http://127.0.0.1:%s%s" % (port, path), timeout=30) as r:
            return r.status, r.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type")
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e), None
deadline = time.monotonic() + timeout
while True:
    health, ctype = get("/web/health")
    if isinstance(health, int) or time.monotonic() > deadline:
        break
    time.sleep(0.02)
probes = []
while True:
    probes.append([health, ctype, get("/web/login?db=" + urllib.request.quote(db))[0]])
    if len(probes) >= count or not isinstance(health, int):
        break
    time.sleep(0.5)
    health, ctype = get("/web/health")
print(json.dumps(probes))
"""

RESULT_LINE = re.compile(r"^\S+ \S+ \d+ (?P<level>[A-Z]+) (?P<db>\S+) odoo\.tests\.result: "
                         r"(?P<failed>\d+) failed, (?P<errors>\d+) error\(s\) of (?P<tests>\d+) tests "
                         r"when loading database '(?P<database>[^']+)'", re.M)
STATS_LINE = re.compile(r"^\S+ \S+ \d+ [A-Z]+ \S+ odoo\.tests\.stats: (?P<module>[^:\s]+): "
                        r"(?P<tests>\d+) tests", re.M)


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Run:
    argv: list[str]
    rc: int
    output: str  # stdout + stderr (Odoo logs to stderr: ODOO_LOGFILE is empty)

    def __str__(self) -> str:
        return f"odoo-bin {' '.join(self.argv)} -> exit {self.rc}\n--- last lines:\n{tail(self.output)}"


@dataclass
class Postgres:
    """One PostgreSQL container (network alias `db`) on a user network, for the whole module."""

    run_id: str
    network: str
    container: str
    password: str
    seq: list[int] = field(default_factory=lambda: [0])

    def psql(self, sql: str, db: str = "postgres") -> str:
        return docker("exec", self.container, "psql", "-U", "odoo", "-d", db, "-AtX",
                      "-v", "ON_ERROR_STOP=1", "-c", sql).stdout.strip()

    def new_db_name(self, flavour: Flavour, case: str) -> str:
        self.seq[0] += 1
        return f"conf_{flavour.name}_{case}_{self.run_id[:6]}_{self.seq[0]}"

    def clone(self, template: str, flavour: Flavour, case: str) -> str:
        name = self.new_db_name(flavour, case)
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def db_exists(self, db: str) -> bool:
        return self.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{db}'") == "1"

    def module(self, db: str, name: str) -> tuple[str, str] | None:
        """(state, latest_version or '') of module NAME, None when it has no row."""
        out = self.psql(f"SELECT state, coalesce(latest_version, '') FROM ir_module_module "
                        f"WHERE name = '{name}'", db)
        if not out:
            return None
        state, version = out.split("|")
        return state, version

    def transient(self, db: str) -> list[str]:
        states = ", ".join(f"'{s}'" for s in TRANSIENT)
        out = self.psql(f"SELECT name || ' ' || state FROM ir_module_module WHERE state IN ({states}) "
                        "ORDER BY name", db)
        return out.splitlines()

    def odoo_env(self, db: str, *, web: bool = False) -> list[str]:
        """The environment docker-compose.yml gives script-runner (or web) for database DB."""
        env = {
            "ODOO_DB_HOST": "db", "ODOO_DB_PORT": "5432", "ODOO_DB_USER": "odoo",
            "ODOO_DB_PASSWORD": self.password, "ODOO_DB_NAME": db,
            "ODOO_ADMIN_PASSWD": "conformance-master",
            "ODOO_CONF_DATA_DIR": "/volumes/data", "ODOO_PROXY_MODE": "True",
            "ODOO_WITHOUT_DEMO": "all", "ODOO_RUN_UID": "1000", "ODOO_RUN_GID": "1000",
            # web: ODOO_LOGFILE would default to /volumes/logs/odoo.log; stderr keeps it in
            # `docker logs` (the entrypoint treats both the same way).
            "ODOO_LOGFILE": "",
            "ODOO_WORKERS": "2" if web else "0",
            "ODOO_MAX_CRON_THREADS": "1" if web else "0",
        }
        return [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]

    def odoo(self, image: str, db: str, *args: str) -> Run:
        """`docker run --rm` of IMAGE: /odoo/odoo-bin ARGS with the script-runner environment."""
        name = f"conformance-{self.run_id}-run-{uuid.uuid4().hex[:6]}"
        argv = [DOCKER, "run", "--rm", "--name", name, "--label", f"{LABEL}={self.run_id}",
                "--network", self.network, *self.odoo_env(db), image, "/odoo/odoo-bin", *args]
        try:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            docker("rm", "-f", "-v", name, check=False)
            raise AssertionError(f"odoo-bin {' '.join(args)} ({image}) did not end in {RUN_TIMEOUT}s\n"
                                 f"{tail(e.output or '') if isinstance(e.output, str) else ''}") from None
        return Run(list(args), proc.returncode, proc.stdout)


def remove_labelled(run_id: str) -> None:
    ids = docker("ps", "-aq", "--filter", f"label={LABEL}={run_id}", check=False).stdout.split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False)


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    if not image_exists(DB_IMAGE):
        pytest.fail(f"{DB_IMAGE} is missing: run scripts/build-test-images.sh")
    run_id = uuid.uuid4().hex[:10]
    network = f"conformance-{run_id}"
    container = f"conformance-{run_id}-db"
    pg = Postgres(run_id, network, container, f"pw-{uuid.uuid4().hex[:12]}")
    docker("network", "create", "--label", f"{LABEL}={run_id}", network)
    try:
        docker("run", "-d", "--name", container, "--label", f"{LABEL}={run_id}", "--network", network,
               "--network-alias", "db", "-e", "POSTGRES_USER=odoo", "-e", f"POSTGRES_PASSWORD={pg.password}",
               "-e", "POSTGRES_DB=postgres", DB_IMAGE)
        deadline = time.monotonic() + 90
        while docker("exec", container, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "odoo", "-d", "postgres",
                     check=False).returncode != 0:
            if time.monotonic() > deadline:
                logs = docker("logs", container, check=False)
                pytest.fail(f"PostgreSQL not ready in 90 s\n{logs.stdout}\n{logs.stderr}")
            time.sleep(0.5)
        yield pg
    finally:
        remove_labelled(run_id)
        docker("network", "rm", network, check=False)
        left = (docker("ps", "-aq", "--filter", f"label={LABEL}={run_id}", check=False).stdout.split()
                + docker("network", "ls", "-q", "--filter", f"label={LABEL}={run_id}", check=False).stdout.split())
        assert not left, f"left behind: {left}"


def build_images(flavour: Flavour) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / "build-test-images.sh"), *flavour.build_args],
                          capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "DOCKER": DOCKER, "ODOO_AI_ODOO18_TARBALL": str(TARBALL)})


@pytest.fixture(scope="module", params=list(FLAVOURS))
def flavour(request) -> Flavour:
    fl = FLAVOURS[request.param]
    if fl.name == "standin":
        # Idempotent (cache hits when built): the stand-in follows the working tree.
        proc = build_images(fl)
        assert proc.returncode == 0, proc.stderr[-3000:]
    missing = [image for image in fl.images() if not image_exists(image)]
    if missing and fl.name == "real" and TARBALL.is_file():
        proc = build_images(fl)
        assert proc.returncode == 0, proc.stderr[-3000:]
        missing = [image for image in fl.images() if not image_exists(image)]
    if missing:
        why = (f"{fl.name} Odoo images missing: {', '.join(missing)}; build them with "
               f"scripts/build-test-images.sh {' '.join(fl.build_args)}")
        if fl.name != "real":
            pytest.fail(why)
        if not TARBALL.is_file():
            why += f" (no source tarball at {TARBALL}: set ODOO_AI_ODOO18_TARBALL)"
        if not REQUIRE_REAL:
            pytest.skip(why)
        pytest.fail(f"ODOO_AI_REQUIRE_REAL_ODOO=1 but {why}")
    return fl


@pytest.fixture(scope="module")
def base_db(pg: Postgres, flavour: Flavour) -> tuple[str, Run]:
    """Case 1's run: `-d NEW -i base` on a missing database. The template of later cases."""
    db = pg.new_db_name(flavour, "base")
    assert not pg.db_exists(db)
    return db, pg.odoo(flavour.image("base"), db, "-d", db, "-i", "base", "--stop-after-init")


@pytest.fixture(scope="module")
def base_template(pg: Postgres, base_db: tuple[str, Run]) -> str:
    db, run = base_db
    if run.rc != 0 or not pg.db_exists(db):
        pytest.fail(f"no base database to clone (case 1 failed): {run}")
    return db


@pytest.fixture(scope="module")
def v1_db(pg: Postgres, flavour: Flavour, base_template: str) -> tuple[str, Run]:
    """Case 2's run: `-i MODULE` with the v1 image on a base-only database."""
    db = pg.clone(base_template, flavour, "install")
    return db, pg.odoo(flavour.image("v1"), db, "-d", db, "-i", flavour.module, "--stop-after-init")


@pytest.fixture(scope="module")
def v1_template(pg: Postgres, flavour: Flavour, v1_db: tuple[str, Run]) -> str:
    db, run = v1_db
    if run.rc != 0 or pg.module(db, flavour.module) != ("installed", flavour.v1):
        pytest.fail(f"no database with {flavour.module} {flavour.v1} installed to clone (case 2 failed): {run}")
    return db


# ------------------------------------------------------------------------------------ cases


def test_1_database_creation(pg: Postgres, base_db: tuple[str, Run]) -> None:
    db, run = base_db
    assert run.rc == 0, run
    assert pg.db_exists(db), run
    assert pg.module(db, "base")[0] == "installed", run
    assert pg.module(db, "web")[0] == "installed", "web is auto-installed with base"
    assert pg.transient(db) == []


def test_2_install(pg: Postgres, flavour: Flavour, v1_db: tuple[str, Run]) -> None:
    db, run = v1_db
    assert run.rc == 0, run
    assert pg.module(db, flavour.module) == ("installed", flavour.v1), run
    assert pg.transient(db) == []


def test_3_update_of_an_uninstalled_module(pg: Postgres, flavour: Flavour, base_template: str) -> None:
    """Odoo's -u only upgrades installed modules: the module stays uninstalled."""
    db = pg.clone(base_template, flavour, "upd_uninst")
    run = pg.odoo(flavour.image("v1"), db, "-d", db, "-u", flavour.module, "--stop-after-init")
    assert run.rc == 0, run
    assert pg.module(db, flavour.module) == ("uninstalled", ""), run
    assert pg.transient(db) == []


def test_4_update(pg: Postgres, flavour: Flavour, v1_template: str) -> None:
    db = pg.clone(v1_template, flavour, "update")
    run = pg.odoo(flavour.image("v2"), db, "-d", db, "-u", flavour.module, "--stop-after-init")
    assert run.rc == 0, run
    assert pg.module(db, flavour.module) == ("installed", flavour.v2), run
    assert pg.transient(db) == []


def test_5_failing_update(pg: Postgres, flavour: Flavour, v1_template: str) -> None:
    db = pg.clone(v1_template, flavour, "upd_fail")
    run = pg.odoo(flavour.image("update_fails"), db, "-d", db, "-u", flavour.module, "--stop-after-init")
    assert run.rc == 255, run
    assert pg.module(db, flavour.module) == ("installed", flavour.v1), run
    assert pg.transient(db) == [], run
    critical = [line for line in run.output.splitlines()
                if " CRITICAL " in line and "Failed to initialize database" in line]
    assert critical, run


def test_6_web_on_a_registry_that_cannot_load(pg: Postgres, flavour: Flavour, v1_template: str) -> None:
    """The web server keeps running and, from its first HTTP answer on, /web/health and
    /web/login?db= answer (HTML) 500: never a 200 while the registry is being loaded."""
    db = pg.clone(v1_template, flavour, "web_imperr")
    name = f"conformance-{pg.run_id}-web-{uuid.uuid4().hex[:6]}"
    docker("run", "-d", "--name", name, "--label", f"{LABEL}={pg.run_id}", "--network", pg.network,
           *pg.odoo_env(db, web=True), flavour.image("import_error", "web"))
    try:
        proc = docker("exec", name, "python3", "-c", PROBE, "8069", db, "3", str(HTTP_UP_TIMEOUT),
                      timeout=HTTP_UP_TIMEOUT + 120, check=False)
        time.sleep(1)
        state = json.loads(docker("inspect", "--format", "{{json .State}}", name).stdout)
        logs = docker("logs", name, check=False)
        diagnostics = (f"probe exit {proc.returncode}: {proc.stdout}{proc.stderr}\nstate: {state}\n"
                       f"--- logs:\n{tail(logs.stdout + logs.stderr, 80)}")
        probes = json.loads(proc.stdout) if proc.returncode == 0 else []
        assert probes and isinstance(probes[0][0], int), f"HTTP not up in {HTTP_UP_TIMEOUT}s\n{diagnostics}"
        # [/web/health status, its content type, /web/login?db= status] of the first HTTP answer
        # and the next two probes
        assert [(h, login) for h, _, login in probes] == [(500, 500)] * 3, diagnostics
        assert all((ctype or "").startswith("text/html") for _, ctype, _ in probes), diagnostics
        assert state["Running"] is True and state["Restarting"] is False, diagnostics
        assert f"Couldn't load module {flavour.module}" in logs.stdout + logs.stderr, diagnostics
    finally:
        docker("rm", "-f", "-v", name, check=False)


# A websocket handshake on PORT from inside the container: the status code of the answer.
WEBSOCKET_ON = r"""
import base64, os, socket, sys
port = int(sys.argv[1])
with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
    s.sendall(("GET /websocket?version=18.0-1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Origin: http://127.0.0.1:%d\r\n\r\n" % (port, base64.b64encode(os.urandom(16)).decode(), port)).encode())
    print(s.recv(4096).split(b"\r\n", 1)[0].split()[1].decode())
"""


def test_6b_the_deploy_gate_sees_the_bus(pg: Postgres, flavour: Flavour, v1_template: str) -> None:
    """With workers, Odoo's websocket (the bus) is served by its evented process on 8072;
    on the HTTP port a handshake is a 500 (logged). The deploy's gate probe (GATE_PROBE
    itself) answers health 200, login 200, websocket 101 on a database that loads."""
    from odoo_ai.plan.deploy import GATE_PROBE

    db = pg.clone(v1_template, flavour, "web_bus")
    name = f"conformance-{pg.run_id}-web-{uuid.uuid4().hex[:6]}"
    docker("run", "-d", "--name", name, "--label", f"{LABEL}={pg.run_id}", "--network", pg.network,
           *pg.odoo_env(db, web=True), flavour.image("v1", "web"))
    try:
        deadline = time.monotonic() + HTTP_UP_TIMEOUT
        while True:
            probe = docker("exec", name, "python3", "-c", GATE_PROBE, "8069", db, "10", check=False, timeout=60)
            if probe.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        logs = docker("logs", name, check=False)
        diagnostics = f"probe: {probe.stdout}{probe.stderr}\n--- logs:\n{tail(logs.stdout + logs.stderr, 60)}"
        assert json.loads(probe.stdout) == {"health": 200, "login": 200, "websocket": 101}, diagnostics
        on_http = docker("exec", name, "python3", "-c", WEBSOCKET_ON, "8069", check=False)
        assert on_http.stdout.strip() == "500", on_http.stdout + on_http.stderr
        logs = docker("logs", name, check=False)
        assert "Couldn't bind the websocket" in logs.stdout + logs.stderr, tail(logs.stdout + logs.stderr, 40)
    finally:
        docker("rm", "-f", "-v", name, check=False)


def result_of(run: Run) -> dict:
    found = [m.groupdict() for m in RESULT_LINE.finditer(run.output)]
    assert len(found) == 1, f"expected one odoo.tests.result line: {found}\n{run}"
    return found[0]


def stats_modules(run: Run) -> set[str]:
    return {m["module"] for m in STATS_LINE.finditer(run.output)}


def test_7a_test_tags_select_the_passing_module(pg: Postgres, flavour: Flavour, base_template: str) -> None:
    db = pg.clone(base_template, flavour, "tests_pass")
    mod = flavour.tests_pass
    run = pg.odoo(flavour.image("tests"), db, "-d", db, "-i", mod, "--test-enable", f"--test-tags=/{mod}",
                  "--stop-after-init")
    assert run.rc == 0, run
    assert result_of(run) == {"level": "INFO", "db": db, "failed": "0", "errors": "0", "tests": "2",
                              "database": db}, run
    assert stats_modules(run) == {mod}, run
    # The bridge is installed with it (auto_install) but its test is not selected.
    assert pg.module(db, mod)[0] == "installed"
    assert pg.module(db, flavour.tests_bridge)[0] == "installed"


def test_7b_test_tags_select_the_failing_module(pg: Postgres, flavour: Flavour, base_template: str) -> None:
    db = pg.clone(base_template, flavour, "tests_fail")
    mod = flavour.tests_fail
    run = pg.odoo(flavour.image("tests"), db, "-d", db, "-i", mod, "--test-enable", f"--test-tags=/{mod}",
                  "--stop-after-init")
    assert run.rc == 1, run
    assert result_of(run) == {"level": "ERROR", "db": db, "failed": "1", "errors": "0",
                              "tests": str(flavour.fail_tests), "database": db}, run
    assert re.search(rf"^\S+ \S+ \d+ ERROR {re.escape(db)} odoo\.addons\.{mod}\.\S+: FAIL: \S+\.test_02_fails$",
                     run.output, re.M), run
    assert re.search(rf"ERROR {re.escape(db)} odoo\.modules\.loading: Module {mod}: 1 failures, 0 errors of "
                     rf"{flavour.fail_tests} tests", run.output), run
    assert stats_modules(run) == {mod}, run
    # A failing test does not undo the install.
    assert pg.module(db, mod)[0] == "installed"
    assert pg.transient(db) == []


def test_7c_without_test_tags_every_installed_module_is_tested(pg: Postgres, flavour: Flavour,
                                                                base_template: str) -> None:
    """Without --test-tags the tests of every module installed in the run run: the bridge's too."""
    db = pg.clone(base_template, flavour, "tests_all")
    mod = flavour.tests_pass
    run = pg.odoo(flavour.image("tests"), db, "-d", db, "-i", mod, "--test-enable", "--stop-after-init")
    assert run.rc == 0, run
    assert result_of(run) == {"level": "INFO", "db": db, "failed": "0", "errors": "0", "tests": "3",
                              "database": db}, run
    modules = stats_modules(run)
    assert len(modules) > 1 and modules == {mod, flavour.tests_bridge}, run
