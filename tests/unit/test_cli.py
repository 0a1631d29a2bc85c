"""The CLI surface: exit codes, one-line errors, JSON documents (no Docker needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def odoo_ai(*args: str, repo: Path, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "odoo_ai", "--repo", str(repo), "--config-dir", str(repo / "docker" / "config"), *args],
        capture_output=True, text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_config_show_json_has_the_documented_keys(repo: Path, home: Path) -> None:
    proc = odoo_ai("config", "show", "testing", "--json", repo=repo, home=home)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for key in ("env", "project", "state_root", "data_dir", "db_dir", "log_dir", "logfile", "compose_files"):
        assert key in doc
    assert doc["project"] == "opw-testing" and doc["state_root"] == str(home / "odoo-ai" / "opw-testing")


@pytest.mark.parametrize(
    ("args", "env_text", "needle"),
    [
        (["config", "show", "prod"], None, "unknown env 'prod'"),
        (["config", "show", "dev"], "ODOO_STATE_ROOT=var/odoo\n", "must be an absolute path"),
        (["config", "show", "dev"], "not a line\n", "dev.env:1: cannot parse line"),
        (["env", "render", "dev", "--tag", "dev-1"], None, "missing secrets ODOO_DB_PASSWORD, ODOO_MASTER_PASSWORD"),
        (["deploy", "dev", "--tag", "../x"], None, "invalid image tag '../x'"),
        # a missing secret is bad input (exit 2) for a deploy too, refused before the lock or any write
        (["deploy", "dev", "--tag", "dev-1a2b3c4"], None, "missing secrets ODOO_DB_PASSWORD, ODOO_MASTER_PASSWORD"),
        (["config", "show", "dev"], "ODOO_INSTALL=sale,Bad-Name\n", "'Bad-Name' is not a module name"),
        (["deploy", "dev", "--tag", "dev-1", "--host", "ssh://a b"], None, "--host"),
        # targets: never "this machine" by accident, never another env's or a moving tag
        (["deploy", "dev", "--tag", "dev-1a2b3c4", "--host", ""], None, "--host is empty"),
        (["rollback", "dev", "--host", " "], None, "--host is empty"),
        (["releases", "dev", "--host", ""], None, "--host is empty"),
        (["deploy", "dev", "--tag", "testing-1a2b3c4"], None, "a deploy of dev takes dev-<short sha> tags"),
        (["deploy", "dev", "--tag", "latest"], None, "a deploy of dev takes dev-<short sha> tags"),
        (["deploy", "dev", "--tag", "dev-1a2b3c4", "--digest", "web=sha256:abc"], None, "--digest 'web=sha256:abc'"),
        (["deploy", "dev", "--tag", "dev-1a2b3c4", "--digest", "db=sha256:" + "a" * 64], None, "--digest"),
        (["rollback", "dev"], None, "nothing to roll back to"),
        (["logs", "dev", "nosuch"], None, "unknown service 'nosuch'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(repo: Path, home: Path, args, env_text, needle) -> None:
    if env_text is not None:
        (repo / "docker" / "config" / "dev.env").write_text(env_text)
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))
    proc = odoo_ai(*args, repo=repo, home=home)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2 and needle in lines[0]  # the error, and at most a hint
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before
    assert not (home / "odoo-ai").exists()


def test_json_errors_are_one_document(repo: Path, home: Path) -> None:
    proc = odoo_ai("config", "show", "nope", "--json", repo=repo, home=home)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 2 and doc["exit_code"] == 2 and "unknown env" in doc["error"]


def test_dry_run_deploy_writes_nothing_and_redacts_stdin(repo: Path, home: Path) -> None:
    """The dry run is the real deploy against the dry connector: the same commands, in the
    same order, each answer read or assumed and said so; nothing written."""
    secrets = {"ODOO_DB_PASSWORD": "hunter2-secret", "ODOO_MASTER_PASSWORD": "m4ster-secret"}
    proc = odoo_ai("deploy", "dev", "--tag", "dev-1a2b3c4", "--dry-run", repo=repo, home=home, env=secrets)
    assert proc.returncode == 0, proc.stderr
    assert "hunter2-secret" not in proc.stdout + proc.stderr and "m4ster-secret" not in proc.stdout + proc.stderr
    assert "# stdin: <redacted>" in proc.stdout
    out = proc.stdout
    assert "--scale web=2" in out and "pg_dump" in out
    assert "--env-file " + str(home / "odoo-ai/opw-dev/.env.next") in out  # what the real deploy uses
    assert "#   assume: the database exists" in out and "#   read: " in out
    order = [out.index(s) for s in (" pull ", "pg_dump", "/odoo/odoo-bin", "--scale web=2")]
    assert order == sorted(order)
    assert out.index("nginx -s reload") < order[-1] < out.rindex("nginx -s reload")  # pin the old, switch
    assert not (home / "odoo-ai").exists()


def test_dry_run_fails_where_the_real_run_fails_before_writing(repo: Path, home: Path) -> None:
    proc = odoo_ai("deploy", "dev", "--tag", "dev-1a2b3c4", "--dry-run", repo=repo, home=home,
                   env={"ODOO_DB_PASSWORD": "x"})
    assert proc.returncode == 2 and "missing secret ODOO_MASTER_PASSWORD" in proc.stderr
    assert not (home / "odoo-ai").exists()


def test_any_tag_and_digests_reach_the_deploy(repo: Path, home: Path) -> None:
    secrets = {"ODOO_DB_PASSWORD": "x", "ODOO_MASTER_PASSWORD": "y"}
    digest = "sha256:" + "b" * 64
    proc = odoo_ai("deploy", "dev", "--tag", "release-2026", "--any-tag", "--digest", f"web={digest}", "--dry-run",
                   "--json", repo=repo, home=home, env=secrets)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # one document on stdout; the dry run's lines went to stderr
    assert doc["status"] == "dry-run" and doc["assumptions"]
    assert f"odoo-ai/odoo-web@{digest}" in proc.stderr  # pulled and deployed by digest
    assert not (home / "odoo-ai").exists()


@pytest.mark.parametrize("args", [["status", "dev"], ["deploy", "dev", "--tag", "dev-1a2b3c4"]])
def test_an_unreachable_docker_engine_is_exit_3_with_what_docker_said(repo: Path, home: Path, args, tmp_path) -> None:
    """The error contract: 3 when Docker cannot be reached, with the last line it said; with
    --json one document on stdout."""
    docker = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker")
    if not docker:
        pytest.skip("no docker CLI")
    secrets = {"ODOO_DB_PASSWORD": "x", "ODOO_MASTER_PASSWORD": "y", "ODOO_AI_DOCKER": docker,
               "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    if args[0] == "status":
        odoo_ai("env", "render", "dev", "--tag", "dev-1a2b3c4", repo=repo, home=home, env=secrets)
    proc = odoo_ai(*args, "--json", repo=repo, home=home, env=secrets)
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 3 and "cannot be reached" in doc["error"] and "no-engine.sock" in doc["error"]
