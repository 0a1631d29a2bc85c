"""push / promote use-cases with a fake docker (a runner) and an in-memory registry."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from odoo_ai import images
from odoo_ai.config.stack import load_stack
from odoo_ai.dryhost import DryHost
from odoo_ai.hosts import LocalHost
from odoo_ai.registry import RegistryAuthError
from odoo_ai.runners import DryRunner
from odoo_ai.runners.base import Command, Result
from tests.unit.registry_fakes import FakeRegistry, digest_of, transport

CREDS = {"ODOO_REGISTRY_USER": "ci", "ODOO_REGISTRY_PASSWORD": "s3cret"}


class FakeDocker:
    """`docker login/push/image inspect` against the fake registry: a local image is its
    config bytes (its ID their digest); push adds a manifest with that config."""

    dry_run = False

    def __init__(self, registry: FakeRegistry):
        self.registry = registry
        self.commands: list[Command] = []
        self.config_dirs: list[str] = []
        self.images: dict[str, bytes] = {}  # ref -> config

    def config(self, ref: str) -> bytes:
        return self.images.setdefault(ref, json.dumps({"built": ref}).encode())

    def image_id(self, ref: str) -> str:
        return digest_of(self.config(ref))

    def run(self, command: Command, *, capture: bool = False) -> Result:
        self.commands.append(command)
        if "DOCKER_CONFIG" in command.env:
            self.config_dirs.append(command.env["DOCKER_CONFIG"])
            assert os.path.isdir(command.env["DOCKER_CONFIG"])
        if command.argv[1] == "login":
            ok = command.stdin == self.registry.password.encode()
            return Result(0 if ok else 1, "Login Succeeded\n" if ok else "", "" if ok else "unauthorized")
        if command.argv[1:3] == ["image", "inspect"] and command.argv[3:5] == ["--format", "{{.Id}}"]:
            return Result(0, self.image_id(command.argv[5]) + "\n")
        if command.argv[1:3] == ["image", "push"]:
            ref = command.argv[3]
            name, tag = ref.split("/", 1)[1].rsplit(":", 1)
            digest = self.registry.add_image(name, [tag], config=self.config(ref))
            return Result(0, f"The push refers to repository [{ref}]\nabc: Pushed\ndef: Layer already exists\n"
                             f"{tag}: digest: {digest} size: 528\n")
        return Result(0)

    def note(self, text: str) -> None:
        pass


@pytest.fixture
def stack(repo: Path, home: Path, tmp_path: Path):
    (repo / "docker" / "config" / "dev.env").write_text(
        f"ODOO_IMAGE=registry.test/acme/odoo\nODOO_STATE_ROOT={tmp_path}/state-dev\n")
    (repo / "docker" / "config" / "testing.env").write_text(
        f"ODOO_IMAGE=registry.test/acme/odoo\nODOO_STATE_ROOT={tmp_path}/state-testing\n")
    return load_stack("dev", repo_root=repo, home=home)


def record() -> dict:
    return {"env": "dev", "tag": "dev-1a2b3c4", "sha": "1a2b3c4", "images": {
        t: {"ref": f"registry.test/acme/odoo-{t}:dev-1a2b3c4"} for t in ("web", "script-runner")}}


def test_push_logs_in_on_stdin_and_reports_the_registry_digests(stack) -> None:
    fake = FakeRegistry()
    docker = FakeDocker(fake)
    out = images.push(stack, docker, record(), environ=CREDS, transport=transport(fake))
    assert [c.argv[1:3] for c in docker.commands[:2]] == [["image", "inspect"]] * 2  # the ids first
    login = docker.commands[2]
    assert login.argv[1:] == ["login", "--username", "ci", "--password-stdin", "registry.test"]
    assert all("s3cret" not in " ".join(c.argv) for c in docker.commands)
    assert len(set(docker.config_dirs)) == 1 and not os.path.exists(docker.config_dirs[0])  # removed after
    for target in ("web", "script-runner"):
        assert out["images"][target]["digest"] == fake.repos[f"acme/odoo-{target}"].tags["dev-1a2b3c4"]
        assert out["images"][target]["layers_pushed"] == 1 and out["images"][target]["layers_existing"] == 1
    assert out["pushed"] is True


def test_push_with_a_wrong_password_stops_before_docker(stack) -> None:
    fake = FakeRegistry()
    docker = FakeDocker(fake)
    with pytest.raises(RegistryAuthError, match=r"^registry registry.test: authentication failed \(401\) for user ci$"):
        images.push(stack, docker, record(), environ={**CREDS, "ODOO_REGISTRY_PASSWORD": "nope"},
                    transport=transport(fake))
    assert [c.argv[1:3] for c in docker.commands] == [["image", "inspect"]] * 2  # reads only: no login, no push


def test_push_without_credentials_uses_dockers_login_and_its_output(stack) -> None:
    fake = FakeRegistry()
    docker = FakeDocker(fake)
    out = images.push(stack, docker, record(), environ={}, transport=transport(fake))
    # docker's own credentials are used; the API is only asked (anonymously) to compare the pushed manifest
    assert {(r.method, r.path.split("/")[-2]) for r in fake.requests} == {("GET", "manifests")}
    assert any("not compared with the local image (no registry API credentials)" in n for n in out["notes"])
    assert [c.argv[2] for c in docker.commands] == ["inspect", "inspect", "push", "push"] and not docker.config_dirs
    assert out["images"]["web"]["digest"] == fake.repos["acme/odoo-web"].tags["dev-1a2b3c4"]


def test_push_dry_run_prints_and_touches_nothing(stack) -> None:
    fake = FakeRegistry()
    printed = io.StringIO()
    out = images.push(stack, DryRunner(out=printed), record(), environ=CREDS, transport=transport(fake))
    assert fake.requests == [] and out["pushed"] is False
    text = printed.getvalue()
    assert "docker login --username ci --password-stdin registry.test  # stdin: <redacted>" in text
    assert "s3cret" not in text and text.count("docker image push") == 2


def test_promote_uses_the_tested_digests_from_the_release_log(stack, repo: Path, home: Path, tmp_path: Path) -> None:
    fake = FakeRegistry()
    tested = {t: fake.add_image(f"acme/odoo-{t}", ["dev-1a2b3c4"], salt=f"tested {t}") for t in ("web", "script-runner")}
    moved = fake.add_image("acme/odoo-web", ["dev-1a2b3c4"], salt="rebuilt later")  # the tag moved since
    log = tmp_path / "state-dev" / "releases.log"
    log.parent.mkdir(parents=True)
    log.write_text(json.dumps({"env": "dev", "image_tag": "dev-1a2b3c4", "status": "success", "digests": tested}) + "\n")
    testing = load_stack("testing", repo_root=repo, home=home)

    printed = io.StringIO()
    dry = images.promote(stack, testing, DryHost(LocalHost(), out=printed), tag="dev-1a2b3c4", environ=CREDS,
                         transport=transport(fake))
    assert not [r for r in fake.requests if r.method == "PUT"] and dry["promoted"] is False
    assert f"PUT https://registry.test/v2/acme/odoo-web/manifests/testing-1a2b3c4  # the manifest {tested['web']}, " \
        "unchanged" in printed.getvalue().splitlines()
    assert dry["images"]["web"]["digest"] == tested["web"]  # the tested digest, read from the real registry

    result = images.promote(stack, testing, LocalHost(FakeDocker(fake)), tag="dev-1a2b3c4", environ=CREDS,
                            transport=transport(fake))
    assert result["source"] == "release-log" and result["new_tag"] == "testing-1a2b3c4"
    for target in ("web", "script-runner"):
        assert fake.repos[f"acme/odoo-{target}"].tags["testing-1a2b3c4"] == tested[target]
    assert moved != tested["web"] and "now points to" in result["notes"][0]


def test_promote_refuses_a_tag_of_another_env(stack, repo: Path, home: Path) -> None:
    from odoo_ai.errors import ConfigError
    testing = load_stack("testing", repo_root=repo, home=home)
    with pytest.raises(ConfigError, match="not a dev-<short-sha> tag"):
        images.promote(stack, testing, LocalHost(FakeDocker(FakeRegistry())), tag="testing-1a2b3c4", environ=CREDS)
