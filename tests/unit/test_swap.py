"""deploy/swap.py: the web paused at an instant none of its requests is inside the database."""

from __future__ import annotations

import pytest

from odoo_ai.deploy.swap import busy_sessions, paused_swap
from odoo_ai.runners.base import Command, Result


class Fake:
    def __init__(self, answers: list[str], inflight: list[str] | None = None) -> None:
        self.answers, self.inflight, self.trace = list(answers), list(inflight or []), []

    def run(self, command: Command) -> Result:
        if command.argv[0] == "swap":
            self.trace.append(f"swap force={command.argv[1]}")
            return Result(0, self.answers.pop(0))
        if command.purpose == "inflight_requests":
            self.trace.append(f"inflight {command.argv[2]}")
            return Result(0, self.inflight.pop(0))
        self.trace.append(" ".join(command.argv[1:]))  # docker pause / unpause IDS
        return Result(0, "")

    def sleep(self, seconds: float, why: str = "") -> None:
        self.trace.append(f"sleep ({why})")


def swap(force: bool) -> Command:
    return Command(["swap", str(force)])


def test_busy_sessions_reads_the_quiet_checks_line() -> None:
    assert busy_sessions(Result(0, "busy 2\n")) == 2
    assert busy_sessions(Result(0, "swapped\tt\n")) == busy_sessions(Result(0, "")) == 0
    assert busy_sessions(Result(1, "busy 2\n")) == 0  # a failed swap is the caller's error, not a wait


def test_a_busy_database_is_let_go_until_its_requests_finish() -> None:
    fake = Fake(["busy 2\n", "busy 1\n", ""])
    with paused_swap(fake.run, fake.sleep, ["w1", "w2"], swap) as result:
        fake.trace.append("filestore")
    assert result.ok
    assert fake.trace == [
        "pause w1 w2", "swap force=False", "unpause w1 w2", "sleep (swap: 2 session(s) still inside the database)",
        "pause w1 w2", "swap force=False", "unpause w1 w2", "sleep (swap: 1 session(s) still inside the database)",
        "pause w1 w2", "swap force=False", "filestore", "unpause w1 w2"]


def test_the_proxy_holds_new_requests_while_the_webs_finish_theirs() -> None:
    fake = Fake(["busy 1\n", ""], inflight=["2", "0"])
    with paused_swap(fake.run, fake.sleep, ["w1"], swap, proxy="px"):
        fake.trace.append("filestore")
    assert fake.trace == [
        "pause px", "inflight w1", "sleep (swap: new requests wait at the proxy: 2 request(s) in flight)", "inflight w1",
        "pause w1", "swap force=False", "unpause w1", "sleep (swap: 1 session(s) still inside the database)",
        "pause w1", "swap force=False", "filestore", "unpause w1", "unpause px"]
    # nothing to serve (a rollback --restore-db retired the web): the proxy keeps answering its page
    fake = Fake([""])
    with paused_swap(fake.run, fake.sleep, [], swap, proxy="px"):
        pass
    assert fake.trace == ["swap force=False"]


def test_its_patience_spent_the_swap_is_forced() -> None:
    fake = Fake([""])
    with paused_swap(fake.run, fake.sleep, ["w1"], swap, patience=0):
        pass
    assert fake.trace == ["pause w1", "swap force=True", "unpause w1"]


def test_no_web_nothing_paused_and_an_error_in_the_block_still_unpauses() -> None:
    fake = Fake([""])
    with paused_swap(fake.run, fake.sleep, [], swap):
        pass
    assert fake.trace == ["swap force=False"]
    fake = Fake([""])
    with pytest.raises(RuntimeError), paused_swap(fake.run, fake.sleep, ["w1"], swap):
        raise RuntimeError("filestore move failed")
    assert fake.trace == ["pause w1", "swap force=False", "unpause w1"]
