"""`build --dry-run` is the real build against the dry connector: the git reads are real
(HEAD names the tag, the submodules are checked), each `docker build` is printed and its
success assumed and said so, nothing is written; it fails where the real build fails
before its first build, with the same message and exit code. No Docker needed."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from odoo_ai import build
from odoo_ai.config.stack import load_stack
from odoo_ai.hosts import LocalHost
from odoo_ai.runners.base import Command, Result

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_COMMITTER_DATE": "2026-01-02T03:04:05Z",
           "GIT_CONFIG_COUNT": "1",
           "GIT_CONFIG_KEY_0": "protocol.file.allow", "GIT_CONFIG_VALUE_0": "always"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True,
                          env={**os.environ, **GIT_ENV}, timeout=60).stdout.strip()


def commit_all(root: Path, message: str = "init") -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def odoo_ai(*args: str, repo: Path, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "odoo_ai", "--repo", str(repo), "--config-dir", str(repo / "docker" / "config"), *args],
        capture_output=True, text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin", **GIT_ENV},
    )


def a_git_repo(repo: Path) -> str:
    (repo / "addons" / "my_addon").mkdir(parents=True)
    (repo / "addons" / "my_addon" / "__manifest__.py").write_text("{'name': 'x'}\n")
    git(repo, "init", "-q", "-b", "main")
    return commit_all(repo)


def test_dry_run_reads_git_prints_both_builds_and_writes_nothing(repo: Path, home: Path) -> None:
    head = a_git_repo(repo)
    before = sorted(p.relative_to(repo) for p in repo.rglob("*") if ".git" not in p.parts)
    proc = odoo_ai("build", "dev", "--dry-run", "--json", repo=repo, home=home)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # one document on stdout; the dry run's lines went to stderr
    assert doc["status"] == "dry-run" and doc["tag"] == f"dev-{head[:7]}" and doc["sha"] == head
    assert doc["built_at"] == "2026-01-02T03:04:05Z"  # the commit's time, read for real
    # the git reads ran and are said to have run; the builds are printed, assumed, not run
    assert any(r.startswith("git_head") for r in doc["reads"]) and any(r.startswith("git_submodules")
                                                                        for r in doc["reads"])
    builds = [p for p in doc["plan"] if " build " in p]
    assert [b.split("--target ")[1].split()[0] for b in builds] == ["web", "script-runner"]
    assert all("DOCKER_BUILDKIT=1" in b and f"--build-arg SOURCE_COMMIT={head}" in b for b in builds)
    assert any("docker build --target web succeeds" in a for a in doc["assumptions"])
    assert doc["images"]["web"] == {"ref": f"odoo-ai/odoo-web:dev-{head[:7]}", "id": None}
    assert f"git -C {repo} rev-parse HEAD" in proc.stderr and "assume:" in proc.stderr
    assert f"# write {home}/odoo-ai/opw-dev/last-build.json" in proc.stderr
    assert not (home / "odoo-ai").exists()  # the build record was not written
    assert sorted(p.relative_to(repo) for p in repo.rglob("*") if ".git" not in p.parts) == before


def test_dry_run_fails_where_the_real_build_fails_before_building(repo: Path, home: Path) -> None:
    # not a git work tree: no commit to name the tag
    (repo / "addons").mkdir()
    real = odoo_ai("build", "dev", repo=repo, home=home)
    dry = odoo_ai("build", "dev", "--dry-run", repo=repo, home=home)
    assert real.returncode == dry.returncode == 2
    assert "cannot read the git commit: pass --sha" in real.stderr
    assert real.stderr.splitlines()[0] in dry.stderr.splitlines()
    assert " build " not in dry.stdout  # failed before any docker build was planned
    # a submodule of the addons folder that is not checked out (read with git, for real)
    sub = repo.parent / "sub"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "main")
    (sub / "__manifest__.py").write_text("{}\n")
    commit_all(sub)
    a_git_repo(repo)
    git(repo, "submodule", "add", "-q", str(sub), "addons/sub")
    commit_all(repo, "submodule")
    git(repo, "submodule", "deinit", "-q", "-f", "addons/sub")
    real = odoo_ai("build", "dev", repo=repo, home=home)
    dry = odoo_ai("build", "dev", "--dry-run", repo=repo, home=home)
    assert real.returncode == dry.returncode == 2
    assert "git submodule(s) addons/sub not checked out" in real.stderr
    assert real.stderr.splitlines()[0] in dry.stderr.splitlines()
    assert not (home / "odoo-ai").exists()


def a_stack(repo: Path, tmp_path: Path):
    (repo / "docker" / "config" / "dev.env").write_text(
        f"ODOO_IMAGE=reg.example/acme/odoo\nODOO_STATE_ROOT={tmp_path / 'state'}\n")
    (repo / "addons").mkdir()
    return load_stack("dev", repo_root=repo, config_dir=repo / "docker" / "config")


class Scripted(LocalHost):
    """This machine's files, scripted command answers: the argv sequence a build gives."""

    def __init__(self, answers: dict[str, Result]):
        super().__init__()
        self.answers = answers
        self.commands: list[Command] = []

    def run(self, command: Command, *, capture: bool = True) -> Result:
        self.commands.append(command)
        return self.answers.get(command.purpose, Result(0))

    def stream(self, command: Command, on_line) -> int:
        return self.run(command).returncode


def test_the_build_sequence_and_its_record(repo: Path, tmp_path: Path) -> None:
    stack = a_stack(repo, tmp_path)
    host = Scripted({"git_head": Result(0, "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d\n"),
                     "git_commit_time": Result(0, "1767323045\n"),
                     "git_submodules": Result(128, "", "fatal: not a git repository"),
                     "built_image_id": Result(0, "sha256:" + "e" * 64 + "\n")})
    inputs = build.build_inputs(stack, sha=None, host=host, odoo_git_url="https://example.invalid/odoo.git")
    record = build.build(stack, host, inputs)
    assert [c.purpose for c in host.commands] == [
        "git_head", "git_commit_time", "git_submodules",
        "build_command", "built_image_id", "build_command", "built_image_id"]
    assert record["tag"] == "dev-1a2b3c4" and record["built_at"] == "2026-01-02T03:04:05Z"
    assert record["images"]["script-runner"] == {"ref": "reg.example/acme/odoo-script-runner:dev-1a2b3c4",
                                                 "id": "sha256:" + "e" * 64}
    assert json.loads((tmp_path / "state" / "last-build.json").read_text()) == record


def test_a_bare_dry_runner_still_gets_the_dry_connector(repo: Path, tmp_path: Path) -> None:
    """`up --build --dry-run` hands build a dry runner: it prints, assumes and writes nothing."""
    from odoo_ai.runners import DryRunner

    stack = a_stack(repo, tmp_path)
    out = io.StringIO()
    inputs = build.build_inputs(stack, sha="1a2b3c4", odoo_git_url="https://example.invalid/odoo.git")
    record = build.build(stack, DryRunner(out=out), inputs)
    assert record["images"]["web"]["id"] is None and "assume: docker build --target web succeeds" in out.getvalue()
    assert not (tmp_path / "state").exists()


def test_one_build_at_a_time_on_a_machine(repo: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """Docker 20.10's BuildKit can crash dockerd on concurrent builds: a second build waits
    for the first (saying so), and gives up after BUILD_LOCK_TIMEOUT without building."""
    from odoo_ai.lock import EnvLock, LockHeld

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(build, "BUILD_LOCK_TIMEOUT", 0.3)
    stack = a_stack(repo, tmp_path)
    host = Scripted({})
    inputs = build.build_inputs(stack, sha="1a2b3c4", odoo_git_url="https://example.invalid/odoo.git")
    assert build.build_lock_path().parent == tmp_path
    with EnvLock(build.build_lock_path(), command="build testing"), pytest.raises(LockHeld, match="build testing"):
        build.build(stack, host, inputs)
    assert "build_command" not in [c.purpose for c in host.commands]
    assert "waiting for another odoo-ai build on this machine" in capsys.readouterr().err
    build.build(stack, host, inputs)  # free again: builds
    assert [c.purpose for c in host.commands].count("build_command") == 2
