"""The operator's view (issue 16) against the real engine and a real OpenSSH server on
127.0.0.1: every stack command with --host (up, status, logs -f, compose, env render,
down, releases, lock, prune-images --local), `status` on a stack whose running
containers differ from the recorded release, the lock by hand stopping a deploy with its
message, a live deploy's lock released only with --force, confirmations off a terminal,
and the post-release hook after every deploy and rollback."""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import (
    DOCKER,
    REPO,
    Cli,
    force_cleanup,
    free_port,
    leftovers,
    standin_build_args,
)
from tests.integration.sshd import start_sshd

SECRETS = {"ODOO_DB_PASSWORD": "ops-$ecret 'pw'", "ODOO_MASTER_PASSWORD": "ops-master"}
SCENARIOS = {"ok": "16a0000aaaa", "ok_v2": "16b0000bbbb"}
A, B = "dev-16a0000", "dev-16b0000"

HOOK = """import json, sys
record = json.load(sys.stdin)
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(record) + "\\n")
print("posted", record["status"])
"""


@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ops")
    sshd = start_sshd(tmp / "sshd")
    for name in ("config", "home"):
        (tmp / name).mkdir()
    project = f"oaiops-{os.getpid()}"
    image = ops_image(project)  # a namespace of its own: prune-images touches nothing else
    state_root = tmp / "host-state"
    port = free_port()
    (tmp / "hook.py").write_text(HOOK)
    env = {**os.environ, "HOME": str(tmp / "home"), "ODOO_AI_DOCKER": DOCKER, "USER": "ops-tester",
           "ODOO_AI_SSH_KEY": str(sshd.client_key), "ODOO_AI_KNOWN_HOSTS": str(sshd.known_hosts), **SECRETS}
    cli = Cli(REPO, tmp / "config", tmp / "home", env)
    cli.write_env("dev", "\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={state_root}", f"ODOO_PUBLISHED_PORT={port}",
        f"ODOO_REMOTE_REPO_DIR={tmp / 'host-repo'}", f"ODOO_IMAGE={image}",
        "ODOO_DB_IMAGE=odoo-ai-test/postgres:15", "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1", "ODOO_DB_NAME=opw_ops",
        "ODOO_UPDATE=standin_demo", "ODOO_DEPLOY_GATE_TIMEOUT=30", "ODOO_DEPLOY_DRAIN_SECONDS=0.5",
        f"ODOO_POST_RELEASE_HOOK=python3 {tmp / 'hook.py'} {tmp / 'hooks.jsonl'}", "",
    ]))
    cli.write_env("testing", f"ODOO_IMAGE={image}\nODOO_STATE_ROOT={tmp / 'testing-state'}\n")
    for scenario, sha in SCENARIOS.items():
        cli(*standin_build_args("dev", sha, addons=scenario), timeout=1200)
    yield cli, sshd, project, state_root, port, tmp
    sshd.stop()
    force_cleanup(project, state_root)
    refs = subprocess.run([DOCKER, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", f"{image}-*"],
                          capture_output=True, text=True).stdout.split()
    if refs:
        subprocess.run([DOCKER, "image", "rm", *refs], capture_output=True)


def ops_image(project: str) -> str:
    return project.replace("-", "") + "/odoo"


def hooks(tmp: Path) -> list[dict]:
    path = tmp / "hooks.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def remote(cli: Cli, sshd, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """`odoo-ai ARGS --host <the test sshd>` (before the `--` of compose)."""
    cut = args.index("--") if "--" in args else len(args)
    return cli(*args[:cut], "--host", sshd.url, *args[cut:], check=check, **kw)


def status(cli: Cli, sshd, *, expect: int = 0) -> dict:
    proc = remote(cli, sshd, "status", "dev", "--json", check=False)
    assert proc.returncode == expect, (proc.returncode, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)


def test_every_stack_command_over_ssh(ops) -> None:
    cli, sshd, project, state_root, port, tmp = ops
    # nothing there yet: status says so (exit 2); the state root holds only the builds' records
    # (this host is the build machine too) and no marker: a purge over ssh refuses to delete it
    assert remote(cli, sshd, "status", "dev", check=False).returncode == 2
    before = sorted(p.name for p in state_root.iterdir())
    purge = remote(cli, sshd, "down", "dev", "--purge", "--yes", check=False)
    assert purge.returncode == 2 and f"refusing to delete {state_root}: it carries no odoo-ai marker" in purge.stderr
    assert sorted(p.name for p in state_root.iterdir()) == before

    # env render over ssh: .env 0600 and the marker on the host, secrets only on ssh's stdin
    rendered = json.loads(remote(cli, sshd, "env", "render", "dev", "--tag", A, "--json").stdout)
    assert rendered["written"] and rendered["host"] == sshd.url
    assert stat.S_IMODE((state_root / ".env").stat().st_mode) == 0o600
    assert json.loads((state_root / ".odoo-ai-stack").read_text())["project"] == project

    # up over ssh: the Compose files synced there, the database initialised, healthy through the port
    up = json.loads(remote(cli, sshd, "up", "dev", "--json", timeout=600).stdout)
    assert up["healthy"] is True and up["tag"] == A and up["written"] is False  # the .env rendered there kept
    assert (tmp / "host-repo" / "docker-compose.yml").exists()

    # deploy over ssh, then the operator's view of it
    first = cli.json("deploy", "dev", "--tag", A, "--host", sshd.url, "--update", "always")
    assert first["status"] == "success" and first["post_release_hook"]["ok"] is True
    view = status(cli, sshd)
    release = view["release"]
    assert release["image_tag"] == A and release["commit"] == SCENARIOS["ok"] and release["actor"] == "ops-tester"
    assert set(release["digests"]) == {"web", "script-runner"} and release["timestamp"]
    assert view["drift"] == [] and view["ok"] is True and view["host"] == sshd.url
    assert [c["path"] for c in view["health"]["checks"]] == ["/web/health", "/web/login?db=opw_ops"]
    assert all(c["status"] == 200 and c["ms"] is not None for c in view["health"]["checks"])
    assert view["lock"]["held"] is False and view["unfinished_deploy"] is None
    disk = {p["what"]: p for p in view["disk"]["parts"]}
    assert disk["database"]["bytes"] > 1_000_000 and view["disk"]["bytes"] >= disk["database"]["bytes"]
    webs = [c for c in view["containers"] if c["service"] == "web"]
    assert len(webs) == 1 and webs[0]["image_id"] == release["digests"]["web"]
    human = remote(cli, sshd, "status", "dev").stdout
    assert f"release      {A} (deploy)" in human and "MISMATCH" not in human and "lock         free" in human

    # logs (and -f, streaming over ssh), compose passthrough
    assert "db-1" in remote(cli, sshd, "logs", "dev", "db", "--tail", "5").stdout  # Odoo itself logs to its file
    follow = subprocess.Popen(["odoo-ai", "--repo", str(REPO), "--config-dir", str(cli.config_dir), "logs", "dev",
                               "proxy", "-f", "--tail", "1", "--host", sshd.url],
                              env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([follow.stdout], [], [], 30)
        assert ready and "proxy" in follow.stdout.readline()
        assert follow.poll() is None  # still streaming
    finally:
        follow.terminate()
        follow.wait(timeout=10)
    names = remote(cli, sshd, "compose", "dev", "--", "ps", "--format", "{{.Service}}").stdout.split()
    assert sorted(names) == ["db", "proxy", "web"]

    # --dry-run over ssh: the commands printed, nothing run or written on the host
    running = sorted(leftovers(project)["containers"])
    before = (state_root / ".env").read_bytes()
    for args in (["up", "dev", "--tag", B], ["down", "dev"], ["logs", "dev", "web"], ["status", "dev"],
                 ["compose", "dev", "--", "restart", "web"]):
        cut = args.index("--") if "--" in args else len(args)
        proc = remote(cli, sshd, *args[:cut], "--dry-run", *args[cut:])
        assert f"{DOCKER} " in proc.stdout or "docker " in proc.stdout, (args, proc.stdout)
    assert sorted(leftovers(project)["containers"]) == running and (state_root / ".env").read_bytes() == before

    # env render --dry-run over ssh: says what it would write, writes nothing
    dry = remote(cli, sshd, "env", "render", "dev", "--tag", B, "--dry-run")
    assert "would write" in dry.stdout and (state_root / ".env").read_bytes() == before
    assert remote(cli, sshd, "releases", "dev").stdout.count(A) == 1


def test_status_says_when_the_running_containers_are_not_the_release(ops) -> None:
    cli, sshd, project, state_root, port, tmp = ops
    # someone starts another image by hand: the release log still says A
    remote(cli, sshd, "up", "dev", "--tag", B, timeout=600)
    view = status(cli, sshd, expect=1)
    assert view["release"]["image_tag"] == A and view["tag"] == B
    assert any(f"runs {view['rendered_images']['web']}" in d and f"not the release {A}" in d for d in view["drift"])
    assert view["health"]["ok"] is True and view["ok"] is False
    human = remote(cli, sshd, "status", "dev", check=False)
    assert human.returncode == 1
    assert "MISMATCH" in human.stdout and "(≠ release)" in human.stdout
    assert cli("status", "dev", check=False).returncode == 1  # the same view from the Docker host itself

    # a deploy makes it a release again; the previous one is what a rollback would go to
    second = cli.json("deploy", "dev", "--tag", B, "--host", sshd.url)
    assert second["status"] == "success"
    view = status(cli, sshd)
    assert view["drift"] == [] and view["release"]["image_tag"] == B and view["previous"]["image_tag"] == A
    records = [r for r in hooks(tmp) if r.get("recorded", True)]
    assert [(r["kind"], r["image_tag"], r["status"]) for r in records] == [("deploy", A, "success"),
                                                                           ("deploy", B, "success")]
    assert records[-1]["schema"] == "odoo-ai.release/1" and records[-1]["digests"] == view["release"]["digests"]


def test_a_lock_taken_by_hand_stops_deploys_with_its_message(ops) -> None:
    cli, sshd, project, state_root, port, tmp = ops
    taken = json.loads(remote(cli, sshd, "lock", "acquire", "dev", "-m", "postgres upgrade until 14:00",
                              "--json").stdout)
    assert taken["holder"]["manual"] and taken["holder"]["actor"] == "ops-tester"
    try:
        seen = json.loads(remote(cli, sshd, "lock", "status", "dev", "--json").stdout)
        assert seen["held"] and seen["holder"]["message"] == "postgres upgrade until 14:00"
        assert status(cli, sshd)["lock"]["held"] is True
        refused = remote(cli, sshd, "deploy", "dev", "--tag", A, "--lock-timeout", "1", check=False)
        assert refused.returncode == 1
        assert "locked by ops-tester by hand" in refused.stderr and "postgres upgrade until 14:00" in refused.stderr
        assert "odoo-ai lock release" in refused.stderr
        # a local deploy of the same state root (on the Docker host itself) too
        local = cli("deploy", "dev", "--tag", A, "--lock-timeout", "0", check=False)
        assert local.returncode == 1 and "postgres upgrade until 14:00" in local.stderr
        told = hooks(tmp)[-1]
        assert told["recorded"] is False and told["phase"] == "lock" and told["status"] == "failed"
    finally:
        released = json.loads(remote(cli, sshd, "lock", "release", "dev", "--json").stdout)
    assert released["released"] is True and released["forced"] is False
    assert json.loads(remote(cli, sshd, "lock", "status", "dev", "--json").stdout)["held"] is False


def test_a_live_deploys_lock_is_released_only_with_force(ops) -> None:
    cli, sshd, project, state_root, port, tmp = ops
    deploy = subprocess.Popen(["odoo-ai", "--repo", str(REPO), "--config-dir", str(cli.config_dir), "deploy", "dev",
                               "--tag", A, "--host", sshd.url],
                              env={**cli.env, "ODOO_AI_FAULT_HOLD_PHASE": "pull"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert deploy.stderr is not None
        for line in deploy.stderr:
            if line.startswith("… pull"):
                break
        seen = json.loads(remote(cli, sshd, "lock", "status", "dev", "--json").stdout)
        holder = seen["holder"]
        assert seen["held"] and holder["command"] == f"deploy dev {A}" and seen["phase"] == "pull"
        assert holder["pid"] == deploy.pid and holder["lock_pid"] and holder["lock_pid"] != deploy.pid
        refused = remote(cli, sshd, "lock", "release", "dev", check=False)
        assert refused.returncode == 2 and f"pid {deploy.pid}" in refused.stderr and "--force" in refused.stderr
        unasked = remote(cli, sshd, "lock", "release", "dev", "--force", check=False)
        assert unasked.returncode == 2 and "without confirmation" in unasked.stderr
        forced = remote(cli, sshd, "lock", "release", "dev", "--force", "--yes", "--json")
        doc = json.loads(forced.stdout)
        assert doc["released"] and doc["forced"] and "is not told" in doc["warnings"][0]
        assert json.loads(remote(cli, sshd, "lock", "status", "dev", "--json").stdout)["held"] is False
    finally:
        deploy.send_signal(signal.SIGTERM)  # the CLI was not told: stop it here, it undoes itself
        deploy.wait(timeout=300)
    assert deploy.returncode != 0
    last = json.loads(remote(cli, sshd, "releases", "dev", "--json").stdout)["releases"][-1]
    assert last["status"] == "failed" and last["error"] == "interrupted by SIGTERM"
    assert hooks(tmp)[-1]["error"] == "interrupted by SIGTERM"
    assert status(cli, sshd)["release"]["image_tag"] == B  # B still serves


def test_destructive_commands_ask_and_work_over_ssh(ops) -> None:
    cli, sshd, project, state_root, port, tmp = ops
    # rollback --restore-db replaces the data: off a terminal it needs --yes, and changes nothing without
    refused = remote(cli, sshd, "rollback", "dev", "--to", A, "--restore-db", check=False)
    assert refused.returncode == 2 and "without confirmation" in refused.stderr
    assert status(cli, sshd)["release"]["image_tag"] == B
    back = json.loads(remote(cli, sshd, "rollback", "dev", "--to", A, "--restore-db", "--yes", "--json").stdout)
    assert back["status"] == "success" and back["release"]["restored_snapshot"]
    assert back["post_release_hook"]["ok"] and hooks(tmp)[-1]["kind"] == "rollback"

    # prune-images --local on the Docker host: decided there from its release log and .env. These
    # builds were never pushed, so none may go (a registry is needed to pull them again); the
    # question before a delete is tested with a registry in test_registry.py.
    dry = json.loads(remote(cli, sshd, "prune-images", "--local", "--keep", "1", "--env", "dev", "--dry-run",
                            "--json").stdout)
    verdicts = {tag: i for i in dry["images"] for tag in i["tags"]}
    assert dry["would_delete"] == 0 and dry["skipped_envs"] == {}
    assert any("currently deployed" in r for r in verdicts[f"{ops_image(project)}-web:{A}"]["reasons"])
    assert any("could not be pulled again" in r for r in verdicts[f"{ops_image(project)}-web:{B}"]["reasons"])
    done = json.loads(remote(cli, sshd, "prune-images", "--local", "--keep", "1", "--env", "dev", "--json").stdout)
    assert done["deleted"] == 0 and done["failures"] == []  # nothing to delete: nothing to confirm

    # down over ssh: nothing of the project left
    down = json.loads(remote(cli, sshd, "down", "dev", "--json").stdout)
    assert down["removed"] is True
    assert leftovers(project)["containers"] == []
    purged = json.loads(remote(cli, sshd, "down", "dev", "--purge", "--yes", "--json").stdout)  # checked there
    assert purged["purged"] is True and purged["purge"]["bytes"] > 0
    assert not Path(state_root).exists()
