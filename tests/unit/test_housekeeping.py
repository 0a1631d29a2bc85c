"""The Docker host's housekeeping: which snapshots go, the log rotation script (run here
with sh on a temporary folder), old unpushed builds, and the whole use-case against a
recording runner (what it would run, with the env's lock and journal respected)."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import subprocess
from pathlib import Path

import pytest

from odoo_ai import housekeeping as uc
from odoo_ai.config.stack import load_stack
from odoo_ai.dryhost import DryHost
from odoo_ai.hosts import LocalHost
from odoo_ai.lock import EnvLock
from odoo_ai.plan import housekeeping as plan
from odoo_ai.plan.images import LocalImage, PruneRules, plan_local_prune
from odoo_ai.runners.base import Command, Result

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
REPO = "127.0.0.1:5000/o/odoo-web"


def test_the_journal_file_name_is_the_deploys() -> None:
    from odoo_ai.deploy.journal import JOURNAL

    assert uc.JOURNAL == JOURNAL


# ---------------------------------------------------------------- snapshots
def test_snapshots_on_disk_that_no_rollback_uses_go() -> None:
    names = ["dev-1-20261101T000000Z.dump", "dev-1-20261101T000000Z.filestore", "dev-2-x.dump", "odd name.dump",
             "..evil.dump", "notes.txt", "dev-3-y.filestore"]
    assert plan.snapshot_ids(names) == ["dev-1-20261101T000000Z", "dev-2-x", "dev-3-y"]
    history = [{"status": "success", "snapshot": "dev-1-20261101T000000Z"}, {"status": "failed", "snapshot": "dev-2-x"},
               {"status": "success", "snapshot": "dev-3-y"}, {"status": "success"}]
    assert plan.stale_snapshots(["dev-1-20261101T000000Z", "dev-2-x", "dev-3-y", "orphan"], history, 1) == \
        ["dev-1-20261101T000000Z", "dev-2-x", "orphan"]
    assert plan.stale_snapshots(["dev-2-x", "dev-3-y"], history, 5) == ["dev-2-x"]  # failed: never a rollback's


# ---------------------------------------------------------------- the rotation script
def rotate(path: Path, keep: int, max_bytes: int) -> str:
    proc = subprocess.run(["sh", "-c", plan.ROTATE_SH, "sh", str(path), str(keep), str(max_bytes)],
                          capture_output=True, text=True, timeout=30, check=True)
    return proc.stdout.strip()


def test_the_log_is_rotated_at_its_size_with_a_keep_count(tmp_path: Path) -> None:
    log = tmp_path / "odoo.log"
    assert rotate(log, 3, 10) == "absent"
    log.write_text("short\n")
    assert rotate(log, 3, 10) == "kept 6" and log.read_text() == "short\n"
    for n in range(1, 6):
        log.write_text(f"generation {n}\n")
        assert rotate(log, 3, 10) == f"rotated {len(f'generation {n}') + 1}"
    assert not log.exists()  # Odoo's WatchedFileHandler creates it again at its next line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odoo.log.1", "odoo.log.2.gz", "odoo.log.3.gz"]
    assert (tmp_path / "odoo.log.1").read_text() == "generation 5\n"
    assert gzip.decompress((tmp_path / "odoo.log.2.gz").read_bytes()) == b"generation 4\n"
    assert gzip.decompress((tmp_path / "odoo.log.3.gz").read_bytes()) == b"generation 3\n"
    log.write_text("x" * 20)
    rotate(log, 1, 0)  # keep 1: only the plain .1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odoo.log.1"]


# ---------------------------------------------------------------- old builds that never left the host
def test_builds_that_never_left_the_host_go_once_old() -> None:
    def img(id_: str, tag: str, created: dt.datetime) -> LocalImage:
        return LocalImage(id=id_, repo_tags=(f"{REPO}:{tag}",), created=created.strftime("%Y-%m-%dT%H:%M:%S.123456789Z"))

    images = [img("sha256:1", "dev-aaaaaaa", NOW - dt.timedelta(days=5)),  # old failed build: goes
              img("sha256:2", "dev-bbbbbbb", NOW - dt.timedelta(hours=2)),  # young: stays
              img("sha256:3", "dev-ccccccc", NOW - dt.timedelta(days=5)),  # deployed (a local release): stays
              img("sha256:4", "latest", NOW - dt.timedelta(days=5))]  # not an <env>-<sha> build: not ours to judge
    rules = PruneRules(scope=("dev",), protected={"dev-ccccccc": ["dev: currently deployed"]}, keep=2, now=NOW)
    verdicts = {v.image.id: v for v in plan_local_prune(images, rules, repositories=[REPO],
                                                        builds_older_than=dt.timedelta(hours=72))}
    assert verdicts["sha256:1"].delete and "never left this host" in verdicts["sha256:1"].reasons[0]
    assert "4d old" in verdicts["sha256:1"].reasons[0] and verdicts["sha256:1"].refs == (f"{REPO}:dev-aaaaaaa",)
    assert not verdicts["sha256:2"].delete and "could not be pulled again" in verdicts["sha256:2"].reasons[0]
    assert not verdicts["sha256:3"].delete and "sha256:4" not in verdicts
    # without the option such builds always stay
    kept = plan_local_prune(images, rules, repositories=[REPO])
    assert not [v for v in kept if v.delete]


# ---------------------------------------------------------------- the use-case
class Recorder:
    """A runner that records commands and answers docker's listings with nothing."""

    def __init__(self, dry_run: bool = False, fail: str | None = None):
        self.dry_run = dry_run
        self.commands: list[Command] = []
        self.notes: list[str] = []
        self.fail = fail

    def run(self, command: Command, *, capture: bool = False) -> Result:
        self.commands.append(command)
        text = " ".join(command.argv)
        if self.fail and self.fail in text:
            return Result(1, "", "boom")
        if "builder prune" in text:
            return Result(0, "Deleted build cache objects:\nabc\nTotal reclaimed space: 1.5GB\n")
        if "script-runner -c" in text:
            return Result(0, "rotated 2048\n")
        return Result(0)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def argv(self, needle: str) -> list[list[str]]:
        return [c.argv for c in self.commands if needle in " ".join(c.argv)]


@pytest.fixture
def stack(repo: Path, home: Path, tmp_path: Path):
    (repo / "docker" / "config" / "dev.env").write_text(
        f"ODOO_IMAGE=127.0.0.1:5000/o/odoo\nODOO_STATE_ROOT={tmp_path}/state-dev\nODOO_DEPLOY_KEEP_SNAPSHOTS=1\n")
    return load_stack("dev", repo_root=repo, home=home)


def populate(stack, *, log_bytes: int = 2048) -> Path:
    root = stack.state_root
    (root / "snapshots" / "dev-2-b.filestore").mkdir(parents=True)
    for name in ("dev-1-a.dump", "dev-2-b.dump", "leftover-c.dump"):
        (root / "snapshots" / name).write_text("x")
    (root / "releases.log").write_text("".join(json.dumps(r) + "\n" for r in (
        {"env": "dev", "status": "success", "image_tag": "dev-1111111", "snapshot": "dev-1-a"},
        {"env": "dev", "status": "success", "image_tag": "dev-2222222", "snapshot": "dev-2-b"})))
    (root / ".env").write_text("ODOO_DB_NAME=x\n")
    (root / "logs").mkdir()
    (root / "logs" / "odoo.log").write_bytes(b"x" * log_bytes)
    return root


def run(stack, runner: Recorder | DryHost, **kw):
    """housekeeping through this machine's connector around the recorder (or a dry one)."""
    args = {"keep": 2, "all_envs": True, "build_cache_hours": 168.0, "log_max_bytes": 1024, "log_keep": 5}
    host = runner if isinstance(runner, DryHost) else LocalHost(runner)
    return uc.housekeeping([stack], [stack], host, **{**args, **kw})


def test_housekeeping_removes_old_snapshots_rotates_the_log_and_prunes_the_cache(stack) -> None:
    root = populate(stack)
    runner = Recorder()
    result = run(stack, runner)
    assert result["failures"] == [] and (root / "cache").is_dir()
    assert runner.argv("builder prune") == [["docker", "builder", "prune", "--all", "--force", "--filter", "until=168h"]]
    assert result["build_cache"] == {"older_than_hours": 168.0, "ok": True, "reclaimed": "1.5GB"}
    (report,) = result["stacks"]
    assert report["snapshots"]["removed"] == ["dev-1-a", "leftover-c"] and report["snapshots"]["kept"] == ["dev-2-b"]
    (rm,) = runner.argv("--entrypoint rm")
    assert rm[-4:] == ["/volumes/snapshots/dev-1-a.dump", "/volumes/snapshots/dev-1-a.filestore",
                       "/volumes/snapshots/leftover-c.dump", "/volumes/snapshots/leftover-c.filestore"]
    assert ["--env-file", str(root / ".env")] == rm[rm.index("--env-file"):rm.index("--env-file") + 2]
    (rotation,) = runner.argv("--entrypoint sh script-runner -c")
    assert rotation[-4:] == ["sh", "/volumes/logs/odoo.log", "5", "1024"] and report["log"]["rotated"] is True


def test_a_small_log_and_an_unset_cache_age_are_left_alone(stack) -> None:
    populate(stack, log_bytes=10)
    runner = Recorder()
    result = run(stack, runner, build_cache_hours=None)
    assert "build_cache" not in result and not runner.argv("builder prune")
    assert not runner.argv("script-runner -c") and result["stacks"][0]["log"]["rotated"] is False


def test_an_env_being_deployed_is_skipped(stack) -> None:
    root = populate(stack)
    runner = Recorder()
    with EnvLock(root / "deploy.lock", command="deploy dev dev-3333333"):
        result = run(stack, runner)
    assert not runner.argv("--entrypoint") and "skipped: a deploy holds the lock" in result["stacks"][0]["notes"][0]
    assert "deploy dev dev-3333333" in result["stacks"][0]["notes"][0]


def test_an_interrupted_deploys_snapshots_stay_until_it_is_recovered(stack) -> None:
    root = populate(stack)
    (root / "deploy-journal.json").write_text("{}")
    runner = Recorder()
    result = run(stack, runner)
    assert not runner.argv("--entrypoint rm") and result["stacks"][0]["snapshots"]["removed"] == []
    assert "journal" in result["stacks"][0]["notes"][0]
    assert runner.argv("script-runner -c")  # the log is still rotated


def test_without_a_release_log_no_snapshot_goes(stack) -> None:
    root = populate(stack)
    (root / "releases.log").unlink()
    runner = Recorder()
    result = run(stack, runner)
    assert not runner.argv("--entrypoint rm") and "no release log" in result["stacks"][0]["notes"][0]


def test_a_failing_part_is_reported_and_the_others_still_run(stack) -> None:
    populate(stack)
    runner = Recorder(fail="builder prune")
    result = run(stack, runner)
    assert result["failures"] == ["docker builder prune: boom"]
    assert runner.argv("--entrypoint rm") and runner.argv("script-runner -c")


def test_dry_run_decides_but_creates_nothing(stack) -> None:
    root = populate(stack)
    inner = Recorder()
    dry = DryHost(LocalHost(inner), out=io.StringIO())
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    result = run(stack, dry)
    printed = dry.out.getvalue().splitlines()
    assert not (root / "cache").exists() and f"# mkdir -p {root / 'cache'}" in printed
    assert f"# lock {root / 'deploy.lock'} (flock, waiting up to 0s)" in printed
    assert result["dry_run"] is True
    rm = [c for c in dry.commands if "--entrypoint rm" in " ".join(c.argv)]
    assert rm and " ".join(rm[0].argv) in printed  # printed, not run
    # only the image listings ran for real (reads); nothing was removed or rotated
    assert {c.purpose for c in inner.commands} <= {"list_image_ids", "inspect_images", "container_ids",
                                                   "container_images"}
    assert result["stacks"][0]["log"]["rotated"] is False
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
