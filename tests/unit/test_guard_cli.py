"""The guard rails through the real command line (a subprocess, no Docker: the docker CLI
is /bin/true): the issue's hostile inputs, exit 2 with one line and nothing changed; the
y/N question on a real terminal (a pty); config show's settings file and secret sources."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from odoo_ai.config.stateroot import MARKER, marker_text
from tests.unit.test_purge import make_stack_dir, snapshot

REPO = Path(__file__).resolve().parents[2]


def odoo_ai(*args: str, repo: Path, home: Path, env: dict[str, str] | None = None,
            **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "odoo_ai", "--repo", str(repo), "--config-dir", str(repo / "docker" / "config"), *args],
        capture_output=True, text=True, timeout=60,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "ODOO_AI_DOCKER": "/bin/true", **(env or {})}, **kw,
    )


def write_env(repo: Path, text: str) -> None:
    (repo / "docker" / "config" / "dev.env").write_text(text)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("odoo-ai: error:")]


@pytest.mark.parametrize("args", [["down", "dev", "--purge", "--dry-run"], ["down", "dev", "--purge"],
                                  ["up", "dev", "--tag", "dev-1a2b3c4", "--dry-run"], ["config", "show", "dev"]])
@pytest.mark.parametrize(("value", "message"), [
    ("/", "ODOO_STATE_ROOT='/' is the root directory: a stack needs a folder of its own, "
          "e.g. /opt/odoo-ai/data/opw-dev or ~/odoo-ai/opw-dev"),
    ("/etc", "ODOO_STATE_ROOT='/etc' is a top-level directory: a stack needs a folder of its own, "
             "e.g. /opt/odoo-ai/data/opw-dev or ~/odoo-ai/opw-dev"),
    ("~", "ODOO_STATE_ROOT='~' is your home directory: a stack needs a folder of its own, "
          "e.g. /opt/odoo-ai/data/opw-dev or ~/odoo-ai/opw-dev"),
])
def test_a_system_state_root_is_refused_by_every_command(repo, home, tmp_path, args, value, message) -> None:
    write_env(repo, f"# the data\nODOO_STATE_ROOT={value}\n")
    before = snapshot(tmp_path)
    proc = odoo_ai(*args, repo=repo, home=home)
    assert proc.returncode == 2, proc.stderr
    assert error_lines(proc) == [f"odoo-ai: error: {repo}/docker/config/dev.env:2: {message}"]
    assert "rm -r" not in proc.stdout and proc.stdout == ""
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_purge_of_a_directory_that_was_never_a_stack_is_refused(repo, home, tmp_path, dry_run) -> None:
    unrelated = tmp_path / "photos"
    (unrelated / "2024").mkdir(parents=True)
    (unrelated / "2024" / "a.jpg").write_bytes(b"\xff\xd8 precious")
    write_env(repo, f"ODOO_STATE_ROOT={unrelated}\n")
    before = snapshot(tmp_path)
    proc = odoo_ai("down", "dev", "--purge", *dry_run, repo=repo, home=home)
    assert proc.returncode == 2
    assert error_lines(proc) == [
        f"odoo-ai: error: refusing to delete {unrelated}: it carries no odoo-ai marker (.odoo-ai-stack): odoo-ai "
        "did not create it as opw-dev's state root; nothing deleted"]
    assert snapshot(tmp_path) == before


def test_purge_without_a_terminal_needs_yes(repo, home, tmp_path) -> None:
    root = tmp_path / "state"
    make_stack_dir(root)
    write_env(repo, f"ODOO_STATE_ROOT={root}\n")
    before = snapshot(tmp_path)
    proc = odoo_ai("down", "dev", "--purge", "--json", repo=repo, home=home, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"] == (
        f"refusing to delete {root} without confirmation (no terminal to ask on): pass --yes; "
        "nothing stopped, nothing deleted")
    assert f"purge deletes {root} (marker: opw-dev" in proc.stderr  # the listing came first, on stderr
    assert snapshot(tmp_path) == before


def _on_a_terminal(args: list[str], answer: str, *, repo: Path, home: Path) -> tuple[int, str]:
    """Run odoo-ai with stdin and stderr on a pty, answer the question; (exit code, what the terminal showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "odoo_ai", "--repo", str(repo), "--config-dir", str(repo / "docker" / "config"), *args],
        stdin=slave, stderr=slave, stdout=subprocess.PIPE, text=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "ODOO_AI_DOCKER": "/bin/true"},
    )
    os.close(slave)
    shown = b""
    try:
        while b"[y/N]" not in shown:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            shown += chunk
        os.write(master, answer.encode() + b"\n")
        proc.wait(timeout=60)
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, shown.decode("utf-8", "replace")


@pytest.mark.parametrize(("answer", "code", "deleted"), [("y", 0, True), ("n", 2, False), ("", 2, False)])
def test_purge_asks_on_a_terminal(repo, home, tmp_path, answer, code, deleted) -> None:
    root = tmp_path / "state"
    make_stack_dir(root)
    write_env(repo, f"ODOO_STATE_ROOT={root}\n")
    before = snapshot(tmp_path)
    returncode, shown = _on_a_terminal(["down", "dev", "--purge"], answer, repo=repo, home=home)
    assert f"Delete {root} and everything in it? [y/N]" in shown and "database" in shown
    assert returncode == code
    if deleted:
        assert not root.exists()
    else:
        assert "not confirmed: nothing stopped, nothing deleted" in shown
        assert snapshot(tmp_path) == before


def test_config_show_names_the_settings_file_and_where_each_secret_comes_from(repo, home) -> None:
    config = repo / "docker" / "config"
    (config / "dev.env.example").write_text((REPO / "docker/config/dev.env.example").read_text())
    (home / "odoo-ai" / "opw-dev").mkdir(parents=True)
    (home / "odoo-ai" / "opw-dev" / ".secrets.env").write_text('ODOO_MASTER_PASSWORD="generated-s3cret"\n')
    proc = odoo_ai("config", "show", "dev", "--json", repo=repo, home=home, env={"ODOO_DB_PASSWORD": "env-s3cret"})
    doc = json.loads(proc.stdout)
    assert (doc["settings_file"], doc["example"]) == (str(config / "dev.env.example"), True)
    assert doc["secrets"] == {"ODOO_DB_PASSWORD": "environment", "ODOO_MASTER_PASSWORD": "generated"}
    assert "s3cret" not in proc.stdout + proc.stderr
    human = odoo_ai("config", "show", "dev", repo=repo, home=home, env={"COLUMNS": "400"}).stdout
    rows = {line.split()[0]: line.split()[1:] for line in human.splitlines() if line.strip()}
    assert rows["settings_file"] == [str(config / "dev.env.example")] and rows["example"] == ["True"]
    assert "ODOO_DB_PASSWORD=not set" in human and "ODOO_MASTER_PASSWORD=generated" in human
    (config / "dev.env").write_text("ODOO_WORKERS=3\n")
    doc = json.loads(odoo_ai("config", "show", "dev", "--json", repo=repo, home=home).stdout)
    assert (doc["settings_file"], doc["example"], doc["workers"]) == (str(config / "dev.env"), False, 3)


def test_the_deploy_dry_run_shows_the_marker_it_would_write(repo, home) -> None:
    secrets = {"ODOO_DB_PASSWORD": "pw", "ODOO_MASTER_PASSWORD": "m", "ODOO_AI_DOCKER": "docker"}
    proc = odoo_ai("deploy", "dev", "--tag", "dev-1a2b3c4", "--dry-run", repo=repo, home=home, env=secrets)
    assert proc.returncode == 0, proc.stderr
    assert f"# write {home}/odoo-ai/opw-dev/{MARKER}" in proc.stdout + proc.stderr
    assert not (home / "odoo-ai").exists()


def test_a_deploy_into_another_stacks_state_root_is_refused(repo, home, tmp_path) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    (root / MARKER).write_text(marker_text("opw-testing", "testing"))
    write_env(repo, f"ODOO_STATE_ROOT={root}\n")
    secrets = {"ODOO_DB_PASSWORD": "pw", "ODOO_MASTER_PASSWORD": "m", "ODOO_AI_DOCKER": "docker"}
    proc = odoo_ai("deploy", "dev", "--tag", "dev-1a2b3c4", "--dry-run", repo=repo, home=home, env=secrets)
    assert proc.returncode != 0
    assert f"{root} is the state root of the stack 'opw-testing'" in proc.stderr
