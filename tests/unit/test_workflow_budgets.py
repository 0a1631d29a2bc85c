"""Job timeouts derived from the CLI's own time limits (.github/scripts/budgets.py): every
workflow timeout covers its job's budget, the runbook shows the same figures, and the
deploy's budget covers what the CLI allows a module update."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"


@pytest.fixture(scope="module")
def budgets():
    spec = importlib.util.spec_from_file_location("gha_budgets", REPO / ".github" / "scripts" / "budgets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.budgets()


def timeouts(name: str) -> dict[str, int]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    return {job_id: job["timeout-minutes"] for job_id, job in doc["jobs"].items()}


def test_job_timeouts_cover_the_clis_budgets(budgets) -> None:
    deploy = timeouts("deploy.yml")
    housekeeping = timeouts("prune-images.yml")
    for job_id, budget in (("build", "build"), ("deploy_dev", "deploy"), ("deploy_testing", "deploy")):
        assert deploy[job_id] >= budgets[budget]["minutes"], (job_id, deploy[job_id], budgets[budget]["minutes"])
        # derived, not padded at random: within 30 minutes of the budget
        assert deploy[job_id] <= budgets[budget]["minutes"] + 30, (job_id, deploy[job_id])
    assert housekeeping["housekeeping"] >= budgets["housekeeping"]["minutes"]


def test_the_deploy_budget_holds_the_update_and_the_undo(budgets) -> None:
    phases = budgets["deploy"]["phases"]
    from odoo_ai.config.settings import DeployConfig

    attempts = 1 + DeployConfig().update_retries
    update = next(v for k, v in phases.items() if k.startswith("update"))
    assert update >= attempts * 7200  # odoo-bin -u may take 2 h per attempt
    assert phases["undo of the failed deploy (restore)"] > 3600  # pg_restore alone may take an hour
    assert phases["gate"] >= DeployConfig().gate_timeout


def test_the_runbook_shows_the_derived_figures(budgets) -> None:
    doc = (REPO / "docs" / "operations.md").read_text()
    table = doc[doc.index("## Job timeouts and cancelled jobs"):doc.index("## Trust boundary")]
    deploy = timeouts("deploy.yml")
    rows = {"build": ("`build`", deploy["build"]), "deploy": ("`deploy_dev`, `deploy_testing`", deploy["deploy_dev"]),
            "housekeeping": ("`housekeeping`", timeouts("prune-images.yml")["housekeeping"])}
    for job, (label, minutes) in rows.items():
        total = sum(budgets[job]["phases"].values()) / 60 + budgets[job]["allowance"] / 60
        match = re.search(rf"^\| {re.escape(label)} \| ([0-9.]+) min \| (\d+) \|", table, re.M)
        assert match, f"no row for {label}"
        assert abs(float(match.group(1)) - total) < 0.1 and int(match.group(2)) == minutes, (label, match.groups())
