"""Start-up time of the CLI beside the time Python takes to import typer, in one run.

    uv run python bench/startup.py [--runs 10] [--json]

Each command runs --runs times (after one warm-up run each, so compiled bytecode is
there), interleaved so that a busy moment of the machine hits all of them alike; the
figure is the median wall time of the subprocess. Target (issues 11.6 and 14.4):
`odoo-ai --help` <= 1.5x `python -c "import typer"`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.5


def _script(name: str) -> list[str]:
    """The console script beside this Python (what `uv run odoo-ai` starts)."""
    path = Path(sys.executable).with_name(name)
    if path.exists():
        return [str(path)]
    module = {"odoo-ai": "odoo_ai", "odoo-test": "odoo_ai.cli:testing_entry"}[name]
    if ":" in module:
        mod, func = module.split(":")
        return [sys.executable, "-c", f"from {mod} import {func}; {func}()"]
    return [sys.executable, "-m", module]


def cases() -> list[tuple[str, list[str]]]:
    odoo_ai = _script("odoo-ai")
    return [
        ('python -c "import typer"', [sys.executable, "-c", "import typer"]),
        ("odoo-ai --help", [*odoo_ai, "--help"]),
        ("odoo-ai config show dev", [*odoo_ai, "--repo", str(REPO), "config", "show", "dev"]),
        ("odoo-ai test --help", [*odoo_ai, "test", "--help"]),
        ("odoo-test --help", [*_script("odoo-test"), "--help"]),
    ]


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,  # noqa: S603
                          timeout=120, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr.decode(errors='replace')}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    args = parser.parse_args(argv)

    # No colours, a fixed width, and no GitHub variables that would change what is printed.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "100", "ODOO_AI_REPO": str(REPO)})
    todo = cases()
    samples: dict[str, list[float]] = {name: [] for name, _ in todo}
    for _name, command in todo:
        timed(command, env)  # warm-up: bytecode compiled, files in the page cache
    for _ in range(args.runs):
        for name, command in todo:
            samples[name].append(timed(command, env))

    base = statistics.median(samples[todo[0][0]])
    rows = [{"command": name, "median_s": round(statistics.median(s), 4), "min_s": round(min(s), 4),
             "max_s": round(max(s), 4), "ratio": round(statistics.median(s) / base, 2)}
            for name, s in samples.items()]
    help_ratio = next(r["ratio"] for r in rows if r["command"] == "odoo-ai --help")
    verdict = {"target": f"odoo-ai --help <= {TARGET}x import typer", "ratio": help_ratio, "met": help_ratio <= TARGET}
    if args.json:
        print(json.dumps({"runs": args.runs, "python": sys.version.split()[0], "rows": rows, "verdict": verdict},
                         indent=2))
        return 0
    width = max(len(r["command"]) for r in rows)
    print(f"start-up, median of {args.runs} runs (wall time of the process), Python {sys.version.split()[0]}")
    print(f"{'command':<{width}}  {'median':>8}  {'min':>8}  {'max':>8}  {'x typer':>8}")
    for r in rows:
        print(f"{r['command']:<{width}}  {r['median_s']:>7.3f}s  {r['min_s']:>7.3f}s  {r['max_s']:>7.3f}s  "
              f"{r['ratio']:>7.2f}x")
    print(f"target: {verdict['target']}: {help_ratio:.2f}x, {'met' if verdict['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
