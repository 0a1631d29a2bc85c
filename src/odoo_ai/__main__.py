from odoo_ai.cli import entry

entry()
