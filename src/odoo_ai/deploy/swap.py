"""A database swapped in under the live name while the web containers are paused, at an
instant none of their requests is inside the database: the one way the deploy's undo, a
rollback --restore-db, `db restore` and its undo put other data under the live name.

The swap's rename ends every session on the live database. Pausing the web alone froze
requests in flight with it: one frozen inside a transaction, or between taking its
connection and its first query, had that connection ended under it and failed (Odoo
answers 500, or sends /web/login to the database selector): under load, one failed deploy
in two or four had a request fail while its data was put back. So, when the proxy is known, it is paused first: new requests
wait at it (the kernel queues their connections) while those the web already has finish;
then the web is paused (its cron too) and the swap's SQL checks that no session on the
live database is inside a query or a transaction (plan.QUIET_SQL: cron, a script) before it
ends them. Both waits are bounded by QUIET_PATIENCE; then the swap goes ahead as before.
Everything is unpaused when the block ends, also on an error; a run killed meanwhile
leaves them paused, and the next run's recovery unpauses every paused container of the
project."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from odoo_ai.plan import deploy as plan
from odoo_ai.runners.base import Command, Result

QUIET_PATIENCE = 3.0  # seconds requests in flight get to finish before the swap ends their sessions
RECHECK = 0.05


def busy_sessions(result: Result) -> int:
    """How many sessions plan.QUIET_SQL found inside a query or a transaction (0: it swapped)."""
    words = result.stdout.split() if result.ok else []
    return int(words[1]) if len(words) > 1 and words[0] == "busy" and words[1].isdigit() else 0


def _inflight(run: Callable[[Command], Result], webs: list[str]) -> int | None:
    """HTTP requests the webs are serving (connections on Odoo's HTTP port); None: unknown."""
    total = 0
    for web in webs:
        result = run(plan.inflight_requests(web))
        count = result.stdout.strip()
        if not result.ok or not count.isdigit():
            return None
        total += int(count)
    return total


def wait_idle(run: Callable[[Command], Result], sleep: Callable[[float, str], None], webs: list[str],
              deadline: float, interval: float, why: str) -> None:
    """Until the webs serve no HTTP request (or it cannot be known), at most to `deadline`;
    `why` names the wait, with the count of requests in flight before it."""
    while time.monotonic() < deadline:
        inflight = _inflight(run, webs)
        if not inflight:
            return
        sleep(interval, f"{why}: {inflight} request(s) in flight")


@contextmanager
def paused_swap(run: Callable[[Command], Result], sleep: Callable[[float, str], None], webs: list[str],
                swap: Callable[[bool], Command], *, proxy: str | None = None,
                patience: float = QUIET_PATIENCE) -> Iterator[Result]:
    """Hold new requests at `proxy` (paused) and let the `webs` finish theirs; pause the webs;
    run `swap(force)` (SQL that starts with plan.QUIET_SQL): while it finds a session busy,
    unpause the webs, let it finish and pause them again. After `patience` seconds the
    waits end and the swap is forced. Yields the swap's result with everything still paused
    (the caller moves the filestore then); unpaused when the block ends."""
    deadline = time.monotonic() + patience
    holding = [proxy] if webs and proxy else []
    held = bool(holding) and run(plan.pause(holding)).ok
    paused = False
    try:
        if held:
            wait_idle(run, sleep, webs, deadline, RECHECK, "swap: new requests wait at the proxy")
        while True:
            paused = bool(webs) and run(plan.pause(webs)).ok
            result = run(swap(time.monotonic() >= deadline))
            busy = busy_sessions(result)
            if not busy:
                break
            if paused:
                run(plan.unpause(webs))
                paused = False
            sleep(RECHECK, f"swap: {busy} session(s) still inside the database")
        yield result
    finally:
        if paused:
            run(plan.unpause(webs))
        if held:
            run(plan.unpause(holding))
