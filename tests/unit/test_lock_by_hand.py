"""The lock by hand (odoo-ai lock acquire/status/release): the same flock as a deploy's,
held by a detached process; seen without being taken; freed by stopping that process only
after checking it really holds the lock. The remote scripts run here through a local
runner (sh, flock and setsid of util-linux, as on the Docker host)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from odoo_ai.errors import OdooAiError
from odoo_ai.hosts import LocalHost, RemoteHost
from odoo_ai.lock import EnvLock, Holder, LockHeld, hold_in_background, inspect_lock, stop_holder
from odoo_ai.runners.local import LocalRunner
from odoo_ai.runners.ssh import SshTarget

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_notes_round_trip_and_tolerate_what_they_do_not_know() -> None:
    me = Holder.me("deploy dev dev-1", message="why")
    assert Holder.parse(me.note()) == me
    assert Holder.parse(json.dumps({**json.loads(me.note()), "future": 1})) == me
    for bad in ("", "[]", "{}", '{"pid": "x", "host": "h", "actor": "a", "command": "c", "since": "s"}', "{no"):
        assert Holder.parse(bad) is None
    hand = Holder(1, "h", "alice", "lock acquire", "2026-01-01T00:00:00Z", "db upgrade", True)
    assert hand.describe() == "alice by hand (odoo-ai lock acquire, pid 1 on h) since 2026-01-01T00:00:00Z: db upgrade"
    assert Holder(7, "ci", "bob", "deploy dev x", "t", lock_pid=42).host_pid == 42


def test_a_lock_held_by_hand_stops_a_deploy_with_its_message_then_is_released(tmp_path: Path) -> None:
    path = tmp_path / "opw-dev" / "deploy.lock"
    holder = hold_in_background(path, message="database upgrade until 14:00", timeout=5)
    try:
        assert holder.manual and holder.message == "database upgrade until 14:00" and holder.pid != os.getpid()
        state = inspect_lock(path)
        assert state.held and state.holder == holder
        with pytest.raises(LockHeld) as info:
            EnvLock(path, command="deploy dev dev-2", timeout=0.3).acquire()
        assert "locked by" in info.value.message and "by hand" in info.value.message
        assert "database upgrade until 14:00" in info.value.message and "after waiting 0s" in info.value.message
        assert "lock release" in info.value.hint
        # a second hold waits, then refuses the same way
        with pytest.raises(LockHeld):
            hold_in_background(path, message="another", timeout=0.2)
    finally:
        assert stop_holder(path, holder.pid, wait=10)
    state = inspect_lock(path)
    assert not state.held and state.holder is None  # a clean release leaves no note
    with EnvLock(path, command="deploy dev dev-2") as lock:
        assert lock.recovered is None


def test_stop_holder_refuses_a_pid_that_does_not_hold_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "deploy.lock"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with EnvLock(path, command="deploy dev x"), pytest.raises(OdooAiError) as info:
            stop_holder(path, child.pid, wait=1)
        assert "does not hold the lock" in info.value.message
        assert child.poll() is None  # never signalled
    finally:
        child.kill()
        child.wait()


def test_a_live_deploy_is_seen_held_and_stopped_by_its_pid(tmp_path: Path) -> None:
    path = tmp_path / "deploy.lock"
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from pathlib import Path;"
            "from odoo_ai.lock import EnvLock; EnvLock(Path(sys.argv[1]), command='deploy dev dev-9').acquire();"
            "print('locked', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(path), SRC], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    state = inspect_lock(path)
    assert state.held and state.holder.command == "deploy dev dev-9" and state.holder.pid == child.pid
    assert not state.holder.manual
    assert stop_holder(path, child.pid, wait=10)
    child.wait(timeout=10)
    assert not inspect_lock(path).held


# ---------------------------------------------------------------- the remote scripts, run here
needs_util_linux = pytest.mark.skipif(not (shutil.which("flock") and shutil.which("setsid")),
                                      reason="flock/setsid (util-linux) missing")


@pytest.fixture
def remote_here() -> RemoteHost:
    """A RemoteHost whose commands run on this machine: its scripts, not ssh, under test."""
    return RemoteHost(SshTarget("example.invalid"), runner=LocalRunner())


@needs_util_linux
def test_the_remote_hold_status_and_release_scripts(tmp_path: Path, remote_here: RemoteHost) -> None:
    path = tmp_path / "opw-dev" / "deploy.lock"
    assert not remote_here.lock_state(path).held and remote_here.lock_state(path).holder is None  # absent
    holder = remote_here.hold_lock(path, message="maintenance: it's \"quoted\" $HOME", timeout=5)
    assert holder.manual and holder.message == "maintenance: it's \"quoted\" $HOME" and holder.host == os.uname().nodename
    seen = remote_here.lock_state(path)
    assert seen.held and seen.holder == holder
    assert inspect_lock(path).holder == holder  # the same flock and note as a local reader sees
    with pytest.raises(LockHeld) as info:  # a local deploy of the same state root
        EnvLock(path, command="deploy dev dev-3", timeout=0.2).acquire()
    assert "maintenance" in info.value.message
    with pytest.raises(LockHeld):
        remote_here.hold_lock(path, message="second", timeout=0)
    with pytest.raises(OdooAiError, match="does not hold the lock"):
        remote_here.stop_lock_holder(path, os.getpid(), wait=1)
    assert remote_here.stop_lock_holder(path, holder.pid, wait=10)
    state = remote_here.lock_state(path)
    assert not state.held and state.holder is None
    # and the local connector sees and takes it the same way
    local = LocalHost()
    again = local.hold_lock(path, message="local", timeout=1)
    assert remote_here.lock_state(path).holder == again
    assert remote_here.stop_lock_holder(path, again.pid, wait=10)


@needs_util_linux
def test_a_deploy_over_ssh_names_the_shell_that_holds_its_lock(tmp_path: Path) -> None:
    """RemoteLock's note carries `lock_pid`, its shell on the host: the process --force stops.
    (ssh replaced by a local shell: RemoteLock runs target.ssh_argv(line).)"""
    from odoo_ai.hosts import RemoteLock

    class Here(SshTarget):
        def ssh_argv(self, remote_command: str) -> list[str]:
            return ["sh", "-c", remote_command]

    path = tmp_path / "deploy.lock"
    with RemoteLock(Here("example.invalid"), path, command="deploy dev dev-4", timeout=5):
        state = inspect_lock(path)
        assert state.held and state.holder.command == "deploy dev dev-4"
        assert state.holder.lock_pid and state.holder.lock_pid != state.holder.pid
        assert state.holder.host_pid == state.holder.lock_pid
    deadline = time.monotonic() + 10
    while inspect_lock(path).held and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not inspect_lock(path).held
