from odoo_ai.runners.base import Command, Result, Runner
from odoo_ai.runners.dry import DryRunner
from odoo_ai.runners.local import LocalRunner

__all__ = ["Command", "DryRunner", "LocalRunner", "Result", "Runner"]
