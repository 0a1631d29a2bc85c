"""Addons from other repositories and from git submodules: addon-repos.yaml as `build`
reads it, the build argument and secrets it becomes, docker/addon_repos.sh (the addon-repos
stage's fetch, run here on local git repositories: no Docker), and the check that the
addons folder's submodules are checked out."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from odoo_ai import build
from odoo_ai.config.stack import load_stack
from odoo_ai.errors import ConfigError
from odoo_ai.hosts import LocalHost
from odoo_ai.plan.build import (
    AddonRepo,
    BuildInputs,
    addon_repos_arg,
    build_command,
    parse_addon_repos,
)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docker" / "addon_repos.sh"
SHA = "0123456789abcdef0123456789abcdef01234567"
LOCAL = LocalHost()  # the git reads of a build go through a connector: this machine
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "protocol.file.allow", "GIT_CONFIG_VALUE_0": "always"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True,
                          env=GIT_ENV, timeout=60).stdout.strip()


def parse(text: str) -> tuple[AddonRepo, ...]:
    return parse_addon_repos(yaml.safe_load(text), "addon-repos.yaml")


# ---------------------------------------------------------------- the file
def test_entries_are_pinned_repositories_with_paths() -> None:
    repos = parse(f"""
repos:
  - url: https://github.com/OCA/web.git
    commit: {SHA}
    paths: [web_responsive, web_dialog_size/]
  - url: git@github.com:acme/private-addons.git
    commit: {SHA}
  - url: ssh://git@git.example.com:2222/acme/one_addon.git
    commit: {SHA}
    paths: .
""")
    assert repos == (
        AddonRepo("https://github.com/OCA/web.git", SHA, ("web_responsive", "web_dialog_size")),
        AddonRepo("git@github.com:acme/private-addons.git", SHA, (".",)),
        AddonRepo("ssh://git@git.example.com:2222/acme/one_addon.git", SHA, (".",)),
    )
    assert [r.ssh for r in repos] == [False, True, True]
    assert addon_repos_arg(repos[:2]) == (f"https://github.com/OCA/web.git {SHA} web_responsive,web_dialog_size;"
                                          f"git@github.com:acme/private-addons.git {SHA} .")
    assert parse("") == () and parse("repos: []") == ()


@pytest.mark.parametrize("entry, message", [
    ("url: https://github.com/OCA/web.git\n    commit: 18.0", "must be a full 40-hex commit sha"),
    ("url: https://github.com/OCA/web.git\n    commit: 0123456", "must be a full 40-hex commit sha"),
    (f"url: https://user:token@github.com/x/y.git\n    commit: {SHA}", "not an https://, ssh:// or user@host:path"),
    (f"url: https://github.com/x/y.git;rm -rf /\n    commit: {SHA}", "not an https://"),
    (f"url: --upload-pack=evil\n    commit: {SHA}", "not an https://"),
    (f"url: file:///etc\n    commit: {SHA}", "not an https://"),
    (f"url: https://github.com/x/y.git\n    commit: {SHA}\n    paths: [../outside]", "no .."),
    (f"url: https://github.com/x/y.git\n    commit: {SHA}\n    paths: ['a b']", "relative directory"),
    (f"url: https://github.com/x/y.git\n    commit: {SHA}\n    branch: main", "unknown key(s) branch"),
])
def test_bad_entries_are_refused_naming_the_entry(entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"addon-repos.yaml: repos\[1\]") as caught:
        parse(f"repos:\n  - {entry}\n")
    assert message in caught.value.message


def test_a_repository_listed_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"repos\[2\]: https://github.com/x/y.git is listed twice"):
        parse(f"repos:\n  - {{url: 'https://github.com/x/y.git', commit: {SHA}}}\n"
              f"  - {{url: 'https://github.com/x/y.git', commit: {SHA}, paths: [b]}}\n")


# ---------------------------------------------------------------- build inputs and argv
@pytest.fixture
def stack(repo: Path, home: Path, tmp_path: Path):
    (repo / "docker" / "config" / "dev.env").write_text(f"ODOO_STATE_ROOT={tmp_path}/state\n")
    return load_stack("dev", repo_root=repo, home=home)


def test_the_build_reads_addon_repos_yaml_and_passes_a_key_only_as_a_secret(stack, repo: Path, tmp_path: Path) -> None:
    (repo / "addon-repos.yaml").write_text(f"repos:\n  - url: git@github.com:acme/x.git\n    commit: {SHA}\n")
    with pytest.raises(ConfigError, match=r"addon-repos.yaml: git@github.com:acme/x.git is fetched over ssh: "
                                          r"pass --addons-ssh-key"):
        build.build_inputs(stack, sha="1a2b3c4")
    key, known = tmp_path / "key", tmp_path / "known_hosts"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n")
    known.write_text("github.com ssh-ed25519 AAAA\n")
    with pytest.raises(ConfigError, match="--addons-ssh-key needs --addons-known-hosts"):
        build.build_inputs(stack, sha="1a2b3c4", addons_key=key)
    inputs = build.build_inputs(stack, sha="1a2b3c4", addons_key=key, addons_known_hosts=known)
    assert inputs.addon_repos == (AddonRepo("git@github.com:acme/x.git", SHA),)
    argv = build_command(stack, "web", inputs, "docker").argv
    assert f"ADDON_REPOS=git@github.com:acme/x.git {SHA} ." in argv
    assert f"id=addons_key,src={key}" in argv and f"id=addons_known_hosts,src={known}" in argv
    assert not [a for a in argv if str(key) in a and not a.startswith("id=addons_key,")]
    # another file by option; none at all without either
    other = tmp_path / "other.yaml"
    other.write_text(f"repos:\n  - url: https://github.com/OCA/web.git\n    commit: {SHA}\n    paths: [web_x]\n")
    assert build.build_inputs(stack, sha="1a2b3c4", addon_repos_file=other).addon_repos[0].paths == ("web_x",)
    (repo / "addon-repos.yaml").unlink()
    plain = build.build_inputs(stack, sha="1a2b3c4")
    assert plain.addon_repos == () and not any(a.startswith("ADDON_REPOS=") for a in
                                              build_command(stack, "web", plain, "docker").argv)


def test_no_addon_repos_means_no_build_arg(stack) -> None:
    argv = build_command(stack, "web", BuildInputs(sha="1a2b3c4"), "docker").argv
    assert not any("ADDON_REPOS" in a or "addons_key" in a for a in argv)


# ---------------------------------------------------------------- docker/addon_repos.sh
def make_repo(root: Path, name: str, files: dict[str, str]) -> tuple[Path, str]:
    path = root / name
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    git(root, "init", "-q", "-b", "main", str(path))
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "one")
    return path, git(path, "rev-parse", "HEAD")


def fetch(out: Path, entries: list[str], tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPT), str(out), ";".join(entries)], capture_output=True, text=True,
                          env={**GIT_ENV, "TMPDIR": str(tmp)}, timeout=120)


def manifest(name: str) -> str:
    return f"{{'name': '{name}', 'version': '18.0.1.0'}}\n"


def test_the_fetch_copies_the_pinned_addons_flat_without_git(tmp_path: Path) -> None:
    multi, multi_sha = make_repo(tmp_path, "oca-web", {
        "web_a/__manifest__.py": manifest("a"), "web_a/models.py": "A = 1\n",
        "web_b/__manifest__.py": manifest("b"), "setup/web_b/setup.py": "", "README.md": "x"})
    git(multi, "commit", "-q", "--allow-empty", "-m", "later")  # the pin is not the branch head
    single, single_sha = make_repo(tmp_path, "one_addon", {"__manifest__.py": manifest("one"), "__init__.py": ""})
    out = tmp_path / "out"
    proc = fetch(out, [f"file://{multi} {multi_sha} web_a,web_b", f"{single} {single_sha} ."], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["one_addon", "web_a", "web_b"]
    assert (out / "web_a" / "models.py").read_text() == "A = 1\n"
    assert not list(out.rglob(".git"))
    assert f"addon-repos: file://{multi} @ {multi_sha}: web_a web_b" in proc.stdout
    # a directory of addons: every addon directly under it
    out2 = tmp_path / "out2"
    assert fetch(out2, [f"{multi} {multi_sha} ."], tmp_path).returncode == 0
    assert sorted(p.name for p in out2.iterdir()) == ["web_a", "web_b"]
    assert list(tmp_path.glob("addon-repos.*")) == []  # its work directory is gone


def test_a_missing_commit_fails_naming_the_repository_and_the_commit(tmp_path: Path) -> None:
    repo, _ = make_repo(tmp_path, "addons", {"x/__manifest__.py": manifest("x")})
    proc = fetch(tmp_path / "out", [f"{repo} {SHA} ."], tmp_path)
    assert proc.returncode == 1
    assert f"ERROR: addon repo {repo} @ {SHA}: commit not found in the repository (deleted, or moved away by a " \
           "force-push)" in proc.stderr


def test_a_commit_moved_away_by_a_force_push_fails(tmp_path: Path) -> None:
    repo, first = make_repo(tmp_path, "addons", {"x/__manifest__.py": manifest("x")})
    (repo / "x" / "y.py").write_text("")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "two")
    pinned = git(repo, "rev-parse", "HEAD")
    git(repo, "reset", "-q", "--hard", first)  # force-push: the pinned commit is no longer in the repository
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    proc = fetch(tmp_path / "out", [f"{repo} {pinned} ."], tmp_path)
    assert proc.returncode == 1 and f"@ {pinned}: commit not found" in proc.stderr


def test_a_path_without_addons_and_a_name_clash_fail(tmp_path: Path) -> None:
    one, one_sha = make_repo(tmp_path, "one", {"x/__manifest__.py": manifest("x"), "docs/readme.md": ""})
    two, two_sha = make_repo(tmp_path, "two", {"x/__manifest__.py": manifest("x2")})
    proc = fetch(tmp_path / "o1", [f"{one} {one_sha} docs"], tmp_path)
    assert proc.returncode == 1 and f"{one} @ {one_sha}: 'docs' holds no Odoo addon" in proc.stderr
    proc = fetch(tmp_path / "o2", [f"{one} {one_sha} missing"], tmp_path)
    assert proc.returncode == 1 and "no directory 'missing' in the repository" in proc.stderr
    proc = fetch(tmp_path / "o3", [f"{one} {one_sha} .", f"{two} {two_sha} ."], tmp_path)
    assert proc.returncode == 1
    assert f"ERROR: addon repo {two} @ {two_sha}: addon x is also in {one} @ {one_sha}" in proc.stderr


def test_an_empty_list_fetches_nothing(tmp_path: Path) -> None:
    proc = fetch(tmp_path / "out", [], tmp_path)
    assert proc.returncode == 0 and list((tmp_path / "out").iterdir()) == []


def test_the_checksums_of_the_fetched_addons_are_merged_in_the_addons_path_order() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    merge = dockerfile[dockerfile.index('"$tool" merge'):]
    order = [merge.index(p) for p in ("/odoo/.odoo-ai-checksums-core.json", "/opt/odoo/custom-addons/.odoo-ai",
                                      "/opt/odoo/addon-repos/.odoo-ai", "/opt/odoo/enterprise/.odoo-ai",
                                      "/odoo/.odoo-ai-checksums-addons.json")]
    assert order == sorted(order)
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text()
    paths = [entrypoint.index(f"add_path {p}") for p in ("/opt/odoo/custom-addons", "/opt/odoo/addon-repos",
                                                         "/opt/odoo/enterprise")]
    assert paths == sorted(paths)


# ---------------------------------------------------------------- submodules
def test_an_addons_submodule_that_is_not_checked_out_fails_the_build(tmp_path: Path) -> None:
    sub, _ = make_repo(tmp_path, "sub_addon", {"__manifest__.py": manifest("sub")})
    main, _ = make_repo(tmp_path, "main", {"addons/README.md": "x", "other/README.md": "y"})
    git(main, "submodule", "add", "-q", str(sub), "addons/sub_addon")
    git(main, "commit", "-q", "-m", "submodule")
    assert build.check_submodules(LOCAL, main, main / "addons") == []
    (sub / "later.py").write_text("")
    git(sub, "add", "-A")
    git(sub, "commit", "-q", "-m", "later")
    git(main / "addons" / "sub_addon", "pull", "-q", "origin", "main")
    notes = build.check_submodules(LOCAL, main, main / "addons")
    assert notes == ["submodule addons/sub_addon is checked out at another commit than the one recorded in the repository"]
    git(main, "submodule", "deinit", "-q", "-f", "addons/sub_addon")  # what a checkout without submodules leaves
    with pytest.raises(ConfigError, match=r"git submodule\(s\) addons/sub_addon not checked out: their addons would "
                                          r"be missing from the image") as caught:
        build.check_submodules(LOCAL, main, main / "addons")
    assert "git submodule update --init --recursive" in caught.value.hint
    assert build.check_submodules(LOCAL, main, main / "other") == []  # not under the addons folder built
    assert build.check_submodules(LOCAL, tmp_path / "sub_addon" / "..", tmp_path) == []  # not a work tree: no check
