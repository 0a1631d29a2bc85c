from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the stack repository's config surface (compose files, overlays)."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO / "docker-compose.yml", root)
    shutil.copytree(REPO / "environments", root / "environments")
    (root / "docker" / "config").mkdir(parents=True)
    shutil.copytree(REPO / "docker" / "proxy", root / "docker" / "proxy")
    return root


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path
