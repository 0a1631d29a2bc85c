"""Build once, push what was tested: `push` refuses a tag that names another image than
the one built and tested, checks that the registry's manifest is that image, keeps
Enterprise images out of public GHCR packages, and uses a supplied API token for the
GitHub packages API. Also `promote --tested-only` and what `push` reads of the last build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odoo_ai import build, images
from odoo_ai.config.stack import load_stack
from odoo_ai.errors import ConfigError
from odoo_ai.hosts import LocalHost
from odoo_ai.registry import open_backend, registry_settings
from tests.unit.registry_fakes import FakeGitHub, FakeRegistry, digest_of, transport
from tests.unit.test_registry_push import CREDS, FakeDocker, record

TAG = "dev-1a2b3c4"


@pytest.fixture
def stack(repo: Path, home: Path, tmp_path: Path):
    (repo / "docker" / "config" / "dev.env").write_text(
        f"ODOO_IMAGE=registry.test/acme/odoo\nODOO_STATE_ROOT={tmp_path}/state-dev\n")
    return load_stack("dev", repo_root=repo, home=home)


@pytest.fixture
def ghcr_stack(repo: Path, home: Path, tmp_path: Path):
    (repo / "docker" / "config" / "dev.env").write_text(
        f"ODOO_IMAGE=ghcr.io/acme/odoo\nODOO_STATE_ROOT={tmp_path}/state-dev\nODOO_GITHUB_OWNER_TYPE=org\n"
        "ODOO_GITHUB_API_URL=http://registry.test\nODOO_REGISTRY_URL=http://registry.test\n")
    return load_stack("dev", repo_root=repo, home=home)


def ghcr_record() -> dict:
    return {"env": "dev", "tag": TAG, "images": {
        t: {"ref": f"ghcr.io/acme/odoo-{t}:{TAG}"} for t in ("web", "script-runner")}}


def pushes(docker: FakeDocker) -> list[str]:
    return [c.argv[3] for c in docker.commands if c.argv[1:3] == ["image", "push"]]


# ---------------------------------------------------------------- build once
def test_push_sends_exactly_the_tested_images_and_checks_the_registry_has_them(stack) -> None:
    fake = FakeRegistry()
    docker = FakeDocker(fake)
    tested = {t: docker.image_id(f"registry.test/acme/odoo-{t}:{TAG}") for t in ("web", "script-runner")}
    out = images.push(stack, docker, record(), environ=CREDS, transport=transport(fake), expected_ids=tested)
    for target in ("web", "script-runner"):
        image = out["images"][target]
        assert image["id"] == tested[target] and image["verified"] is True
        # the manifest the tag now names in the registry has the tested image as its config
        _, manifest = fake.repos[f"acme/odoo-{target}"].manifests[image["digest"]]
        assert json.loads(manifest)["config"]["digest"] == tested[target]


def test_a_tag_rebuilt_after_the_tests_is_not_pushed(stack) -> None:
    fake = FakeRegistry()
    docker = FakeDocker(fake)
    tested = {t: docker.image_id(f"registry.test/acme/odoo-{t}:{TAG}") for t in ("web", "script-runner")}
    docker.images["registry.test/acme/odoo-script-runner:dev-1a2b3c4"] = b'{"rebuilt": "untested Odoo"}'
    with pytest.raises(images.PushRefused, match=r"odoo-script-runner:dev-1a2b3c4 is now image sha256:[0-9a-f]{64}, "
                       r"not the sha256:[0-9a-f]{64} that was built and tested: refusing to push") as caught:
        images.push(stack, docker, record(), environ=CREDS, transport=transport(fake), expected_ids=tested)
    assert caught.value.exit_code == 1
    assert pushes(docker) == [] and fake.repos == {}  # not even the web image went


def test_build_push_compares_with_the_ids_the_build_recorded(stack) -> None:
    fake = FakeRegistry()
    docker = FakeDocker(fake)
    built = record()
    for image in built["images"].values():
        image["id"] = docker.image_id(image["ref"])
    docker.images[built["images"]["web"]["ref"]] = b'{"another": "build"}'
    with pytest.raises(images.PushRefused, match="odoo-web:dev-1a2b3c4 is now image"):
        images.push(stack, docker, built, environ=CREDS, transport=transport(fake))


def test_a_manifest_that_is_not_the_pushed_image_fails_the_push(stack) -> None:
    """The tag moved between docker's push and the registry's answer (another push won)."""
    fake = FakeRegistry()

    class Racing(FakeDocker):
        def run(self, command, *, capture=False):
            result = super().run(command, capture=capture)
            if command.argv[1:3] == ["image", "push"]:
                name, tag = command.argv[3].split("/", 1)[1].rsplit(":", 1)
                self.registry.add_image(name, [tag], config=b'{"someone": "else"}')
                # docker's own output now names a digest that the tag no longer has
            return result

    docker = Racing(fake)
    with pytest.raises(Exception, match="docker pushed sha256:.* but the registry now has"):
        images.push(stack, docker, record(), environ=CREDS, transport=transport(fake))


def test_the_registry_describing_another_image_is_refused(stack) -> None:
    fake = FakeRegistry()
    docker = FakeDocker(fake)
    original = fake.add_image

    def add_image(name, tags, **kw):  # the registry stores another config than the one pushed
        kw["config"] = b'{"tampered": true}'
        return original(name, tags, **kw)

    fake.add_image = add_image  # type: ignore[method-assign]
    with pytest.raises(images.PushRefused, match=r"in the registry is not the local image sha256:"):
        images.push(stack, docker, record(), environ=CREDS, transport=transport(fake))


# ---------------------------------------------------------------- GHCR: API token, Enterprise privacy
def test_a_supplied_api_token_wins_over_github_token_for_the_packages_api(ghcr_stack) -> None:
    env = {"GITHUB_TOKEN": "ghs_job", "ODOO_REGISTRY_API_TOKEN": "ghp_pat"}
    settings = registry_settings(ghcr_stack, env)
    assert (settings.github_token, settings.github_token_source) == ("ghp_pat", "ODOO_REGISTRY_API_TOKEN")
    assert settings.credentials.password == "ghs_job"  # docker login (push, pull) keeps the job token
    fake = FakeGitHub(token="ghs_job", api_token="ghp_pat")
    fake.add_image("acme/odoo-web", [TAG], salt="x")
    backend = open_backend(settings, transport=transport(fake))
    try:
        assert [v.tags for v in backend.list_versions("acme/odoo-web")] == [(TAG,)]
    finally:
        backend.close()
    api = [r for r in fake.requests if not r.path.startswith(("/v2/", "/token"))]
    assert api and {r.authorization for r in api} == {"Bearer ghp_pat"}
    # a PAT given as the registry password is also preferred to the job's token for the API
    both = registry_settings(ghcr_stack, {"GITHUB_TOKEN": "ghs_job", "ODOO_REGISTRY_PASSWORD": "ghp_pw"})
    assert (both.github_token, both.github_token_source) == ("ghp_pw", "ODOO_REGISTRY_PASSWORD")
    assert registry_settings(ghcr_stack, {"GITHUB_TOKEN": "ghs_job"}).github_token_source == "GITHUB_TOKEN"


def test_a_rejected_api_token_is_named_not_its_value(ghcr_stack) -> None:
    from odoo_ai.registry import RegistryAuthError

    fake = FakeGitHub(token="ghs_job", api_token="ghp_right")
    backend = open_backend(registry_settings(ghcr_stack, {"GITHUB_TOKEN": "ghs_job", "ODOO_REGISTRY_API_TOKEN": "ghp_x"}),
                           transport=transport(fake))
    try:
        with pytest.raises(RegistryAuthError, match=r"authentication failed \(401\): check ODOO_REGISTRY_API_TOKEN$"):
            backend.list_versions("acme/odoo-web")
    finally:
        backend.close()


GHCR_ENV = {"GITHUB_TOKEN": "ghs_test", "GITHUB_REPOSITORY": "acme/shop"}


def test_enterprise_images_are_not_pushed_to_a_public_package(ghcr_stack) -> None:
    fake = FakeGitHub()
    fake.add_image("acme/odoo-web", ["dev-0000000"], salt="older")
    fake.visibility["odoo-web"] = "public"
    docker = FakeDocker(fake)
    with pytest.raises(images.PushRefused, match=r"an image with Odoo Enterprise would be pushed to the PUBLIC GHCR "
                       r"package acme/odoo-web: refusing to push") as caught:
        images.push(ghcr_stack, docker, ghcr_record(), environ=GHCR_ENV, transport=transport(fake), enterprise=True)
    assert "Change visibility → Private" in caught.value.hint
    assert "https://github.com/orgs/acme/packages/container/package/odoo-web" in caught.value.hint
    assert pushes(docker) == []
    # the same images without Enterprise may go to a public package
    out = images.push(ghcr_stack, FakeDocker(fake), ghcr_record(), environ=GHCR_ENV, transport=transport(fake))
    assert out["pushed"] is True


def test_a_new_package_of_a_public_repository_is_refused_a_private_one_is_checked_after(ghcr_stack) -> None:
    fake = FakeGitHub()
    fake.repositories["acme/shop"] = "public"
    docker = FakeDocker(fake)
    with pytest.raises(images.PushRefused, match=r"does not exist yet and a push from this workflow would create it "
                       r"linked to the PUBLIC repository acme/shop"):
        images.push(ghcr_stack, docker, ghcr_record(), environ=GHCR_ENV, transport=transport(fake), enterprise=True)
    assert pushes(docker) == []

    fake.repositories["acme/shop"] = "private"
    before = len(fake.requests)
    out = images.push(ghcr_stack, docker, ghcr_record(), environ=GHCR_ENV, transport=transport(fake), enterprise=True)
    assert out["pushed"] is True and any("new package" in n for n in out["notes"])
    package_gets = [r for r in fake.requests[before:] if r.method == "GET" and "/packages/container/" in r.path
                    and not r.path.endswith("/versions")]
    assert len(package_gets) == 4  # both packages before and after the push

    # a package made public while the push ran: the push fails afterwards
    fake.visibility["odoo-script-runner"] = "public"
    fake.visibility["odoo-web"] = "private"
    with pytest.raises(images.PushRefused, match="PUBLIC GHCR package acme/odoo-script-runner"):
        images.push(ghcr_stack, docker, ghcr_record(), environ={**GHCR_ENV}, transport=transport(fake),
                    enterprise=True)


def test_visibility_that_cannot_be_read_refuses_the_push(ghcr_stack) -> None:
    fake = FakeGitHub(api_token="ghp_other")  # the job token is refused by the API
    docker = FakeDocker(fake)
    with pytest.raises(images.PushRefused, match="cannot tell whether the GHCR package acme/odoo-web is private"):
        images.push(ghcr_stack, docker, ghcr_record(), environ=GHCR_ENV, transport=transport(fake), enterprise=True)
    assert pushes(docker) == []


# ---------------------------------------------------------------- promote --tested-only, push_record
def test_promote_tested_only_refuses_a_tag_that_was_never_deployed(stack, repo: Path, home: Path,
                                                                   tmp_path: Path) -> None:
    (repo / "docker" / "config" / "testing.env").write_text(
        f"ODOO_IMAGE=registry.test/acme/odoo\nODOO_STATE_ROOT={tmp_path}/state-testing\n")
    testing = load_stack("testing", repo_root=repo, home=home)
    fake = FakeRegistry()
    for target in ("web", "script-runner"):
        fake.add_image(f"acme/odoo-{target}", [TAG], salt="pushed by anyone")
    with pytest.raises(images.PushRefused, match=r"dev-1a2b3c4 has no successful release .*\(--tested-only\)"):
        images.promote(stack, testing, LocalHost(FakeDocker(fake)), tag=TAG, environ=CREDS, transport=transport(fake),
                       tested_only=True)
    assert not [r for r in fake.requests if r.method == "PUT"]


def test_push_record_is_the_last_build_and_refuses_unscanned_enterprise(stack) -> None:
    state = stack.state_root
    state.mkdir(parents=True)
    built = {"env": "dev", "tag": TAG, "sha": "1a2b3c4", "enterprise": False,
             "images": {t: {"ref": f"x-{t}:{TAG}", "id": digest_of(t.encode())} for t in ("web", "script-runner")}}
    (state / "last-build.json").write_text(json.dumps(built))
    assert build.push_record(stack, None) == built and build.push_record(stack, TAG) == built
    other = build.push_record(stack, "dev-7777777")
    assert other["images"]["web"] == {"ref": "registry.test/acme/odoo-web:dev-7777777"}
    (state / "last-build.json").write_text(json.dumps({**built, "enterprise": True}))
    with pytest.raises(ConfigError, match="hold Odoo Enterprise but were not scanned"):
        build.push_record(stack, TAG)
    (state / "last-build.json").write_text(json.dumps({**built, "enterprise": True, "verify": {"scanned": True}}))
    assert build.push_record(stack, TAG)["enterprise"] is True


def test_the_api_token_is_refused_in_an_env_file(repo: Path, home: Path, tmp_path: Path) -> None:
    (repo / "docker" / "config" / "dev.env").write_text(
        f"ODOO_STATE_ROOT={tmp_path}/s\nODOO_REGISTRY_API_TOKEN=ghp_x\n")
    with pytest.raises(ConfigError, match="ODOO_REGISTRY_API_TOKEN is read from the process environment only"):
        load_stack("dev", repo_root=repo, home=home)
