"""ODOO_ENGINE=swarm: the same Compose files rendered into a Docker Swarm stack (render.py,
pure), the docker commands of a stack (plan.py, pure), deploys and rollbacks with the
compose engine's snapshot/restore/record (engine.py), and status/logs/down (stack.py)."""
