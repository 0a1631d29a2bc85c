"""A real registry for the tests: Debian's docker-registry (distribution v2) on a
free 127.0.0.1 port, htpasswd (bcrypt) auth, deletes enabled, storage in a temp dir.

Docker treats registries on 127.0.0.0/8 as insecure (plain HTTP) by default, so
the real engine pushes and pulls to it without extra daemon configuration.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
HTPASSWD_BIN = shutil.which("htpasswd") or "/usr/bin/htpasswd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Registry:
    root: Path
    user: str = "odoo-ai-ci"
    password: str = field(default_factory=lambda: "pw-" + secrets.token_urlsafe(12) + "$'\"")
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def config(self) -> Path:
        return self.root / "config.yml"

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        line = subprocess.run([HTPASSWD_BIN, "-B", "-i", "-n", self.user], input=self.password,
                              capture_output=True, text=True, check=True, timeout=30).stdout.strip()
        (self.root / "htpasswd").write_text(line + "\n")
        self.config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  secret: {secrets.token_hex(16)}\n"
            f"auth:\n  htpasswd:\n    realm: odoo-ai-test\n    path: {self.root / 'htpasswd'}\n"
        )

    def start(self, timeout: float = 20) -> None:
        if not self.config.exists():
            self.write_config()
        log = (self.root / "registry.log").open("ab")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(self.config)], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/v2/", timeout=2).status_code == 401:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer on {self.host} within {timeout}s: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.root / "registry.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # ---- direct API access for assertions (independent of the code under test)
    def _get(self, path: str, **kw) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", auth=(self.user, self.password), timeout=10, **kw)

    def tags(self, repository: str) -> list[str]:
        response = self._get(f"/v2/{repository}/tags/list")
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

    def digest(self, repository: str, reference: str) -> str | None:
        accept = ", ".join([
            "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
        ])
        response = httpx.head(f"{self.url}/v2/{repository}/manifests/{reference}", headers={"Accept": accept},
                              auth=(self.user, self.password), timeout=10)
        return response.headers.get("docker-content-digest") if response.status_code == 200 else None

    def garbage_collect(self) -> str:
        """Run the registry's GC (the registry is stopped meanwhile, as the docs require)."""
        running = self.proc is not None
        self.stop()
        try:
            return subprocess.run([REGISTRY_BIN, "garbage-collect", "--delete-untagged", str(self.config)],
                                  capture_output=True, text=True, timeout=300, check=True).stdout
        finally:
            if running:
                self.start()
