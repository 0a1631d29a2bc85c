"""The job timeouts of .github/workflows, derived from the CLI's own time limits.

    uv run python .github/scripts/budgets.py [--json]

Every external command the CLI runs has a timeout (the `timeout` of its planned Command,
read here from the planning functions themselves) and every wait has a setting (gate,
lock, drain). A job's budget is the sum over the longest path its commands can take, with
the default settings, plus a fixed allowance for the job's own steps (checkout, uv, the
small reads and writes over ssh). The workflows' `timeout-minutes` must be at least that
(tests/unit/test_workflow_budgets.py holds them to it): GitHub must never cancel a job the
CLI is still allowed to run. A job cancelled anyway (by hand, or a runner that died) leaves
a deploy journal that the next deploy or rollback of the env finishes or undoes first
(docs/deploy.md), so even then nothing is left half done.

Raising ODOO_DEPLOY_GATE_TIMEOUT, ODOO_DEPLOY_LOCK_TIMEOUT or ODOO_DEPLOY_UPDATE_RETRIES in an
env file lengthens the deploy's budget: raise the deploy jobs' timeout-minutes with it.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

ALLOWANCE = 15 * 60  # checkout, uv sync, env files, ssh round trips of small reads and writes


def _stack():
    from odoo_ai.config.stack import load_stack

    home = Path(tempfile.mkdtemp(prefix="odoo-ai-budget-"))
    return load_stack("dev", repo_root=REPO, home=home)


def _t(command: Any) -> float:
    if isinstance(command, list):
        return sum(_t(c) for c in command)
    return float(command.timeout or 0)


def deploy_phases() -> dict[str, float]:
    """Seconds per phase on the longest path of one `odoo-ai deploy` (module update that
    runs out of retries after a full snapshot, then the undo that restores it), after the
    recovery of an interrupted earlier deploy (the same undo)."""
    from odoo_ai.plan import deploy as d
    from odoo_ai.plan import images as i

    s = _stack()
    cfg = s.deploy
    env = s.dotenv_path
    restore = (_t(d.restore_db_into(s, "x", "y", env)) + _t(d.tools_start(s, env)) + _t(d.prepare_filestore(s, "x", "t"))
               + _t(d.pause(["c"])) + _t(d.swap_restored_db(s, "y", "z", env)) + _t(d.swap_filestore(s, "t"))
               + _t(d.unpause(["c"])) + _t(d.remove_container("t")) + _t(d.drop_db(s, "z", env)))
    undo = (_t(d.update_containers(s)) + _t(d.remove_container("c")) + restore + _t(d.restart_web(s))
            + _t(d.proxy_reload(s, env)))
    update = (1 + cfg.update_retries) * _t(d.module_update(s, env, install=[], update="all", name="n",
                                                             deploy_id="1")) + 2 * cfg.update_retries
    lock = cfg.lock_timeout + float(getattr(cfg, "lock_wait", 0) or 0)
    return {
        "recover an interrupted deploy (undo with restore)": undo,
        "lock": lock,
        "pull (login + compose pull)": _t(i.login("docker", "h", "u", "p")) + _t(d.pull(s, env)),
        "inspect": 2 * _t(d.image_inspect("r")) + _t(d.read_addons_hash("r")),
        "services": _t(d.ensure_services(s, env)) + _t(d.db_state(s, ["base"], env)),
        "snapshot": _t(d.db_now(s, env)) + _t(d.snapshot_db(s, "x", env)) + _t(d.snapshot_filestore(s, "x", env)),
        f"update ({1 + cfg.update_retries} attempts)": update,
        "start": _t(d.proxy_reload(s, env)) + _t(d.start_web_beside(s, env, 2)),
        "gate": cfg.gate_timeout + _t(d.gate_probe("c", "db")) + _t(d.gate_modules(s, ["base"], env)),
        "switch": _t(d.proxy_switch("p")),
        # the config hashes are read at the same time (Host.together), as are the wake and the wait
        "drain": _t(d.proxy_workers_gone("p", ["1"], cfg.drain_seconds)) + _t(d.signal_container("c"))
        + max(_t(d.wake_workers("c")), _t(d.wait_container("c", 30))) + _t(d.remove_container("c")),
        "converge": max(_t(d.proxy_reload(s, env)), _t(d.project_containers(s))) + _t(d.converge(s)),
        "undo of the failed deploy (restore)": undo,
        "snapshot pruning": _t(d.remove_snapshots(s, ["x"], env)),
    }


def build_phases() -> dict[str, float]:
    """Seconds per step of the build job: both targets, the key scan, the tests, the push."""
    from odoo_ai.plan import images as i
    from odoo_ai.plan.build import TARGETS, BuildInputs, build_command

    s = _stack()
    inputs = BuildInputs(sha="0" * 40)
    tests = 3600.0 + 300 + 120  # test run --timeout (default), the test database, the cleanup
    return {
        "build (both targets)": sum(_t(build_command(s, t, inputs, "docker")) for t in TARGETS),
        "secret scan (save + history)": _t(i.save("docker", ["r"], "o")) + 2 * _t(i.history("docker", "r")),
        "test run": tests,
        "push (login + both images)": _t(i.login("docker", "h", "u", "p")) + 2 * _t(i.push("docker", "r")),
    }


def housekeeping_phases() -> dict[str, float]:
    from odoo_ai.plan import deploy as d
    from odoo_ai.plan import housekeeping as h
    from odoo_ai.plan import images as i

    s = _stack()
    return {
        "local images (list, inspect, remove ~20)": 3 * 60 + 20 * _t(i.remove("docker", "r")) / 4,
        "builder cache": _t(h.builder_prune("docker", 24)),
        "per env: snapshots + log (2 envs)": 2 * (_t(d.remove_snapshots(s, ["x"], s.dotenv_path))
                                                  + _t(h.rotate_log(s, keep=10, max_bytes=1))),
    }


def minutes(phases: dict[str, float]) -> int:
    """The job timeout: the phases, the allowance, rounded up to 5 minutes."""
    return int(math.ceil((sum(phases.values()) + ALLOWANCE) / 300.0) * 5)


def budgets() -> dict[str, dict[str, Any]]:
    out = {}
    for job, phases in (("build", build_phases()), ("deploy", deploy_phases()),
                        ("housekeeping", housekeeping_phases())):
        out[job] = {"phases": phases, "allowance": ALLOWANCE, "minutes": minutes(phases)}
    return out


def main(argv: list[str]) -> int:
    result = budgets()
    if argv[:1] == ["--json"]:
        print(json.dumps(result, indent=2))
        return 0
    for job, data in result.items():
        print(f"{job}: timeout-minutes >= {data['minutes']}")
        for name, seconds in data["phases"].items():
            print(f"  {seconds / 60:8.1f} min  {name}")
        print(f"  {data['allowance'] / 60:8.1f} min  the job's own steps")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
