"""Pure parts of the image features: docker argv, registry settings, release-log
protection and the keep-or-delete decisions of a prune (table-driven)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest

from odoo_ai import images, releases
from odoo_ai.config.stack import load_stack
from odoo_ai.errors import ConfigError
from odoo_ai.plan import images as plan
from odoo_ai.plan.images import (
    LocalImage,
    PruneRules,
    env_of_tag,
    plan_local_prune,
    plan_registry_prune,
)
from odoo_ai.registry import ImageVersion, registry_settings, split_image
from odoo_ai.runners import DryRunner

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=30)
A, B, C, D, E = (f"sha256:{c * 64}" for c in "abcde")


# ---------------------------------------------------------------- argv
def test_login_takes_the_password_on_stdin_only() -> None:
    cmd = plan.login("docker", "127.0.0.1:5000", "ci", "pa$$ 'w\"", config_dir="/tmp/cfg")
    assert cmd.argv == ["docker", "login", "--username", "ci", "--password-stdin", "127.0.0.1:5000"]
    assert cmd.stdin == b"pa$$ 'w\"" and cmd.env == {"DOCKER_CONFIG": "/tmp/cfg"}
    out = io.StringIO()
    DryRunner(out=out).run(cmd)
    assert "pa$$" not in out.getvalue() and "<redacted>" in out.getvalue()


def test_image_commands_are_argv_and_never_forced() -> None:
    assert plan.push("docker", "r/x-web:dev-1a2b3c4").argv == ["docker", "image", "push", "r/x-web:dev-1a2b3c4"]
    assert plan.pull("docker", f"r/x-web@{A}").argv == ["docker", "image", "pull", f"r/x-web@{A}"]
    assert plan.tag("docker", "a", "b").argv == ["docker", "image", "tag", "a", "b"]
    assert plan.remove("docker", "r/x-web:dev-1a2b3c4").argv == ["docker", "image", "rm", "r/x-web:dev-1a2b3c4"]
    assert plan.save("docker", ["a", "b"], "/t/i.tar").argv == ["docker", "image", "save", "--output", "/t/i.tar", "a", "b"]
    hostile = "r/x:dev-1a2b3c4; rm -rf /"
    assert plan.remove("docker", hostile).argv[-1] == hostile
    assert all(cmd.timeout for cmd in (plan.push("d", "x"), plan.pull("d", "x"), plan.save("d", ["x"], "o")))


def test_env_of_tag() -> None:
    envs = ["dev", "dev-eu", "testing"]
    assert env_of_tag("dev-1a2b3c4", envs) == "dev"
    assert env_of_tag("dev-eu-1a2b3c4", envs) == "dev-eu"
    assert env_of_tag("dev-latest", envs) is None
    assert env_of_tag("prod-1a2b3c4", envs) is None


# ---------------------------------------------------------------- settings
def stack_with(repo: Path, home: Path, text: str, env: str = "dev"):
    (repo / "docker" / "config" / f"{env}.env").write_text(text)
    return load_stack(env, repo_root=repo, home=home)


@pytest.mark.parametrize(("image", "url", "kind"), [
    ("127.0.0.1:5000/odoo-ai/odoo", "http://127.0.0.1:5000", "oci"),
    ("localhost:5000/odoo", "http://localhost:5000", "oci"),
    ("registry.example.com/team/odoo", "https://registry.example.com", "oci"),
    ("ghcr.io/acme/odoo", "https://ghcr.io", "ghcr"),
])
def test_registry_settings_from_odoo_image(repo: Path, home: Path, image: str, url: str, kind: str) -> None:
    s = registry_settings(stack_with(repo, home, f"ODOO_IMAGE={image}\n"), {})
    assert (s.base_url, s.kind) == (url, kind)
    assert f"{s.host}/{s.namespace}" == image


def test_registry_settings_errors_name_the_key(repo: Path, home: Path) -> None:
    with pytest.raises(ConfigError, match="ODOO_IMAGE='odoo-ai/odoo' names no registry host"):
        registry_settings(stack_with(repo, home, "ODOO_IMAGE=odoo-ai/odoo\n"), {})
    # a bad registry setting is refused when the stack loads, naming the line
    with pytest.raises(ConfigError, match=r"dev.env:2: ODOO_REGISTRY_URL='ftp://x' must be an http"):
        stack_with(repo, home, "ODOO_IMAGE=127.0.0.1:5000/o\nODOO_REGISTRY_URL=ftp://x\n")
    stack = stack_with(repo, home, "ODOO_IMAGE=127.0.0.1:5000/o\n")
    with pytest.raises(ConfigError, match="both ODOO_REGISTRY_USER and ODOO_REGISTRY_PASSWORD"):
        registry_settings(stack, {"ODOO_REGISTRY_USER": "ci"})
    s = registry_settings(stack, {"ODOO_REGISTRY_USER": "ci", "ODOO_REGISTRY_PASSWORD": "p"})
    assert "'p'" not in repr(s)


def test_split_image() -> None:
    assert split_image("ghcr.io/acme/odoo") == ("ghcr.io", "acme/odoo")
    assert split_image("localhost/odoo") == ("localhost", "odoo")
    assert split_image("acme/odoo") == (None, "acme/odoo")


# ---------------------------------------------------------------- release log
def write_log(state: Path, lines: list) -> None:
    state.mkdir(parents=True, exist_ok=True)
    (state / "releases.log").write_text("".join((json.dumps(x) if not isinstance(x, str) else x) + "\n" for x in lines))


def release(tag: str, status: str = "success", digest: str | None = None, ts: str = "2026-11-01T00:00:00Z") -> dict:
    return {"timestamp": ts, "env": tag.split("-")[0], "image_tag": tag, "status": status,
            "digests": {"web": digest} if digest else {}}


def test_protected_refs_across_envs(repo: Path, home: Path, tmp_path: Path) -> None:
    dev = stack_with(repo, home, f"ODOO_STATE_ROOT={tmp_path}/dev\nODOO_PRUNE_PINNED=dev-0000001, {E}\n")
    testing = stack_with(repo, home, f"ODOO_STATE_ROOT={tmp_path}/testing\n", env="testing")
    write_log(tmp_path / "dev", [release("dev-aaaaaaa", digest=A), release("dev-bbbbbbb", digest=B),
                                 "{not json", release("dev-ccccccc", "failed", digest=C), release("dev-ddddddd", digest=D)])
    write_log(tmp_path / "testing", [release("testing-bbbbbbb", digest=B)])
    problems: list[str] = []
    protected = releases.protected_refs([dev, testing], 2, on_error=lambda p, n, why: problems.append(f"{n}:{why}"))
    assert problems == ["3:not JSON (Expecting property name enclosed in double quotes)"]
    assert "dev-aaaaaaa" not in protected and A not in protected  # older than the last 2
    assert "dev-ccccccc" not in protected  # failed
    assert any("currently deployed" in r for r in protected["dev-ddddddd"]) and D in protected
    assert any("release 2 of the last 2" in r for r in protected["dev-bbbbbbb"])
    assert {r.split(":")[0] for r in protected[B]} == {"dev", "testing"}  # promoted: same digest
    assert protected["dev-0000001"] == ["dev: pinned by ODOO_PRUNE_PINNED"] and E in protected
    only_deployed = releases.protected_refs([dev], 0)
    assert "dev-ddddddd" in only_deployed and "dev-bbbbbbb" not in only_deployed


# ---------------------------------------------------------------- registry prune decisions
def v(digest: str, *tags: str, created: dt.datetime | None = OLD, children: tuple[str, ...] = ()) -> ImageVersion:
    return ImageVersion(digest=digest, tags=tags, created=created, children=children)


def rules(**kw) -> PruneRules:
    base = {"scope": ("dev",), "protected": {}, "keep": 2, "now": NOW}
    return PruneRules(**{**base, **kw})


def decided(verdicts) -> dict[str, tuple[bool, str]]:
    return {vd.version.digest: (vd.delete, " | ".join(vd.reasons)) for vd in verdicts}


CASES = [
    ("old and unprotected goes", [v(A, "dev-aaaaaaa")], {}, {A: (True, "not in the last 2 successful releases")}),
    ("protected by tag", [v(A, "dev-aaaaaaa")], {"protected": {"dev-aaaaaaa": ["dev: currently deployed"]}},
     {A: (False, "currently deployed")}),
    ("protected by digest (promoted under another tag)", [v(A, "dev-aaaaaaa")],
     {"protected": {A: ["testing: currently deployed"]}}, {A: (False, "testing: currently deployed")}),
    ("a delete would remove another env's tag", [v(A, "dev-aaaaaaa", "testing-aaaaaaa")], {},
     {A: (False, "also tagged testing-aaaaaaa")}),
    ("a foreign tag keeps it too", [v(A, "dev-aaaaaaa", "latest")], {}, {A: (False, "also tagged latest")}),
    ("both envs pruned: goes", [v(A, "dev-aaaaaaa", "testing-aaaaaaa")], {"scope": ("dev", "testing")},
     {A: (True, "dev-aaaaaaa, testing-aaaaaaa")}),
    ("env without release log", [v(A, "dev-aaaaaaa")], {"skipped": {"dev": "dev has no release log"}},
     {A: (False, "no release log")}),
    ("younger than min age", [v(A, "dev-aaaaaaa", created=NOW - dt.timedelta(hours=2))],
     {"min_age": dt.timedelta(hours=24)}, {A: (False, "created 2h ago, younger than the minimum age 24h")}),
    ("unknown age with min age", [v(A, "dev-aaaaaaa", created=None)], {"min_age": dt.timedelta(hours=1)},
     {A: (False, "creation time unknown")}),
    ("unknown age without min age goes", [v(A, "dev-aaaaaaa", created=None)], {}, {A: (True, "not in the last")}),
    ("other envs and foreign names are not listed", [v(A, "testing-aaaaaaa"), v(B, "dev-latest")], {}, {}),
]


@pytest.mark.parametrize(("name", "versions", "kw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_registry_prune_rules(name, versions, kw, expected) -> None:
    got = decided(plan_registry_prune(versions, rules(**kw)))
    assert set(got) == set(expected)
    for digest, (delete, reason) in expected.items():
        assert got[digest][0] is delete, got[digest]
        assert reason in got[digest][1]


def test_index_children_follow_their_index() -> None:
    versions = [
        v(A, "dev-aaaaaaa", children=(C, D)),  # old index: goes with its children
        v(B, "dev-bbbbbbb", children=(D, E)),  # deployed index: keeps D and E
        v(C), v(D), v(E),
    ]
    got = decided(plan_registry_prune(versions, rules(protected={"dev-bbbbbbb": ["dev: currently deployed"]})))
    assert got[A][0] and got[C] == (True, "untagged child of the deleted index dev-aaaaaaa")
    assert got[D] == (False, "child of the kept index dev-bbbbbbb") and not got[E][0]
    order = [vd.version.digest for vd in plan_registry_prune(versions, rules(protected={"dev-bbbbbbb": ["x"]}))]
    assert order.index(A) < order.index(C)  # index first, then its children


def test_a_tagged_version_a_kept_index_needs_is_rescued() -> None:
    versions = [v(A, "testing-aaaaaaa", children=(B,)), v(B, "dev-bbbbbbb")]
    got = decided(plan_registry_prune(versions, rules()))
    assert got == {B: (False, "child of the kept index testing-aaaaaaa")}


# ---------------------------------------------------------------- local prune decisions
REPO = "127.0.0.1:5000/o/odoo-web"


def img(id_: str, tags=(), digests=()) -> LocalImage:
    return LocalImage(id=id_, repo_tags=tuple(f"{REPO}:{t}" for t in tags),
                      repo_digests=tuple(f"{REPO}@{d}" for d in digests))


def test_local_prune_rules() -> None:
    images_ = [
        img("sha256:1", ["dev-aaaaaaa"], [A]),  # old, pullable: goes
        img("sha256:2", ["dev-bbbbbbb"], [B]),  # deployed: stays
        img("sha256:3", ["dev-ccccccc"], []),  # built here, never pushed: stays
        img("sha256:4", ["dev-ddddddd"], [D]),  # a container uses it: stays
        img("sha256:5", [], [E]),  # pulled by digest, named by dev's release log: goes
        img("sha256:6", ["testing-aaaaaaa"], [A]),  # another env: not listed
        LocalImage(id="sha256:7", repo_tags=("other/image:dev-aaaaaaa",)),  # not our repository
    ]
    verdicts = plan_local_prune(
        images_, rules(protected={"dev-bbbbbbb": ["dev: currently deployed"]}), repositories=[REPO],
        in_use={"sha256:4"}, release_digests={"dev": {E}}, all_envs=False)
    got = {vd.image.id: (vd.delete, " | ".join(vd.reasons), vd.refs) for vd in verdicts}
    assert set(got) == {"sha256:1", "sha256:2", "sha256:3", "sha256:4", "sha256:5"}
    assert got["sha256:1"][0] and got["sha256:1"][2] == (f"{REPO}@{A}", f"{REPO}:dev-aaaaaaa")
    assert got["sha256:2"][:2] == (False, "dev: currently deployed")
    assert not got["sha256:3"][0] and "could not be pulled again" in got["sha256:3"][1]
    assert got["sha256:4"][:2] == (False, "used by a container")
    assert got["sha256:5"][0] and got["sha256:5"][2] == (f"{REPO}@{E}",)


def test_local_digest_only_images_stay_while_an_env_has_no_release_log() -> None:
    verdicts = plan_local_prune([img("sha256:5", [], [E])], rules(skipped={"dev": "dev has no release log"}),
                                repositories=[REPO], all_envs=True)
    assert not verdicts[0].delete and "may be deployed there" in verdicts[0].reasons[0]


# ---------------------------------------------------------------- push output, $GITHUB_OUTPUT
def test_parse_push_output() -> None:
    out = ("The push refers to repository [127.0.0.1:5000/o/odoo-web]\n"
           "5f70bf18a086: Preparing\n5f70bf18a086: Layer already exists\n1a2b: Pushed\n"
           "9z: Mounted from o/odoo-script-runner\n"
           f"dev-1a2b3c4: digest: {A} size: 1234\n")
    assert images.parse_push(out) == {"layers_pushed": 1, "layers_existing": 2, "digest": A}


def test_github_output_only_under_actions(tmp_path: Path) -> None:
    record = {"tag": "dev-1a2b3c4", "images": {"web": {"ref": "r/o-web:dev-1a2b3c4", "digest": A},
                                               "script-runner": {"ref": "r/o-script-runner:dev-1a2b3c4", "digest": B}}}
    out = tmp_path / "out"
    assert images.write_github_output(record, {"GITHUB_OUTPUT": str(out)}) is None and not out.exists()
    out.write_text("before=1\n")
    images.write_github_output(record, {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(out)})
    lines = out.read_text().splitlines()
    assert lines[:4] == ["before=1", "tag=dev-1a2b3c4", "web-ref=r/o-web:dev-1a2b3c4", f"web-digest={A}"]
    assert json.loads(lines[-1].removeprefix("images="))["script-runner"]["digest"] == B


def test_the_running_stacks_rendered_pins_are_protected(repo: Path, home: Path, tmp_path: Path) -> None:
    dev = stack_with(repo, home, f"ODOO_STATE_ROOT={tmp_path}/dev\n")
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / ".env").write_text(
        "ODOO_IMAGE_TAG='dev-1234567'\n"
        f"ODOO_WEB_IMAGE='127.0.0.1:5000/o/odoo-web@{A}'\n"
        "ODOO_SCRIPT_RUNNER_IMAGE='127.0.0.1:5000/o/odoo-script-runner:dev-7654321'\n")
    protected = images.protection([dev], 1, [])
    assert set(protected) == {"dev-1234567", A, "dev-7654321"}
    assert all("rendered .env" in reasons[0] for reasons in protected.values())
