"""Addon repositories pinned in addon-repos.yaml, fetched by a real build over a real sshd
(on the Docker bridge gateway) with a throw-away key passed only as a BuildKit secret: the
addons end up in both images, in Odoo's addons_path and in the per-addon checksums; a
changed pin re-runs only the addon-repos stage and the layers after it; a missing commit
fails the build naming the repository and the commit; the key is in no layer."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import DOCKER, standin_build_args
from tests.integration.gitsshd import GitSshd, start_git_sshd
from tests.integration.test_enterprise_secret import cache_report, layers

ADDON = "oait_pinned_addon"


def manifest(version: str, nonce: str) -> str:
    return (f"{{'name': 'Pinned stand-in', 'version': '18.0.{version}', 'depends': ['base'], "
            f"'installable': True, 'license': 'LGPL-3', 'nonce': '{nonce}'}}\n")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory):
    server = start_git_sshd(tmp_path_factory.mktemp("addon-repos-sshd"))
    yield server
    server.stop()


def run_in(ref: str, script: str) -> str:
    return subprocess.run([DOCKER, "run", "--rm", "--entrypoint", "/bin/sh", ref, "-c", script],
                          capture_output=True, text=True, timeout=120, check=True).stdout


def test_pinned_addon_repositories_are_fetched_keyed_on_their_commit(cli, sshd: GitSshd, tmp_path: Path) -> None:
    nonce = uuid.uuid4().hex  # new to the build cache
    bare, first = sshd.repo(f"addons-{nonce[:6]}", {
        f"{ADDON}/__init__.py": "", f"{ADDON}/__manifest__.py": manifest("1.0.0", nonce),
        "not_an_addon/README.md": "docs"})
    pins = tmp_path / "addon-repos.yaml"

    def pin(commit: str) -> None:
        pins.write_text(f"repos:\n  - url: {sshd.url(bare)}\n    commit: {commit}\n    paths: [{ADDON}]\n")

    image = f"oait-repos-{nonce[:8]}/odoo"
    cli.write_env("dev", f"ODOO_IMAGE={image}\nODOO_STATE_ROOT={tmp_path / 'state'}\n")
    key = ["--addon-repos", str(pins), "--addons-ssh-key", str(sshd.key), "--addons-known-hosts", str(sshd.known_hosts)]
    refs = [f"{image}-web:dev-a11a11a", f"{image}-script-runner:dev-a11a11a"]
    try:
        pin(first)
        before = sshd.accepted()
        record = json.loads(cli(*standin_build_args("dev", "a11a11a"), *key, "--json").stdout)
        assert sshd.accepted() > before  # fetched over the real sshd with the throw-away key
        assert record["addon_repos"] == [{"url": sshd.url(bare), "commit": first, "paths": [ADDON]}]
        scan = record["verify"]
        assert scan["scanned"] is True and scan["findings"] == 0  # the addons key is in no layer
        for ref in refs:
            listed = run_in(ref, "ls -A /opt/odoo/addon-repos; cat /opt/odoo/addon-checksums.json")
            assert ADDON in listed.split() and "not_an_addon" not in listed and ".git" not in listed.split()
            assert f'"{ADDON}"' in listed  # in the merged per-addon checksums (the deploy's addons hash)
        config = run_in(refs[0], 'ODOO_DB_PASSWORD=x /usr/local/bin/odoo-entrypoint sh -c \'cat "$ODOO_RC"\'')
        addons_path = next(line for line in config.splitlines() if line.startswith("addons_path"))
        assert "/opt/odoo/custom-addons,/opt/odoo/addon-repos," in addons_path
        hash_before = run_in(refs[0], "cat /opt/odoo/addons.sha256")

        # A new pin: only the addon-repos stage and what copies its result are rebuilt.
        second = sshd.commit(bare, {f"{ADDON}/__manifest__.py": manifest("2.0.0", nonce)})
        pin(second)
        web_layers = layers(refs[0])
        rebuilt_run = cli(*standin_build_args("dev", "a11a11a"), *key, "--json")
        # the first of the two `docker build`s (web): the second one finds everything in the cache.
        # (Its step number is #1 or #2: BuildKit numbers the two `[internal] load` steps as they start.)
        first_build = re.split(r"#\d+ \[internal\] load build definition", rebuilt_run.stderr)[1]
        report = cache_report(first_build)
        print("\ncache hits of the rebuild after a changed pin:")
        for name, hit in report.items():
            print(f"  {'CACHED ' if hit else 'rebuilt'}  {name}")
        for stage in ("[odoo-src ", "[enterprise ", "[builder ", "[odoo-common ", "[tools "):
            assert not [n for n, hit in report.items() if n.startswith(stage) and not hit], f"{stage} rebuilt: {report}"
        assert [n for n, hit in report.items() if n.startswith("[addon-repos ") and not hit], report
        assert "18.0.2.0.0" in run_in(refs[1], f"cat /opt/odoo/addon-repos/{ADDON}/__manifest__.py")
        assert run_in(refs[0], "cat /opt/odoo/addons.sha256") != hash_before  # a deploy sees the change
        new_layers = layers(refs[0])
        shared = next((i for i, (a, b) in enumerate(zip(web_layers, new_layers, strict=False)) if a != b),
                      len(new_layers))
        assert shared >= len(new_layers) - 4, f"only {shared} of {len(new_layers)} layers reused"

        # A commit the repository does not have: the build fails naming both.
        missing = "f" * 40
        pin(missing)
        failed = cli(*standin_build_args("dev", "a11a11a"), *key, check=False)
        assert failed.returncode != 0
        error = next(line for line in failed.stderr.splitlines() if line.startswith("odoo-ai: error:"))
        assert f"addon repo {sshd.url(bare)} @ {missing}: commit not found in the repository" in error, error
    finally:
        for ref in refs:
            subprocess.run([DOCKER, "image", "rm", ref], capture_output=True, timeout=120)
