"""docker/addon_checksums.py, the per-addon checksums the image carries: stable for the
same tree (file order, mtimes and byte-code irrelevant), changed by what Odoo loads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "docker" / "addon_checksums.py"


def addon(root: Path, name: str, files: dict[str, str]) -> Path:
    path = root / name
    for rel, text in {"__manifest__.py": "{'name': 'x', 'version': '18.0.1.0.0'}", **files}.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    return path


def scan(*dirs: Path, out: Path) -> dict[str, str]:
    subprocess.run([sys.executable, str(TOOL), "scan", str(out), *map(str, dirs)], check=True)
    return json.loads(out.read_text())


def test_same_tree_same_sums_whatever_order_mtime_or_bytecode(tmp_path: Path) -> None:
    a = tmp_path / "a"
    addon(a, "mod_one", {"__init__.py": "from . import models\n", "models/__init__.py": "", "views/v.xml": "<odoo/>"})
    addon(a, "mod_two", {"data/d.csv": "id,name\n"})
    first = scan(a, out=tmp_path / "1.json")
    b = tmp_path / "b"  # the same files written in another order, other mtimes, plus byte-code and tests
    addon(b, "mod_two", {"data/d.csv": "id,name\n"})
    addon(b, "mod_one", {"views/v.xml": "<odoo/>", "models/__init__.py": "", "__init__.py": "from . import models\n"})
    os.utime(b / "mod_one" / "views" / "v.xml", (1, 1))
    (b / "mod_one" / "__pycache__").mkdir()
    (b / "mod_one" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (b / "mod_one" / "models" / "y.pyc").write_bytes(b"\1")
    addon(b, "mod_one", {"tests/test_x.py": "assert True\n", ".hidden": "x", "views/v.xml~": "backup"})
    assert scan(b, out=tmp_path / "2.json") == first
    assert set(first) == {"mod_one", "mod_two"} and all(len(v) == 64 for v in first.values())


def test_a_change_in_one_addon_changes_only_its_sum(tmp_path: Path) -> None:
    root = tmp_path / "addons"
    addon(root, "mod_one", {"views/v.xml": "<odoo/>"})
    addon(root, "mod_two", {"static/src/app.js": "1;"})
    before = scan(root, out=tmp_path / "1.json")
    (root / "mod_two" / "static" / "src" / "app.js").write_text("2;")
    after = scan(root, out=tmp_path / "2.json")
    assert after["mod_one"] == before["mod_one"] and after["mod_two"] != before["mod_two"]
    shutil.move(root / "mod_one" / "views" / "v.xml", root / "mod_one" / "views" / "w.xml")  # a rename counts
    assert scan(root, out=tmp_path / "3.json")["mod_one"] != before["mod_one"]
    (root / "not_an_addon").mkdir()
    (root / "README.md").write_text("x")
    assert set(scan(root, out=tmp_path / "4.json")) == {"mod_one", "mod_two"}


def test_merge_keeps_the_first_source_of_an_addon(tmp_path: Path) -> None:
    core = tmp_path / "core.json"
    custom = tmp_path / "custom.json"
    core.write_text(json.dumps({"base": "1", "web": "2"}))
    custom.write_text(json.dumps({"web": "shadowed", "mine": "3"}))
    out = tmp_path / "merged.json"
    subprocess.run([sys.executable, str(TOOL), "merge", str(out), str(core), str(custom)], check=True)
    assert json.loads(out.read_text()) == {"base": "1", "web": "2", "mine": "3"}
