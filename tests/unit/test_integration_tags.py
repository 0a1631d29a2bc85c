"""The integration test files run side by side (pytest-xdist) on one Docker engine: an image
tag one of them builds with `odoo-ai build` (`odoo-ai-test/odoo-web:dev-<fake commit>`) must
not be built by another, or one file deploys the other's addons. CI once deployed
test_remote_deploy's healthy image under test_deploy's dead_bus tag."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
SHARED_IMAGE = re.compile(r'ODOO_IMAGE=odoo-ai-test/odoo(?:"|\\n)')
FAKE_COMMIT = re.compile(r'"([0-9a-f]{7})[0-9a-f]*"')


def built_tags(text: str) -> set[str]:
    """The dev-<7> tags a file builds: its SCENARIOS' fake commits and standin_build_args' shas."""
    lines = [line for line in text.splitlines() if "SCENARIOS = {" in line or "standin_build_args(" in line
             or line.startswith('    "') and '": "' in line]
    return {f"dev-{m}" for line in lines for m in FAKE_COMMIT.findall(line)}


def test_no_two_files_build_the_same_tag_of_the_shared_image() -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for path in sorted(INTEGRATION.glob("test_*.py")):
        text = path.read_text()
        if SHARED_IMAGE.search(text):
            for tag in built_tags(text):
                owners[tag].add(path.name)
    assert owners["dev-1111111"] == {"test_deploy.py"}  # the scan sees SCENARIOS spread over lines
    assert {tag: files for tag, files in owners.items() if len(files) > 1} == {}
