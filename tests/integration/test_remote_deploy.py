"""Deploys to a remote Docker host over a real OpenSSH server (on 127.0.0.1):
key auth, pinned host key, secrets only on stdin, state on the host's disk."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import (
    DOCKER,
    REPO,
    Cli,
    force_cleanup,
    free_port,
    leftovers,
    standin_build_args,
)
from tests.integration.sshd import start_sshd

SECRETS = {"ODOO_DB_PASSWORD": "r3mote-$ecret 'pw'", "ODOO_MASTER_PASSWORD": "remote-master-$$"}
SCENARIOS = {"ok": "5e10000aaaa", "ok_v2": "5e20000bbbb"}


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("remote")
    sshd = start_sshd(tmp / "sshd")
    # Every ssh argv the CLI runs is logged by a wrapper in front of the real ssh.
    bindir = tmp / "bin"
    bindir.mkdir()
    argv_log = tmp / "ssh-argv.log"
    wrapper = bindir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {argv_log}\nexec /usr/bin/ssh "$@"\n')
    wrapper.chmod(0o755)
    for name in ("config", "home"):
        (tmp / name).mkdir()
    project = f"oair-{os.getpid()}"
    state_root = tmp / "host-state"
    port = free_port()
    env = {**os.environ, "HOME": str(tmp / "home"), "ODOO_AI_DOCKER": DOCKER, "PATH": f"{bindir}:{os.environ['PATH']}",
           "ODOO_AI_SSH_KEY": str(sshd.client_key), "ODOO_AI_KNOWN_HOSTS": str(sshd.known_hosts), **SECRETS}
    cli = Cli(REPO, tmp / "config", tmp / "home", env)
    cli.write_env("dev", "\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={state_root}", f"ODOO_PUBLISHED_PORT={port}",
        f"ODOO_REMOTE_REPO_DIR={tmp / 'host-repo'}", "ODOO_IMAGE=odoo-ai-test/odoo",
        "ODOO_DB_IMAGE=odoo-ai-test/postgres:15", "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1", "ODOO_DB_NAME=opw_remote",
        "ODOO_UPDATE=standin_demo", "ODOO_DEPLOY_GATE_TIMEOUT=30", "ODOO_DEPLOY_DRAIN_SECONDS=0.5", "",
    ]))
    for scenario, sha in SCENARIOS.items():
        cli(*standin_build_args("dev", sha, addons=scenario), timeout=1200)
    yield cli, sshd, project, state_root, port, argv_log, tmp
    sshd.stop()
    force_cleanup(project, state_root)


def test_remote_deploys_over_ssh(remote) -> None:
    cli, sshd, project, state_root, port, argv_log, tmp = remote
    first = cli.json("deploy", "dev", "--tag", "dev-5e10000", "--host", sshd.url)
    assert first["status"] == "success"
    second = cli.json("deploy", "dev", "--tag", "dev-5e20000", "--host", sshd.url)
    assert second["status"] == "success" and second["previous_tag"] == "dev-5e10000"
    assert httpx.get(f"http://127.0.0.1:{port}/web/health", timeout=5).status_code == 200

    # State lives on the host: the compose files synced there, .env 0600, the release log.
    assert (tmp / "host-repo" / "docker-compose.yml").exists()
    assert stat.S_IMODE((state_root / ".env").stat().st_mode) == 0o600
    history = cli.json("releases", "dev", "--host", sshd.url)["releases"]
    assert [r["image_tag"] for r in history] == ["dev-5e10000", "dev-5e20000"]

    # Secrets never reached the ssh command line (they travel on stdin).
    logged = argv_log.read_text()
    assert "StrictHostKeyChecking=yes" in logged and "ssh://" not in logged
    for value in SECRETS.values():
        assert value not in logged
        assert json.dumps(value)[1:-1] not in logged
    assert "Accepted publickey" in sshd.log.read_text()


def test_remote_rollback_and_bad_hosts(remote) -> None:
    cli, sshd, project, state_root, port, argv_log, tmp = remote
    back = cli.json("rollback", "dev", "--host", sshd.url)
    assert back["status"] == "success" and back["tag"] == "dev-5e10000"
    for bad in ("ssh://root@host;id", "ssh://root@127.0.0.1:99999", "http://127.0.0.1", "ssh://-oProxyCommand=x"):
        proc = cli("deploy", "dev", "--tag", "dev-5e10000", "--host", bad, check=False)
        assert proc.returncode == 2, (bad, proc.stderr)
        assert "--host" in proc.stderr
    # A host key that does not match the pinned one is refused, nothing deployed.
    wrong = tmp / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    proc = cli("deploy", "dev", "--tag", "dev-5e20000", "--host", sshd.url, "--known-hosts", str(wrong), check=False)
    assert proc.returncode == 3 and "Host key verification failed" in proc.stderr
    assert cli.json("status", "dev")["tag"] == "dev-5e10000"


def test_remote_teardown(remote) -> None:
    cli, sshd, project, state_root, *_ = remote
    cli("down", "dev", "--purge", "--yes")
    assert leftovers(project)["containers"] == []
    assert not Path(state_root).exists()
