"""`odoo-ai test run` against the real engine: the stand-in Odoo (built with the real
Dockerfile) replays real Odoo 18 test logs (pass, fail, crash) in a one-off script-runner
container of a throw-away Compose project with a real PostgreSQL; a slow install hits the
timeout; --keep-db leaves the project for inspection and its printed cleanup removes it.
Every run must leave no container, network or temp dir behind, and no volume but the env's
test templates (<project>-test-templates, kept between runs on purpose: see
test_test_run_templates.py)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.integration.conftest import DOCKER, REPO, image_exists

DB_IMAGE = "odoo-ai-test/postgres:15"
SCENARIOS = ("tests_pass", "tests_fail", "tests_crash", "slow_update")
LABEL = "com.docker.compose.project"


@pytest.fixture(scope="module")
def standin_images() -> None:
    """The stand-in images of the scenarios (idempotent; all cache hits when built)."""
    args = [arg for s in SCENARIOS for arg in ("--scenario", s)]
    proc = subprocess.run([str(REPO / "scripts" / "build-test-images.sh"), *args], capture_output=True,
                          text=True, timeout=1800, env={**os.environ, "DOCKER": DOCKER})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for scenario in SCENARIOS:
        assert image_exists(f"odoo-ai-test/odoo-script-runner:standin-{scenario}")


def projects_with_prefix(prefix: str) -> set[str]:
    """Compose projects (by label) that own a container, network or volume."""
    found: set[str] = set()
    for argv in ([DOCKER, "ps", "-a"], [DOCKER, "network", "ls"], [DOCKER, "volume", "ls"]):
        out = subprocess.run([*argv, "--filter", f"label={LABEL}", "--format", f'{{{{.Label "{LABEL}"}}}}'],
                             capture_output=True, text=True, timeout=60).stdout
        found |= {name for name in out.split() if name.startswith(prefix)}
    return found


def remove_projects(prefix: str) -> None:
    for project in projects_with_prefix(prefix):
        flt = ["--filter", f"label={LABEL}={project}"]
        ids = subprocess.run([DOCKER, "ps", "-aq", *flt], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run([DOCKER, "rm", "-f", "-v", *ids], capture_output=True)
        for kind in ("network", "volume"):
            for obj in subprocess.run([DOCKER, kind, "ls", "-q", *flt], capture_output=True, text=True).stdout.split():
                subprocess.run([DOCKER, kind, "rm", obj], capture_output=True)


@pytest.fixture
def env(cli, project_name, tmp_path, standin_images):
    """A dev env whose test projects are <project_name>-test-*, with TMPDIR under tmp_path."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    state_root = tmp_path / "state"
    cli.write_env(
        "dev",
        f"ODOO_PROJECT_NAME={project_name}\nODOO_STATE_ROOT={state_root}\n"
        f"ODOO_IMAGE=odoo-ai-test/odoo\nODOO_DB_IMAGE={DB_IMAGE}\n",
    )
    cli.env["TMPDIR"] = str(tmp)
    prefix = f"{project_name}-test-"
    yield tmp, prefix
    remove_projects(prefix)
    # The env itself was never touched: no state root, no project of its own name.
    assert not state_root.exists()
    assert projects_with_prefix(project_name) == set()


def templates_volume(prefix: str) -> str:
    return f"{prefix}templates"  # <project>-test-templates


def assert_nothing_left(tmp: Path, prefix: str) -> None:
    """No container or network of a test project or of the templates server (stopped by the
    last run); no volume but the templates'; no temp dir."""
    assert projects_with_prefix(prefix) <= {templates_volume(prefix)}
    running = subprocess.run([DOCKER, "ps", "-a", "--filter", f"label={LABEL}={templates_volume(prefix)}", "-q"],
                             capture_output=True, text=True, timeout=60).stdout.split()
    assert running == []
    assert list(tmp.iterdir()) == []


def test_passing_tests(cli, env, tmp_path) -> None:
    tmp, prefix = env
    junit = tmp_path / "results.xml"
    proc = cli("test", "run", "dev", "--tag", "standin-tests_pass", "--modules", "standin_tests_pass",
               "--json", "--junit", str(junit), check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "odoo-ai.test-results/1" and doc["status"] == "passed"
    assert doc["totals"] == {"tests": 2, "passed": 2, "failed": 0, "errors": 0, "skipped": 0}
    assert [t["method"] for t in doc["tests"]] == ["test_health", "test_health_db_server_status"]
    assert doc["odoo_exit_code"] == 0
    run = doc["run"]
    assert run["project"].startswith(prefix) and run["database"] == doc["database"]
    assert run["image"] == "odoo-ai-test/odoo-script-runner:standin-tests_pass"
    assert doc["kept"] is None
    assert ET.parse(junit).getroot().get("tests") == "2"
    assert "✓ standin_tests_pass  TestWebController.test_health" in proc.stderr  # progress
    assert_nothing_left(tmp, prefix)


def test_failing_tests_human_output(cli, env) -> None:
    tmp, prefix = env
    proc = cli("test", "run", "--image", "odoo-ai-test/odoo-script-runner:standin-tests_fail",
               "--modules", "standin_tests_fail", check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    err = proc.stderr
    assert "✗ FAIL standin_tests_fail  TestFailingFixture.test_02_fails" in err
    assert "AssertionError: 2 != 3 : deliberate assertion failure" in err
    assert "FAILED  3 tests: 1 passed, 1 failed, 1 error" in err and "exit 1" in err
    assert_nothing_left(tmp, prefix)


def test_crash_is_an_error(cli, env) -> None:
    tmp, prefix = env
    proc = cli("test", "run", "--tag", "standin-tests_crash", "--modules", "standin_tests_crash", "--json",
               check=False)
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "error" and doc["odoo_exit_code"] == 255
    messages = [p["message"] for p in doc["problems"] if p["kind"] == "infra"]
    assert "Odoo failed to load the registry" in messages
    assert_nothing_left(tmp, prefix)


def test_timeout_kills_the_run_and_cleans_up(cli, env) -> None:
    tmp, prefix = env
    # standin_demo of slow_update sleeps 20 s while it installs.
    proc = cli("test", "run", "--tag", "standin-slow_update", "--modules", "standin_demo",
               "--timeout", "3", "--json", check=False)
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "error" and doc["run"]["timed_out"] is True
    assert doc["problems"][0]["message"] == "the Odoo test run timed out after 3s (--timeout) and was killed"
    assert_nothing_left(tmp, prefix)


def test_keep_db_shard_and_the_printed_cleanup(cli, env) -> None:
    tmp, prefix = env
    # Two modules, two shards: shard 2 of the sorted list is standin_tests_pass.
    proc = cli("test", "run", "--tag", "standin-tests_pass", "--modules", "standin_tests_pass,base",
               "--shards", "2", "--shard", "2", "--keep-db", "--json", check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["run"]["modules"] == ["standin_tests_pass"]
    assert doc["run"]["shard"] == {"index": 2, "count": 2, "modules_total": 2}
    kept = doc["kept"]
    # base is among the modules: nothing can be installed before it, so a fresh database (in
    # the test project's own db); --keep-db of a clone: test_test_run_templates.py.
    assert doc["run"]["template"]["used"] is False and doc["run"]["template"]["reason"].startswith("base is")
    assert kept["project"].startswith(prefix) and projects_with_prefix(prefix) == {kept["project"]}
    assert "Remove it with:" in proc.stderr and kept["cleanup"][0] in proc.stderr

    # The database is there, with the module the tests installed.
    psql = shlex.split(kept["psql"])
    psql.insert(psql.index("exec") + 1, "-T")
    query = "SELECT state FROM ir_module_module WHERE name = 'standin_tests_pass'"
    out = subprocess.run([*psql, "-tAc", query], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "installed", out.stderr

    # Its passwords were random and never printed.
    dotenv = Path(kept["state_dir"]) / ".env"
    secrets = [line.split("=", 1)[1].strip("'") for line in dotenv.read_text().splitlines()
               if line.startswith(("ODOO_DB_PASSWORD=", "ODOO_MASTER_PASSWORD="))]
    assert len(secrets) == 2 and all(len(s) >= 24 for s in secrets)
    assert not any(s in proc.stdout or s in proc.stderr for s in secrets)

    for line in kept["cleanup"]:
        done = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert_nothing_left(tmp, prefix)
    assert projects_with_prefix(prefix) == set()


def test_dry_run_runs_and_writes_nothing(cli, env) -> None:
    """The real run against the dry connector: the image is read for real (it is here), the
    rest is printed and assumed; no container, file or volume appears."""
    tmp, prefix = env
    proc = cli("test", "run", "--tag", "standin-tests_pass", "--modules", "standin_tests_pass", "--dry-run")
    out = proc.stdout
    commands = [line for line in out.splitlines() if line.startswith(DOCKER) and " exec -T db psql " not in line]
    assert " image inspect " in commands[0] and " pull " not in out
    assert "#   read: odoo-ai-test/odoo-script-runner:standin-tests_pass is on the host" in out
    run_line = next(c for c in commands if " run --rm --no-deps -T --name " in c and "--test-enable" in c)
    assert run_line.endswith("-i standin_tests_pass --test-enable --test-tags=/standin_tests_pass --stop-after-init")
    assert f"--project-name {prefix}templates " in out and "#   sql: CREATE DATABASE" in out
    assert " down --remove-orphans " in commands[-1] and "dry run: " in proc.stderr
    proc = cli("test", "run", "--tag", "standin-tests_pass", "--modules", "standin_tests_pass", "--dry-run",
               "--no-cache")
    commands = [line for line in proc.stdout.splitlines() if line.startswith(DOCKER)]
    # inspect (a real read), db up, the tests, down
    assert len(commands) == 4 and " up --detach --wait " in commands[1] and " run --rm --no-deps -T " in commands[2]
    assert_nothing_left(tmp, prefix)
    assert projects_with_prefix(prefix) == set()
