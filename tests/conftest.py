from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Test data, not our tests: the Odoo addons under tests/fixtures carry Odoo's own test
# modules (test_*.py importing `odoo`), which run inside the images, never here.
collect_ignore_glob = ["fixtures/*"]


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
