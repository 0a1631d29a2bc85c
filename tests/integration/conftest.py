"""Integration tests drive the real CLI against a real Docker engine + Compose v2.

.ci/run provisions the engine and the test images (scripts/provision-host.sh,
scripts/build-test-images.sh) and sets ODOO_AI_REQUIRE_DOCKER=1, so a missing
engine fails the run there instead of skipping.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = os.environ.get("ODOO_AI_DOCKER", "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker")
BASE_IMAGE = os.environ.get("ODOO_AI_BASE_IMAGE", "odoo-ai-test/debian:bookworm")
# The stand-in prints no PDF: skip Debian's wkhtmltopdf (and its Qt) in test builds.
os.environ.setdefault("ODOO_BUILD_WKHTMLTOPDF", "none")
# The testing overlay runs a mail catcher (Mailpit by default, which cannot be pulled here): the
# TEST catcher of scripts/build-test-images.sh instead, its UI on a port Docker picks (Compose
# takes these from the process environment before the rendered .env), so stacks never collide.
os.environ.setdefault("ODOO_MAIL_CATCHER_IMAGE", "odoo-ai-test/mailcatcher:1")
os.environ.setdefault("ODOO_MAIL_CATCHER_PORT", "0")


STANDIN_SRC = REPO / "tests/fixtures/standin-odoo"
STANDIN_ADDONS = REPO / "tests/fixtures/standin-addons"
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"


def standin_build_args(env: str, sha: str, *, addons: str = "ok") -> list[str]:
    """`odoo-ai build` of the stand-in Odoo with the real Dockerfile, addons scenario `addons`."""
    args = ["build", env, "--sha", sha, "--odoo-src", str(STANDIN_SRC), "--addons", str(STANDIN_ADDONS / addons),
            "--base-image", BASE_IMAGE]
    if os.path.exists(CA_FILE):
        args += ["--ca-file", CA_FILE]
    return args


def _docker_ok() -> bool:
    try:
        return subprocess.run([DOCKER, "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pytest_collection_modifyitems(config, items):
    if _docker_ok():
        return
    if os.environ.get("ODOO_AI_REQUIRE_DOCKER") == "1":
        raise pytest.UsageError("ODOO_AI_REQUIRE_DOCKER=1 but no Docker engine answers")
    skip = pytest.mark.skip(reason="no Docker engine (run scripts/provision-host.sh)")
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(skip)


# pytest-xdist runs test files side by side (pyproject: -n 2 --dist loadfile). Each test here
# holds a shared flock on one file from its setup to its teardown; a module in EXCLUSIVE holds
# it exclusively from its first test's setup to its last one's teardown: `docker swarm
# init/leave` changes the whole engine, no other test may run meanwhile. (Builds wait for each
# other in `odoo-ai build` itself: build_lock_path.)
ENGINE_LOCK = Path(tempfile.gettempdir()) / f"odoo-ai-tests-engine-{os.getuid()}.lock"
EXCLUSIVE = ("test_swarm",)
_held: dict[str, int] = {}  # module name -> fd holding the exclusive lock


def _module(item) -> str:
    return item.module.__name__.rsplit(".", 1)[-1] if item is not None else ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    name = _module(item)
    if name in EXCLUSIVE:
        if name not in _held:
            _held[name] = fd = os.open(ENGINE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if _module(nextitem) != name:
                os.close(_held.pop(name))  # drops the flock
        return
    fd = os.open(ENGINE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def image_exists(ref: str) -> bool:
    return subprocess.run([DOCKER, "image", "inspect", ref], capture_output=True).returncode == 0


@dataclass
class Cli:
    repo: Path
    config_dir: Path
    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True, input: str | None = None,
                 extra_env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["odoo-ai", "--repo", str(self.repo), "--config-dir", str(self.config_dir), *args],
            capture_output=True, text=True, env={**self.env, **(extra_env or {})},
            input=input, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"odoo-ai {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args: str, **kw) -> dict:
        return json.loads(self(*args, "--json", **kw).stdout)

    def write_env(self, env: str, text: str) -> None:
        (self.config_dir / f"{env}.env").write_text(text)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """The real CLI on the real repo, with its own config dir, HOME and project names."""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "ODOO_AI_DOCKER": DOCKER,
           "DOCKER_CONFIG": os.environ.get("DOCKER_CONFIG", str(Path.home() / ".docker"))}
    yield Cli(REPO, config_dir, home, env)


@pytest.fixture
def project_name() -> str:
    return f"oait-{uuid.uuid4().hex[:8]}"


def leftovers(project: str) -> dict[str, list[str]]:
    label = f"label=com.docker.compose.project={project}"
    out = {}
    for kind, argv in {
        "containers": [DOCKER, "ps", "-aq", "--filter", label],
        "networks": [DOCKER, "network", "ls", "-q", "--filter", label],
        "volumes": [DOCKER, "volume", "ls", "-q", "--filter", label],
    }.items():
        out[kind] = subprocess.run(argv, capture_output=True, text=True).stdout.split()
    return out


def force_cleanup(project: str, state_root: Path | None = None) -> None:
    ids = subprocess.run([DOCKER, "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run([DOCKER, "rm", "-f", "-v", *ids], capture_output=True)
    for net in subprocess.run([DOCKER, "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                              capture_output=True, text=True).stdout.split():
        subprocess.run([DOCKER, "network", "rm", net], capture_output=True)
    if state_root and state_root.exists():
        shutil.rmtree(state_root, ignore_errors=True)


# Registry fixtures (a real docker-registry per session); imported here so pytest sees them.
@contextmanager
def answers_during(url: str, *, every: float = 0.05, clients: int = 1) -> Iterator[list[str]]:
    """`clients` clients GETting URL (a new connection each time) every `every` s while the
    block runs: what they got, in order — "<status>", " retry-after" when that header came,
    " unavailable" when the proxy said no Odoo answered (X-Odoo-Ai: unavailable, its page
    instead of a 502), and " newer code: …" when the stand-in said it served newer code
    than the data (its X-Standin-Newer-Code header); an error's type name when nothing came."""
    answers: list[str] = []
    done = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=15) as client:
            while not done.is_set():
                try:
                    r = client.get(url, headers={"Connection": "close"})
                    newer = r.headers.get("x-standin-newer-code")
                    answers.append(f"{r.status_code}{' retry-after' if 'retry-after' in r.headers else ''}"
                                   f"{' unavailable' if r.headers.get('x-odoo-ai') == 'unavailable' else ''}"
                                   f"{f' newer code: {newer}' if newer else ''}")
                except httpx.HTTPError as exc:
                    answers.append(type(exc).__name__)
                done.wait(every)

    pollers = [threading.Thread(target=poll) for _ in range(clients)]
    for poller in pollers:
        poller.start()
    try:
        yield answers
    finally:
        done.set()
        for poller in pollers:
            poller.join()


from tests.integration.conftest_registry import reg_env, registry  # noqa: E402, F401
