from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# pytest-xdist's workers start with COLUMNS=80 and LINES=24 set: the CLI run by the tests would
# fit its tables to 80 columns in a pipe. The environment of a one-process run instead.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("COLUMNS", "LINES"):
        os.environ.pop(_name, None)
# Test data, not our tests: the Odoo addons under tests/fixtures carry Odoo's own test
# modules (test_*.py importing `odoo`), which run inside the images, never here.
collect_ignore_glob = ["fixtures/*"]

# The longest test files first (pyproject: --dist loadfile --no-loadscope-reorder hands the
# two workers whole files in this order): a long file started last would run alone at the end.
SLOW_FIRST = ("test_deploy_kill", "test_operator_view", "test_real_odoo_deploy", "test_workflows",
              "test_swarm", "test_real_odoo_testrun", "test_deploy", "test_remote_deploy",
              "test_test_run_templates", "test_module_updates", "test_conformance", "test_databases")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


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
