"""Benchmark of the image pipeline (stand-in Odoo unless --odoo-src is given), side by side
in one run:

- cold build (on a base image of its own, the base plus a layer with a nonce file: no step
  comes from the layer cache; the apt/pip cache MOUNTS stay warm, as on a CI runner that keeps them),
  the build odoo-ai runs (both targets), and the same build again with nothing changed;
- rebuild after an addon-only change (a custom addon edited), and its ratio to the cold build;
- rebuild after an Odoo source change that leaves requirements.txt alone (a copy of the
  source with one .py file edited), its ratio, and whether the dependency layers (the
  venv's pip install) were reused;
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
from odoo_ai.plan.build import TARGETS, build_commands, image_tag  # noqa: E402

DOCKER = os.environ.get("ODOO_AI_DOCKER", "/usr/bin/docker")
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
BASE_IMAGE = os.environ.get("ODOO_AI_BASE_IMAGE", "odoo-ai-test/debian:bookworm")


def run(argv: list[str], env: dict[str, str] | None = None, stdin: bytes | None = None) -> tuple[float, str]:
    started = time.monotonic()
    proc = subprocess.run(argv, env={**os.environ, **(env or {})}, input=stdin, capture_output=True,  # noqa: S603
                          timeout=3600)
    seconds = time.monotonic() - started
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{output[-3000:]}")
    return seconds, output


def build(stack, addons: Path, odoo_src: Path, base_image: str) -> dict:
    """Both targets as `odoo-ai build` builds them: seconds, steps cached/total, whether
    the venv's pip install step came from the cache, the tag."""
    inputs = build_inputs(stack, sha=f"{uuid.uuid4().hex[:7]}", odoo_src=odoo_src, addons_dir=addons,
                          base_image=base_image,
                          ca_file=Path(CA_FILE) if os.path.exists(CA_FILE) else None)
    total, cached, steps, pip_cached = 0.0, 0, 0, None
    for command in build_commands(stack, inputs, DOCKER):
        argv = command.argv[:2] + ["--progress", "plain"] + command.argv[2:]
        seconds, output = run(argv, env=command.env)
        total += seconds
        names = dict(re.findall(r"^#(\d+) (\[(?!internal).*)$", output, re.M))
        hits = set(re.findall(r"^#(\d+) CACHED$", output, re.M))
        cached += len(set(names) & hits)
        steps += len(names)
        for number, name in names.items():
            if "pip install" in name and "[builder" in name:
                pip_cached = number in hits if pip_cached is None else pip_cached and number in hits
    return {"seconds": total, "cached": cached, "steps": steps, "pip_cached": pip_cached,
            "tag": image_tag(stack.env, inputs)}


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
        # An Odoo source change that leaves requirements.txt alone: a copy with one .py edited.
        changed_src = scratch / "odoo-src"
        shutil.copytree(args.odoo_src, changed_src, symlinks=True)
        init = changed_src / "odoo" / "__init__.py"
        init.write_text(init.read_text() + f"\n# bench {uuid.uuid4().hex}\n")
        runs = {}
        # cold: a base image of its own (the base plus a layer holding a nonce file: BuildKit
        # keys on layer content, a new label alone would not do) gives every step a new cache
        # key. Not --no-cache: Docker 20.10's BuildKit panics when a --no-cache build shares
        # steps with a concurrent build (moby/buildkit#2303).
        base = f"odoo-ai-bench/base:{uuid.uuid4().hex[:12]}"
        run([DOCKER, "build", "--quiet", "--tag", base, "-"], env={"DOCKER_BUILDKIT": "1"},
            stdin=f"FROM {BASE_IMAGE}\nRUN echo {uuid.uuid4().hex} > /etc/odoo-ai-bench-nonce\n".encode())
        refs.append(base)
        for name, addon_dir, src in (("cold", addons["cold"], args.odoo_src), ("same", addons["cold"], args.odoo_src),
                                     ("addon", addons["changed"], args.odoo_src),
                                     ("source", addons["changed"], changed_src)):
            runs[name] = build(stack, addon_dir, src, base)
            refs[:0] = [stack.image_ref(t, runs[name]["tag"]) for t in TARGETS]  # removed before the base
        tag2 = runs["addon"]["tag"]
        sizes = {t: image_size(stack.image_ref(t, tag2)) for t in TARGETS}

        run([DOCKER, "login", "--username", registry.user, "--password-stdin", registry.host],
            env={"DOCKER_CONFIG": docker_config}, stdin=registry.password.encode())
        first = {t: push(stack.image_ref(t, tag2), docker_config) for t in TARGETS}
        again = {t: push(stack.image_ref(t, tag2), docker_config) for t in TARGETS}
        cold = runs["cold"]["seconds"]

        def figures(r: dict) -> dict:
            return {"seconds": round(r["seconds"], 1), "steps_cached": f"{r['cached']}/{r['steps']}",
                    "over_cold_percent": round(100 * r["seconds"] / cold, 1) if cold else None,
                    "pip_install_cached": r["pip_cached"]}

        result = {
            "odoo_src": str(args.odoo_src),
            "invocations_per_build": len(build_commands(stack, build_inputs(
                stack, sha="0000000", odoo_src=args.odoo_src, addons_dir=addons["cold"]), DOCKER)),
            "cold_build": figures(runs["cold"]),
            "unchanged_rebuild": figures(runs["same"]),
            "addon_rebuild": figures(runs["addon"]),
            "source_rebuild": figures(runs["source"]),
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
        print(f"odoo source: {result['odoo_src']} ({result['invocations_per_build']} docker build invocation(s) "
              "per build)")
        print(f"{'':44} {'seconds':>8} {'/ cold':>8} {'steps cached':>13} {'pip layer':>10}")
        for key, label in (("cold_build", "cold build (no step cached, both targets)"),
                           ("unchanged_rebuild", "rebuild, nothing changed"),
                           ("addon_rebuild", "rebuild after an addon-only change"),
                           ("source_rebuild", "rebuild after an Odoo source change")):
            r = result[key]
            pip = {True: "reused", False: "rebuilt", None: "-"}[r["pip_install_cached"]]
            print(f"{label:44} {r['seconds']:>8} {str(r['over_cold_percent']) + ' %':>8} {r['steps_cached']:>13} "
                  f"{pip:>10}")
        print("targets: addon-only rebuild <= 5 % of cold; a source change reuses the pip layer")
        print("image sizes: " + ", ".join(f"{t} {mb} MB" for t, mb in result["image_size_mb"].items()))
        for label in ("first_push", "unchanged_push"):
            print(f"{label.replace('_', ' ')}: " + ", ".join(
                f"{t} {r['seconds']} s ({r['layers_uploaded']} layers uploaded, {r['layers_existing']} existing)"
                for t, r in result[label].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
