"""Nothing outside a stack is ever deleted: the state-root marker, `down --purge` and the
test runner's throw-away projects (issue 12, points 1 and 6). Real directories under
tmp_path, never `/`; every refusal is one line, exit 2, and leaves the tree as it was."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from odoo_ai import stack as stack_uc
from odoo_ai.config.render import render_dotenv
from odoo_ai.config.stack import StackConfig, load_stack
from odoo_ai.config.stateroot import MARKER, claim_state_root, human_size, marker_text
from odoo_ai.dryhost import DryHost
from odoo_ai.errors import ConfigError, ExitCode
from odoo_ai.hosts import LocalHost
from odoo_ai.runners.base import Command, Result

SECRETS = {"ODOO_DB_PASSWORD": "pw", "ODOO_MASTER_PASSWORD": "master"}


# ---------------------------------------------------------------- helpers
def snapshot(root: Path) -> dict[str, Any]:
    """Every entry under `root` (never following a symlink): a file's bytes and mode, a
    symlink's target, a directory's mode. Equal before and after = nothing changed."""
    seen: dict[str, Any] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                seen[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                seen[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                seen[rel] = ("file", path.read_bytes(), stat.S_IMODE(st.st_mode))
    return seen


class Recorder:
    """A runner that records what it is asked to run and answers 0."""

    def __init__(self, dry_run: bool = False):
        self.dry_run = dry_run
        self.commands: list[Command] = []
        self.notes: list[str] = []

    def run(self, command: Command, *, capture: bool = False) -> Result:
        self.commands.append(command)
        return Result(0)

    def note(self, text: str) -> None:
        self.notes.append(text)


def connector(runner: Recorder) -> Any:
    """This machine's connector around the recorder; the dry one around that for a dry run
    (its printed lines in `.out`, what it was given in `.commands`)."""
    host = LocalHost(runner)
    return DryHost(host, out=io.StringIO()) if runner.dry_run else host


def never_asked(question: str) -> bool:
    raise AssertionError(f"asked {question!r}")


@pytest.fixture(autouse=True)
def _home_env(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(home))  # Path.home() of the purge guard


def stack_at(repo: Path, home: Path, state_root: Path, extra: str = "") -> StackConfig:
    (repo / "docker" / "config" / "dev.env").write_text(f"ODOO_STATE_ROOT={state_root}\n{extra}")
    return load_stack("dev", repo_root=repo, home=home, environ={})


def make_stack_dir(root: Path, project: str | None = "opw-dev") -> None:
    """A state root as a stack leaves it: data in every part, and the marker of `project`."""
    for name, size in (("postgres/base/1", 3000), ("postgres/PG_VERSION", 3), ("filestore/opw_dev/ab/cd", 1000),
                       ("logs/odoo.log", 200), ("snapshots/s1.dump", 500), (".env", 50), ("releases.log", 7)):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    # a hardlinked filestore snapshot shares the filestore's inodes: counted once
    (root / "snapshots" / "s1.filestore").mkdir()
    os.link(root / "filestore/opw_dev/ab/cd", root / "snapshots" / "s1.filestore" / "cd")
    if project is not None:
        (root / MARKER).write_text(marker_text(project, "dev"))


# ---------------------------------------------------------------- the marker
def test_the_first_render_marks_the_state_root_and_later_ones_keep_the_marker(repo, home, tmp_path) -> None:
    stack = stack_at(repo, home, tmp_path / "state")
    render_dotenv(stack, SECRETS, tag="dev-1a2b3c4")
    marker = stack.state_root / MARKER
    first = marker.read_text()
    data = json.loads(first)
    assert set(data) == {"project", "env", "created"} and (data["project"], data["env"]) == ("opw-dev", "dev")
    assert stat.S_IMODE(marker.stat().st_mode) == 0o644
    render_dotenv(stack, SECRETS, tag="dev-2b3c4d5")
    assert marker.read_text() == first  # never rewritten


@pytest.mark.parametrize(("content", "message"), [
    (marker_text("opw-other", "dev"),
     "{root} is the state root of the stack 'opw-other' ({root}/.odoo-ai-stack), not of 'opw-dev': "
     "two stacks must not share a state root"),
    ("not json\n", "{root}/.odoo-ai-stack is not an odoo-ai marker (JSON naming the project): refusing to use "
                   "{root} as the state root of 'opw-dev'"),
    ('{"env": "dev"}', "{root}/.odoo-ai-stack is not an odoo-ai marker (JSON naming the project): refusing to use "
                       "{root} as the state root of 'opw-dev'"),
    (None, "{root}/.odoo-ai-stack is a symbolic link, not an odoo-ai marker"),
])
def test_a_render_into_another_stacks_state_root_is_refused_and_writes_nothing(
        repo, home, tmp_path, content, message) -> None:
    root = tmp_path / "state"
    root.mkdir()
    if content is None:  # a symlink by the marker's name, even to a valid marker
        (tmp_path / "elsewhere").write_text(marker_text("opw-dev", "dev"))
        (root / MARKER).symlink_to(tmp_path / "elsewhere")
    else:
        (root / MARKER).write_text(content)
    stack = stack_at(repo, home, root)
    before = snapshot(tmp_path)
    for attempt in (lambda: render_dotenv(stack, SECRETS, tag="dev-1a2b3c4"),
                    lambda: render_dotenv(stack, {}, tag="dev-1a2b3c4", allow_generate=True),
                    lambda: stack_uc.up(stack, connector(Recorder()), environ=SECRETS, tag="dev-1a2b3c4", tag_from_cli=True,
                                        wait_timeout=0),
                    lambda: stack_uc.up(stack, connector(Recorder(dry_run=True)), environ=SECRETS, tag="dev-1a2b3c4",
                                        tag_from_cli=True, wait_timeout=0)):
        with pytest.raises(ConfigError) as info:
            attempt()
        assert info.value.message == message.format(root=root)
        assert info.value.exit_code == ExitCode.USAGE
        assert snapshot(tmp_path) == before


def test_the_deploy_claims_through_the_connector(tmp_path) -> None:
    """What deploy/engine.py's render step calls with the connector's read and write."""
    files: dict[Path, str] = {}
    writes: list[Path] = []

    def write(path: Path, text: str) -> None:
        writes.append(path)
        files[path] = text

    root = Path("/opt/odoo-ai/data/opw-dev")
    args = dict(read_text=files.get, write=write)
    assert claim_state_root(root, "opw-dev", "dev", **args) is True
    assert json.loads(files[root / MARKER])["project"] == "opw-dev"
    assert claim_state_root(root, "opw-dev", "dev", **args) is False and writes == [root / MARKER]
    with pytest.raises(ConfigError, match=r"is the state root of the stack 'opw-dev' .* not of 'opw-testing'"):
        claim_state_root(root, "opw-testing", "testing", **args)
    assert writes == [root / MARKER]


# ---------------------------------------------------------------- purge: refusals
def _refusal_cases(tmp_path: Path, home: Path) -> dict[str, tuple[Path, str]]:
    """name -> (the configured state root, after setting it up; the expected message)."""
    cases: dict[str, tuple[Path, str]] = {}

    root = tmp_path / "plain"  # an unrelated directory that was never a stack
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "thesis.tex").write_text("years of work")
    cases["no marker"] = (root, f"refusing to delete {root}: it carries no odoo-ai marker (.odoo-ai-stack): odoo-ai "
                                "did not create it as opw-dev's state root; nothing deleted")

    root = tmp_path / "other"
    make_stack_dir(root, "opw-other")
    cases["another project's marker"] = (
        root, f"refusing to delete {root}: it is the state root of the stack 'opw-other', not of 'opw-dev'; "
              "nothing deleted")

    root = tmp_path / "garbled"
    make_stack_dir(root, None)
    (root / MARKER).write_text("{opw-dev")
    cases["a marker that is not one"] = (
        root, f"refusing to delete {root}: {root}/{MARKER} is not an odoo-ai marker; nothing deleted")

    root = tmp_path / "dirmarker"
    make_stack_dir(root, None)
    (root / MARKER).mkdir()
    cases["a directory by the marker's name"] = (
        root, f"refusing to delete {root}: {root}/{MARKER} is not a regular file, not an odoo-ai marker; "
              "nothing deleted")

    root = tmp_path / "linkmarker"
    make_stack_dir(root, None)
    (tmp_path / "stolen-marker").write_text(marker_text("opw-dev", "dev"))
    (root / MARKER).symlink_to(tmp_path / "stolen-marker")
    cases["a symlinked marker"] = (
        root, f"refusing to delete {root}: {root}/{MARKER} is a symbolic link, not an odoo-ai marker; "
              "nothing deleted")

    root = tmp_path / "afile"
    root.write_text("not a directory")
    cases["not a directory"] = (root, f"refusing to delete {root}: it is not a directory; nothing deleted")

    target = tmp_path / "real-stack"
    make_stack_dir(target)  # even a marked stack is not deleted through a symlink
    root = tmp_path / "link"
    root.symlink_to(target)
    cases["a symlink as the state root"] = (
        root, f"refusing to delete {root}: it is a symbolic link (to {target}), not the stack's own directory; "
              "nothing deleted")

    # A symlink above the state root that lands it on the user's home: marked, still refused.
    (tmp_path / "alias").symlink_to(tmp_path)
    root = tmp_path / "alias" / "home"
    make_stack_dir(home)
    cases["a path that resolves to the home"] = (
        root, f"refusing to delete {root}: {root} (really {home}) is your home directory; nothing deleted")
    return cases


CASES = ["no marker", "another project's marker", "a marker that is not one", "a directory by the marker's name",
         "a symlinked marker", "not a directory", "a symlink as the state root", "a path that resolves to the home"]


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_purge_refuses_with_one_line_and_changes_nothing(repo, home, tmp_path, case, dry_run) -> None:
    root, message = _refusal_cases(tmp_path, home)[case]
    stack = stack_at(repo, home, root)
    said: list[str] = []
    runner = Recorder(dry_run=dry_run)
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError) as info:
        stack_uc.down(stack, connector(runner), volumes=False, purge=True, yes=True, confirm=never_asked, say=said.append)
    assert info.value.message == message and "\n" not in message
    assert info.value.exit_code == ExitCode.USAGE
    assert runner.commands == [] and said == []  # not even the containers were stopped
    assert snapshot(tmp_path) == before


def test_a_missing_state_root_is_nothing_to_purge(repo, home, tmp_path) -> None:
    stack = stack_at(repo, home, tmp_path / "never")
    said: list[str] = []
    result = stack_uc.down(stack, connector(Recorder()), volumes=False, purge=True, confirm=never_asked, say=said.append)
    assert said == [f"nothing to purge: {tmp_path / 'never'} does not exist"]
    assert result["purged"] is False and not (tmp_path / "never").exists()


# ---------------------------------------------------------------- purge: what it deletes
def test_purge_lists_each_part_with_its_size_then_deletes_only_the_state_root(repo, home, tmp_path) -> None:
    root = tmp_path / "state"
    make_stack_dir(root)
    (tmp_path / "outside-logs").mkdir()
    (tmp_path / "outside-logs" / "odoo.log").write_text("kept")
    stack = stack_at(repo, home, root, f"ODOO_LOG_DIR={tmp_path / 'outside-logs'}\n")
    (root / ".env").write_text("x" * 50)  # down runs compose down when the stack was brought up
    said: list[str] = []
    runner = Recorder()
    result = stack_uc.down(stack, connector(runner), volumes=False, purge=True, yes=True, confirm=never_asked,
                           say=said.append)
    marker = json.loads(marker_text("opw-dev", "dev"))
    parts = {p["what"]: (p["bytes"], p["files"]) for p in result["purge"]["parts"]}
    # logs/odoo.log is under the state root but ODOO_LOG_DIR points elsewhere: it is "the rest"
    assert parts == {"database": (3003, 2), "filestore": (1000, 1), "snapshots": (500, 2),
                     "the rest": (50 + 7 + 200 + len(marker_text("opw-dev", "dev")), 4)}
    assert result["purge"]["kept_outside"] == [{"what": "logs", "path": str(tmp_path / "outside-logs")}]
    assert result["purge"]["marker"]["project"] == marker["project"]
    assert said[0].startswith(f"purge deletes {root} (marker: opw-dev, created ")
    assert said[1].split() == ["database", "2.9", "KiB", "2", "files", str(root / "postgres")]
    assert said[2].split() == ["filestore", "1000", "B", "1", "file", str(root / "filestore")]
    assert said[-1] == f"  kept: logs {tmp_path / 'outside-logs'} (outside the state root)"
    assert result["purged"] is True and result["removed"] is True
    assert not root.exists() and (tmp_path / "outside-logs" / "odoo.log").read_text() == "kept"
    assert [c.argv[-4:] for c in runner.commands] == [["down", "--remove-orphans", "--timeout", "10"]]


@pytest.mark.parametrize(("yes", "answer", "outcome"), [
    (True, None, "deleted"),  # --yes: nothing asked
    (False, True, "deleted"),  # y on the terminal
    (False, False, "not confirmed: nothing stopped, nothing deleted ({root} stays)"),
    (False, None, "refusing to delete {root} without confirmation (no terminal to ask on): pass --yes; "
                  "nothing stopped, nothing deleted"),
])
def test_purge_asks_on_a_terminal_and_needs_yes_otherwise(repo, home, tmp_path, yes, answer, outcome) -> None:
    root = tmp_path / "state"
    make_stack_dir(root)
    stack = stack_at(repo, home, root)
    asked: list[str] = []

    def confirm(question: str) -> bool | None:
        asked.append(question)
        return answer

    runner = Recorder()
    before = snapshot(tmp_path)
    if outcome == "deleted":
        result = stack_uc.down(stack, connector(runner), volumes=False, purge=True, yes=yes, confirm=confirm,
                               say=lambda _line: None)
        assert result["purged"] is True and not root.exists()
    else:
        with pytest.raises(ConfigError) as info:
            stack_uc.down(stack, connector(runner), volumes=False, purge=True, yes=yes, confirm=confirm, say=lambda _line: None)
        assert info.value.message == outcome.format(root=root) and info.value.exit_code == ExitCode.USAGE
        assert snapshot(tmp_path) == before and runner.commands == []
    assert asked == ([] if yes else [f"Delete {root} and everything in it?"])


def test_the_dry_run_lists_and_deletes_nothing(repo, home, tmp_path) -> None:
    root = tmp_path / "state"
    make_stack_dir(root)
    stack = stack_at(repo, home, root)
    said: list[str] = []
    dry = connector(Recorder(dry_run=True))
    before = snapshot(tmp_path)
    result = stack_uc.down(stack, dry, volumes=False, purge=True, confirm=never_asked, say=said.append)
    assert said[0].startswith(f"purge would delete {root} (marker: opw-dev")
    printed = dry.out.getvalue().splitlines()
    assert f"# rm -r {root} (its marker of opw-dev checked again first; the marker goes last)" in printed
    assert dry.inner.runner.commands == []  # nothing ran (no .env: no compose down either)
    assert result["purge"]["files"] == 9
    assert snapshot(tmp_path) == before


def test_a_marker_swapped_after_the_listing_stops_the_delete(repo, home, tmp_path) -> None:
    root = tmp_path / "state"
    make_stack_dir(root)
    stack = stack_at(repo, home, root)

    def confirm(_question: str) -> bool:
        (root / MARKER).write_text(marker_text("opw-other", "dev"))  # while the user reads the list
        return True

    with pytest.raises(ConfigError, match="it is the state root of the stack 'opw-other'"):
        stack_uc.down(stack, connector(Recorder()), volumes=False, purge=True, confirm=confirm, say=lambda _line: None)
    assert (root / "postgres" / "PG_VERSION").exists()


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"),
                                            (5 * 1024**3 + 1, "5.0 GiB")])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


# ---------------------------------------------------------------- the test runner's projects
def _test_project(tmp_path: Path, repo: Path, home: Path):
    from odoo_ai.testing import run as run_uc

    (repo / "docker" / "config" / "dev.env").write_text("ODOO_IMAGE=odoo-ai-test/odoo\n")
    stack = load_stack("dev", repo_root=repo, home=home, environ={})
    request = run_uc.RunRequest(tag="standin-tests_pass", modules="m")
    return run_uc, run_uc.prepare(stack, request, environ={}, suffix="0badc0de", tmp_root=tmp_path)


@pytest.mark.parametrize("tamper", ["another project's marker", "marker removed", "state dir swapped for a symlink"])
def test_the_test_runner_deletes_only_the_folder_it_created_and_marked(repo, home, tmp_path, capsys, tamper) -> None:
    from rich.console import Console

    from tests.unit.test_testrun import FakeRunner

    run_uc, prepared = _test_project(tmp_path, repo, home)
    state = prepared.project.state_dir
    victim = tmp_path / "victim"

    def during_the_run() -> None:
        assert json.loads((state / MARKER).read_text())["project"] == prepared.project.name
        if tamper == "another project's marker":
            (state / MARKER).write_text(marker_text("someone-else", "dev"))
        elif tamper == "marker removed":
            (state / MARKER).unlink()
        else:
            state.rename(victim)
            (victim / MARKER).write_text(marker_text(prepared.project.name, "dev"))
            state.symlink_to(victim)

    run_uc.execute(prepared, LocalHost(FakeRunner(None, 0, on_stream=during_the_run)),
                   Console(stderr=True, width=300, force_terminal=False))
    err = capsys.readouterr().err
    assert f"refusing to delete {state}" in err and f"cleanup of {prepared.project.name} incomplete" in err
    assert (state / ".env").exists() or (victim / ".env").exists()


def test_the_test_runner_still_removes_its_own_project(repo, home, tmp_path) -> None:
    from rich.console import Console

    from tests.unit.test_testrun import FakeRunner

    run_uc, prepared = _test_project(tmp_path, repo, home)
    run_uc.execute(prepared, LocalHost(FakeRunner(None, 0)), Console(stderr=True, force_terminal=False))
    assert not prepared.project.state_dir.exists()


def test_a_purge_stopped_half_way_keeps_the_marker_so_it_can_be_run_again(repo, home, tmp_path, monkeypatch) -> None:
    import shutil

    root = tmp_path / "state"
    make_stack_dir(root)
    stack = stack_at(repo, home, root)
    real = shutil.rmtree

    def denied(path, *args, **kw):
        if Path(path).name == "postgres":
            raise PermissionError(13, "Permission denied", "postgres/base")
        return real(path, *args, **kw)

    monkeypatch.setattr(shutil, "rmtree", denied)
    with pytest.raises(Exception) as info:
        stack_uc.down(stack, connector(Recorder()), volumes=False, purge=True, yes=True, say=lambda _line: None)
    assert info.value.message == (f"cannot delete all of {root}: Permission denied (postgres/base); the rest "
                                  "stays, marked: purge again once it can be deleted")
    assert info.value.exit_code == ExitCode.FAILED
    assert (root / MARKER).exists()
    monkeypatch.setattr(shutil, "rmtree", real)
    assert stack_uc.down(stack, connector(Recorder()), volumes=False, purge=True, yes=True, say=lambda _line: None)["purged"]
    assert not root.exists()
