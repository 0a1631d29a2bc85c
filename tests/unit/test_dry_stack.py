"""up, down, env render, promote and prune-images --dry-run: the real code against the dry
connector (issue 11, point 1). Each prints the exact commands it would run, the reads it
made and what it assumed, writes nothing, and fails where the real run fails before its
first write, with the same message and exit code. No Docker needed: the stack commands
only read files here, and prune's docker listings are answered by a recorder."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from odoo_ai import images
from odoo_ai.config.stack import load_stack
from odoo_ai.config.stateroot import MARKER, marker_text
from odoo_ai.dryhost import DryHost
from odoo_ai.hosts import LocalHost
from odoo_ai.runners.base import Command, Result

SECRETS = {"ODOO_DB_PASSWORD": "pw-s3cret", "ODOO_MASTER_PASSWORD": "master-s3cret"}
TAG = "dev-1a2b3c4"


def odoo_ai(*args: str, repo: Path, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "odoo_ai", "--repo", str(repo), "--config-dir", str(repo / "docker" / "config"), *args],
        capture_output=True, text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin", **(env or {})},
    )


def tree(root: Path) -> dict[str, Any]:
    """Every entry under `root` with its bytes/mode (symlinks not followed): equal before
    and after = nothing written."""
    seen: dict[str, Any] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            seen[str(path.relative_to(root))] = (
                ("dir", stat.S_IMODE(st.st_mode)) if stat.S_ISDIR(st.st_mode)
                else ("link", os.readlink(path)) if stat.S_ISLNK(st.st_mode)
                else ("file", path.read_bytes(), stat.S_IMODE(st.st_mode)))
    return seen


def compose(repo: Path, root: Path, *args: str) -> str:
    return (f"docker compose --project-name opw-dev --project-directory {repo} --file {repo}/docker-compose.yml "
            f"--file {repo}/environments/dev.yaml --env-file {root}/.env " + " ".join(args))


# ---------------------------------------------------------------- up
def test_up_dry_run_prints_the_real_sequence_with_its_assumptions_and_writes_nothing(repo, home, tmp_path) -> None:
    root = home / "odoo-ai" / "opw-dev"
    before = tree(tmp_path)
    proc = odoo_ai("up", "dev", "--tag", TAG, "--dry-run", repo=repo, home=home, env=SECRETS)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    commands = [line for line in lines if line.startswith("docker ")]  # the gate probe's script spans lines
    assert commands == [
        compose(repo, root, "up --detach --remove-orphans --wait db"),
        compose(repo, root, "exec -T db psql -X -q -t -A -v ON_ERROR_STOP=1 -U odoo -d postgres -v dbname=opw_dev "
                            "-f -  # stdin: <redacted>"),
        compose(repo, root, "up --detach --remove-orphans"),
        "docker ps --no-trunc --format '{{.ID}}\t{{.Names}}' --filter label=com.docker.compose.project=opw-dev "
        "--filter label=com.docker.compose.service=web --filter label=com.docker.compose.oneoff=False",
        "docker exec '<web-1>' python3 -c '",  # the deploy's gate: login on the database, the bus
    ]
    assert "' 8069 opw_dev 2.0" in lines
    assumptions = [line.split("assume: ", 1)[1] for line in lines if "#   assume: " in line]
    assert assumptions == ["db start(s) and turn healthy", "the database exists", "every service start(s)",
                           "the probe answers 200 (/web/health)",
                           "the new web answers 200 on /web/health and /web/login?db=, 101 on /websocket"]
    # the writes and the lock, in the order the real run makes them, printed not made
    writes = [line for line in lines if line.startswith(("# write", "# lock", "# unlock"))]
    assert [w.split()[1:3] for w in writes] == [
        ["lock", f"{root}/deploy.lock"], ["write", f"{root}/{MARKER}"], ["write", f"{root}/odoo.env"],
        ["write", f"{root}/.env"], ["unlock", f"{root}/deploy.lock"]]
    assert f"#   read: {root}/{MARKER} (absent)" in lines
    assert lines[-1] == "dry run: 5 command(s) printed, 5 assumption(s), 3 read(s); nothing was run or written"
    assert "s3cret" not in proc.stdout + proc.stderr
    assert tree(tmp_path) == before  # no state root, no marker, no .env, no lock file


def test_up_dry_run_json_lists_the_plan_the_assumptions_and_the_reads(repo, home, tmp_path) -> None:
    proc = odoo_ai("up", "dev", "--tag", TAG, "--dry-run", "--json", repo=repo, home=home, env=SECRETS)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # stdout: the one document; the printed lines went to stderr
    assert [c.split(" --env-file ")[1].split(" ", 1)[1] for c in doc["plan"][:3]] == [
        "up --detach --remove-orphans --wait db",
        "exec -T db psql -X -q -t -A -v ON_ERROR_STOP=1 -U odoo -d postgres -v dbname=opw_dev -f -",
        "up --detach --remove-orphans"]
    assert [c.split(" ", 2)[:2] for c in doc["plan"][3:]] == [["docker", "ps"], ["docker", "exec"]]
    assert doc["assumptions"][1] == "the database exists" and len(doc["reads"]) == 3
    assert doc["healthy"] is True and doc["written"] is False
    assert "# write" in proc.stderr


# ---------------------------------------------------------------- env render, down
def test_env_render_dry_run_reads_and_prints_the_writes_only(repo, home, tmp_path) -> None:
    root = home / "odoo-ai" / "opw-dev"
    before = tree(tmp_path)
    proc = odoo_ai("env", "render", "dev", "--tag", TAG, "--dry-run", repo=repo, home=home, env=SECRETS)
    assert proc.returncode == 0, proc.stderr
    assert [line.split(" (")[0] for line in proc.stdout.splitlines()] == [
        f"#   read: {root}/{MARKER}", f"#   read: {root}/.secrets.env", f"# mkdir -p {root}",
        f"# write {root}/{MARKER}", f"# write {root}/odoo.env", f"# write {root}/.env",
        f"would write {root}/.env"]
    assert tree(tmp_path) == before


def test_down_purge_dry_run_lists_stops_nothing_and_deletes_nothing(repo, home, tmp_path) -> None:
    root = home / "odoo-ai" / "opw-dev"
    rendered = odoo_ai("env", "render", "dev", "--tag", TAG, repo=repo, home=home, env=SECRETS)
    assert rendered.returncode == 0, rendered.stderr
    (root / "filestore").mkdir()
    (root / "filestore" / "a").write_bytes(b"x" * 100)
    before = tree(tmp_path)
    proc = odoo_ai("down", "dev", "--purge", "--dry-run", repo=repo, home=home)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        f"#   read: {root}: checked (a real directory with the marker of opw-dev) and measured",
        f"#   read: {root}/.env",
        f"# lock {root}/deploy.lock (flock, waiting up to 30s)",
        compose(repo, root, "--profile '*' down --remove-orphans --timeout 10"),
        f"# rm -r {root} (its marker of opw-dev checked again first; the marker goes last)",
        f"# unlock {root}/deploy.lock",
        "dry run: 1 command(s) printed, 0 assumption(s), 2 read(s); nothing was run or written"]
    assert proc.stderr.startswith(f"purge would delete {root} (marker: opw-dev")  # the listing, as for real
    assert "filestore       100 B" in proc.stderr
    assert tree(tmp_path) == before


# ---------------------------------------------------------------- fails where the real run fails
def _another_projects_root(home: Path) -> None:
    root = home / "odoo-ai" / "opw-dev"
    root.mkdir(parents=True)
    (root / MARKER).write_text(marker_text("opw-other", "dev"))


@pytest.mark.parametrize(("args", "env", "setup", "message"), [
    (["env", "render", "dev", "--tag", TAG], {}, None,
     "missing secrets ODOO_DB_PASSWORD, ODOO_MASTER_PASSWORD: export it in the environment (listed in ODOO_SECRETS)"),
    (["up", "dev", "--tag", "../x"], SECRETS, None, "invalid image tag '../x'"),
    (["env", "render", "dev", "--tag", "../x"], SECRETS, None, "invalid image tag '../x'"),
    (["up", "dev", "--tag", TAG, "--host", "ssh://root@127.0.0.1:1"], SECRETS, None,
     "a remote stack must set ODOO_STATE_ROOT"),
    (["down", "dev", "--purge", "--yes", "--host", "ssh://root@127.0.0.1:1"], {}, None,
     "a remote stack must set ODOO_STATE_ROOT"),
    (["up", "dev", "--tag", TAG], SECRETS, _another_projects_root, "is the state root of the stack 'opw-other'"),
    (["down", "dev", "--purge", "--yes"], {}, _another_projects_root,
     "it is the state root of the stack 'opw-other', not of 'opw-dev'; nothing deleted"),
    (["promote", "dev", "testing", "--tag", "dev-1a2b3c4;rm"], {}, None, "invalid image tag"),
    (["promote", "dev", "testing", "--tag", "testing-1a2b3c4"], {}, None, "is not a dev-<short-sha> tag of dev"),
    (["prune-images", "--keep", "1", "--env", "prod"], {}, None, "unknown env 'prod'"),
])
def test_a_dry_run_fails_exactly_like_the_real_run_before_its_first_write(repo, home, tmp_path, args, env, setup,
                                                                          message) -> None:
    (repo / "docker" / "config" / "dev.env").write_text("ODOO_IMAGE=registry.test/acme/odoo\n")
    (repo / "docker" / "config" / "testing.env").write_text("ODOO_IMAGE=registry.test/acme/odoo\n")
    if setup:
        setup(home)
    before = tree(tmp_path)
    real = odoo_ai(*args, repo=repo, home=home, env=env)
    dry = odoo_ai(*args, "--dry-run", repo=repo, home=home, env=env)
    assert real.returncode == dry.returncode == 2, (real.stderr, dry.stderr)
    assert message in real.stderr
    error = [line for line in real.stderr.splitlines() if "error:" in line]
    assert error == [line for line in dry.stderr.splitlines() if "error:" in line]  # the same one line
    assert not [line for line in dry.stdout.splitlines() if not line.startswith("#")]  # no command printed
    assert tree(tmp_path) == before


# ---------------------------------------------------------------- prune-images --local, through the API
class Engine:
    """Answers docker's listings with two old images of dev (no container uses them), and
    records every command it is asked to run."""

    dry_run = False

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def run(self, command: Command, *, capture: bool = False) -> Result:
        self.commands.append(command)
        if command.purpose == "list_image_ids":
            return Result(0, "sha256:1\nsha256:2\n" if command.argv[-1].endswith("-web") else "")
        if command.purpose == "inspect_images":
            return Result(0, "".join(json.dumps({
                "Id": f"sha256:{n}", "RepoTags": [f"odoo-ai/odoo-web:dev-{c * 7}"], "RepoDigests":
                [f"odoo-ai/odoo-web@sha256:{c * 64}"], "Created": "2026-01-01T00:00:00Z"}) + "\n"
                for n, c in (("1", "a"), ("2", "b"))))
        return Result(0)

    def note(self, text: str) -> None:
        pass


def test_prune_local_dry_run_lists_for_real_and_prints_the_removals(repo, home, tmp_path) -> None:
    for env in ("dev", "testing"):
        (repo / "docker" / "config" / f"{env}.env").write_text(f"ODOO_STATE_ROOT={tmp_path}/state-{env}\n")
        (tmp_path / f"state-{env}").mkdir()
        (tmp_path / f"state-{env}" / "releases.log").write_text("")
    stacks = [load_stack(e, repo_root=repo, home=home) for e in ("dev", "testing")]
    engine = Engine()
    dry = DryHost(LocalHost(engine), out=io.StringIO())
    result = images.prune_local(stacks, stacks[:1], dry, keep=1, all_envs=False)
    printed = dry.out.getvalue().splitlines()
    removals = [line for line in printed if " image rm " in line]
    assert result["dry_run"] is True and result["would_delete"] == 2, result["images"]
    assert removals == [f"docker image rm odoo-ai/odoo-web{ref}" for c in "ab"
                        for ref in (f"@sha256:{c * 64}", f":dev-{c * 7}")]  # the digest first, then the tag
    # the engine was only asked to list (real reads): nothing removed
    assert {c.purpose for c in engine.commands} == {"list_image_ids", "inspect_images", "container_ids"}
    assert any(line.startswith("#   read: inspect_images") for line in printed)
