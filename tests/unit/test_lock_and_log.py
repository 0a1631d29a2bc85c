from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from odoo_ai.lock import EnvLock, LockHeld
from odoo_ai.releases import append_release, current_release, read_releases


def test_second_lock_refuses_with_holder(tmp_path: Path) -> None:
    path = tmp_path / "opw-dev" / "deploy.lock"
    with EnvLock(path, command="deploy dev dev-1"):
        with pytest.raises(LockHeld) as info:
            EnvLock(path, command="rollback dev", timeout=0.3).acquire()
    message = info.value.message
    assert "locked by deploy dev dev-1" in message and f"pid {os.getpid()}" in message and "since" in message
    with EnvLock(path, command="again") as lock:  # released on exit
        assert lock.recovered is None


def test_lock_of_a_killed_holder_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "deploy.lock"
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]);"
        "from pathlib import Path; from odoo_ai.lock import EnvLock;"
        "EnvLock(Path(sys.argv[1]), command='deploy dev dev-killed').acquire();"
        "print('locked', flush=True); time.sleep(60)"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    child = subprocess.Popen([sys.executable, "-c", code, str(path), src], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    with pytest.raises(LockHeld):
        EnvLock(path, command="deploy dev x", timeout=0.2).acquire()
    child.send_signal(signal.SIGKILL)
    child.wait()
    lock = EnvLock(path, command="deploy dev next", timeout=5).acquire()
    try:
        assert lock.recovered is not None and lock.recovered.command == "deploy dev dev-killed"
    finally:
        lock.release()


def test_waits_for_a_lock_that_frees_up(tmp_path: Path) -> None:
    path = tmp_path / "deploy.lock"
    first = EnvLock(path, command="one").acquire()
    start = time.monotonic()
    threading.Timer(0.5, first.release).start()
    with EnvLock(path, command="two", timeout=5) as second:
        assert time.monotonic() - start >= 0.4
        assert second.recovered is None  # a clean release leaves no note


def _append_many(path: str, writer: int, count: int) -> None:
    for i in range(count):
        append_release(Path(path), {"status": "success", "env": "dev", "image_tag": f"dev-{writer}-{i}",
                                    "pad": "x" * 3000})


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "releases.log"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 200
    assert all(json.loads(line)["pad"] == "x" * 3000 for line in lines)


def test_torn_last_line_never_corrupts_earlier_or_later_lines(tmp_path: Path) -> None:
    path = tmp_path / "releases.log"
    append_release(path, {"status": "success", "image_tag": "dev-1"})
    with open(path, "ab") as handle:  # a writer killed mid-line
        handle.write(b'{"status": "success", "image_ta')
    append_release(path, {"status": "failed", "image_tag": "dev-2"})
    problems: list[str] = []
    records = read_releases(path, on_error=lambda p, n, why: problems.append(f"{n}: {why}"))
    assert [r["image_tag"] for r in records] == ["dev-1", "dev-2"]
    assert len(problems) == 1 and problems[0].startswith("2:")
    assert current_release(records)["image_tag"] == "dev-1"
