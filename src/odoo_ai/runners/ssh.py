"""Run planned commands on a remote Docker host over OpenSSH.

ssh hands the remote side one command line, so each argv item is quoted with
shlex.quote: a hostile value stays one literal argument. Host keys are always
checked (StrictHostKeyChecking=yes, a pinned known_hosts file when given);
secrets never go on the command line — files travel over stdin.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from odoo_ai.errors import ConfigError, ExitCode, OdooAiError
from odoo_ai.runners.base import Command, CommandTimedOut, Result, check_reachable

USER_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
IPV6_RE = re.compile(r"^[0-9A-Fa-f:.]+$")


@dataclass(frozen=True)
class SshTarget:
    host: str
    user: str | None = None
    port: int = 22
    key_file: Path | None = None
    known_hosts: Path | None = None

    @classmethod
    def parse(cls, url: str, *, key_file: Path | None = None, known_hosts: Path | None = None) -> SshTarget:
        """`ssh://[USER@]HOST[:PORT]`, validated so nothing but a host name reaches ssh."""
        if not url.startswith("ssh://"):
            raise ConfigError(f"--host {url!r}: expected ssh://[USER@]HOST[:PORT]")
        try:
            parts = urlsplit(url)
            port = parts.port or 22
        except ValueError as exc:
            raise ConfigError(f"--host {url!r}: {exc}") from None
        host = parts.hostname or ""
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.password:
            raise ConfigError(f"--host {url!r}: only ssh://[USER@]HOST[:PORT] is accepted")
        if not (HOST_RE.match(host) or (":" in host and IPV6_RE.match(host))):
            raise ConfigError(f"--host {url!r}: invalid host name {host!r}")
        if parts.username is not None and not USER_RE.match(parts.username):
            raise ConfigError(f"--host {url!r}: invalid user name {parts.username!r}")
        for label, path in (("--ssh-key", key_file), ("--known-hosts", known_hosts)):
            if path is not None and not path.is_file():
                raise ConfigError(f"{label} {path}: no such file")
        return cls(host=host, user=parts.username, port=port, key_file=key_file, known_hosts=known_hosts)

    @property
    def destination(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}" if self.user else host

    def __str__(self) -> str:
        return f"ssh://{self.destination}:{self.port}"

    def ssh_argv(self, remote_command: str) -> list[str]:
        argv = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=15",
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-p", str(self.port)]
        if self.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
        if self.key_file:
            argv += ["-i", str(self.key_file), "-o", "IdentitiesOnly=yes"]
        return argv + ["--", self.host if not self.user else f"{self.user}@{self.host}", remote_command]


def remote_line(command: Command) -> str:
    argv = list(command.argv)
    if command.env:
        argv = ["env", *(f"{k}={v}" for k, v in command.env.items()), *argv]
    return shlex.join(argv)


class SshRunner:
    dry_run = False

    def __init__(self, target: SshTarget, *, echo=None):
        self.target = target
        self._echo = echo

    def note(self, text: str) -> None:
        if self._echo:
            self._echo(f"# {text}")

    def run(self, command: Command, *, capture: bool = False) -> Result:
        if self._echo:
            self._echo(f"[{self.target}] {command.display()}")
        argv = self.target.ssh_argv(remote_line(command))
        try:
            proc = subprocess.run(  # noqa: S603 - argv list; the remote line is shlex-quoted
                argv, input=command.stdin, stdin=None if command.stdin is not None else subprocess.DEVNULL,
                capture_output=capture, timeout=command.timeout, check=False,
            )
        except FileNotFoundError:
            raise OdooAiError("ssh: command not found (install openssh-client)", exit_code=ExitCode.INFRA) from None
        except subprocess.TimeoutExpired:
            raise CommandTimedOut.of(command, f" on {self.target}") from None
        stderr = proc.stderr.decode("utf-8", "replace") if proc.stderr else ""
        if proc.returncode == 255 and capture and ("Host key verification failed" in stderr
                                                    or "Permission denied" in stderr
                                                    or "Connection refused" in stderr
                                                    or "Could not resolve" in stderr):
            raise OdooAiError(f"ssh {self.target}: {stderr.strip().splitlines()[-1]}", exit_code=ExitCode.INFRA)
        return check_reachable(command, Result(proc.returncode,
                                               proc.stdout.decode("utf-8", "replace") if proc.stdout else "", stderr))
