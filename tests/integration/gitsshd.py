"""Git repositories over a real OpenSSH server on the Docker bridge gateway: reachable from
build containers (the addon-repos and enterprise stages fetch from it) and from this host
(`git submodule update`). A throw-away client key and the server's pinned host key."""

from __future__ import annotations

import getpass
import ipaddress
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.conftest import DOCKER

SSHD = "/usr/sbin/sshd"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV, **(env or {})},
                          capture_output=True, text=True, check=True, timeout=120).stdout.strip()


def bridge_gateway() -> str:
    out = subprocess.run([DOCKER, "network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    for entry in json.loads(out) or []:
        if entry.get("Gateway"):
            return entry["Gateway"]
        if entry.get("Subnet") and ":" not in entry["Subnet"]:
            return str(next(ipaddress.ip_network(entry["Subnet"]).hosts()))
    raise RuntimeError(f"no IPv4 gateway for the bridge network: {out}")


@dataclass
class GitSshd:
    root: Path
    host: str
    port: int
    key: Path  # the client key (what --addons-ssh-key / ODOO_ADDONS_SSH_KEY hold)
    known_hosts: Path  # the server's pinned host key
    log: Path
    process: subprocess.Popen = field(repr=False)

    def url(self, bare: Path) -> str:
        return f"ssh://{getpass.getuser()}@{self.host}:{self.port}{bare}"

    def ssh_command(self) -> str:
        """GIT_SSH_COMMAND for git on this host (what the workflow's submodule step sets)."""
        return (f"ssh -F /dev/null -i {self.key} -o IdentitiesOnly=yes -o BatchMode=yes "
                f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={self.known_hosts}")

    def repo(self, name: str, files: dict[str, str]) -> tuple[Path, str]:
        """A bare repository `name`.git with one commit of `files`; (its path, the commit)."""
        work = self.root / "work" / name
        for rel, text in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        git("init", "-q", "-b", "main", str(work))
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", name, cwd=work)
        bare = self.root / f"{name}.git"
        git("clone", "-q", "--bare", str(work), str(bare))
        git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=bare)
        return bare, git("rev-parse", "HEAD", cwd=work)

    def commit(self, bare: Path, files: dict[str, str]) -> str:
        """One more commit on main of the bare repository; returns it."""
        work = self.root / "work" / bare.stem
        for rel, text in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", "more", cwd=work)
        git("push", "-q", str(bare), "HEAD:main", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)

    def accepted(self) -> int:
        return self.log.read_text().count("Accepted publickey")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_git_sshd(root: Path) -> GitSshd:
    if not os.path.exists(SSHD):
        raise RuntimeError("openssh-server missing: scripts/provision-host.sh installs it")
    root.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(root / name)],
                       check=True, timeout=30)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    gateway = bridge_gateway()
    with socket.socket() as sock:
        sock.bind((gateway, 0))
        port = sock.getsockname()[1]
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress {gateway}\nHostKey {root / 'host_key'}\nPidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
        "AllowTcpForwarding no\nX11Forwarding no\nLogLevel VERBOSE\n")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    log = root / "sshd.log"
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stdout=log.open("ab"),
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection((gateway, port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {log.read_text()}") from None
            time.sleep(0.1)
    public = (root / "host_key.pub").read_text().split()[:2]
    (root / "known_hosts").write_text(f"[{gateway}]:{port} {' '.join(public)}\n")
    return GitSshd(root, gateway, port, root / "client_key", root / "known_hosts", log, process)
