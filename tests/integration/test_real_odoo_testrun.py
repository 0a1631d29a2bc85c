"""`test run` against REAL Odoo 18.0 Community (the trimmed source of ../shared/odoo18, built
with the real Dockerfile by `scripts/build-test-images.sh --real`; addons in
tests/fixtures/real-addons/tests): a passing, a failing and a no-match run, each in a throw-away
Compose project with a real PostgreSQL, leaving nothing behind.

`--modules oai_tests_pass` must test exactly that module: installing it also auto-installs
`oai_tests_bridge` (which has a test of its own), and without `--test-tags=/oai_tests_pass` real
Odoo would run that test too (3 tests instead of 2). Those runs use a fresh database
(--no-cache); the last test starts from a template database of the dependencies (base).

Skipped when the real images cannot be had (no tarball, no images), unless
ODOO_AI_REQUIRE_REAL_ODOO=1 (set by .ci/run), which makes that a failure."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from odoo_ai import charts
from tests.integration.conftest import DOCKER, REPO, image_exists
from tests.integration.test_test_run import assert_nothing_left, remove_projects, templates_volume
from tests.unit.test_charts import mermaid_blocks, parse_gantt, parse_pie

DB_IMAGE = "odoo-ai-test/postgres:15"
IMAGE = "odoo-ai-test/odoo-script-runner:real-tests"
ADDONS = REPO / "tests/fixtures/real-addons/tests"
TARBALL = Path(os.environ.get("ODOO_AI_ODOO18_TARBALL")
               or REPO.parent / "shared/odoo18/odoo-18.0-community-core.tar.gz")
REQUIRED = os.environ.get("ODOO_AI_REQUIRE_REAL_ODOO") == "1"
TIMEOUT = 600  # one Odoo run takes ~15 s here


@pytest.fixture(scope="module")
def real_images() -> None:
    """Bring the real images up to date when the source is there (all cache hits when they
    are), then require the one this module runs."""
    if TARBALL.is_file():
        proc = subprocess.run([str(REPO / "scripts" / "build-test-images.sh"), "--real"], capture_output=True,
                              text=True, timeout=1800,
                              env={**os.environ, "DOCKER": DOCKER, "ODOO_AI_ODOO18_TARBALL": str(TARBALL)})
        assert proc.returncode == 0, proc.stderr[-3000:]
    if image_exists(IMAGE):
        return
    why = (f"real Odoo 18 image {IMAGE} is absent and there is no source tarball at {TARBALL} "
           "(build it with scripts/build-test-images.sh --real; set ODOO_AI_ODOO18_TARBALL)")
    if REQUIRED:
        pytest.fail(f"ODOO_AI_REQUIRE_REAL_ODOO=1 but {why}")
    pytest.skip(why)


@pytest.fixture
def env(cli, project_name, tmp_path, real_images):
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
    assert not state_root.exists()


def run(cli, *args: str, cache: bool = False,
        extra_env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """A run on a fresh database (--no-cache: each test has its own env, a template would be
    built for one run only), or with `cache` from a template of the dependencies."""
    proc = cli("test", "run", "--image", IMAGE, "--addons", str(ADDONS), "--timeout", str(TIMEOUT),
               "--json", *args, *([] if cache else ["--no-cache"]), check=False, timeout=TIMEOUT + 300,
               extra_env=extra_env)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"exit {proc.returncode}, no JSON\n{proc.stdout}\n{proc.stderr}") from None
    return proc, doc


def why(proc: subprocess.CompletedProcess, doc: dict) -> str:
    """A run that did not pass: what it printed and what its report says (status, problems)."""
    said = {key: doc.get(key) for key in ("status", "problems", "totals")}
    return f"{proc.stderr[-3000:]}\n{json.dumps(said, indent=1)[-4000:]}"




def test_modules_x_tests_exactly_x(cli, env) -> None:
    tmp, prefix = env
    proc, doc = run(cli, "--modules", "oai_tests_pass")
    assert proc.returncode == 0, why(proc, doc)
    assert doc["status"] == "passed" and doc["odoo_exit_code"] == 0
    assert doc["totals"] == {"tests": 2, "passed": 2, "failed": 0, "errors": 0, "skipped": 0}
    # Only oai_tests_pass's tests: not oai_tests_bridge's (auto-installed with it), nor base/web's.
    assert {t["module"] for t in doc["tests"]} == {"oai_tests_pass"}
    assert [t["method"] for t in doc["tests"]] == ["test_01_company", "test_02_admin_exists"]
    assert [m["name"] for m in doc["modules"]] == ["oai_tests_pass"]
    assert doc["run"]["test_tags"] == "/oai_tests_pass" and doc["run"]["test_tags_source"] == "modules"
    assert doc["summary_line"] == f"0 failed, 0 error(s) of 2 tests when loading database '{doc['run']['database']}'"
    assert_nothing_left(tmp, prefix)


def test_a_failing_test(cli, env, tmp_path) -> None:
    tmp, prefix = env
    junit, summary = tmp_path / "results.xml", tmp_path / "summary.md"
    proc, doc = run(cli, "--modules", "oai_tests_fail", "--junit", str(junit),
                    extra_env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert proc.returncode == 1, proc.stderr
    assert doc["status"] == "failed" and doc["odoo_exit_code"] == 1
    assert doc["totals"] == {"tests": 2, "passed": 1, "failed": 1, "errors": 0, "skipped": 0}
    failed = [t for t in doc["tests"] if t["status"] == "failed"]
    assert [(t["module"], t["method"]) for t in failed] == [("oai_tests_fail", "test_02_fails")]
    assert "deliberate assertion failure" in failed[0]["message"]
    # The JSON keeps the path Odoo saw; the JUnit maps it back to the addon in the repository.
    assert failed[0]["file"] == "/opt/odoo/custom-addons/oai_tests_fail/tests/test_tests_fail.py"
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    case = next(c for c in root.iter("testcase") if c.get("name") == "test_02_fails")
    assert case.get("file") == str(ADDONS / "oai_tests_fail/tests/test_tests_fail.py")
    # The job summary's charts parse, and draw the JSON's numbers: outcomes, each module's time.
    text = summary.read_text()
    pie, gantt = mermaid_blocks(text)
    assert parse_pie(pie)[1] == {"passed": 1, "failed": 1}
    assert [(b.text.split()[0], "crit" in b.tags, b.ms) for b in parse_gantt(gantt)[1]] == \
        [(m["name"], m["status"] == "failed", max(charts.ms(charts.module_time(m, doc["tests"])), 1))
         for m in doc["modules"]]
    assert "#### Slowest 2 tests" in text and all(t["duration"] is not None for t in doc["tests"])
    assert_nothing_left(tmp, prefix)


def test_tags_that_match_nothing_are_no_tests(cli, env) -> None:
    tmp, prefix = env
    proc, doc = run(cli, "--modules", "oai_tests_pass", "--tags", "/oai_nothing_here")
    assert proc.returncode == 4, proc.stderr
    assert doc["status"] == "no-tests" and doc["odoo_exit_code"] == 0
    assert doc["totals"]["tests"] == 0 and doc["tests"] == []
    assert doc["run"]["test_tags"] == "/oai_nothing_here" and doc["run"]["test_tags_source"] == "--tags"
    assert_nothing_left(tmp, prefix)


def test_a_template_of_the_dependencies_with_real_odoo(cli, env) -> None:
    """Real Odoo 18: the first run builds the template (base and what it auto-installs), the
    second clones it (CREATE DATABASE … TEMPLATE) and installs only the tested module, whose
    auto_install bridge comes with it in the run, not in the template; the clone has a new
    database.uuid and the template's attachments (filestore, hard-linked)."""
    tmp, prefix = env
    proc, first = run(cli, "--modules", "oai_tests_pass", cache=True)
    assert proc.returncode == 0, why(proc, first)
    template = first["run"]["template"]
    assert (template["used"], template["created"], template["modules"]) == (True, True, ["base"])
    assert {t["module"] for t in first["tests"]} == {"oai_tests_pass"} and first["totals"]["tests"] == 2

    proc, second = run(cli, "--modules", "oai_tests_pass", "--keep-db", cache=True)
    assert proc.returncode == 0, why(proc, second)
    assert second["run"]["template"]["used"] is True and second["run"]["template"]["created"] is False
    assert second["run"]["template"]["key"] == template["key"]
    assert second["totals"] == first["totals"] and [t["method"] for t in second["tests"]] == \
        [t["method"] for t in first["tests"]]
    kept = second["kept"]
    assert kept["server"] == templates_volume(prefix)
    psql = shlex.split(kept["psql"])
    psql.insert(psql.index("exec") + 1, "-T")

    def sql(query: str) -> list[str]:
        out = subprocess.run([*psql, "-tAc", query], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.split("\n")[:-1]

    installed = set(sql("SELECT name FROM ir_module_module WHERE state = 'installed'"))
    assert {"base", "web", "oai_tests_pass", "oai_tests_bridge"} <= installed
    uuid = sql("SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'")
    assert len(uuid) == 1 and len(uuid[0]) == 36
    stored = [s for s in sql("SELECT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL") if s]
    filestore = Path(kept["state_dir"]) / "filestore" / "filestore" / kept["database"]
    assert stored and all((filestore / name).is_file() for name in stored)
    for line in kept["cleanup"]:
        done = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
