"""`deploy/rollback --dry-run` of a swarm env: the real SwarmDeployer against the dry
connector (odoo_ai.dryhost.DryHost), which prints every command and write and runs none.
What swarm would answer is assumed and said so (a manager, the db task healthy, the job
completing with 0, every task running the new image); what can be read is read for real
(`docker info`, the images, and `docker compose config` of the candidate .env, which the
dry run holds in memory and hands to Compose in a private temporary file)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from odoo_ai.config.stack import StackConfig
from odoo_ai.deploy.settings import DeploySettings
from odoo_ai.dryhost import DryHost
from odoo_ai.hosts import Host
from odoo_ai.runners.base import Command, Result

TASK_IMAGE = "<the stack file's image>"


class SwarmDryHost(DryHost):
    def _real(self, command: Command) -> Result:
        result = self.inner.run(command, capture=True)
        self._read(f"{command.purpose}" + ("" if result.ok else f" (failed: {result.tail(1)})"))
        return result

    def _answer_swarm_state(self, command: Command) -> Result:
        result = self._real(command)
        if result.ok and result.stdout.split() == ["active", "true"]:
            return result
        self._assume("the engine is an active swarm manager")
        return Result(0, "active true\n")

    def _answer_stack_config(self, command: Command) -> Result:
        argv = list(command.argv)
        at = argv.index("--env-file") + 1
        text = self.files.get(Path(argv[at]))
        if text is None:
            return self._real(command)
        with tempfile.NamedTemporaryFile("w", suffix=".env") as handle:  # 0600 by mkstemp
            handle.write(text)
            handle.flush()
            argv[at] = handle.name
            return self._real(Command(argv, env=command.env, timeout=command.timeout, purpose=command.purpose))

    def _answer_task_containers(self, command: Command) -> Result:
        self._assume(f"{command.argv[5].rsplit('=', 1)[-1]} has a running task on this node")
        return Result(0, "<db-task>\n")

    def _answer_container_health(self, command: Command) -> Result:
        return Result(0, "running healthy\n")

    def _answer_network_exists(self, command: Command) -> Result:
        return Result(0, "<network>\n")

    def _answer_job_tasks(self, command: Command) -> Result:
        return Result(0, "<job-task>\n")

    def _answer_job_state(self, command: Command) -> Result:
        self._assume("the module update job completes with exit 0")
        return Result(0, "complete|0|\n")

    def _answer_service_update_state(self, command: Command) -> Result:
        self._assume(f"swarm's update of {command.argv[-1]} completes")
        return Result(0, f"completed||1|{TASK_IMAGE}\n")

    def _answer_service_tasks(self, command: Command) -> Result:
        return Result(0, f"{TASK_IMAGE}\tRunning 1 second ago\t\n")

    def _answer_running_tasks(self, command: Command) -> Result:
        return Result(0, "<web-task>\n")

    def _answer_local_task_containers(self, command: Command) -> Result:
        return Result(0, "<web-container>\t<web-task>\n")


def dry_run(stack: StackConfig, host: Host, tag: str, *, settings: DeploySettings, environ: Mapping[str, str],
            out: Any = None, image_lookup: Callable[[str], bool | None] | None = None,
            progress: Callable[[str], None] | None = None, **run_args: Any) -> dict[str, Any]:
    from odoo_ai.swarm.engine import SwarmDeployer

    dry = SwarmDryHost(host, out=out, image_lookup=image_lookup)
    result = SwarmDeployer(stack, dry, settings=settings, environ=environ, progress=progress).run(tag, **run_args)
    return {**result, "status": "dry-run", "assumptions": dry.assumptions, "reads": dry.reads}
