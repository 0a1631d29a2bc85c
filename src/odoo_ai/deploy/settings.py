"""Deploy settings (ODOO_DEPLOY_* of docker/config/<env>.env), with command-line overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from odoo_ai.config.stack import StackConfig, parse_number
from odoo_ai.errors import ConfigError


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

    @classmethod
    def from_stack(cls, stack: StackConfig, **overrides: Any) -> DeploySettings:
        v = stack.values
        source = str(stack.env_file or f"{stack.env} defaults")

        def number(key: str, default: float, low: float, high: float) -> float:
            raw = v.get(key)
            return default if not raw else parse_number(raw, key=key, source=source, low=low, high=high)

        policy = v.get("ODOO_DEPLOY_WEB_DURING_UPDATE") or "keep"
        if policy not in ("keep", "stop"):
            raise ConfigError(f"{source}: ODOO_DEPLOY_WEB_DURING_UPDATE={policy!r}: 'keep' or 'stop'")
        settings = cls(
            gate_timeout=number("ODOO_DEPLOY_GATE_TIMEOUT", 180, 1, 7200),
            gate_interval=number("ODOO_DEPLOY_GATE_INTERVAL", 1.0, 0.1, 60),
            drain_seconds=number("ODOO_DEPLOY_DRAIN_SECONDS", 2.0, 0, 600),
            web_during_update=policy,
            update_retries=int(number("ODOO_DEPLOY_UPDATE_RETRIES", 1, 0, 5)),
            lock_timeout=number("ODOO_DEPLOY_LOCK_TIMEOUT", 30, 0, 86400),
            keep_snapshots=int(number("ODOO_DEPLOY_KEEP_SNAPSHOTS", 3, 1, 1000)),
        )
        return DeploySettings(**{**settings.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
