"""`test run`: a second run of an unchanged module set (its database cloned from the template
of the dependencies that the first run built) beside the first, and beside `--no-cache`.

    uv run python bench/testrun.py [--runs 1] [--json] [--no-real]
                                   [--image REF --modules MODS [--addons DIR]]

Cases (each in an env of its own: a new project, HOME and TMPDIR, so the first run finds no
template and no templates server; everything is removed afterwards):
  - standin: the stand-in Odoo, scenario `tests_cached` (scripts/build-test-images.sh
    --scenario tests_cached): `standin_cached_mod` depends on `standin_cached_dep`, which
    takes 5 s to install (the stand-in installs `base` in no time; real Odoo takes ~20 s);
  - real: REAL Odoo 18.0 (the image `odoo-ai-test/odoo-script-runner:real-tests`, built from
    the Odoo source by `scripts/build-test-images.sh --real`, i.e. `odoo-ai build --odoo-src`),
    `oai_tests_pass` (depends on base), when the image exists;
  - custom: `--image REF --modules MODS` (e.g. an `odoo-ai build ENV --odoo-src DIR` image).

Per case: `first` (cold: builds the template, then clones it), `second` (the same module set:
clones it), `no-cache` (a fresh database, everything installed by the run), each the median
wall time of the CLI process over --runs envs. Target (issue 15.5b): second <= 0.5 x first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKER = os.environ.get("ODOO_AI_DOCKER", "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker")
DB_IMAGE = "odoo-ai-test/postgres:15"
TARGET = 0.5
LABEL = "com.docker.compose.project"
STANDIN = ("standin", "odoo-ai-test/odoo-script-runner:standin-tests_cached", "standin_cached_mod", None)
REAL = ("real", "odoo-ai-test/odoo-script-runner:real-tests", "oai_tests_pass",
        REPO / "tests/fixtures/real-addons/tests")


def _odoo_ai() -> list[str]:
    path = Path(sys.executable).with_name("odoo-ai")
    return [str(path)] if path.exists() else [sys.executable, "-m", "odoo_ai"]


def image_exists(ref: str) -> bool:
    return subprocess.run([DOCKER, "image", "inspect", ref], capture_output=True, check=False).returncode == 0


class Env:
    """A throw-away env: config dir, HOME (the template cache) and TMPDIR of its own."""

    def __init__(self, root: Path):
        self.root = root
        self.project = f"oaibench-{uuid.uuid4().hex[:8]}"
        for name in ("config", "home", "tmp"):
            (root / name).mkdir(parents=True)
        (root / "config" / "dev.env").write_text(
            f"ODOO_PROJECT_NAME={self.project}\nODOO_STATE_ROOT={root / 'state'}\n"
            f"ODOO_IMAGE=odoo-ai-test/odoo\nODOO_DB_IMAGE={DB_IMAGE}\n")
        self.environ = {**{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "XDG_CACHE"))},
                        "HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "ODOO_AI_DOCKER": DOCKER,
                        "NO_COLOR": "1"}

    def run(self, image: str, modules: str, addons: Path | None, *extra: str) -> tuple[float, dict]:
        argv = [*_odoo_ai(), "--repo", str(REPO), "--config-dir", str(self.root / "config"), "test", "run", "dev",
                "--image", image, "--modules", modules, "--json", *extra]
        if addons is not None:
            argv += ["--addons", str(addons)]
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.environ, timeout=3600, check=False)  # noqa: S603
        seconds = time.perf_counter() - started
        try:
            doc = json.loads(proc.stdout)
        except json.JSONDecodeError:
            doc = {}
        if proc.returncode != 0 or doc.get("status") != "passed":
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        return seconds, doc

    def remove(self) -> None:
        """Every container, network and volume of the env's test projects and templates server."""
        prefix = f"{self.project}-test-"
        for kind, listing in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"]),
                              ("volume", ["volume", "ls", "-q"])):
            out = subprocess.run([DOCKER, *listing, "--filter", f"label={LABEL}", "--format",
                                  f'{{{{.ID}}}} {{{{.Label "{LABEL}"}}}}' if kind != "volume" else
                                  f'{{{{.Name}}}} {{{{.Label "{LABEL}"}}}}'],
                                 capture_output=True, text=True, check=False).stdout
            ids = [line.split()[0] for line in out.splitlines() if len(line.split()) == 2
                   and line.split()[1].startswith(prefix)]
            if ids:
                rm = ["rm", "-f", "-v"] if kind == "container" else [kind, "rm"]
                subprocess.run([DOCKER, *rm, *ids], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def bench_case(name: str, image: str, modules: str, addons: Path | None, runs: int) -> dict:
    first, second, fresh = [], [], []
    detail: dict = {}
    for _ in range(runs):
        env = Env(Path(tempfile.mkdtemp(prefix="odoo-ai-bench-testrun-")))
        try:
            seconds, doc = env.run(image, modules, addons)
            template = doc["run"]["template"]
            if not (template["used"] and template["created"]):
                raise SystemExit(f"{name}: the first run did not build a template: {template}")
            first.append(seconds)
            detail["build_s"] = template["build_seconds"]
            detail["modules"] = template["modules"]
            seconds, doc = env.run(image, modules, addons)
            template = doc["run"]["template"]
            if not template["used"] or template["created"]:
                raise SystemExit(f"{name}: the second run did not clone the template: {template}")
            second.append(seconds)
            detail["clone_s"] = template["clone_seconds"]
            seconds, doc = env.run(image, modules, addons, "--no-cache")
            fresh.append(seconds)
        finally:
            env.remove()
    row = {"case": name, "image": image, "modules": modules,
           "first_s": round(statistics.median(first), 2), "second_s": round(statistics.median(second), 2),
           "no_cache_s": round(statistics.median(fresh), 2), **detail}
    row["second_over_first"] = round(row["second_s"] / row["first_s"], 2)
    row["second_over_no_cache"] = round(row["second_s"] / row["no_cache_s"], 2)
    row["target_met"] = row["second_over_first"] <= TARGET
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="envs per case (the median is printed)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    parser.add_argument("--no-real", action="store_true", help="skip the real Odoo 18 case")
    parser.add_argument("--image", help="a custom case: this script-runner image ...")
    parser.add_argument("--modules", help="... testing these modules")
    parser.add_argument("--addons", type=Path, help="... (the addons dir, for traceback paths)")
    args = parser.parse_args(argv)

    cases = []
    if image_exists(STANDIN[1]):
        cases.append(STANDIN)
    else:
        print(f"skipped standin: no {STANDIN[1]} (scripts/build-test-images.sh --scenario tests_cached)",
              file=sys.stderr)
    if not args.no_real:
        if image_exists(REAL[1]):
            cases.append(REAL)
        else:
            print(f"skipped real: no {REAL[1]} (scripts/build-test-images.sh --real)", file=sys.stderr)
    if args.image:
        if not args.modules:
            parser.error("--image needs --modules")
        cases.append(("custom", args.image, args.modules, args.addons))
    if not cases:
        raise SystemExit("no case to run")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = [bench_case(name, image, modules, addons, args.runs) for name, image, modules, addons in cases]
    if args.json:
        print(json.dumps({"target": TARGET, "cpus": os.cpu_count(), "load_before": load, "rows": rows}, indent=2))
    else:
        print(f"test run, first vs second run of the same module set ({os.cpu_count()} CPUs, load "
              f"{load:.1f} before; median of {args.runs} env(s) per case; wall time of the CLI)")
        print(f"{'case':<8} {'first (builds)':>15} {'second (clones)':>16} {'second/first':>13} "
              f"{'--no-cache':>11} {'second/no-cache':>16}  template")
        for r in rows:
            print(f"{r['case']:<8} {r['first_s']:>14.2f}s {r['second_s']:>15.2f}s {r['second_over_first']:>12.2f}x "
                  f"{r['no_cache_s']:>10.2f}s {r['second_over_no_cache']:>15.2f}x  -i {','.join(r['modules'])}: "
                  f"built in {r['build_s']:.1f}s, cloned in {r['clone_s']:.2f}s")
        verdict = all(r["target_met"] for r in rows)
        ratios = ", ".join(f"{r['case']} {r['second_over_first']:.2f}x" for r in rows)
        print(f"target second <= {TARGET}x first: {'met' if verdict else 'NOT met'} ({ratios})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
