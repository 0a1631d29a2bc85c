"""Fixtures for the registry tests (imported by conftest.py): one real
docker-registry per session, and per test a unique image namespace in it with
dev/testing env files, release logs and the CLI wired to it."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import DOCKER, Cli, standin_build_args
from tests.integration.registry import Registry


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Debian's docker-registry on a free 127.0.0.1 port: htpasswd auth, deletes enabled."""
    server = Registry(tmp_path_factory.mktemp("registry"))
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        pytest.fail(f"cannot start docker-registry (scripts/provision-host.sh installs it): {exc}")
    yield server
    server.stop()


@dataclass
class RegistryEnv:
    """A unique namespace in the session registry, with dev/testing configured for it."""

    cli: Cli
    registry: Registry
    namespace: str
    root: Path

    @property
    def image(self) -> str:
        return f"{self.registry.host}/{self.namespace}"

    @property
    def creds(self) -> dict[str, str]:
        return {"ODOO_REGISTRY_USER": self.registry.user, "ODOO_REGISTRY_PASSWORD": self.registry.password}

    def repo(self, target: str) -> str:
        return f"{self.namespace}-{target}"

    def ref(self, target: str, tag: str) -> str:
        return f"{self.image}-{target}:{tag}"

    def state_root(self, env: str) -> Path:
        return self.root / f"state-{env}"

    def write_env(self, env: str, extra: str = "") -> None:
        self.cli.write_env(env, f"ODOO_IMAGE={self.image}\nODOO_STATE_ROOT={self.state_root(env)}\n"
                                f"ODOO_PROJECT_NAME=oait-{env}-{self.namespace.split('/')[0][-8:]}\n{extra}")

    def releases(self, env: str, lines: list[dict]) -> None:
        path = self.state_root(env) / "releases.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    def run(self, *args: str, creds: bool = True, check: bool = True, **kw) -> subprocess.CompletedProcess:
        extra = {**(self.creds if creds else {}), **kw.pop("extra_env", {})}
        return self.cli(*args, check=check, extra_env=extra, **kw)

    def json(self, *args: str, **kw) -> dict:
        proc = self.run(*args, "--json", **kw)
        return json.loads(proc.stdout)

    def build(self, env: str, sha: str, *, push: bool = True, addons: str = "ok", **kw) -> dict:
        return self.json(*standin_build_args(env, sha, addons=addons), *(["--push"] if push else []), **kw)

    def local_refs(self) -> list[str]:
        out = subprocess.run([DOCKER, "image", "ls", "--digests", "--format", "{{json .}}"],
                             capture_output=True, text=True, timeout=60).stdout
        refs = []
        for row in map(json.loads, out.splitlines()):
            if not row["Repository"].startswith(self.image + "-"):
                continue
            if row["Tag"] != "<none>":
                refs.append(f"{row['Repository']}:{row['Tag']}")
            if row["Digest"] != "<none>":
                refs.append(f"{row['Repository']}@{row['Digest']}")
        return refs

    def release(self, env: str, built: dict, status: str = "success", ts: str = "2026-11-01T00:00:00Z") -> dict:
        return {"timestamp": ts, "env": env, "image_tag": built["tag"], "commit": built["sha"], "status": status,
                "digests": {t: i.get("digest") for t, i in built["images"].items()}}


@pytest.fixture
def reg_env(registry: Registry, cli: Cli, tmp_path: Path) -> Iterator[RegistryEnv]:
    namespace = f"oait-{uuid.uuid4().hex[:8]}/odoo"
    env = RegistryEnv(cli, registry, namespace, tmp_path)
    env.write_env("dev")
    env.write_env("testing")
    yield env
    for ref in env.local_refs():  # our own throw-away images only, by name, never forced
        subprocess.run([DOCKER, "image", "rm", ref], capture_output=True, timeout=120)
