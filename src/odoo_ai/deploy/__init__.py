"""Deploys and rollbacks: the phase sequence and undo/recover (engine), the journal,
the typed release record, the settings, and the pure policy functions."""

from odoo_ai.deploy.engine import (
    FAULT_HOLD_ENV,
    NEXT_ENV,
    Deployer,
    DeployFailed,
    Interrupted,
    dry_run,
    read_history,
    rollback_target,
)
from odoo_ai.deploy.journal import JOURNAL, Deployment
from odoo_ai.deploy.policy import UpdatePlan, pick_rollback, plan_update, repository_of
from odoo_ai.deploy.record import Release
from odoo_ai.deploy.settings import DeploySettings

__all__ = [
    "FAULT_HOLD_ENV", "JOURNAL", "NEXT_ENV", "DeployFailed", "DeploySettings", "Deployer", "Deployment",
    "Interrupted", "Release", "UpdatePlan", "pick_rollback", "plan_update", "read_history", "repository_of",
    "rollback_target", "dry_run",
]
