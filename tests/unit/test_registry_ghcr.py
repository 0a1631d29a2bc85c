"""The GHCR backend: the requests it sends (method, path, pagination, auth header)
to a local HTTP server shaped like the GitHub REST packages API and ghcr.io's
registry, and an index-aware prune through it."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest

from odoo_ai import images
from odoo_ai.config.stack import load_stack
from odoo_ai.dryhost import DryHost
from odoo_ai.hosts import LocalHost
from odoo_ai.registry import RegistryAuthError, open_backend, registry_settings
from tests.unit.registry_fakes import FakeGitHub, Served

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
OLD = "2026-10-01T00:00:00Z"


@pytest.fixture
def github():
    fake = FakeGitHub()
    with Served(fake) as served:
        yield fake, served


def write_env(repo: Path, env: str, served: Served, tmp_path: Path, extra: str = "") -> None:
    (repo / "docker" / "config" / f"{env}.env").write_text(
        f"ODOO_IMAGE=ghcr.io/acme/odoo\nODOO_STATE_ROOT={tmp_path}/state-{env}\n"
        f"ODOO_GITHUB_API_URL={served.url}\nODOO_REGISTRY_URL={served.url}\n{extra}"
    )


def write_releases(tmp_path: Path, env: str, lines: list[dict]) -> None:
    path = tmp_path / f"state-{env}" / "releases.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def populate(fake: FakeGitHub) -> dict[str, str]:
    """odoo-web: three multi-arch+attestation indexes; 205 untagged leftovers."""
    web = "acme/odoo-web"
    d: dict[str, str] = {}
    for sha in ("aaaaaaa", "ccccccc"):
        d[f"img_{sha}"] = fake.add_image(web, [], salt=f"img {sha}")
        d[f"att_{sha}"] = fake.add_image(web, [], salt=f"att {sha}")
        d[f"dev-{sha}"] = fake.add_index(web, [f"dev-{sha}"], [d[f"img_{sha}"], d[f"att_{sha}"]])
    # dev-bbbbbbb and testing-bbbbbbb: two indexes sharing one platform image
    d["img_shared"] = fake.add_image(web, [], salt="img shared")
    d["att_b"] = fake.add_image(web, [], salt="att b")
    d["att_b2"] = fake.add_image(web, [], salt="att b2")
    d["dev-bbbbbbb"] = fake.add_index(web, ["dev-bbbbbbb"], [d["img_shared"], d["att_b"]])
    d["testing-bbbbbbb"] = fake.add_index(web, ["testing-bbbbbbb"], [d["img_shared"], d["att_b2"]])
    for i in range(205):
        fake.add_image(web, [], salt=f"leftover {i}")
    runner = "acme/odoo-script-runner"
    for sha in ("aaaaaaa", "ccccccc"):
        d[f"sr-dev-{sha}"] = fake.add_image(runner, [f"dev-{sha}"], salt=f"sr {sha}")
    for repo_name, repo in fake.repos.items():
        package = repo_name.split("/", 1)[1]
        for digest in repo.manifests:
            fake.created[(package, digest)] = OLD
    return d


def stacks(repo: Path, home: Path):
    return [load_stack(env, repo_root=repo, home=home) for env in ("dev", "testing")]


def test_settings_for_ghcr(repo: Path, home: Path, tmp_path: Path, github) -> None:
    _, served = github
    write_env(repo, "dev", served, tmp_path)
    s = registry_settings(load_stack("dev", repo_root=repo, home=home), {"GITHUB_TOKEN": "ghs_test", "GITHUB_ACTOR": "bot"})
    assert (s.kind, s.host, s.owner, s.namespace) == ("ghcr", "ghcr.io", "acme", "acme/odoo")
    assert s.credentials.user == "bot" and s.github_token == "ghs_test"
    assert "ghs_test" not in repr(s.credentials)
    assert s.repository("web") == "acme/odoo-web" and s.reference("web", "dev-1a2b3c4") == "ghcr.io/acme/odoo-web:dev-1a2b3c4"


def test_versions_are_paginated_with_the_documented_requests(repo: Path, home: Path, tmp_path: Path, github) -> None:
    fake, served = github
    populate(fake)
    write_env(repo, "dev", served, tmp_path)
    backend = open_backend(registry_settings(load_stack("dev", repo_root=repo, home=home), {"GITHUB_TOKEN": "ghs_test"}))
    versions = backend.list_versions("acme/odoo-web")
    assert len(versions) == 3 + 2 * 2 + 3 + 1 + 205
    api = [r for r in fake.requests if not r.path.startswith("/v2/") and r.path != "/token"]
    assert api[0].path == "/users/acme" and api[0].method == "GET"
    pages = [r for r in api if r.path.endswith("/versions")]
    assert [r.path for r in pages] == ["/orgs/acme/packages/container/odoo-web/versions"] * 3
    assert pages[0].query == {"per_page": ["100"], "state": ["active"]}
    assert [r.query.get("page") for r in pages[1:]] == [["2"], ["3"]]  # followed from Link rel="next"
    for request in api:
        assert request.authorization == "Bearer ghs_test"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["x-github-api-version"] == "2022-11-28"
    by_tag = {v.tags: v for v in versions if v.tags}
    assert len(by_tag[("dev-aaaaaaa",)].children) == 2 and by_tag[("dev-aaaaaaa",)].version_id
    # only tagged versions are read from the registry (to find index children)
    manifest_gets = {r.path.rsplit("/", 1)[1] for r in fake.requests if "/manifests/" in r.path}
    assert manifest_gets == {v.digest for v in versions if v.tags}
    backend.close()


def test_index_aware_prune_deletes_versions_with_their_children(repo: Path, home: Path, tmp_path: Path, github) -> None:
    fake, served = github
    d = populate(fake)
    write_env(repo, "dev", served, tmp_path)
    write_env(repo, "testing", served, tmp_path)
    write_releases(tmp_path, "dev", [
        {"timestamp": "2026-10-02T00:00:00Z", "env": "dev", "image_tag": "dev-aaaaaaa", "status": "success",
         "digests": {"web": d["dev-aaaaaaa"], "script-runner": d["sr-dev-aaaaaaa"]}},
        {"timestamp": "2026-10-03T00:00:00Z", "env": "dev", "image_tag": "dev-bbbbbbb", "status": "failed"},
        {"timestamp": "2026-10-04T00:00:00Z", "env": "dev", "image_tag": "dev-ccccccc", "status": "success",
         "digests": {"web": d["dev-ccccccc"], "script-runner": d["sr-dev-ccccccc"]}},
    ])
    write_releases(tmp_path, "testing", [])
    all_stacks = stacks(repo, home)
    env = {"GITHUB_TOKEN": "ghs_test"}

    dry = images.prune_registry(all_stacks, all_stacks[:1], DryHost(LocalHost(), out=io.StringIO()), keep=1,
                                environ=env, now=NOW)
    assert not [r for r in fake.requests if r.method == "DELETE"]
    assert dry["would_delete"] == 3 + 2 + 1  # dev-aaaaaaa + 2 children, dev-bbbbbbb + att_b, sr dev-aaaaaaa

    fake.requests.clear()
    result = images.prune_registry(all_stacks, all_stacks[:1], LocalHost(), keep=1, environ=env, now=NOW)
    assert result["deleted"] == 6 and result["notes"] == []  # GitHub frees the space itself
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert all(r.path.startswith("/orgs/acme/packages/container/") and r.authorization == "Bearer ghs_test"
               for r in deletes)
    assert not [r for r in fake.requests if r.method == "DELETE" and r.path.startswith("/v2/")]
    web = fake.repos["acme/odoo-web"]
    assert set(web.tags) == {"dev-ccccccc", "testing-bbbbbbb"}
    gone = {d["dev-aaaaaaa"], d["img_aaaaaaa"], d["att_aaaaaaa"], d["dev-bbbbbbb"], d["att_b"]}
    assert not gone & set(web.manifests)
    # children of kept indexes stay: the deployed one's, and the platform image testing-bbbbbbb shares
    assert {d["img_ccccccc"], d["att_ccccccc"], d["img_shared"], d["att_b2"]} <= set(web.manifests)
    # the index goes before its children
    ids = {fake.version_id("odoo-web", dig): name for name, dig in d.items()}
    order = [ids.get(int(r.path.rsplit("/", 1)[1])) for r in deletes if "/odoo-web/" in r.path]
    assert order.index("dev-aaaaaaa") < order.index("img_aaaaaaa")
    assert order.index("dev-bbbbbbb") < order.index("att_b")
    # 205 untagged leftovers that no pruned index names are not ours to judge
    assert len(web.manifests) == 205 + 3 + 3  # + dev-ccccccc and testing-bbbbbbb with their children
    reasons = {tuple(i["tags"]): i["reasons"] for r in result["registries"] for rep in r["repositories"]
               for i in rep["images"] if i["action"] == "keep"}
    assert any("currently deployed" in why for why in reasons[("dev-ccccccc",)])


def test_user_owned_packages_and_a_bad_token(repo: Path, home: Path, tmp_path: Path) -> None:
    fake = FakeGitHub(owner_type="User")
    fake.add_image("acme/odoo-web", ["dev-aaaaaaa"])
    with Served(fake) as served:
        write_env(repo, "dev", served, tmp_path)
        stack = load_stack("dev", repo_root=repo, home=home)
        backend = open_backend(registry_settings(stack, {"GITHUB_TOKEN": "ghs_test"}))
        assert [v.tags for v in backend.list_versions("acme/odoo-web")] == [("dev-aaaaaaa",)]
        assert any(r.path == "/users/acme/packages/container/odoo-web/versions" for r in fake.requests)
        wrong = open_backend(registry_settings(stack, {"GITHUB_TOKEN": "expired"}))
        with pytest.raises(RegistryAuthError, match=r"authentication failed \(401\): check GITHUB_TOKEN"):
            wrong.list_versions("acme/odoo-web")


def test_owner_type_setting_skips_the_lookup(repo: Path, home: Path, tmp_path: Path, github) -> None:
    fake, served = github
    fake.add_image("acme/odoo-web", ["dev-aaaaaaa"])
    write_env(repo, "dev", served, tmp_path, "ODOO_GITHUB_OWNER_TYPE=org\n")
    backend = open_backend(registry_settings(load_stack("dev", repo_root=repo, home=home), {"GH_TOKEN": "ghs_test"}))
    backend.list_versions("acme/odoo-web")
    assert not [r for r in fake.requests if r.path == "/users/acme"]
