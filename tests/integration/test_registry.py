"""Images and a real registry: Debian's docker-registry on 127.0.0.1 with htpasswd
auth and deletes enabled, the stand-in Odoo built with the real Dockerfile, the
real engine pushing and pulling, the CLI doing build --push, pull, promote and
prune (registry and local)."""

from __future__ import annotations

import json
import subprocess

from tests.integration.conftest import DOCKER


def inspect(ref: str) -> dict:
    out = subprocess.run([DOCKER, "image", "inspect", ref], capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout)[0] if out.returncode == 0 else {}


def test_push_pull_by_digest_and_promote(reg_env, tmp_path) -> None:
    gh_output = tmp_path / "github_output"
    built = reg_env.build("dev", "1111111aaaa", extra_env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(gh_output)})
    assert built["tag"] == "dev-1111111" and built["pushed"] is True
    for target in ("web", "script-runner"):
        image = built["images"][target]
        assert image["ref"] == reg_env.ref(target, "dev-1111111")
        assert image["digest"] == reg_env.registry.digest(reg_env.repo(target), "dev-1111111")
        labels = inspect(image["ref"])["Config"]["Labels"]
        assert labels["org.opencontainers.image.revision"] == "1111111aaaa"
        assert labels["org.opencontainers.image.created"] == built["built_at"]
        assert labels["org.odoo-ai.odoo-ref"] == "18.0" and "org.odoo-ai.enterprise-ref" in labels
    outputs = dict(line.split("=", 1) for line in gh_output.read_text().splitlines())
    assert outputs["tag"] == "dev-1111111"
    assert outputs["web-digest"] == built["images"]["web"]["digest"]
    assert outputs["script-runner-digest"] == built["images"]["script-runner"]["digest"]

    # An unchanged image uploads no layer (only a new config: the build time label).
    again = reg_env.build("dev", "1111111aaaa")
    assert [again["images"][t]["layers_pushed"] for t in ("web", "script-runner")] == [0, 0]

    # Pull by digest into an engine that no longer has the tags.
    for target in ("web", "script-runner"):
        subprocess.run([DOCKER, "image", "rm", reg_env.ref(target, "dev-1111111")], capture_output=True, check=True)
    pulled = reg_env.json("pull", "dev", "--tag", "dev-1111111")
    for target in ("web", "script-runner"):
        ref = pulled["images"][target]["ref"]
        assert ref == f"{reg_env.image}-{target}@{again['images'][target]['digest']}"
        assert ref in inspect(ref)["RepoDigests"]

    # Promote what dev's release log says was tested: same digests, no build, no push.
    tested = reg_env.release("dev", again)
    reg_env.releases("dev", [tested])
    dry = reg_env.run("promote", "dev", "testing", "--tag", "dev-1111111", "--dry-run")
    assert "PUT " in dry.stdout and "testing-1111111" in dry.stdout
    assert reg_env.registry.tags(reg_env.repo("web")) == ["dev-1111111"]
    promoted = reg_env.json("promote", "dev", "testing", "--tag", "dev-1111111")
    assert promoted["new_tag"] == "testing-1111111" and promoted["source"] == "release-log"
    for target in ("web", "script-runner"):
        assert promoted["images"][target]["digest"] == tested["digests"][target]
        assert reg_env.registry.digest(reg_env.repo(target), "testing-1111111") == tested["digests"][target]

    unknown = reg_env.run("promote", "dev", "testing", "--tag", "dev-2222222", "--json", check=False)
    assert unknown.returncode == 2 and "dev-2222222 not found" in json.loads(unknown.stdout)["error"]


def test_prune_registry_keeps_releases_deployed_pinned_and_promoted(reg_env) -> None:
    reg_env.write_env("dev", "ODOO_PRUNE_PINNED=dev-ddddddd\n")
    built = {sha: reg_env.build("dev", sha * 7) for sha in "abcd"}
    reg_env.releases("dev", [
        reg_env.release("dev", built["a"], ts="2026-11-01T00:00:00Z"),
        reg_env.release("dev", built["b"], status="failed", ts="2026-11-02T00:00:00Z"),
        reg_env.release("dev", built["c"], ts="2026-11-03T00:00:00Z"),
    ])
    reg_env.releases("testing", [])
    reg_env.json("promote", "dev", "testing", "--tag", "dev-bbbbbbb")
    web = reg_env.repo("web")
    before = {repo: reg_env.registry.tags(repo) for repo in (web, reg_env.repo("script-runner"))}

    # Just built: the default minimum age (24 h) keeps everything.
    young = reg_env.json("prune-images", "--keep", "1", "--env", "dev", "--yes")
    assert young["deleted"] == 0
    assert {r for reg in young["registries"] for rep in reg["repositories"] for i in rep["images"]
            for r in i["reasons"] if "younger than the minimum age" in r}

    dry = reg_env.json("prune-images", "--keep", "1", "--env", "dev", "--min-age", "0", "--dry-run")
    assert dry["would_delete"] == 2
    assert {repo: reg_env.registry.tags(repo) for repo in before} == before

    # Off a terminal a prune that deletes needs --yes: it lists what it would delete, deletes nothing.
    unasked = reg_env.run("prune-images", "--keep", "1", "--env", "dev", "--min-age", "0", check=False)
    assert unasked.returncode == 2 and "refusing to delete 2 image(s) from the registry" in unasked.stderr
    assert "delete " in unasked.stderr and "dev-aaaaaaa" in unasked.stderr
    assert {repo: reg_env.registry.tags(repo) for repo in before} == before
    result = reg_env.json("prune-images", "--keep", "1", "--env", "dev", "--min-age", "0", "--yes")
    assert result["deleted"] == 2 and "garbage collection" in result["notes"][0]
    verdicts = {tuple(i["tags"]): i for reg in result["registries"] for rep in reg["repositories"]
                if rep["repository"] == web for i in rep["images"]}
    assert verdicts[("dev-aaaaaaa",)]["action"] == "delete"
    assert "also tagged testing-bbbbbbb" in verdicts[("dev-bbbbbbb", "testing-bbbbbbb")]["reasons"][0]
    assert any("currently deployed" in r for r in verdicts[("dev-ccccccc",)]["reasons"])
    assert verdicts[("dev-ddddddd",)]["reasons"] == ["dev: pinned by ODOO_PRUNE_PINNED"]
    assert reg_env.registry.tags(web) == ["dev-bbbbbbb", "dev-ccccccc", "dev-ddddddd", "testing-bbbbbbb"]
    assert reg_env.registry.digest(web, built["a"]["images"]["web"]["digest"]) is None
    assert reg_env.registry.digest(web, built["c"]["images"]["web"]["digest"])
    # The registry stays consistent: its garbage collection runs clean afterwards.
    reg_env.registry.garbage_collect()
    assert reg_env.registry.tags(web) == ["dev-bbbbbbb", "dev-ccccccc", "dev-ddddddd", "testing-bbbbbbb"]

    # An env without a release log is never pruned.
    (reg_env.state_root("dev") / "releases.log").unlink()
    blind = reg_env.json("prune-images", "--keep", "0", "--env", "dev", "--min-age", "0", "--yes")
    assert blind["deleted"] == 0 and "dev" in blind["skipped_envs"]


def test_wrong_password_and_registry_down_change_nothing(reg_env) -> None:
    built = reg_env.build("dev", "3333333")
    reg_env.releases("dev", [])
    reg_env.releases("testing", [])
    web = reg_env.repo("web")
    host, user = reg_env.registry.host, reg_env.registry.user
    wrong = {"ODOO_REGISTRY_USER": user, "ODOO_REGISTRY_PASSWORD": "not-the-password"}
    expected = f"registry {host}: authentication failed (401) for user {user}"
    for args in (["prune-images", "--keep", "0", "--env", "dev", "--min-age", "0", "--yes"],
                 ["promote", "dev", "testing", "--tag", "dev-3333333"],
                 ["build", "dev", "--sha", "3333333", "--push"]):
        if args[0] == "build":
            from tests.integration.conftest_registry import standin_build_args
            args = [*standin_build_args("dev", "3333333"), "--push"]
        proc = reg_env.run(*args, "--json", creds=False, check=False, extra_env=wrong)
        assert proc.returncode == 2, proc.stderr
        assert json.loads(proc.stdout)["error"] == expected
        assert "not-the-password" not in proc.stdout + proc.stderr
    assert reg_env.registry.tags(web) == ["dev-3333333"]

    reg_env.registry.stop()
    try:
        proc = reg_env.run("prune-images", "--keep", "0", "--env", "dev", "--min-age", "0", "--yes", check=False)
        assert proc.returncode == 3
        assert f"registry {host} unreachable: connection refused" in proc.stderr
        assert proc.stderr.count("\n") <= 2  # one line (rich may wrap nothing here)
    finally:
        reg_env.registry.start()
    assert reg_env.registry.tags(web) == ["dev-3333333"]
    assert reg_env.registry.digest(web, built["images"]["web"]["digest"])


def test_local_retention_keeps_last_releases_and_unpushed_builds(reg_env) -> None:
    built = {sha: reg_env.build("dev", sha * 7) for sha in "abc"}
    local_only = reg_env.build("dev", "e" * 7, push=False)
    reg_env.releases("dev", [reg_env.release("dev", built[s], ts=f"2026-11-0{i}T00:00:00Z")
                             for i, s in enumerate("abc", start=1)])
    reg_env.releases("testing", [])
    a_web = reg_env.ref("web", "dev-aaaaaaa")
    dry = reg_env.json("prune-images", "--local", "--keep", "2", "--env", "dev", "--dry-run")
    assert dry["would_delete"] == 2 and inspect(a_web)

    container = f"oait-keep-{reg_env.namespace.split('/')[0]}"
    subprocess.run([DOCKER, "container", "create", "--name", container, a_web], capture_output=True, check=True)
    try:
        first = reg_env.json("prune-images", "--local", "--keep", "2", "--env", "dev", "--yes")
        in_use = [i for i in first["images"] if a_web in i["tags"]][0]
        assert in_use["action"] == "keep" and in_use["reasons"] == ["used by a container"]
        assert first["deleted"] == 1 and inspect(a_web)
    finally:
        subprocess.run([DOCKER, "container", "rm", container], capture_output=True, check=True)
    result = reg_env.json("prune-images", "--local", "--keep", "2", "--env", "dev", "--yes")
    assert result["deleted"] == 1 and result["failures"] == []
    for target in ("web", "script-runner"):
        assert not inspect(reg_env.ref(target, "dev-aaaaaaa"))
        assert inspect(reg_env.ref(target, "dev-bbbbbbb")) and inspect(reg_env.ref(target, "dev-ccccccc"))
        assert inspect(local_only["images"][target]["ref"])
    reasons = {tuple(i["tags"]): i["reasons"] for i in result["images"]}
    unpushed = reasons[(reg_env.ref("web", "dev-eeeeeee"),)]
    assert "could not be pulled again" in unpushed[0]
