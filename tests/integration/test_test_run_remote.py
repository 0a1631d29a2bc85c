"""`odoo-ai test run --host ssh://…` against a real OpenSSH server (on 127.0.0.1) and the
real engine behind it: the test project's files are on the host (under its state root,
written over stdin, .env 0600), Odoo's output streams back over ssh into the local parser
and reports, a timeout kills the run there too, --dry-run reads over ssh and writes
nothing, and bad hosts or settings fail before anything is done, with the same host-key
and secrets rules as `deploy`."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.integration.conftest import DOCKER, REPO, Cli
from tests.integration.sshd import start_sshd
from tests.integration.test_test_run import projects_with_prefix, remove_projects, standin_images  # noqa: F401

SHOP_TOKEN = "sh0p-t0ken 'remote' $HOME"


@pytest.fixture(scope="module")
def remote(tmp_path_factory, standin_images):  # noqa: F811
    tmp = tmp_path_factory.mktemp("testrun-remote")
    sshd = start_sshd(tmp / "sshd")
    # Every ssh argv the CLI runs is logged by a wrapper in front of the real ssh.
    bindir = tmp / "bin"
    bindir.mkdir()
    argv_log = tmp / "ssh-argv.log"
    wrapper = bindir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {argv_log}\nexec /usr/bin/ssh "$@"\n')
    wrapper.chmod(0o755)
    for name in ("config", "home", "local-tmp"):
        (tmp / name).mkdir()
    project = f"oaitr-{os.getpid()}"
    state_root = tmp / "host-state"
    env = {**os.environ, "HOME": str(tmp / "home"), "ODOO_AI_DOCKER": DOCKER, "PATH": f"{bindir}:{os.environ['PATH']}",
           "TMPDIR": str(tmp / "local-tmp"), "SHOP_TOKEN": SHOP_TOKEN,
           "ODOO_AI_SSH_KEY": str(sshd.client_key), "ODOO_AI_KNOWN_HOSTS": str(sshd.known_hosts)}
    env.pop("DOCKER_HOST", None)
    cli = Cli(REPO, tmp / "config", tmp / "home", env)
    cli.write_env("dev", "\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={state_root}", f"ODOO_REMOTE_REPO_DIR={tmp / 'host-repo'}",
        "ODOO_IMAGE=odoo-ai-test/odoo", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15",
        "ODOO_SECRETS=ODOO_DB_PASSWORD,ODOO_MASTER_PASSWORD,SHOP_TOKEN", "",
    ]))
    cli.write_env("testing", f"ODOO_PROJECT_NAME={project}-t\nODOO_IMAGE=odoo-ai-test/odoo\n")  # no state root
    yield cli, sshd, project, state_root, argv_log, tmp
    sshd.stop()
    remove_projects(f"{project}-test-")


def nothing_left(project: str, state_root: Path, tmp: Path) -> None:
    """No container, network or volume of a test project; no folder of one on the host (its
    parent, test-runs, may stay); nothing in the local temp dir; no template cache."""
    assert projects_with_prefix(f"{project}-test-") == set()
    runs = state_root / "test-runs"
    assert not runs.exists() or list(runs.iterdir()) == []
    assert list((tmp / "local-tmp").iterdir()) == []
    assert not (tmp / "home" / ".cache" / "odoo-ai").exists()


def test_remote_run_streams_the_results_back(remote, tmp_path) -> None:
    cli, sshd, project, state_root, argv_log, tmp = remote
    argv_log.write_text("")
    junit = tmp_path / "results.xml"
    proc = cli("test", "run", "dev", "--tag", "standin-tests_pass", "--modules", "standin_tests_pass",
               "--host", sshd.url, "--json", "--junit", str(junit), check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "passed" and doc["totals"]["passed"] == 2
    assert [t["method"] for t in doc["tests"]] == ["test_health", "test_health_db_server_status"]
    assert doc["run"]["project"].startswith(f"{project}-test-") and doc["kept"] is None
    assert doc["run"]["template"]["used"] is False and doc["run"]["template"]["reason"].startswith("--host:")
    assert ET.parse(junit).getroot().get("tests") == "2"  # the reports are written here
    assert "✓ standin_tests_pass  TestWebController.test_health" in proc.stderr  # progress, streamed back

    # The Compose files went to the host; every command went through ssh with the host key
    # checked; no secret was ever on a command line (files travel on stdin).
    assert (tmp / "host-repo" / "docker-compose.yml").is_file()
    logged = argv_log.read_text()
    assert "StrictHostKeyChecking=yes" in logged and f"UserKnownHostsFile={sshd.known_hosts}" in logged
    assert " run --rm --no-deps -T " in logged and str(state_root / "test-runs") in logged
    assert SHOP_TOKEN not in logged and "sh0p-t0ken" not in logged
    nothing_left(project, state_root, tmp)


def test_remote_keep_db_leaves_the_project_on_the_host(remote) -> None:
    cli, sshd, project, state_root, argv_log, tmp = remote
    proc = cli("test", "run", "dev", "--image", "odoo-ai-test/odoo-script-runner:standin-tests_fail",
               "--modules", "standin_tests_fail", "--host", sshd.url, "--keep-db", "--json", check=False)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "failed" and doc["totals"]["failed"] == 1
    kept = doc["kept"]
    assert kept["host"] == f"ssh://root@127.0.0.1:{sshd.port}" and f" on {kept['host']}" in proc.stderr
    state_dir = Path(kept["state_dir"])
    assert state_dir.parent == state_root / "test-runs"
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    dotenv = state_dir / ".env"
    assert stat.S_IMODE(dotenv.stat().st_mode) == 0o600
    assert "SHOP_TOKEN=" in dotenv.read_text() and SHOP_TOKEN not in argv_log.read_text()
    # The printed cleanup, run on the host (here: this machine), removes it.
    for line in kept["cleanup"]:
        done = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    nothing_left(project, state_root, tmp)


def test_remote_timeout_kills_the_run_on_the_host(remote) -> None:
    cli, sshd, project, state_root, argv_log, tmp = remote
    # standin_demo of slow_update sleeps 20 s while it installs.
    proc = cli("test", "run", "--tag", "standin-slow_update", "--modules", "standin_demo", "--timeout", "3",
               "--host", sshd.url, "--json", check=False)
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "error" and doc["run"]["timed_out"] is True
    assert doc["problems"][0]["message"] == "the Odoo test run timed out after 3s (--timeout) and was killed"
    nothing_left(project, state_root, tmp)


def test_remote_dry_run_reads_over_ssh_and_writes_nothing(remote) -> None:
    cli, sshd, project, state_root, argv_log, tmp = remote
    argv_log.write_text("")
    before = sorted((tmp / "host-repo").rglob("*")) if (tmp / "host-repo").exists() else []
    proc = cli("test", "run", "--tag", "standin-tests_pass", "--modules", "standin_tests_pass",
               "--host", sshd.url, "--dry-run", check=False)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "#   read: odoo-ai-test/odoo-script-runner:standin-tests_pass is on the host" in out
    assert "#   assume: Odoo runs the tests" in out
    assert f"# sync the Compose files to {tmp / 'host-repo'} on ssh://root@127.0.0.1:{sshd.port}" in out
    assert f"# mkdir (0700) {state_root / 'test-runs'}/odoo-ai-{project}-test-" in out
    assert any(line.startswith("# write ") and line.endswith(".env (0600, " + line.split("(0600, ")[-1])
               for line in out.splitlines())
    run_line = next(ln for ln in out.splitlines() if " run --rm --no-deps -T " in ln)
    assert f"--file {tmp / 'host-repo' / 'docker-compose.yml'}" in run_line  # the host's Compose files
    # Over ssh it only read: the image, nothing else; nothing synced, created or started.
    remote_lines = [ln for ln in argv_log.read_text().splitlines() if ln]
    assert remote_lines and all(" image inspect " in ln for ln in remote_lines)
    assert (sorted((tmp / "host-repo").rglob("*")) if (tmp / "host-repo").exists() else []) == before
    assert "dry run: " in proc.stderr and "nothing was run or written" in proc.stderr
    nothing_left(project, state_root, tmp)


def test_remote_bad_hosts_and_settings_fail_first_the_same_dry_or_not(remote) -> None:
    cli, sshd, project, state_root, argv_log, tmp = remote
    base = ["test", "run", "--tag", "standin-tests_pass", "--modules", "standin_tests_pass"]
    for args in (["dev", "--host", ""], ["dev", "--host", "ssh://root@host;id"], ["testing", "--host", sshd.url]):
        real = cli(*base, *args, check=False)
        dry = cli(*base, *args, "--dry-run", check=False)
        assert real.returncode == dry.returncode == 2, (args, real.stderr)
        assert real.stderr == dry.stderr and "error: " in real.stderr and real.stderr.count("\n") == 1
    assert "ODOO_STATE_ROOT" in real.stderr
    # A host key that does not match the pinned one: refused before anything runs there.
    wrong = tmp / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    proc = cli(*base, "dev", "--host", sshd.url, "--known-hosts", str(wrong), "--json", check=False)
    assert proc.returncode == 3 and "Host key verification failed" in proc.stderr
    nothing_left(project, state_root, tmp)
