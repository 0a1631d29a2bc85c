"""`down --purge --host` (issue 16, point 2): the purge guard runs on the Docker host's own
disk, over a real OpenSSH server on 127.0.0.1 — the same checks as on this machine (a real
directory carrying this project's marker, a path a stack may own), the listing with sizes,
y/N or --yes. A symlinked state root, a missing marker, another project's marker: one
line, exit 2, nothing stopped, nothing deleted, and the dry run says the same."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from odoo_ai.config.stateroot import MARKER, marker_text
from tests.integration.conftest import DOCKER, REPO, Cli
from tests.integration.sshd import start_sshd

SECRETS = {"ODOO_DB_PASSWORD": "purge-pw", "ODOO_MASTER_PASSWORD": "purge-master"}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rpurge")
    sshd = start_sshd(tmp / "sshd")
    yield sshd
    sshd.stop()


@pytest.fixture
def setup(host, tmp_path: Path):
    for name in ("config", "home"):
        (tmp_path / name).mkdir()
    env = {**os.environ, "HOME": str(tmp_path / "home"), "ODOO_AI_DOCKER": DOCKER,
           "ODOO_AI_SSH_KEY": str(host.client_key), "ODOO_AI_KNOWN_HOSTS": str(host.known_hosts), **SECRETS}
    cli = Cli(REPO, tmp_path / "config", tmp_path / "home", env)
    root = tmp_path / "host-state" / "opw-dev"
    cli.write_env("dev", f"ODOO_STATE_ROOT={root}\nODOO_REMOTE_REPO_DIR={tmp_path / 'host-repo'}\n"
                         "ODOO_IMAGE=odoo-ai-test/odoo\n")
    return cli, root, tmp_path


def tree(root: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            seen[str(path.relative_to(root))] = (
                ("link", os.readlink(path)) if stat.S_ISLNK(st.st_mode)
                else ("dir",) if stat.S_ISDIR(st.st_mode) else ("file", path.read_bytes()))
    return seen


def stack_dir(root: Path, project: str | None = "opw-dev") -> None:
    """A state root as a stack leaves it: data, logs, snapshots; a marker unless None."""
    for sub, size in (("postgres/base", 3000), ("filestore/opw_dev", 1000), ("snapshots", 500), ("logs", 200)):
        (root / sub).mkdir(parents=True)
        (root / sub / "f").write_bytes(b"x" * size)
    os.link(root / "filestore" / "opw_dev" / "f", root / "snapshots" / "hardlink")  # counted once
    if project:
        (root / MARKER).write_text(marker_text(project, "dev"))


def purge(cli: Cli, host, *extra: str) -> Any:
    return cli("down", "dev", "--purge", "--host", host.url, *extra, check=False)


def _symlinked(root: Path, tmp: Path) -> str:
    real = tmp / "real-state"
    stack_dir(real)
    root.parent.mkdir(parents=True)
    root.symlink_to(real)
    return f"refusing to delete {root}: it is a symbolic link (to {real}), not the stack's own directory; nothing deleted"


def _unmarked(root: Path, tmp: Path) -> str:
    stack_dir(root, project=None)
    return (f"refusing to delete {root}: it carries no odoo-ai marker ({MARKER}): odoo-ai did not create it as "
            "opw-dev's state root; nothing deleted")


def _another_project(root: Path, tmp: Path) -> str:
    stack_dir(root, project="opw-other")
    return f"refusing to delete {root}: it is the state root of the stack 'opw-other', not of 'opw-dev'; nothing deleted"


def _marker_is_a_symlink(root: Path, tmp: Path) -> str:
    stack_dir(root, project=None)
    (tmp / "elsewhere").write_text(marker_text("opw-dev", "dev"))
    (root / MARKER).symlink_to(tmp / "elsewhere")
    return f"refusing to delete {root}: {root / MARKER} is a symbolic link, not an odoo-ai marker; nothing deleted"


@pytest.mark.parametrize("case", [_symlinked, _unmarked, _another_project, _marker_is_a_symlink])
def test_a_hostile_state_root_is_refused_over_ssh_with_one_line(setup, host, case) -> None:
    cli, root, tmp = setup
    message = case(root, tmp)
    # a rendered .env there: a purge that went on would run compose down first
    (root / ".env").write_text("ODOO_DB_NAME=opw_dev\n") if root.is_dir() and not root.is_symlink() else None
    before = tree(tmp)
    for extra in (["--yes"], ["--yes", "--dry-run"]):
        proc = purge(cli, host, *extra)
        assert proc.returncode == 2, (extra, proc.stdout, proc.stderr)
        errors = [line for line in proc.stderr.splitlines() if "error:" in line]
        assert errors == [f"odoo-ai: error: {message}"], proc.stderr
        assert "docker" not in proc.stdout  # nothing stopped (the dry run printed no command either)
        assert tree(tmp) == before  # nothing deleted


def test_a_purge_over_ssh_lists_asks_and_deletes_only_the_marked_state_root(setup, host) -> None:
    cli, root, tmp = setup
    stack_dir(root)
    (tmp / "outside").mkdir()
    (tmp / "outside" / "keep").write_text("kept")
    before = tree(tmp)

    # the dry run: the listing measured on the host, the delete printed
    dry = purge(cli, host, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr.startswith(f"purge would delete {root} (marker: opw-dev")
    assert f"# rm -r {root} (its marker of opw-dev checked again first; the marker goes last)" in dry.stdout
    assert tree(tmp) == before

    # off a terminal and without --yes: refused, nothing deleted
    refused = purge(cli, host)
    assert refused.returncode == 2 and "without confirmation (no terminal to ask on): pass --yes" in refused.stderr
    assert tree(tmp) == before

    done = json.loads(purge(cli, host, "--yes", "--json").stdout)
    assert done["purged"] is True and done["host"] == host.url
    parts = {p["what"]: (p["bytes"], p["files"]) for p in done["purge"]["parts"]}
    assert parts == {"database": (3000, 1), "filestore": (1000, 1), "snapshots": (500, 2), "logs": (200, 1),
                     "the rest": (len(marker_text("opw-dev", "dev")), 1)}  # the hardlink counted once
    assert not root.exists() and (tmp / "outside" / "keep").read_text() == "kept"
    assert (tmp / "host-state").is_dir()  # only the state root itself went

    again = purge(cli, host, "--yes")
    assert again.returncode == 0 and f"nothing to purge: {root} does not exist on {host.url}" in again.stderr
