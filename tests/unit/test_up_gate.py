"""`up` reports ready only once every web container passes the deploy's gate from inside
it (/web/health and /web/login?db= 200, Odoo's bus /websocket 101): /web/health through
the proxy answers while the bus (Odoo's gevent process, which imports Odoo anew) is still
starting. Scripted connector: the command sequence and the verdict."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from odoo_ai.config.stack import load_stack
from odoo_ai.runners.base import Result
from odoo_ai.stack import _wait_web_gate
from tests.unit.deploy_script import ScriptedHost, ok

NO_BUS = Result(1, '{"health": 200, "login": 200, "websocket": "ConnectionRefusedError: [Errno 111] Connection refused"}\n')
READY = ok('{"health": 200, "login": 200, "websocket": 101}\n')


@pytest.fixture
def stack(repo: Path, home: Path):
    return load_stack("dev", repo_root=repo, home=home)


def test_up_waits_until_the_bus_answers_on_every_web(stack) -> None:
    host = ScriptedHost({"gate_probe": [READY, NO_BUS, READY, READY]}, webs=["w1", "w2"])
    assert _wait_web_gate(stack, host, time.monotonic() + 60) is None
    # w1 passes, w2 has no bus yet: wait, then both again
    assert host.trace() == ["web_container_ids", "gate_probe", "gate_probe",
                            "web_container_ids", "gate_probe", "gate_probe"]
    assert [c.argv[-3:] for c in host.calls if c.purpose == "gate_probe"][:2] == [
        ["8069", stack.db_name, "2.0"], ["8069", stack.db_name, "2.0"]]
    assert [c.argv[2] for c in host.calls if c.purpose == "gate_probe"] == ["w1", "w2", "w1", "w2"]
    assert host.slept == [0.5]


def test_up_names_what_did_not_pass_at_the_deadline(stack) -> None:
    host = ScriptedHost({"gate_probe": NO_BUS}, webs=["w1"])
    last = _wait_web_gate(stack, host, time.monotonic())  # the deadline has passed: one round
    assert last == NO_BUS.stdout.strip() and host.trace() == ["web_container_ids", "gate_probe"]


def test_no_web_container_is_not_ready(stack) -> None:
    host = ScriptedHost(webs=[])
    assert _wait_web_gate(stack, host, time.monotonic()) == "no web container runs"
    assert host.trace() == ["web_container_ids"]
