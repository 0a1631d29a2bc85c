"""Benchmark of the image pipeline (stand-in Odoo unless --odoo-src is given):

- cold build (BuildKit layer cache off via --no-cache; the apt/pip cache MOUNTS stay
  warm, as on a CI runner that keeps them) vs. the rebuild after an addon-only change,
  and their ratio;
- image sizes of both targets;
- push: first push to an empty local registry, then the push of an unchanged image
  (must upload no layer).

    uv run python bench/images.py [--odoo-src DIR] [--json]
    uv run python bench/images.py --odoo-src vendor/odoo18-test/odoo-18.0 \
        --addons tests/fixtures/real-addons/v1 --changed-addons tests/fixtures/real-addons/v2
                                  (real Odoo 18: build-test-images.sh --real unpacks it there)

Needs the Docker engine (/usr/bin/docker, BuildKit), Debian's docker-registry and
htpasswd (scripts/provision-host.sh). Uses its own image names and a throw-away
registry; removes its images afterwards; never prunes the build cache.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.integration.registry import Registry  # noqa: E402

from odoo_ai.build import build_inputs  # noqa: E402
from odoo_ai.config.stack import load_stack  # noqa: E402
from odoo_ai.plan.build import TARGETS, build_command, image_tag  # noqa: E402

DOCKER = os.environ.get("ODOO_AI_DOCKER", "/usr/bin/docker")
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"


def run(argv: list[str], env: dict[str, str] | None = None, stdin: bytes | None = None) -> tuple[float, str]:
    started = time.monotonic()
    proc = subprocess.run(argv, env={**os.environ, **(env or {})}, input=stdin, capture_output=True,  # noqa: S603
                          timeout=3600)
    seconds = time.monotonic() - started
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{output[-3000:]}")
    return seconds, output


def build(stack, addons: Path, odoo_src: Path, *, no_cache: bool) -> tuple[float, int, int, str]:
    """Seconds for both targets, steps cached, steps total, the tag."""
    inputs = build_inputs(stack, sha=f"{uuid.uuid4().hex[:7]}", odoo_src=odoo_src, addons_dir=addons,
                          base_image=os.environ.get("ODOO_AI_BASE_IMAGE", "odoo-ai-test/debian:bookworm"),
                          ca_file=Path(CA_FILE) if os.path.exists(CA_FILE) else None)
    total, cached, steps = 0.0, 0, 0
    for target in TARGETS:
        command = build_command(stack, target, inputs, DOCKER)
        argv = command.argv[:2] + (["--no-cache"] if no_cache else []) + ["--progress", "plain"] + command.argv[2:]
        seconds, output = run(argv, env=command.env)
        total += seconds
        names = set(re.findall(r"^#(\d+) \[(?!internal)", output, re.M))
        cached += len(names & set(re.findall(r"^#(\d+) CACHED$", output, re.M)))
        steps += len(names)
    stack_tag = image_tag(stack.env, inputs)
    return total, cached, steps, stack_tag


def image_size(ref: str) -> int:
    _, out = run([DOCKER, "image", "inspect", "--format", "{{.Size}}", ref])
    return int(out.strip())


def push(ref: str, config_dir: str) -> tuple[float, int, int]:
    seconds, out = run([DOCKER, "image", "push", ref], env={"DOCKER_CONFIG": config_dir})
    pushed = sum(1 for line in out.splitlines() if line.rstrip().endswith(": Pushed"))
    existing = sum(1 for line in out.splitlines() if "Layer already exists" in line or "Mounted from" in line)
    return seconds, pushed, existing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--odoo-src", type=Path, default=REPO / "tests/fixtures/standin-odoo")
    parser.add_argument("--addons", type=Path, default=REPO / "tests/fixtures/standin-addons/ok")
    parser.add_argument("--changed-addons", type=Path, default=REPO / "tests/fixtures/standin-addons/ok_v2")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="odoo-ai-bench-"))
    registry = Registry(work / "registry")
    registry.start()
    namespace = f"bench-{uuid.uuid4().hex[:6]}/odoo"
    config = work / "config"
    config.mkdir()
    (config / "dev.env").write_text(f"ODOO_IMAGE={registry.host}/{namespace}\nODOO_STATE_ROOT={work / 'state'}\n")
    stack = load_stack("dev", repo_root=REPO, config_dir=config)
    refs: list[str] = []
    docker_config = tempfile.mkdtemp(prefix="odoo-ai-bench-docker-")
    # Addon dirs the build cache has never seen (a nonce file each), inside the build
    # context; otherwise BuildKit would serve even the "changed" addon from its cache.
    scratch = REPO / f".odoo-ai-bench-{uuid.uuid4().hex[:8]}"
    try:
        addons = {}
        for name, source in (("cold", args.addons), ("changed", args.changed_addons)):
            shutil.copytree(source, scratch / name)
            (scratch / name / f"bench-nonce-{uuid.uuid4().hex}.txt").write_text("bench\n")
            addons[name] = scratch / name
        cold, cold_cached, cold_steps, tag1 = build(stack, addons["cold"], args.odoo_src, no_cache=True)
        refs += [stack.image_ref(t, tag1) for t in TARGETS]
        warm, warm_cached, warm_steps, tag2 = build(stack, addons["changed"], args.odoo_src, no_cache=False)
        refs += [stack.image_ref(t, tag2) for t in TARGETS]
        sizes = {t: image_size(stack.image_ref(t, tag2)) for t in TARGETS}

        run([DOCKER, "login", "--username", registry.user, "--password-stdin", registry.host],
            env={"DOCKER_CONFIG": docker_config}, stdin=registry.password.encode())
        first = {t: push(stack.image_ref(t, tag2), docker_config) for t in TARGETS}
        again = {t: push(stack.image_ref(t, tag2), docker_config) for t in TARGETS}
        result = {
            "odoo_src": str(args.odoo_src),
            "cold_build_seconds": round(cold, 1), "cold_steps_cached": f"{cold_cached}/{cold_steps}",
            "addon_rebuild_seconds": round(warm, 1), "addon_rebuild_steps_cached": f"{warm_cached}/{warm_steps}",
            "cold_to_rebuild_ratio": round(cold / warm, 1) if warm else None,
            "rebuild_over_cold_percent": round(100 * warm / cold, 1) if cold else None,
            "image_size_mb": {t: round(s / 1e6, 1) for t, s in sizes.items()},
            "first_push": {t: {"seconds": round(s, 1), "layers_uploaded": p, "layers_existing": e}
                           for t, (s, p, e) in first.items()},
            "unchanged_push": {t: {"seconds": round(s, 1), "layers_uploaded": p, "layers_existing": e}
                               for t, (s, p, e) in again.items()},
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for ref in refs:
            subprocess.run([DOCKER, "image", "rm", ref], capture_output=True)  # noqa: S603
        registry.stop()
        subprocess.run(["rm", "-rf", str(work), docker_config])  # noqa: S603
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"cold build (--no-cache, both targets): {result['cold_build_seconds']} s")
        print(f"rebuild after an addon-only change:    {result['addon_rebuild_seconds']} s "
              f"({result['addon_rebuild_steps_cached']} steps cached) -> ratio {result['cold_to_rebuild_ratio']}x, "
              f"rebuild / cold = {result['rebuild_over_cold_percent']} % (target <= 5 %)")
        print("image sizes: " + ", ".join(f"{t} {mb} MB" for t, mb in result["image_size_mb"].items()))
        for label in ("first_push", "unchanged_push"):
            print(f"{label.replace('_', ' ')}: " + ", ".join(
                f"{t} {r['seconds']} s ({r['layers_uploaded']} layers uploaded, {r['layers_existing']} existing)"
                for t, r in result[label].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
