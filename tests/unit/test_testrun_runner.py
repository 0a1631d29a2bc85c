"""The runner seam's `stream` (used by `test run`): real subprocesses, line by line,
stdout+stderr merged, capped lines, a timeout that kills the whole process group."""

from __future__ import annotations

import io
import os
import sys
import time

import pytest

from odoo_ai.errors import ExitCode, OdooAiError
from odoo_ai.runners import DryRunner, LocalRunner
from odoo_ai.runners.base import Command, CommandTimedOut
from odoo_ai.runners.local import _capped_lines


def py(code: str, timeout: float | None = 30) -> Command:
    return Command([sys.executable, "-c", code], timeout=timeout)


def test_lines_arrive_while_the_command_runs_with_both_streams_merged() -> None:
    code = (
        "import sys, time\n"
        "print('first', flush=True)\n"
        "time.sleep(0.5)\n"
        "print('to stderr', file=sys.stderr, flush=True)\n"
        "sys.stdout.write('crlf\\r\\nno newline at the end')\n"
        "sys.exit(3)\n"
    )
    seen: list[tuple[str, float]] = []
    start = time.monotonic()
    rc = LocalRunner().stream(py(code), lambda line: seen.append((line, time.monotonic() - start)))
    assert rc == 3
    assert [line for line, _ in seen] == ["first", "to stderr", "crlf", "no newline at the end"]
    assert seen[0][1] < seen[1][1] - 0.3  # the first line came before the sleep ended


def test_a_timeout_kills_the_process_group_and_raises() -> None:
    # The child starts a grandchild that keeps the pipe open: only a group kill ends it.
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    lines: list[str] = []
    start = time.monotonic()
    with pytest.raises(CommandTimedOut) as info:
        LocalRunner().stream(py(code, timeout=1), lines.append)
    assert time.monotonic() - start < 15
    assert lines == ["started"]
    assert info.value.exit_code == ExitCode.INFRA and "timed out after 1s" in info.value.message


def test_a_failing_callback_kills_the_command() -> None:
    def boom(line: str) -> None:
        raise RuntimeError("stop")

    start = time.monotonic()
    with pytest.raises(RuntimeError):
        LocalRunner().stream(py("import time\nprint('x', flush=True)\ntime.sleep(60)"), boom)
    assert time.monotonic() - start < 15


def test_missing_binary_is_an_infrastructure_error() -> None:
    with pytest.raises(OdooAiError) as info:
        LocalRunner().stream(Command(["/nonexistent/docker", "x"], timeout=5), lambda _l: None)
    assert info.value.exit_code == ExitCode.INFRA


def test_env_and_echo() -> None:
    echoed: list[str] = []
    lines: list[str] = []
    command = Command([sys.executable, "-c", "import os; print(os.environ['ODOO_AI_X'])"],
                      env={"ODOO_AI_X": "42"}, timeout=30)
    assert LocalRunner(echo=echoed.append).stream(command, lines.append) == 0
    assert lines == ["42"] and echoed == [command.display()]


def test_long_lines_are_capped_and_binary_is_decoded() -> None:
    data = b"a" * 10 + b"b" * 5 + b"\nok\n\xff\xfe\n"
    assert list(_capped_lines(io.BytesIO(data), max_bytes=10)) == ["a" * 10, "ok", "\ufffd\ufffd"]


def test_dry_runner_prints_and_runs_nothing(capsys, tmp_path) -> None:
    marker = tmp_path / "ran"
    runner = DryRunner()
    command = Command(["touch", str(marker)], timeout=5)
    assert runner.stream(command, lambda _l: pytest.fail("no output in a dry run")) == 0
    assert capsys.readouterr().out.strip() == command.display()
    assert runner.commands == [command] and not marker.exists()


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX only")
def test_stream_leaves_no_process_behind_after_timeout(tmp_path) -> None:
    pid_file = tmp_path / "pid"
    code = (
        "import os, subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "print('go', flush=True)\n"
        "time.sleep(60)\n"
    )
    with pytest.raises(CommandTimedOut):
        LocalRunner().stream(py(code, timeout=1), lambda _l: None)
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        # A killed but not yet reaped zombie still answers kill(0): check its state.
        try:
            with open(f"/proc/{grandchild}/stat") as fh:
                if fh.read().split(")")[-1].split()[0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the grandchild survived the timeout")


# ---------------------------------------------------------------- every connector streams


@pytest.fixture
def fake_ssh(tmp_path, monkeypatch):
    """An `ssh` first on PATH that runs the remote command line with sh, as sshd would;
    its own argv logged (the remote line is its last argument)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "ssh-argv.log"
    (bindir / "ssh").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nfor last; do :; done\nexec sh -c "$last"\n')
    (bindir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return log


def test_the_ssh_connector_streams_lines_back_and_times_out_like_the_local_one(fake_ssh) -> None:
    from odoo_ai.hosts import LocalHost, RemoteHost
    from odoo_ai.runners.ssh import SshTarget

    remote = RemoteHost(SshTarget.parse("ssh://tester@docker.example:2222"))
    code = "import sys, time\nprint('one', flush=True)\nprint('two', file=sys.stderr, flush=True)\nsys.exit(4)\n"
    lines: list[str] = []
    assert remote.stream(py(code), lines.append) == 4
    assert lines == ["one", "two"]
    assert "StrictHostKeyChecking=yes" in fake_ssh.read_text() and "-p 2222" in fake_ssh.read_text()

    slow = py("import time\nprint('x', flush=True)\ntime.sleep(60)", timeout=1)
    errors = []
    for host in (LocalHost(LocalRunner()), remote):
        start = time.monotonic()
        with pytest.raises(CommandTimedOut) as caught:
            host.stream(slow, lambda _l: None)
        assert time.monotonic() - start < 10
        errors.append(caught.value)
    assert all(e.exit_code == ExitCode.INFRA and e.message.startswith("timed out after 1s") for e in errors)
    assert " on ssh://tester@docker.example:2222: " in errors[1].message


def test_the_dry_connector_streams_nothing_and_runs_nothing(capsys) -> None:
    from odoo_ai.dryhost import DryHost
    from odoo_ai.hosts import LocalHost

    class NoRunner:
        dry_run = False

        def run(self, command, *, capture=False):
            raise AssertionError("the dry connector ran something")

    dry = DryHost(LocalHost(NoRunner()))
    assert dry.stream(py("print('never')"), lambda _l: pytest.fail("no output in a dry run")) == 0
    assert capsys.readouterr().out == py("print('never')").display() + "\n"
