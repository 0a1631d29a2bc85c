"""The OCI distribution backend against an in-memory registry (httpx.MockTransport)
and, for connection errors, a real closed port."""

from __future__ import annotations

import json
import socket

import pytest

from odoo_ai.registry import (
    Credentials,
    NotFound,
    RegistryAuthError,
    RegistryError,
    RegistrySettings,
    open_backend,
)
from odoo_ai.registry.oci import ACCEPT
from tests.unit.registry_fakes import DOCKER_MANIFEST, FakeRegistry, digest_of, transport


def settings(password: str = "s3cret", *, user: str = "ci", url: str = "http://registry.test",
             host: str = "registry.test") -> RegistrySettings:
    return RegistrySettings(host=host, base_url=url, kind="oci", namespace="acme/odoo",
                            credentials=Credentials(user, password) if password else None, timeout=5)


@pytest.fixture
def fake() -> FakeRegistry:
    registry = FakeRegistry(auth="basic")
    registry.add_image("acme/odoo-web", ["dev-aaaaaaa"], salt="a")
    registry.add_image("acme/odoo-web", ["dev-bbbbbbb", "testing-bbbbbbb"], salt="b")
    return registry


def test_basic_auth_after_the_challenge_then_preemptively(fake: FakeRegistry) -> None:
    backend = open_backend(settings(), transport=transport(fake))
    assert backend.list_tags("acme/odoo-web") == ["dev-aaaaaaa", "dev-bbbbbbb", "testing-bbbbbbb"]
    backend.list_tags("acme/odoo-web")
    auths = [r.authorization for r in fake.requests]
    assert auths[0] is None and auths[1].startswith("Basic ") and auths[2].startswith("Basic ")
    assert len(fake.requests) == 3  # one challenge, then credentials on every call


def test_wrong_password_is_one_clear_line(fake: FakeRegistry) -> None:
    backend = open_backend(settings("wrong"), transport=transport(fake))
    with pytest.raises(RegistryAuthError) as caught:
        backend.list_tags("acme/odoo-web")
    assert caught.value.message == "registry registry.test: authentication failed (401) for user ci"
    assert caught.value.exit_code == 2
    assert "wrong" not in caught.value.message


def test_missing_credentials_say_which_variables(fake: FakeRegistry) -> None:
    backend = open_backend(settings(""), transport=transport(fake))
    with pytest.raises(RegistryAuthError) as caught:
        backend.list_tags("acme/odoo-web")
    assert "authentication required (401)" in caught.value.message
    assert "ODOO_REGISTRY_PASSWORD" in caught.value.hint


def test_unreachable_registry_is_one_line_exit_3() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = open_backend(settings(url=f"http://127.0.0.1:{port}", host=f"127.0.0.1:{port}"))
    with pytest.raises(RegistryError) as caught:
        backend.list_tags("acme/odoo-web")
    assert caught.value.message == f"registry 127.0.0.1:{port} unreachable: connection refused"
    assert caught.value.exit_code == 3


def test_bearer_token_per_scope() -> None:
    fake = FakeRegistry(auth="bearer")
    digest = fake.add_image("acme/odoo-web", ["dev-aaaaaaa"])
    backend = open_backend(settings(), transport=transport(fake))
    assert backend.resolve_digest("acme/odoo-web", "dev-aaaaaaa") == digest
    backend.copy_tag("acme/odoo-web", digest, "testing-aaaaaaa")
    token_requests = [r for r in fake.requests if r.path == "/token"]
    assert [r.query["scope"] for r in token_requests] == [
        ["repository:acme/odoo-web:pull"], ["repository:acme/odoo-web:pull,push"]]
    assert all(r.query["service"] == ["fake"] for r in token_requests)
    assert all(r.authorization.startswith("Basic ") for r in token_requests)
    registry_calls = [r for r in fake.requests if r.path.startswith("/v2/") and r.authorization]
    assert all(r.authorization.startswith("Bearer tok") for r in registry_calls)


def test_bearer_wrong_password_fails_at_the_token_endpoint() -> None:
    fake = FakeRegistry(auth="bearer")
    fake.add_image("acme/odoo-web", ["dev-aaaaaaa"])
    backend = open_backend(settings("nope"), transport=transport(fake))
    with pytest.raises(RegistryAuthError, match=r"authentication failed \(401\) for user ci$"):
        backend.resolve_digest("acme/odoo-web", "dev-aaaaaaa")


def test_tags_follow_link_pagination() -> None:
    fake = FakeRegistry(auth=None, tags_page=2)
    for i in range(5):
        fake.add_image("acme/odoo-web", [f"dev-{i:07d}"], salt=str(i))
    backend = open_backend(settings(""), transport=transport(fake))
    assert backend.list_tags("acme/odoo-web") == [f"dev-{i:07d}" for i in range(5)]
    pages = [r for r in fake.requests if r.path.endswith("/tags/list")]
    assert len(pages) == 3 and pages[1].query["last"] == ["dev-0000001"]


def test_unknown_repository_has_no_tags_and_unknown_tag_is_not_found(fake: FakeRegistry) -> None:
    backend = open_backend(settings(), transport=transport(fake))
    assert backend.list_tags("acme/nothing-here") == []
    with pytest.raises(NotFound, match="acme/odoo-web:dev-0000000 not found"):
        backend.resolve_digest("acme/odoo-web", "dev-0000000")


def test_manifests_are_asked_with_every_media_type(fake: FakeRegistry) -> None:
    backend = open_backend(settings(), transport=transport(fake))
    backend.resolve_digest("acme/odoo-web", "dev-aaaaaaa")
    head = [r for r in fake.requests if r.method == "HEAD"][-1]
    assert head.headers["accept"] == ACCEPT
    assert "application/vnd.oci.image.index.v1+json" in ACCEPT and DOCKER_MANIFEST in ACCEPT


def test_copy_tag_puts_the_same_bytes_so_the_digest_is_unchanged(fake: FakeRegistry) -> None:
    backend = open_backend(settings(), transport=transport(fake))
    digest = backend.resolve_digest("acme/odoo-web", "dev-aaaaaaa")
    assert backend.copy_tag("acme/odoo-web", digest, "testing-aaaaaaa") == digest
    put = [r for r in fake.requests if r.method == "PUT"][0]
    assert put.path == "/v2/acme/odoo-web/manifests/testing-aaaaaaa"
    assert put.headers["content-type"] == DOCKER_MANIFEST
    repo = fake.repos["acme/odoo-web"]
    assert repo.tags["testing-aaaaaaa"] == digest == digest_of(repo.manifests[digest][1])


def test_list_versions_groups_tags_by_digest_with_creation_time(fake: FakeRegistry) -> None:
    backend = open_backend(settings(), transport=transport(fake))
    versions = {v.tags: v for v in backend.list_versions("acme/odoo-web")}
    assert set(versions) == {("dev-aaaaaaa",), ("dev-bbbbbbb", "testing-bbbbbbb")}
    assert versions[("dev-aaaaaaa",)].created.year == 2026


def test_index_children_are_named() -> None:
    fake = FakeRegistry(auth=None)
    image = fake.add_image("acme/odoo-web", [], salt="platform")
    attestation = fake.add_image("acme/odoo-web", [], salt="attestation")
    index = fake.add_index("acme/odoo-web", ["dev-ccccccc"], [image, attestation])
    backend = open_backend(settings(""), transport=transport(fake))
    [version] = backend.list_versions("acme/odoo-web")
    assert version.digest == index and version.children == (image, attestation)
    assert version.created is not None  # from the platform image's config


def test_delete_by_digest_and_405_when_disabled(fake: FakeRegistry) -> None:
    backend = open_backend(settings(), transport=transport(fake))
    [old] = [v for v in backend.list_versions("acme/odoo-web") if v.tags == ("dev-aaaaaaa",)]
    backend.delete("acme/odoo-web", old)
    assert [r for r in fake.requests if r.method == "DELETE"][0].path == f"/v2/acme/odoo-web/manifests/{old.digest}"
    assert "dev-aaaaaaa" not in backend.list_tags("acme/odoo-web")
    backend.delete("acme/odoo-web", old)  # already gone: fine
    fake.deletes = False
    [other] = backend.list_versions("acme/odoo-web")
    with pytest.raises(RegistryError, match=r"deletes are disabled \(405"):
        backend.delete("acme/odoo-web", other)


def test_a_registry_that_lies_about_a_digest_is_caught(fake: FakeRegistry) -> None:
    backend = open_backend(settings(), transport=transport(fake))
    digest = backend.resolve_digest("acme/odoo-web", "dev-aaaaaaa")
    media_type, body = fake.repos["acme/odoo-web"].manifests[digest]
    fake.repos["acme/odoo-web"].manifests[digest] = (media_type, json.dumps({"tampered": True}).encode())
    with pytest.raises(RegistryError, match="sent a manifest with digest"):
        backend.copy_tag("acme/odoo-web", digest, "testing-aaaaaaa")
