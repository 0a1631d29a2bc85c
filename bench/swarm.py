"""Swarm rolling deploy beside the compose blue/green deploy of the same images, in one run
(stand-in Odoo, real engine, Postgres, nginx; ODOO_ENGINE=compose vs swarm).

For each engine: a first deploy of `standin`, then the measured deploy of `standin-ok_v2`
(an addon changed: snapshot + module update + new web) while a client polls the published
port every 100 ms. Prints seconds (the CLI's wall clock), the phases, and the failed
requests. The swarm runs 2 web replicas (rolling, start-first) and one cron service; the
compose env one web (blue/green). The swarm is a single node made by this script
(`docker swarm init --advertise-addr 127.0.0.1`) and left at the end if it made it.

    uv run python bench/swarm.py     (needs scripts/provision-host.sh and
                                      scripts/build-test-images.sh --scenario ok_v2 first)
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy import Poller  # noqa: E402  (bench/deploy.py's 100 ms poller)

REPO = Path(__file__).resolve().parents[1]
DOCKER = os.environ.get("ODOO_AI_DOCKER", "/usr/bin/docker")
FIRST, NEXT = "standin", "standin-ok_v2"
SECRETS = {"ODOO_DB_PASSWORD": "bench-db", "ODOO_MASTER_PASSWORD": "bench-master"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=300)


def run_engine(engine: str, tmp: Path) -> dict:
    project = f"oaibs-{engine}-{os.getpid()}"
    port = free_port()
    config = tmp / engine / "config"
    config.mkdir(parents=True)
    (config / "dev.env").write_text("\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={tmp / engine / 'state'}", f"ODOO_PUBLISHED_PORT={port}",
        "ODOO_IMAGE=odoo-ai-test/odoo", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15",
        "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1", "ODOO_DB_NAME=opw_bench", "ODOO_UPDATE=standin_demo",
        f"ODOO_ENGINE={engine}", "ODOO_SWARM_WEB_REPLICAS=2", "ODOO_DEPLOY_GATE_TIMEOUT=60", "",
    ]))
    env = {**os.environ, "HOME": str(tmp / engine), "ODOO_AI_DOCKER": DOCKER, **SECRETS}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["odoo-ai", "--repo", str(REPO), "--config-dir", str(config), *args],
                              capture_output=True, text=True, env=env, timeout=900)

    try:
        first = cli("deploy", "dev", "--tag", FIRST, "--any-tag", "--json")
        if first.returncode != 0:
            raise SystemExit(f"{engine}: first deploy failed:\n{first.stderr[-2000:]}")
        time.sleep(2)
        with Poller(f"http://127.0.0.1:{port}/web/health") as poll:
            started = time.monotonic()
            proc = cli("deploy", "dev", "--tag", NEXT, "--any-tag", "--json")
            seconds = time.monotonic() - started
            time.sleep(1)
        if proc.returncode != 0:
            raise SystemExit(f"{engine}: deploy failed:\n{proc.stderr[-2000:]}")
        doc = json.loads(proc.stdout)
        return {"engine": engine, "seconds": round(seconds, 1), "failed_requests": poll.failed,
                "requests": poll.ok + poll.failed, "errors": poll.errors[:10],
                "phases": {p["name"]: p["seconds"] for p in doc["phases"]}}
    finally:
        cli("down", "dev")
        if engine == "compose":
            ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").stdout.split()
            if ids:
                docker("rm", "-f", *ids)


def main() -> int:
    for ref in (f"odoo-ai-test/odoo-web:{FIRST}", f"odoo-ai-test/odoo-web:{NEXT}"):
        if docker("image", "inspect", ref).returncode != 0:
            print(f"{ref} missing: scripts/build-test-images.sh --scenario ok_v2", file=sys.stderr)
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="odoo-ai-bench-swarm-"))
    made = False
    if docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() != "active":
        init = docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        if init.returncode != 0:
            print(f"docker swarm init failed: {init.stderr}", file=sys.stderr)
            return 1
        made = True
    try:
        results = [run_engine("compose", tmp), run_engine("swarm", tmp)]
    finally:
        if made:
            docker("swarm", "leave", "--force")
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"deploy of {NEXT} over {FIRST} (module update included), client polling every 100 ms:")
    for r in results:
        what = "blue/green, 1 web" if r["engine"] == "compose" else "rolling, 2 web replicas + cron"
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in r["phases"].items())
        print(f"  {r['engine']:<8} ({what}): {r['seconds']:.1f} s, {r['failed_requests']} failed of "
              f"{r['requests']} requests  [{phases}]")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
