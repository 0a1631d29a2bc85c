"""Pure planning of `docker compose` command lines for a stack."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from odoo_ai.config.settings import DEFAULT_DOCKER
from odoo_ai.config.stack import StackConfig
from odoo_ai.runners.base import Command

SERVICES = ("db", "web", "script-runner", "proxy", "cache")


def docker_binary() -> str:
    """The docker CLI for a command that has no stack at hand; with one, use `stack.docker`
    (the same ODOO_AI_DOCKER, resolved by load_stack)."""
    return os.environ.get("ODOO_AI_DOCKER") or DEFAULT_DOCKER


F = TypeVar("F", bound=Callable[..., Any])


def purpose(*, reads: bool = False) -> Callable[[F], F]:
    """Tag the command(s) a planning function returns with its name (`Command.purpose`)
    and whether they only read: what dry and scripted connectors answer by."""

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)

            def tag(command: Command) -> Command:
                return dataclasses.replace(command, purpose=fn.__name__, reads=reads)

            return [tag(c) for c in result] if isinstance(result, list) else tag(result)

        return wrapper  # type: ignore[return-value]

    return deco


def compose_base(stack: StackConfig, docker: str | None = None, env_file: Path | None = None) -> list[str]:
    argv = [
        docker or stack.docker, "compose",
        "--project-name", stack.project,
        "--project-directory", str(stack.repo_root),
    ]
    for path in stack.compose_files:
        argv += ["--file", str(path)]
    return argv + ["--env-file", str(env_file or stack.dotenv_path)]


def compose(stack: StackConfig, *args: str, timeout: float | None = None, env_file: Path | None = None) -> Command:
    return Command(compose_base(stack, env_file=env_file) + list(args), timeout=timeout)


@purpose()
def up(stack: StackConfig, services: list[str] | None = None, *, timeout: float = 600) -> Command:
    return compose(stack, "up", "--detach", "--remove-orphans", *(services or []), timeout=timeout)


@purpose()
def down(stack: StackConfig, *, volumes: bool = False, timeout: float = 300) -> Command:
    # `--profile *` so one-off script-runner containers and the cache go too.
    args = ["--profile", "*", "down", "--remove-orphans", "--timeout", "10"]
    if volumes:
        args.append("--volumes")
    return Command(compose_base(stack) + args, timeout=timeout)


def ps(stack: StackConfig) -> Command:
    return compose(stack, "ps", "--all", "--format", "json", timeout=60)


def logs(stack: StackConfig, services: list[str], *, follow: bool, tail: int | None) -> Command:
    args = ["logs", "--no-color", "--timestamps"]
    if follow:
        args.append("--follow")
    if tail is not None:
        args += ["--tail", str(tail)]
    return compose(stack, *args, *services)


def config_json(stack: StackConfig) -> Command:
    return compose(stack, "config", "--format", "json", timeout=60)
