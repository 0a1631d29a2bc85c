"""Enterprise stays secret: a real throw-away SSH key fetches a real git repository
over a real sshd (on the Docker bridge gateway, reachable from build containers)
as a BuildKit secret; the build's own scan and an independent one prove the key
is in no layer, config or history; a rebuild after an addon-only change reuses
the Odoo and Enterprise layers; and an image that does leak the key is caught."""

from __future__ import annotations

import getpass
import ipaddress
import json
import os
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from odoo_ai.images import SecretLeak, scan_images
from odoo_ai.runners import LocalRunner
from tests.integration.conftest import BASE_IMAGE, DOCKER
from tests.integration.conftest_registry import standin_build_args

SSHD = "/usr/sbin/sshd"


def bridge_gateway() -> str:
    out = subprocess.run([DOCKER, "network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    for entry in json.loads(out) or []:
        if entry.get("Gateway"):
            return entry["Gateway"]
        if entry.get("Subnet") and ":" not in entry["Subnet"]:
            return str(next(ipaddress.ip_network(entry["Subnet"]).hosts()))
    raise RuntimeError(f"no IPv4 gateway for the bridge network: {out}")


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


@pytest.fixture(scope="module")
def enterprise_sshd(tmp_path_factory: pytest.TempPathFactory):
    """A bare git repo with one tiny addon, served by a throw-away sshd."""
    if not os.path.exists(SSHD):
        pytest.fail("openssh-server missing: scripts/provision-host.sh installs it")
    root = tmp_path_factory.mktemp("enterprise-sshd")
    for name in ("host_key", "enterprise_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(root / name)],
                       check=True, timeout=30)
    (root / "authorized_keys").write_text((root / "enterprise_key.pub").read_text())
    work = root / "work"
    (work / "ent_demo").mkdir(parents=True)
    (work / "ent_demo" / "__init__.py").write_text("")
    # A nonce makes this run's Enterprise layer (and all above it) new to the build cache.
    (work / "ent_demo" / "__manifest__.py").write_text(
        f"{{'name': 'Enterprise stand-in', 'version': '18.0.1.0', 'nonce': '{uuid.uuid4().hex}'}}\n")
    git("init", "-q", "-b", "main", str(work))
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "enterprise stand-in", cwd=work)
    sha = git("rev-parse", "HEAD", cwd=work)
    bare = root / "enterprise.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=bare)

    gateway = bridge_gateway()
    port = free_port(gateway)
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress {gateway}\nHostKey {root / 'host_key'}\nPidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {root / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
        "LogLevel VERBOSE\n"
    )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    log = (root / "sshd.log").open("ab")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection((gateway, port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"sshd exited: {(root / 'sshd.log').read_text()}")
            time.sleep(0.1)
    host_key = (root / "host_key.pub").read_text().split()[:2]
    (root / "known_hosts").write_text(f"[{gateway}]:{port} {' '.join(host_key)}\n")
    url = f"ssh://{getpass.getuser()}@{gateway}:{port}{bare}"
    yield {"root": root, "url": url, "sha": sha, "key": root / "enterprise_key",
           "known_hosts": root / "known_hosts", "log": root / "sshd.log"}
    proc.terminate()
    proc.wait(timeout=10)


def cache_report(build_output: str) -> dict[str, bool]:
    """BuildKit plain progress -> {step name: cached?}."""
    names: dict[str, str] = {}
    cached: set[str] = set()
    for line in build_output.splitlines():
        match = re.match(r"^#(\d+) (\[.+)$", line)
        if match and not match.group(2).startswith("[internal]") and " FROM " not in match.group(2):
            names.setdefault(match.group(1), match.group(2)[:110])
        match = re.match(r"^#(\d+) CACHED$", line)
        if match:
            cached.add(match.group(1))
    return {name: step in cached for step, name in names.items()}


def layers(ref: str) -> list[str]:
    out = subprocess.run([DOCKER, "image", "inspect", "--format", "{{json .RootFS.Layers}}", ref],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return json.loads(out)


def test_enterprise_key_reaches_the_build_only_as_a_secret(cli, enterprise_sshd, tmp_path) -> None:
    image = f"oait-ent-{uuid.uuid4().hex[:8]}/odoo"
    cli.write_env("dev", f"ODOO_IMAGE={image}\nODOO_STATE_ROOT={tmp_path / 'state'}\n")
    ent = enterprise_sshd
    enterprise = ["--enterprise-git", ent["url"], "--enterprise-sha", ent["sha"],
                  "--enterprise-key", str(ent["key"]), "--enterprise-known-hosts", str(ent["known_hosts"])]
    refs = [f"{image}-web:dev-e17e41a", f"{image}-script-runner:dev-e17e41a"]
    try:
        first = cli(*standin_build_args("dev", "e17e41a"), *enterprise, "--json")
        record = json.loads(first.stdout)
        scan = record["verify"]
        assert scan["scanned"] is True and scan["findings"] == 0 and scan["layers"] >= 10
        # The addon came over the real sshd, with the throw-away key, from a build container.
        assert re.search(r"Accepted publickey for \S+ from 172\.", ent["log"].read_text())
        shown = subprocess.run([DOCKER, "run", "--rm", "--entrypoint", "/bin/sh", refs[0], "-c",
                                "cat /opt/odoo/enterprise/ent_demo/__manifest__.py; ls -A /opt/odoo/enterprise"],
                               capture_output=True, text=True, timeout=120)
        assert "Enterprise stand-in" in shown.stdout and ".git" not in shown.stdout.split()

        # Independent check: the raw `docker save` stream holds no key fragment nor its path.
        key_lines = [line for line in ent["key"].read_text().splitlines()[2:-1] if len(line) > 20]
        needles = [line.encode() for line in key_lines] + [str(ent["key"]).encode()]
        saved = subprocess.Popen([DOCKER, "image", "save", *refs], stdout=subprocess.PIPE)
        tail, total = b"", 0
        assert saved.stdout is not None
        while chunk := saved.stdout.read(1 << 20):
            window = tail + chunk
            assert not [n for n in needles if n in window], "key material in the saved images"
            tail, total = window[-200:], total + len(chunk)
        assert saved.wait(timeout=300) == 0 and total > 50_000_000
        history = subprocess.run([DOCKER, "image", "history", "--no-trunc", refs[0]], capture_output=True,
                                 text=True, check=True, timeout=60).stdout
        assert str(ent["key"]) not in history  # the fetch ran in a throw-away stage

        # An addon-only change rebuilds the last layers; Odoo and Enterprise come from the cache.
        web_layers = layers(refs[0])
        second = cli(*standin_build_args("dev", "e17e41a", addons="ok_v2"), *enterprise, "--json")
        report = cache_report(second.stderr)
        print("\ncache hits of the rebuild after an addon-only change:")
        for name, hit in report.items():
            print(f"  {'CACHED ' if hit else 'rebuilt'}  {name}")
        cached = [name for name, hit in report.items() if hit]
        rebuilt = [name for name, hit in report.items() if not hit]
        for stage in ("[enterprise ", "[odoo-src ", "[builder "):
            assert any(name.startswith(stage) for name in cached), f"{stage} not cached: {report}"
            assert not any(name.startswith(stage) for name in rebuilt), f"{stage} rebuilt: {report}"
        assert rebuilt, "nothing was rebuilt although an addon changed"
        addon = subprocess.run([DOCKER, "run", "--rm", "--entrypoint", "/bin/cat", refs[0],
                                "/opt/odoo/custom-addons/standin_demo/__init__.py"],
                               capture_output=True, text=True, timeout=120).stdout
        assert "(ok_v2)" in addon  # the new addon is in the image
        new_layers = layers(refs[0])
        # Only the custom stage's last three layers differ: the custom addons, the COPY of
        # addon_checksums.py after them (the same file, but the folder it creates is new) and the
        # merged checksums; the addon repositories' layer before them is shared.
        assert len(new_layers) == len(web_layers)
        differing = [i for i, (a, b) in enumerate(zip(web_layers, new_layers, strict=True)) if a != b]
        assert differing and set(differing) <= set(range(len(new_layers) - 3, len(new_layers))), \
            f"layers {differing} of {len(new_layers)} differ"
        assert json.loads(second.stdout)["verify"]["findings"] == 0
    finally:
        for ref in refs:
            subprocess.run([DOCKER, "image", "rm", ref], capture_output=True, timeout=120)


def test_an_image_that_leaks_the_key_is_caught(enterprise_sshd, tmp_path) -> None:
    key = enterprise_sshd["key"]
    context = tmp_path / "leaky"
    context.mkdir()
    (context / "deploy_key").write_bytes(key.read_bytes())
    (context / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nCOPY deploy_key /root/.ssh/id_ed25519\nLABEL org.example.key-path=\"{key}\"\n")
    ref = f"oait-leaky-{uuid.uuid4().hex[:8]}:test"
    subprocess.run([DOCKER, "build", "-q", "-t", ref, str(context)], env={**os.environ, "DOCKER_BUILDKIT": "1"},
                   capture_output=True, check=True, timeout=300)
    try:
        with pytest.raises(SecretLeak) as caught:
            scan_images(LocalRunner(), [ref], key)
        message = caught.value.message
        assert ref in message and "layer 2/2" in message and "root/.ssh/id_ed25519" in message
        assert "\n" not in message and "more)" in message  # the label (config) is a further finding
        assert key.read_text().splitlines()[2] not in message
    finally:
        subprocess.run([DOCKER, "image", "rm", ref], capture_output=True, timeout=120)
