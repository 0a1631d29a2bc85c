"""HTTP probes of a stack: Odoo's own /web/health, polled with a deadline."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Probe:
    url: str
    ok: bool
    status: int | None
    detail: str
    seconds: float


def probe(url: str, *, timeout: float = 3.0) -> Probe:
    start = time.monotonic()
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return Probe(url, False, None, f"{type(exc).__name__}: {exc}".strip(), time.monotonic() - start)
    return Probe(url, response.status_code == 200, response.status_code, response.text[:200], time.monotonic() - start)


def wait_healthy(url: str, *, timeout: float, interval: float = 0.5) -> Probe:
    """Poll `url` until it answers 200 or `timeout` seconds pass; returns the last probe."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe(url, timeout=min(3.0, max(timeout, 0.1)))
        if last.ok or time.monotonic() + interval > deadline:
            return last
        time.sleep(interval)
