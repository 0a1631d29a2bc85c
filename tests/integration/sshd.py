"""A real OpenSSH server on 127.0.0.1 for remote-host tests: generated host and
client keys, key auth only, a pinned known_hosts file."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.conftest import free_port

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    port: int
    client_key: Path
    known_hosts: Path
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_sshd(workdir: Path) -> Sshd:
    if not Path(SSHD).exists():
        raise RuntimeError("openssh-server is not installed: run scripts/provision-host.sh")
    workdir.mkdir(parents=True, exist_ok=True)
    host_key = workdir / "host_ed25519"
    client_key = workdir / "client_ed25519"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = workdir / "authorized_keys"
    shutil.copy(client_key.with_suffix(".pub"), authorized)
    authorized.chmod(0o600)
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {workdir / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "AllowTcpForwarding no",
        "X11Forwarding no", "PermitUserEnvironment no", "LogLevel VERBOSE", "",
    ]))
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    log = workdir / "sshd.log"
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log.open("w"))
    known_hosts = workdir / "known_hosts"
    public = host_key.with_suffix(".pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
    for _ in range(100):
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text()}")
        probe = subprocess.run(
            ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
             "-i", str(client_key), "-p", str(port), "root@127.0.0.1", "true"], capture_output=True, timeout=10)
        if probe.returncode == 0:
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"sshd on {port} never accepted our key: {log.read_text()}")
    return Sshd(port, client_key, known_hosts, process, log)
