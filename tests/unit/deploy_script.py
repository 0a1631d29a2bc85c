"""A scripted connector for table tests of the deploy engine: it records every command
(by `Command.purpose`, the planning function that made it) and answers from a script;
files live in memory. No Docker, no disk (besides the test's repo copy)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from odoo_ai.runners.base import Command, Result

Answer = Result | list[Result] | Callable[[Command], Result]


def ok(stdout: str = "") -> Result:
    return Result(0, stdout)


def image(revision: str = "c0ffee") -> Result:
    return ok(json.dumps({"id": "sha256:" + "1" * 64, "repo_digests": [],
                          "labels": {"org.opencontainers.image.revision": revision}}))


class ScriptedHost:
    remote = False
    dry_run = False

    def __init__(self, answers: dict[str, Answer] | None = None, *, files: dict[Path, str] | None = None,
                 webs: list[str] | None = None, services_up: bool = True):
        self.runner = self
        self.services_up = services_up
        self.webs = list(webs if webs is not None else ["old"])
        self.answers: dict[str, Answer] = {
            "image_inspect": image(), "read_addons_hash": ok("hash-new\n"), "db_exists": ok("1\n"),
            "db_state": ok("exists 1\ninitialized t\nchecksums f\n"), "db_now": ok("2026-11-29 10:00:00.000000\n"), "module_states": ok(""), "gate_modules": ok("pending\t0\n"), "tools_start": ok("tools1\n"),
            "project_containers": lambda c: ok(self.ps()),
            "gate_probe": ok('{"health": 200, "login": 200}\n'),
            "container_state": lambda c: ok(json.dumps({"name": f"/{c.argv[-1]}", "status": "running",
                                                        "restarts": 0, "exit": 0})),
            "web_container_ids": lambda c: ok("".join(f"{cid}\tstack-{cid}\n" for cid in self.webs)),
            **(answers or {}),
        }
        self.files: dict[Path, str] = dict(files or {})
        self.calls: list[Command] = []
        self.records: list[dict[str, Any]] = []
        self.slept: list[float] = []

    def ps(self) -> str:
        """`docker ps` of the project: db (healthy) and proxy when up, the web containers."""
        rows = [("db1", "db", "running", "Up 1 hour (healthy)"), ("proxy1", "proxy", "running", "Up 1 hour")] \
            if self.services_up else []
        rows += [(cid, "web", "running", "Up 5 minutes (healthy)") for cid in self.webs]
        return "".join(f"{cid}\t{svc}\t{state}\t{status}\tFalse\t\tstack-{cid}\n" for cid, svc, state, status in rows)

    # connector: commands
    def run(self, command: Command, *, capture: bool = True) -> Result:
        assert command.purpose, f"untagged command {command.argv}"
        self.calls.append(command)
        if command.purpose == "ensure_services":
            self.services_up = True
        if command.purpose == "start_web_beside":
            self.webs.append(f"new{len(self.calls)}")
        elif command.purpose == "remove_container" and command.argv[-1] in self.webs:
            self.webs.remove(command.argv[-1])
        answer = self.answers.get(command.purpose, ok())
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        return answer(command) if callable(answer) else answer

    def together(self, *calls: Callable[[], Any]) -> list[Any]:
        return [call() for call in calls]  # in order: the trace is the plan's order

    def note(self, text: str) -> None:
        pass

    def sleep(self, seconds: float, why: str = "") -> None:
        self.slept.append(seconds)

    # connector: files
    def read_text(self, path: Path) -> str | None:
        return self.files.get(path)

    def size(self, path: Path) -> int:
        return len(self.files.get(path) or "")

    def read_from(self, path: Path, offset: int, limit: int = 1 << 20) -> str:
        return (self.files.get(path) or "")[offset:offset + limit]

    def write_private(self, path: Path, text: str) -> None:
        self.files[path] = text

    def append_record(self, path: Path, record: dict) -> None:
        self.records.append(record)
        self.files[path] = (self.files.get(path) or "") + json.dumps({"schema": 1, **record}) + "\n"

    def replace(self, src: Path, dst: Path) -> None:
        self.files[dst] = self.files.pop(src)

    def copy(self, src: Path, dst: Path) -> None:
        if src in self.files:
            self.files[dst] = self.files[src]

    def unlink(self, path: Path) -> None:
        self.files.pop(path, None)

    def mkdir(self, path: Path) -> None:
        pass

    @contextmanager
    def lock(self, path: Path, *, command: str, timeout: float):
        class _Held:
            recovered = None

        yield _Held()

    def make_private_dir(self) -> Path:
        return Path("/tmp/scripted")

    def remove_tree(self, path: Path) -> None:
        pass

    # what the tests read
    def trace(self) -> list[str]:
        return [c.purpose for c in self.calls]

    def argv(self, purpose: str, index: int = 0) -> list[str]:
        return [c.argv for c in self.calls if c.purpose == purpose][index]
