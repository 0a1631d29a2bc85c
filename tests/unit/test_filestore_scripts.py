"""The filestore snapshot/restore shell scripts, run here by `sh` on temporary folders: the
same text the tools container runs. `cp -al` fails in the container (the data and the
snapshots are two bind mounts: EXDEV) after making its target folder; a shim `cp` does the
same here, so the fallback copy is what runs, and must not nest the tree into that folder."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from odoo_ai.plan import deploy as plan


@pytest.fixture(params=["hardlinks", "exdev"])
def env(request, tmp_path: Path) -> dict[str, str]:
    if request.param == "hardlinks":
        return dict(os.environ)
    shim = tmp_path / "bin"
    shim.mkdir()
    cp = shim / "cp"  # `cp -al SRC DST`: makes DST, then fails like link(2) across mounts
    cp.write_text('#!/bin/sh\nif [ "$1" = "-al" ]; then mkdir -p "$3"; echo "cp: EXDEV" >&2; exit 1; fi\n'
                  'exec /bin/cp "$@"\n')
    cp.chmod(cp.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}"}


def sh(script: str, *args: str, env: dict[str, str]) -> None:
    subprocess.run(["sh", "-c", script, "sh", *args], check=True, env=env)


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_snapshot_and_restores_never_nest(tmp_path: Path, env) -> None:
    live, snaps = tmp_path / "data" / "filestore" / "db", tmp_path / "snapshots"
    (live / "ab").mkdir(parents=True)
    snaps.mkdir()
    (live / "ab" / "abc1").write_text("v1")
    for n in range(3):  # snapshot, change, restore: three rounds, as deploys and rollbacks do
        snap = snaps / f"s{n}.filestore"
        sh(plan.FILESTORE_SNAPSHOT_SH, str(live), str(snap), env=env)
        sh(plan.FILESTORE_SNAPSHOT_SH, str(live), str(snap), env=env)  # again: a retried deploy
        assert tree(snap) == {"ab/abc1": "v1"}
        (live / "ab" / f"new{n}").write_text("written after")
        sh(plan.FILESTORE_PREPARE_SH, str(live), str(snap), env=env)
        kept = tmp_path / "data" / "filestore" / f"db__failed_{n}"
        sh(plan.FILESTORE_SWAP_SH, str(live), "", str(kept), env=env)
        assert tree(live) == {"ab/abc1": "v1"}
        assert tree(kept) == {"ab/abc1": "v1", f"ab/new{n}": "written after"}
    assert sorted(p.name for p in live.parent.iterdir()) == ["db", "db__failed_0", "db__failed_1", "db__failed_2"]


def test_a_swap_never_moves_a_folder_into_an_existing_one(tmp_path: Path) -> None:
    live = tmp_path / "db"
    (tmp_path / "db.restored").mkdir()
    live.mkdir()
    (tmp_path / "kept").mkdir()  # a folder already there under the kept name: refused, not nested
    proc = subprocess.run(["sh", "-c", plan.FILESTORE_SWAP_SH, "sh", str(live), "", str(tmp_path / "kept") + "/"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 or not (tmp_path / "kept" / "db").exists()
