"""Two small pieces of the drain that run for real here: `Host.together` (the connector's
way to run independent commands at once) and the proxy's wait for nginx's old workers
(PROXY_WORKERS_GONE_SH, run by `sh` as in the proxy container, against processes whose
title is an nginx worker's)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from odoo_ai.hosts import LocalHost, run_together
from odoo_ai.plan import deploy as plan
from odoo_ai.runners.dry import DryRunner


def test_together_runs_at_once_and_keeps_the_order() -> None:
    barrier = threading.Barrier(3, timeout=5)  # passes only if the three run at the same time

    def call(n: int):
        return lambda: (barrier.wait(), n)[1]

    assert LocalHost().together(call(1), call(2), call(3)) == [1, 2, 3]


def test_together_waits_for_all_then_raises_the_first_error() -> None:
    ended: list[str] = []

    def slow() -> str:
        time.sleep(0.2)
        ended.append("slow")
        return "slow"

    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_together([boom, slow], at_once=True)
    assert ended == ["slow"]


def test_a_dry_connector_runs_them_one_after_the_other() -> None:
    order: list[str] = []
    host = LocalHost(DryRunner())
    host.together(lambda: order.append(threading.current_thread().name),
                  lambda: order.append(threading.current_thread().name))
    assert order == [threading.main_thread().name] * 2


def worker(seconds: float) -> subprocess.Popen:
    """A process whose /proc/PID/cmdline reads like nginx's worker of a left configuration."""
    return subprocess.Popen(["nginx: worker process is shutting down", "-c", f"import time; time.sleep({seconds})"],
                            executable=sys.executable)


def gone(pids: list[int], seconds: float) -> tuple[str, float]:
    command = plan.proxy_workers_gone("proxy", [str(p) for p in pids], seconds)
    args = command.argv[command.argv.index("-c") + 1:]
    started = time.monotonic()
    out = subprocess.run(["sh", "-c", *args], capture_output=True, text=True, check=True, timeout=30).stdout
    return out.strip(), time.monotonic() - started


def test_the_drain_ends_as_soon_as_the_old_workers_are_gone() -> None:
    procs = [worker(0.3), worker(0.5)]
    reaper = threading.Thread(target=lambda: [p.wait() for p in procs])  # nginx's master reaps its workers
    reaper.start()
    try:
        answer, took = gone([p.pid for p in procs], 10.0)
    finally:
        reaper.join()
    assert answer == "gone" and 0.4 < took < 3.0


def test_the_drain_stops_waiting_at_its_bound() -> None:
    proc = worker(30)
    try:
        answer, took = gone([proc.pid], 0.3)
    finally:
        proc.kill()
        proc.wait()
    assert answer == "left" and took < 5.0


def test_pids_of_other_processes_do_not_hold_the_drain() -> None:
    other = subprocess.Popen(["sleep", "30"])  # not an nginx worker (a pid reused by something else)
    try:
        answer, _ = gone([other.pid, 999_999_999], 10.0)
    finally:
        other.kill()
        other.wait()
    assert answer == "gone"


# A fake nginx worker in a network namespace of its own (loopback only, so it can hold the
# proxy's ports 80, 8069 and 8072): it opens the connections named in argv[1] to itself and
# keeps them, as a worker of a left configuration holds its clients and upstreams.
FAKE_WORKER = r"""
import fcntl, socket, struct, sys, time
fcntl.ioctl(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0x8914, struct.pack("16sH14x", b"lo", 0x1 | 0x8))
servers = {}
for port in (80, 8069, 8072):
    servers[port] = socket.create_server(("127.0.0.1", port))
keep = []
for part in filter(None, sys.argv[1].split(",")):  # client: a browser on :80; ws/http: an upstream on 8072/8069
    port = {"client": 80, "ws": 8072, "http": 8069}[part]
    keep += [socket.create_connection(("127.0.0.1", port)), servers[port].accept()[0]]
print("ready", flush=True)
time.sleep(30)
"""


def worker_holding(connections: str, title: str = "nginx: worker process is shutting down") -> subprocess.Popen:
    launcher = f"import os, sys; os.execv(sys.executable, [{title!r}, '-c', {FAKE_WORKER!r}, {connections!r}])"
    proc = subprocess.Popen(["unshare", "--net", sys.executable, "-c", launcher], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize(("connections", "title", "answer"), [
    ("client,ws,client,ws", "nginx: worker process is shutting down", "gone"),  # websockets only: nothing to wait for
    ("", "nginx: worker process is shutting down", "gone"),  # nothing but its listening sockets
    ("client,ws,client", "nginx: worker process is shutting down", "left"),  # a request still being read
    ("client,ws,client,http", "nginx: worker process is shutting down", "left"),  # one passed on to Odoo
    ("", "nginx: worker process", "left"),  # the reload's QUIT not handled yet: it may still accept one
])
def test_a_worker_that_holds_only_websockets_does_not_hold_the_drain(connections: str, title: str,
                                                                      answer: str) -> None:
    proc = worker_holding(connections, title)
    try:
        got, took = gone([proc.pid], 0.5)
    finally:
        proc.kill()
        proc.wait()
    assert got == answer and (answer == "left" or took < 0.5), (connections, got, took)
