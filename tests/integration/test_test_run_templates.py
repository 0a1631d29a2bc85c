"""Cached test databases against the real engine and a real PostgreSQL: the stand-in Odoo's
scenario `tests_cached` (standin_cached_mod and standin_cached_other depend on
standin_cached_dep, which takes 5 s to install), `tests_cached_dep2` (only the dependency
changed) and `tests_cached_mod2` (only a tested module changed).

A second run of an unchanged module set clones the template the first built; a change in a
dependency's checksum builds a new one, a change in a tested module does not; --no-cache
uses none and leaves them alone; parallel shards build one template and both clone it; a
kept clone is a database of the templates server, with the template's filestore. The
templates server is stopped by the last run out; only its volume stays."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import DOCKER, REPO, image_exists
from tests.integration.test_test_run import (
    DB_IMAGE,
    LABEL,
    assert_nothing_left,
    projects_with_prefix,
    remove_projects,
    templates_volume,
)

SCENARIOS = ("tests_cached", "tests_cached_dep2", "tests_cached_mod2")
MODULES = "standin_cached_mod,standin_cached_other"


@pytest.fixture(scope="module")
def images() -> None:
    args = [arg for s in SCENARIOS for arg in ("--scenario", s)]
    proc = subprocess.run([str(REPO / "scripts" / "build-test-images.sh"), *args], capture_output=True,
                          text=True, timeout=1800, env={**os.environ, "DOCKER": DOCKER})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for scenario in SCENARIOS:
        assert image_exists(f"odoo-ai-test/odoo-script-runner:standin-{scenario}")


@pytest.fixture
def env(cli, project_name, tmp_path, images):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    cli.write_env("dev", f"ODOO_PROJECT_NAME={project_name}\nODOO_STATE_ROOT={tmp_path / 'state'}\n"
                         f"ODOO_IMAGE=odoo-ai-test/odoo\nODOO_DB_IMAGE={DB_IMAGE}\n")
    cli.env["TMPDIR"] = str(tmp)
    prefix = f"{project_name}-test-"
    yield tmp, prefix
    remove_projects(prefix)
    assert projects_with_prefix(project_name) == set()


def run(cli, scenario: str, *args: str, code: int = 0) -> dict:
    proc = cli("test", "run", "--tag", f"standin-{scenario}", "--json", *args, check=False, timeout=900)
    assert proc.returncode == code, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    doc["_stderr"] = proc.stderr
    return doc


def cache_dir(cli, project: str) -> Path:
    return cli.home / ".cache" / "odoo-ai" / "test-templates" / project


def server_databases(prefix: str) -> dict[str, str]:
    """The templates server's test and template databases (started for the look, then stopped)."""
    name = templates_volume(prefix)
    container = f"{name}-look"
    subprocess.run([DOCKER, "run", "-d", "--name", container, "-v", f"{name}:/var/lib/postgresql/data",
                    "-e", "POSTGRES_PASSWORD=unused", DB_IMAGE], capture_output=True, check=True, timeout=60)
    try:
        for _ in range(60):
            out = subprocess.run([DOCKER, "exec", "-u", "postgres", container, "psql", "-U", "odoo", "-d", "postgres",
                                  "-tAc", "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') "
                                  "FROM pg_database WHERE datname ~ '^(tmpl|test)_'"],
                                 capture_output=True, text=True, timeout=60)
            if out.returncode == 0:
                return dict(line.split("|", 1) for line in out.stdout.splitlines() if line)
            subprocess.run(["sleep", "0.5"])
        raise AssertionError(out.stderr)
    finally:
        subprocess.run([DOCKER, "rm", "-f", container], capture_output=True, timeout=60)


def test_the_second_run_clones_the_template_a_dependency_change_rebuilds_it(cli, env) -> None:
    tmp, prefix = env
    first = run(cli, "tests_cached", "--modules", "standin_cached_mod")
    template = first["run"]["template"]
    assert (first["status"], first["totals"]["tests"]) == ("passed", 2)
    assert (template["used"], template["created"]) == (True, True)
    assert template["modules"] == ["base", "standin_cached_dep"]
    assert template["build_seconds"] >= 5  # standin_cached_dep installs in 5 s
    assert_nothing_left(tmp, prefix)
    assert projects_with_prefix(prefix) == {templates_volume(prefix)}  # the volume stays

    second = run(cli, "tests_cached", "--modules", "standin_cached_mod")
    assert (second["status"], second["totals"]["tests"]) == ("passed", 2)
    assert second["run"]["template"]["used"] is True and second["run"]["template"]["created"] is False
    assert second["run"]["template"]["key"] == template["key"]
    assert "cloned from template" in second["_stderr"] and "building template" not in second["_stderr"]

    # Only a tested module changed: the same template.
    mod2 = run(cli, "tests_cached_mod2", "--modules", "standin_cached_mod")
    assert mod2["run"]["template"]["key"] == template["key"] and mod2["run"]["template"]["created"] is False

    # The dependency's checksum changed: a new template, built once.
    dep2 = run(cli, "tests_cached_dep2", "--modules", "standin_cached_mod")
    assert dep2["status"] == "passed"
    assert dep2["run"]["template"]["created"] is True and dep2["run"]["template"]["key"] != template["key"]
    again = run(cli, "tests_cached_dep2", "--modules", "standin_cached_mod")
    assert again["run"]["template"]["key"] == dep2["run"]["template"]["key"]
    assert again["run"]["template"]["created"] is False

    assert_nothing_left(tmp, prefix)
    databases = server_databases(prefix)
    assert set(databases) == {template["database"], dep2["run"]["template"]["database"]}  # no test_* left
    assert set(databases.values()) == {"odoo-ai test template"}
    registry = sorted(p.stem for p in (cache_dir(cli, templates_volume(prefix).removesuffix("-test-templates"))
                                       / "templates").iterdir())
    assert registry == sorted([template["key"], dep2["run"]["template"]["key"]])


def test_no_cache_uses_no_template_and_leaves_them_alone(cli, env) -> None:
    tmp, prefix = env
    project = prefix.removesuffix("-test-")
    first = run(cli, "tests_cached", "--modules", "standin_cached_mod")
    assert first["run"]["template"]["created"] is True
    cache = cache_dir(cli, project)
    before = sorted((p.relative_to(cache), p.stat().st_mtime_ns) for p in cache.rglob("*") if p.is_file())
    fresh = run(cli, "tests_cached", "--modules", "standin_cached_mod", "--no-cache")
    assert fresh["status"] == "passed" and fresh["totals"]["tests"] == 2
    assert fresh["run"]["template"] == {"used": False, "created": False, "key": None, "database": None,
                                        "modules": [], "reason": "--no-cache", "build_seconds": None,
                                        "clone_seconds": None}
    assert "templates server" not in fresh["_stderr"]
    after = sorted((p.relative_to(cache), p.stat().st_mtime_ns) for p in cache.rglob("*") if p.is_file())
    assert after == before
    assert_nothing_left(tmp, prefix)
    assert set(server_databases(prefix)) == {first["run"]["template"]["database"]}


def test_parallel_shards_build_one_template_and_both_clone_it(cli, env) -> None:
    tmp, prefix = env
    procs = [subprocess.Popen(["odoo-ai", "--repo", str(cli.repo), "--config-dir", str(cli.config_dir),
                               "test", "run", "--tag", "standin-tests_cached", "--modules", MODULES,
                               "--shards", "2", "--shard", str(k), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env)
             for k in (1, 2)]
    docs = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, out + err
        docs.append(json.loads(out))
    assert [d["run"]["modules"] for d in docs] == [["standin_cached_mod"], ["standin_cached_other"]]
    templates = [d["run"]["template"] for d in docs]
    assert all(t["used"] for t in templates) and len({t["key"] for t in templates}) == 1
    assert sorted(t["created"] for t in templates) == [False, True]  # built once
    assert all(d["status"] == "passed" and d["totals"]["tests"] == 2 for d in docs)
    assert_nothing_left(tmp, prefix)


def test_a_kept_clone_has_the_templates_modules_and_filestore(cli, env) -> None:
    tmp, prefix = env
    run(cli, "tests_cached", "--modules", "standin_cached_mod")
    doc = run(cli, "tests_cached", "--modules", "standin_cached_mod", "--keep-db")
    kept = doc["kept"]
    assert doc["run"]["template"]["used"] is True and kept["server"] == templates_volume(prefix)
    psql = shlex.split(kept["psql"])
    psql.insert(psql.index("exec") + 1, "-T")
    query = "SELECT module || ':' || action FROM standin_module_log ORDER BY id"
    out = subprocess.run([*psql, "-tAc", query], capture_output=True, text=True, timeout=60)
    # base and the dependency installed by the template's build, the tested module by this run
    installs = out.stdout.split()
    assert sorted(installs[:-1]) == ["base:install", "standin_cached_dep:install", "web:install"], out.stderr
    assert installs[-1] == "standin_cached_mod:install"
    # The template's filestore came along (hard links), beside what this run wrote.
    filestore = Path(kept["state_dir"]) / "filestore" / "filestore" / kept["database"] / "standin"
    assert sorted(p.name for p in filestore.iterdir()) == [
        "base.txt", "standin_cached_dep.txt", "standin_cached_mod.txt", "web.txt"]
    assert (filestore / "standin_cached_dep.txt").stat().st_nlink == 2
    # While the kept database is in it, the templates server stays up (a later run too).
    run(cli, "tests_cached", "--modules", "standin_cached_other")
    running = subprocess.run([DOCKER, "ps", "-q", "--filter", f"label={LABEL}={kept['server']}"],
                             capture_output=True, text=True, timeout=60).stdout.split()
    assert len(running) == 1
    for line in kept["cleanup"]:
        done = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    run(cli, "tests_cached", "--modules", "standin_cached_other")  # the last one out stops it
    assert_nothing_left(tmp, prefix)

    # `test templates`: what is there, then --remove: no volume, no cache dir.
    listed = cli.json("test", "templates")
    assert [t["database"] for t in listed["templates"]] == [doc["run"]["template"]["database"]]
    removed = cli.json("test", "templates", "--remove")
    assert removed["removed"] is True and not Path(listed["cache_dir"]).exists()
    assert projects_with_prefix(prefix) == set()
