"""Per-module updates vs the whole list (stand-in Odoo, real engine and PostgreSQL).

Two stacks get the same two deploys — two custom modules, then a change to one of them —
one with ODOO_UPDATE=auto (per-module checksums: `-u` of the changed module only) and one
with the whole list (`-u standin_alpha,standin_beta`, what the addons hash alone allows).
Prints the update phase and the total of the second deploy side by side, and which
modules each one updated.

    uv run python bench/modules.py     (after scripts/provision-host.sh and build-test-images.sh)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKER = os.environ.get("ODOO_AI_DOCKER", "/usr/bin/docker")
BASE = os.environ.get("ODOO_AI_BASE_IMAGE", "odoo-ai-test/debian:bookworm")
CA = "/etc/ssl/certs/ca-certificates.crt"
SCENARIOS = {"two_mods": "e100000", "two_mods_b2": "e200000"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="odoo-ai-bench-modules-"))
    env = {**os.environ, "ODOO_AI_DOCKER": DOCKER, "ODOO_DB_PASSWORD": "bench-db", "ODOO_MASTER_PASSWORD": "bench-m",
           "ODOO_BUILD_WKHTMLTOPDF": "none"}
    rows: list[tuple[str, str]] = []
    stacks = {"per-module (ODOO_UPDATE=auto)": "auto", "whole list (ODOO_UPDATE=alpha,beta)":
              "standin_alpha,standin_beta"}
    configs = []
    try:
        for i, (label, update) in enumerate(stacks.items()):
            config = tmp / f"config{i}"
            config.mkdir()
            (config / "dev.env").write_text("\n".join([
                f"ODOO_PROJECT_NAME=oaibm{i}-{os.getpid()}", f"ODOO_STATE_ROOT={tmp / f'state{i}'}",
                f"ODOO_PUBLISHED_PORT={free_port()}", "ODOO_IMAGE=odoo-ai-test/odoo",
                "ODOO_DB_IMAGE=odoo-ai-test/postgres:15", "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1",
                "ODOO_DB_NAME=opw_bench", "ODOO_INSTALL=standin_alpha,standin_beta", f"ODOO_UPDATE={update}",
                "ODOO_DEPLOY_DRAIN_SECONDS=0.5", "",
            ]))
            configs.append((label, config))

        def cli(config: Path, *args: str) -> dict:
            proc = subprocess.run(["odoo-ai", "--repo", str(REPO), "--config-dir", str(config), *args, "--json"],
                                  capture_output=True, text=True, env=env)
            if proc.returncode:
                raise SystemExit(f"odoo-ai {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
            return json.loads(proc.stdout) if proc.stdout.strip() else {}

        for scenario, sha in SCENARIOS.items():
            args = ["build", "dev", "--sha", sha, "--odoo-src", str(REPO / "tests/fixtures/standin-odoo"),
                    "--addons", str(REPO / "tests/fixtures/standin-addons" / scenario), "--base-image", BASE]
            cli(configs[0][1], *(args + (["--ca-file", CA] if os.path.exists(CA) else [])))
        for label, config in configs:
            cli(config, "deploy", "dev", "--tag", f"dev-{SCENARIOS['two_mods']}")
            start = time.monotonic()
            result = cli(config, "deploy", "dev", "--tag", f"dev-{SCENARIOS['two_mods_b2']}")
            total = time.monotonic() - start
            phases = {p["name"]: p["seconds"] for p in result["phases"]}
            rows.append((label, f"update {phases.get('update', 0):.2f}s + snapshot {phases.get('snapshot', 0):.2f}s, "
                                f"deploy {total:.2f}s; -u {result['modules']['update']}"))
    finally:
        for _, config in configs:
            subprocess.run(["odoo-ai", "--repo", str(REPO), "--config-dir", str(config), "down", "dev", "--purge",
                            "--yes"], capture_output=True, env=env)
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(label) for label, _ in rows)
    print(f"a change to one of two custom modules (stand-in Odoo, {os.cpu_count()} cores)")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
