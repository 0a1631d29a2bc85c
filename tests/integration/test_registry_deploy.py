"""Deploys pulling from a real registry (Debian docker-registry, htpasswd):
digests pinned as name@sha256, a tag missing from the registry refused, and a
rollback that works with the registry down, from the images on the host."""

from __future__ import annotations

import json
import subprocess

import httpx

from odoo_ai.config.envfile import read_rendered_env
from tests.integration.conftest import DOCKER, force_cleanup, free_port, leftovers


def test_deploy_from_registry_pins_digests_and_rolls_back_offline(reg_env) -> None:
    port = free_port()
    project = f"oait-dev-{reg_env.namespace.split('/')[0][-8:]}"  # the name write_env gives the stack
    state = reg_env.state_root("dev")
    reg_env.write_env("dev", "\n".join([
        f"ODOO_PUBLISHED_PORT={port}", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15", "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1",
        "ODOO_DB_NAME=opw_reg", "ODOO_UPDATE=standin_demo", "ODOO_DEPLOY_GATE_TIMEOUT=30", "",
    ]))
    secrets = {"ODOO_DB_PASSWORD": "reg-db", "ODOO_MASTER_PASSWORD": "reg-master"}
    try:
        first = reg_env.build("dev", "a1a1a1a1")
        second = reg_env.build("dev", "b2b2b2b2", addons="ok_v2")
        # Only the registry has them now: drop the local tags.
        for built in (first, second):
            for image in built["images"].values():
                subprocess.run([DOCKER, "image", "rm", image["ref"]], capture_output=True, check=True)

        deployed = reg_env.json("deploy", "dev", "--tag", first["tag"], extra_env=secrets)
        assert deployed["status"] == "success"
        for target in ("web", "script-runner"):
            assert deployed["digests"][target] == first["images"][target]["digest"]
            assert deployed["images"][target] == f"{reg_env.image}-{target}@{first['images'][target]['digest']}"
        rendered = read_rendered_env(state / ".env")
        assert rendered["ODOO_WEB_IMAGE"].endswith("@" + first["images"]["web"]["digest"])
        assert ":" + first["tag"] + "@" not in rendered["ODOO_WEB_IMAGE"]  # never tag@digest

        upgraded = reg_env.json("deploy", "dev", "--tag", second["tag"], extra_env=secrets)
        assert upgraded["status"] == "success" and upgraded["previous_tag"] == first["tag"]

        missing = reg_env.run("deploy", "dev", "--tag", "dev-c3c3c3c", "--json", check=False, extra_env=secrets)
        doc = json.loads(missing.stdout)
        assert missing.returncode == 1 and doc["failed_phase"] == "pull"
        assert "not in the registry nor on this host" in doc["error"]

        reg_env.registry.stop()
        try:
            back = reg_env.json("rollback", "dev", extra_env=secrets)
        finally:
            reg_env.registry.start()
        assert back["status"] == "success" and back["tag"] == first["tag"]
        # the rollback's images are pinned by digest and on the host: no registry needed at all
        assert any("images pinned by digest are already on the host: no pull" in n for n in back["release"]["notes"])
        assert httpx.get(f"http://127.0.0.1:{port}/web/health", timeout=5).status_code == 200
        # No registry credential was left on disk by the deploys.
        assert not list(state.glob("**/config.json"))
    finally:
        reg_env.run("down", "dev", "--purge", "--yes", check=False)
        force_cleanup(project, state)
        assert leftovers(project)["containers"] == []
