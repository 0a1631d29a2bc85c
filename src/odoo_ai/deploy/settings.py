"""Deploy settings: the env's typed ODOO_DEPLOY_* (validated by load_stack, see
config/settings.py) with command-line overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from odoo_ai.config.stack import StackConfig


@dataclass(frozen=True)
class DeploySettings:
    gate_timeout: float = 180.0
    gate_interval: float = 1.0
    drain_seconds: float = 2.0
    web_during_update: str = "keep"  # keep: old web serves during -u; stop: downtime, no mixed schema
    update_retries: int = 1
    lock_timeout: float = 30.0
    stop_grace: int = 30
    keep_snapshots: int = 3  # the last N snapshots taken by successful releases stay (rollback --restore-db)
    lock_wait: float = 60.0  # an update blocked this long by the live web's locks is stopped and retried

    @classmethod
    def from_stack(cls, stack: StackConfig, **overrides: Any) -> DeploySettings:
        return cls(**{**stack.deploy.model_dump(), **{k: v for k, v in overrides.items() if v is not None}})
