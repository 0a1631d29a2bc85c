"""The swarm engine's pure parts: the stack file rendered from `docker compose config`'s
JSON and the settings, the update job's spec, the translation of the compose engine's
db/tools commands, and the ODOO_ENGINE / ODOO_SWARM_* settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from odoo_ai.config.stack import load_stack
from odoo_ai.errors import ConfigError
from odoo_ai.swarm import plan as splan
from odoo_ai.swarm.render import env_file_text, job_spec, render_stack, volume_mount

ODOO_ENV = {
    "ODOO_DB_HOST": "db", "ODOO_DB_PORT": "5432", "ODOO_DB_USER": "odoo", "ODOO_DB_PASSWORD": "s3cr$$t",
    "ODOO_DB_NAME": "opw_dev", "ODOO_LOGFILE": "/volumes/logs/odoo.log", "ODOO_MAX_CRON_THREADS": "2",
    "ODOO_WORKERS": "2",
}


def compose_config(repo: Path, state: Path) -> dict:
    """What `docker compose --profile tools config --format json` answers for the dev overlay."""
    data = {"type": "bind", "source": str(state / "filestore"), "target": "/volumes/data",
            "bind": {"create_host_path": True}}
    logs = {"type": "bind", "source": str(state / "logs"), "target": "/volumes/logs", "bind": {}}
    return {
        "name": "opw-dev",
        "networks": {"default": {"name": "opw-dev_default", "ipam": {}}},
        "services": {
            "db": {"image": "postgres:16", "restart": "unless-stopped", "environment": {"POSTGRES_USER": "odoo"},
                   "healthcheck": {"test": ["CMD-SHELL", "pg_isready"], "interval": "2s"},
                   "volumes": [{"type": "bind", "source": str(state / "postgres"), "target": "/var/lib/postgresql/data"},
                               {"type": "bind", "source": str(state / "snapshots"), "target": "/snapshots"}],
                   "networks": {"default": None}},
            "web": {"image": "reg/odoo-web@sha256:" + "a" * 64, "restart": "unless-stopped", "command": None,
                    "environment": dict(ODOO_ENV), "depends_on": {"db": {"condition": "service_healthy"}},
                    "volumes": [data, logs], "networks": {"default": None}},
            "script-runner": {"image": "reg/odoo-script-runner@sha256:" + "b" * 64, "profiles": ["tools"],
                              "environment": {**ODOO_ENV, "ODOO_WORKERS": "0"}, "volumes": [data, logs]},
            "proxy": {"image": "nginx:1.27", "networks": {"default": None},
                      "ports": [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 80, "published": "8069",
                                 "protocol": "tcp"}],
                      "volumes": [{"type": "bind", "source": str(repo / "docker/proxy/odoo.conf"),
                                   "target": "/etc/nginx/conf.d/default.conf", "read_only": True},
                                  {"type": "bind", "source": str(state / "proxy"), "target": "/etc/nginx/odoo-ai"}]},
        },
    }


@pytest.fixture
def stack_for(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / "environments").mkdir(parents=True)
    (repo / "docker-compose.yml").write_text("services: {}\n")
    (repo / "environments" / "dev.yaml").write_text("services: {}\n")
    (repo / "docker" / "config").mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()

    def make(*lines: str):
        (repo / "docker" / "config" / "dev.env").write_text("\n".join(
            [f"ODOO_STATE_ROOT={tmp_path / 'state'}", "ODOO_ENGINE=swarm", *lines, ""]))
        return load_stack("dev", repo_root=repo, home=home, environ={})

    make.repo = repo  # type: ignore[attr-defined]
    make.state = tmp_path / "state"  # type: ignore[attr-defined]
    return make


def render(stack_for, *lines: str, **kwargs) -> dict:
    stack = stack_for(*lines)
    config = compose_config(stack_for.repo, stack_for.state)
    conf = str(stack_for.repo / "docker/proxy/odoo.conf")
    doc = render_stack(config, stack, file_hashes={conf: "f" * 64}, **kwargs)
    assert yaml.safe_load(yaml.safe_dump(doc)) == doc  # plain data, as written to stack.yml
    return doc


def test_web_runs_n_replicas_without_crons_and_rolls_start_first_behind_the_readiness_probe(stack_for) -> None:
    doc = render(stack_for, "ODOO_SWARM_WEB_REPLICAS=3", start_period=20, gate_interval=1)
    web = doc["services"]["web"]
    assert web["deploy"]["replicas"] == 3
    assert web["deploy"]["update_config"]["order"] == "start-first"
    assert web["deploy"]["update_config"]["parallelism"] == 1
    assert web["deploy"]["update_config"]["failure_action"] == "pause"  # odoo-ai reverts, with the data
    assert web["deploy"]["endpoint_mode"] == "dnsrr"  # nginx resolves the healthy tasks and retries the next
    assert web["environment"]["ODOO_MAX_CRON_THREADS"] == "0"
    assert web["environment"]["ODOO_LOGFILE"] == ""  # docker service logs
    test = web["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python3", "-c"] and "/web/login?db=" in test[3] and test[-1] == "opw_dev"
    assert web["healthcheck"]["start_period"] == "20s"
    assert "depends_on" not in web and "restart" not in web


def test_a_leaving_web_task_serves_on_while_nginx_may_still_send_to_it(stack_for) -> None:
    doc = render(stack_for, drain_seconds=1.5)
    web = doc["services"]["web"]
    assert web["entrypoint"][:2] == ["/bin/sh", "-c"] and "odoo-entrypoint" in web["entrypoint"][2]
    assert web["command"] == ["/odoo/odoo-bin"]  # an entrypoint override resets the image's CMD
    assert float(web["environment"]["ODOO_AI_DRAIN"]) > 2  # longer than nginx keeps a resolved address
    assert "$$" in web["entrypoint"][2]  # escaped for the stack file's interpolation
    assert "entrypoint" not in doc["services"]["cron"]


def test_one_cron_service_with_no_http_never_two_at_once(stack_for) -> None:
    doc = render(stack_for, "ODOO_MAX_CRON_THREADS=2")
    cron = doc["services"]["cron"]
    assert cron["command"] == ["--no-http"]
    assert cron["deploy"]["replicas"] == 1
    assert cron["deploy"]["update_config"]["order"] == "stop-first"
    assert cron["environment"]["ODOO_MAX_CRON_THREADS"] == "2" and cron["environment"]["ODOO_WORKERS"] == "0"
    assert cron["image"] == doc["services"]["web"]["image"]
    assert cron["healthcheck"] == {"disable": True} and "ports" not in cron


def test_secrets_stay_escaped_for_the_stack_files_interpolation(stack_for) -> None:
    doc = render(stack_for)
    assert doc["services"]["web"]["environment"]["ODOO_DB_PASSWORD"] == "s3cr$$t"
    assert "$" not in json.dumps(doc["services"]["web"]["healthcheck"]).replace("$$", "")


def test_the_filestore_is_a_volume_of_the_settings_driver(stack_for) -> None:
    doc = render(stack_for)
    web = doc["services"]["web"]
    assert {"type": "volume", "source": "filestore", "target": "/volumes/data"} in web["volumes"]
    assert all(v["target"] != "/volumes/logs" for v in web["volumes"])
    assert doc["volumes"]["filestore"] == {"driver": "local", "driver_opts": {
        "type": "none", "o": "bind", "device": str(stack_for.state / "filestore")}}
    nfs = render(stack_for, "ODOO_SWARM_FILESTORE_OPTIONS='type=nfs o=addr=10.0.0.5,rw,nfsvers=4 device=:/srv/fs'")
    assert nfs["volumes"]["filestore"]["driver_opts"] == {"type": "nfs", "o": "addr=10.0.0.5,rw,nfsvers=4",
                                                          "device": ":/srv/fs"}


def test_the_proxy_config_becomes_a_swarm_config_named_by_content_and_keeps_routing_by_name(stack_for) -> None:
    doc = render(stack_for)
    proxy = doc["services"]["proxy"]
    assert proxy["configs"] == [{"source": "proxy_odoo_conf", "target": "/etc/nginx/conf.d/default.conf"}]
    assert doc["configs"]["proxy_odoo_conf"]["name"].endswith("_" + "f" * 12)
    assert "volumes" not in proxy  # the compose engine's upstream pinning is not used
    assert proxy["ports"] == [{"target": 80, "protocol": "tcp", "mode": "host", "published": 8069}]
    assert proxy["deploy"]["update_config"]["order"] == "stop-first"  # a host port: one task at a time
    # nginx's config (the compose engine's) sends / to web:8069 and /websocket to web:8072: the
    # same names resolve in the stack's network.
    conf = (Path(__file__).resolve().parents[2] / "docker/proxy/odoo.conf").read_text()
    assert "http://web:8069" in conf and "http://web:8072" in conf and "location /websocket" in conf
    ingress = render(stack_for, "ODOO_SWARM_PUBLISH_MODE=ingress")["services"]["proxy"]
    assert ingress["ports"][0]["mode"] == "ingress" and "endpoint_mode" not in ingress["deploy"]


def test_db_is_placed_by_label_or_on_a_manager_or_left_out_for_an_external_postgresql(stack_for) -> None:
    assert render(stack_for)["services"]["db"]["deploy"]["placement"] == {"constraints": ["node.role==manager"]}
    labelled = render(stack_for, "ODOO_SWARM_DB_NODE_LABEL=odoo-db=true")["services"]["db"]
    assert labelled["deploy"]["placement"] == {"constraints": ["node.labels.odoo-db==true"]}
    assert labelled["deploy"]["update_config"]["order"] == "stop-first"  # never two postgres on one data dir
    external = render(stack_for, "ODOO_SWARM_EXTERNAL_DB=pg.internal:6432")
    assert "db" not in external["services"]
    assert external["services"]["web"]["environment"]["ODOO_DB_HOST"] == "pg.internal"
    assert external["services"]["cron"]["environment"]["ODOO_DB_PORT"] == "6432"


def test_script_runner_is_no_stack_service_but_the_update_jobs_spec(stack_for) -> None:
    stack = stack_for()
    config = compose_config(stack_for.repo, stack_for.state)
    doc = render(stack_for)
    assert "script-runner" not in doc["services"]
    image, env = job_spec(config, stack)
    assert image == "reg/odoo-script-runner@sha256:" + "b" * 64
    assert env["ODOO_DB_PASSWORD"] == "s3cr$t"  # as the container sees it: --env-file takes it verbatim
    assert env["ODOO_LOGFILE"] == ""
    assert "ODOO_DB_PASSWORD=s3cr$t\n" in env_file_text(env)
    with pytest.raises(ValueError):
        env_file_text({"A": "x\ny"})


def test_first_deploy_starts_the_stack_without_web_and_cron(stack_for) -> None:
    doc = render(stack_for, web_replicas=0)
    assert doc["services"]["web"]["deploy"]["replicas"] == 0
    assert doc["services"]["cron"]["deploy"]["replicas"] == 0
    assert doc["services"]["db"]["deploy"]["replicas"] == 1


def test_the_compose_engines_db_and_tools_commands_are_translated_to_the_stacks_tasks(stack_for) -> None:
    from odoo_ai.plan import deploy as plan

    stack = stack_for()
    dump = plan.snapshot_db(stack, "snap1")
    argv = splan.translate(dump.argv, stack=stack, db_container="c0ffee", tools_image="img")
    assert argv == [stack.docker, "exec", "-i", "c0ffee", "pg_dump", "-U", "odoo", "-Fc", "--no-acl", "-f",
                    "/snapshots/snap1.dump", "opw_dev"]
    files = plan.snapshot_filestore(stack, "snap1")
    argv = splan.translate(files.argv, stack=stack, db_container="c0ffee", tools_image="img")
    assert argv[:4] == [stack.docker, "run", "--rm", "-i"]
    assert ["--entrypoint", "sh", "img", "-c", plan.FILESTORE_SNAPSHOT_SH] == argv[argv.index("--entrypoint"):][:5]
    assert volume_mount(stack) in argv  # the stack's filestore volume, with its driver and options
    assert f"type=bind,source={stack.state_root / 'snapshots'},target=/volumes/snapshots" in argv
    # the restore's sleeping tools container: detached (its ID on stdout), same mounts
    tools = splan.translate(plan.tools_start(stack).argv, stack=stack, db_container="c0ffee", tools_image="img")
    assert tools[:4] == [stack.docker, "run", "--rm", "--detach"] and "-i" not in tools
    assert tools[tools.index("--entrypoint"):] == ["--entrypoint", "sleep", "img", str(plan.TOOLS_IDLE_SECONDS)]
    assert volume_mount(stack) in tools
    assert splan.translate(plan.pull(stack, stack.dotenv_path).argv, stack=stack, db_container="c",
                           tools_image="i") is None  # pull runs as it is
    assert splan.translate(["docker", "ps"], stack=stack, db_container=None, tools_image=None) is None


def test_with_an_external_postgresql_the_db_commands_run_in_a_client_container(stack_for) -> None:
    from odoo_ai.plan import deploy as plan

    stack = stack_for("ODOO_SWARM_EXTERNAL_DB=pg.internal:6432", "ODOO_DB_IMAGE=postgres:16")
    pg_env = stack.state_root / ".external-db.env"
    argv = splan.translate(plan.snapshot_db(stack, "s1").argv, stack=stack, db_container=None, tools_image="i",
                           pg_env=pg_env)
    assert argv == [stack.docker, "run", "--rm", "-i", "--network", f"{stack.project}_default",
                    "--env-file", str(pg_env),  # PGHOST/PGPORT/PGPASSWORD: never in argv
                    "--mount", f"type=bind,source={stack.state_root / 'snapshots'},target=/snapshots",
                    "postgres:16", "pg_dump", "-U", "odoo", "-Fc", "--no-acl", "-f", "/snapshots/s1.dump", "opw_dev"]
    psql = splan.translate(plan.db_exists(stack).argv, stack=stack, db_container=None, tools_image="i", pg_env=pg_env)
    assert psql is not None and psql[psql.index("postgres:16") + 1] == "psql"


def test_volume_mount_quotes_options_with_commas(stack_for) -> None:
    stack = stack_for("ODOO_SWARM_FILESTORE_OPTIONS='type=nfs o=addr=10.0.0.5,rw device=:/srv/fs'")
    mount = volume_mount(stack)
    assert '"volume-opt=o=addr=10.0.0.5,rw"' in mount and f"source={stack.project}_filestore" in mount


@pytest.mark.parametrize(("line", "message"), [
    ("ODOO_ENGINE=k8s", "ODOO_ENGINE='k8s'"),
    ("ODOO_SWARM_WEB_REPLICAS=0", "out of range"),
    ("ODOO_SWARM_DB_NODE_LABEL=odoo-db", "KEY=VALUE"),
    ("ODOO_SWARM_EXTERNAL_DB=pg.internal", "HOST:PORT"),
    ("ODOO_SWARM_EXTERNAL_DB=pg:99999", "out of range"),
    ("ODOO_SWARM_FILESTORE_OPTIONS=type", "KEY=VALUE"),
    ("ODOO_SWARM_PUBLISH_MODE=mesh", "ODOO_SWARM_PUBLISH_MODE"),
])
def test_bad_swarm_settings_are_one_line_errors_naming_file_and_key(stack_for, line: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        stack_for(line)
    assert message in info.value.message and "dev.env:" in info.value.message


def test_the_engine_is_compose_unless_set_and_config_show_shows_it(stack_for, tmp_path: Path) -> None:
    stack = stack_for()
    assert stack.engine == "swarm" and stack.public_view()["engine"] == "swarm"
    assert stack.public_view()["swarm"]["web_replicas"] == 2
    (stack_for.repo / "docker" / "config" / "dev.env").write_text("")
    plain = load_stack("dev", repo_root=stack_for.repo, home=tmp_path / "home", environ={})
    assert plain.engine == "compose" and plain.public_view()["engine"] == "compose"
