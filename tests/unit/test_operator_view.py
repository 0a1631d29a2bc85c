"""The operator's view (issue 16) without Docker: status's pure parts (what runs against
the release, the host's answers), the release table fitted to a width, the lock by hand
through the CLI, the post-release hook, --version, shell completion, NO_COLOR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from odoo_ai.cli.common import confirm
from odoo_ai.cli.deploy import RELEASE_COLUMNS, fit_columns, releases_table
from odoo_ai.config.stack import load_stack
from odoo_ai.errors import ConfigError, ExitCode, OdooAiError
from odoo_ai.hooks import run_post_release_hook
from odoo_ai.plan import status as splan
from odoo_ai.stack import drift, image_matches

WEB = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def odoo_ai(*args: str, repo: Path, home: Path, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "odoo_ai", "--repo", str(repo), "--config-dir", str(repo / "docker" / "config"), *args],
        capture_output=True, text=True, timeout=timeout,
        env={"HOME": str(home), "PATH": os.environ["PATH"], **(env or {})},
    )


def release(tag: str = "dev-1a2b3c4", web: str = WEB, **extra) -> dict:
    return {"schema": "odoo-ai.release/1", "timestamp": "2026-11-25T10:00:00Z", "env": "dev", "kind": "deploy",
            "image_tag": tag, "commit": "1a2b3c4d5e6f7a8b9c0d", "digests": {"web": web, "script-runner": OTHER},
            "status": "success", "phase": None, "duration": 42.5, "actor": "alice", **extra}


def container(service: str = "web", image_id: str = WEB, **extra) -> dict:
    return {"name": f"opw-dev-{service}-1", "service": service, "oneoff": False, "update": False, "state": "running",
            "image": f"odoo-ai/odoo-{service}:dev-1a2b3c4", "image_id": image_id, "repo_digests": [], **extra}


# ---------------------------------------------------------------- status: what runs vs the release
def test_what_runs_is_compared_with_the_release_by_digest() -> None:
    rendered = {"ODOO_IMAGE_TAG": "dev-1a2b3c4"}
    assert drift(release(), [container(), container("db", OTHER)], rendered) == []
    # a registry image: the release recorded its repo digest, the container runs its image id
    pulled = container(image_id=OTHER, repo_digests=[f"ghcr.io/o/odoo-web@{WEB}"])
    assert image_matches(pulled, WEB) and drift(release(), [pulled], rendered) == []
    wrong = drift(release(), [container(image_id=OTHER, image="odoo-ai/odoo-web:dev-9999999")], rendered)
    assert len(wrong) == 1 and "runs odoo-ai/odoo-web:dev-9999999" in wrong[0] and "not the release dev-1a2b3c4" in wrong[0]
    assert "no web container runs" in drift(release(), [container("db", OTHER)], rendered)[0]
    assert "rendered .env names tag dev-9999999" in drift(release(), [container()], {"ODOO_IMAGE_TAG": "dev-9999999"})[0]
    assert drift(None, [container(image_id=OTHER)], rendered) == []  # no release recorded: nothing to differ from
    stopped = container(image_id=OTHER, state="exited")
    assert len(drift(release(), [container(), stopped], rendered)) == 0  # only running webs count


def test_the_hosts_answers_are_parsed() -> None:
    inspect = [{"Id": "c" * 64, "Name": "/opw-dev-web-1", "Image": WEB, "RestartCount": 2,
                "Config": {"Image": "odoo-ai/odoo-web@" + WEB, "Labels": {"com.docker.compose.service": "web"}},
                "State": {"Status": "running", "Health": {"Status": "healthy"}, "StartedAt": "2026-11-25T10:00:00Z"}},
               {"Id": "d" * 64, "Name": "/opw-dev-update-1", "Image": OTHER,
                "Config": {"Image": "x", "Labels": {"com.docker.compose.service": "script-runner",
                                                    "com.docker.compose.oneoff": "True", "org.odoo-ai.role": "update"}},
                "State": {"Status": "running"}}]
    images = [{"Id": WEB, "RepoDigests": ["odoo-ai/odoo-web@" + WEB]}]
    rows = splan.parse_containers(json.dumps(inspect) + f"\n{splan.SEPARATOR}\n" + json.dumps(images))
    assert [r["service"] for r in rows] == ["script-runner", "web"]
    web = rows[1]
    assert web["name"] == "opw-dev-web-1" and web["health"] == "healthy" and web["restarts"] == 2
    assert web["repo_digests"] == ["odoo-ai/odoo-web@" + WEB] and not web["oneoff"]
    assert rows[0]["oneoff"] and rows[0]["update"]
    assert splan.parse_containers("") == []
    parts, total = splan.parse_disk(f"8\t/s/postgres\n4\t/s/snapshots\n{splan.SEPARATOR}\n16\t/s\n")
    assert parts == {"/s/postgres": 8, "/s/snapshots": 4} and total == 16
    probe = splan.parse_probe('{"path": "/web/health", "status": 200, "ms": 3.5, "error": null}\nnoise\n')
    assert probe["/web/health"]["status"] == 200


def test_the_disk_script_counts_a_hardlinked_snapshot_once(tmp_path: Path) -> None:
    (tmp_path / "filestore").mkdir()
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "filestore" / "f").write_bytes(b"x" * 100_000)
    os.link(tmp_path / "filestore" / "f", tmp_path / "snapshots" / "f")
    cmd = splan.disk_usage(tmp_path, [tmp_path / "filestore", tmp_path / "snapshots", tmp_path / "missing"])
    out = subprocess.run(cmd.argv, capture_output=True, text=True, check=True).stdout
    parts, total = splan.parse_disk(out)
    assert parts[str(tmp_path / "filestore")] >= 98 and parts[str(tmp_path / "snapshots")] < 20
    assert str(tmp_path / "missing") not in parts and total >= 98


def test_the_host_probe_measures_health_and_login(tmp_path: Path) -> None:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200 if self.path.startswith(("/web/health", "/web/login?db=opw_dev")) else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cmd = splan.http_probe(f"http://127.0.0.1:{server.server_port}", ["/web/health", "/web/login?db=opw_dev"])
        answers = splan.parse_probe(subprocess.run(cmd.argv, capture_output=True, text=True, check=True).stdout)
    finally:
        server.shutdown()
    assert answers["/web/health"]["status"] == 200 and answers["/web/login?db=opw_dev"]["status"] == 200
    assert answers["/web/health"]["ms"] >= 0


# ---------------------------------------------------------------- releases: fitted, wide, plain
def test_the_release_columns_fit_the_width_cutting_then_dropping_the_least_useful() -> None:
    natural = [1, 19, 8, 11, 12, 12, 7, 6, 8, 19]
    assert fit_columns(natural, 500) == natural
    at_80 = fit_columns(natural, 80)
    shown = [RELEASE_COLUMNS[i][0] for i, w in enumerate(at_80) if w is not None]
    assert shown == ["", "time (UTC)", "tag", "commit", "digest", "status", "phase", "duration"]
    assert sum(w for w in at_80 if w) + 2 * (len(shown) - 1) <= 80
    at_100 = fit_columns(natural, 100)
    assert at_100[9] is not None and at_100[9] < 19  # the actor is cut before anything goes


def test_the_release_table_rendered(repo: Path) -> None:
    from rich.console import Console

    records = [release(), release("dev-5e6f7a8", OTHER, status="failed", phase="update", actor="bob")]
    console = Console(width=300, record=True, color_system=None)
    console.print(releases_table(records, records[0], title="t", wide=True))
    text = console.export_text()
    assert WEB in text and "1a2b3c4d5e6f7a8b9c0d" in text and "update" in text and "42.5s" in text
    narrow = Console(width=80, record=True, color_system=None)
    narrow.print(releases_table(records, records[0], title="t", width=80))
    lines = narrow.export_text().splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines)
    assert any(line.startswith("*") and "2026-11-25 10:00:00" in line for line in lines)


def test_releases_in_a_pipe_are_unabridged_and_json_has_them_all(repo: Path, home: Path) -> None:
    root = home / "odoo-ai" / "opw-dev"
    root.mkdir(parents=True)
    long_actor = "a-very-long-actor-name-from-a-ci-system-that-never-ends"
    (root / "releases.log").write_text("\n".join(json.dumps(r) for r in (
        release(), release("dev-5e6f7a8", OTHER, status="failed", phase="gate", actor=long_actor))) + "\n")
    proc = odoo_ai("releases", "dev", repo=repo, home=home, env={"COLUMNS": ""})
    assert proc.returncode == 0, proc.stderr
    assert long_actor in proc.stdout and "\x1b[" not in proc.stdout and "│" not in proc.stdout
    wide = odoo_ai("releases", "dev", "--wide", repo=repo, home=home)
    assert WEB in wide.stdout
    doc = json.loads(odoo_ai("releases", "dev", "--json", repo=repo, home=home).stdout)
    assert [r["image_tag"] for r in doc["releases"]] == ["dev-1a2b3c4", "dev-5e6f7a8"]
    assert doc["current"]["image_tag"] == "dev-1a2b3c4"
    # NO_COLOR: no escape codes even where colour is forced
    forced = odoo_ai("releases", "dev", repo=repo, home=home, env={"FORCE_COLOR": "1", "COLUMNS": "200"})
    assert "\x1b[" in forced.stdout
    plain = odoo_ai("releases", "dev", repo=repo, home=home, env={"FORCE_COLOR": "1", "NO_COLOR": "1", "COLUMNS": "200"})
    assert "\x1b[" not in plain.stdout and "dev-5e6f7a8" in plain.stdout


# ---------------------------------------------------------------- the lock by hand, through the CLI
def test_lock_by_hand_through_the_cli(repo: Path, home: Path) -> None:
    root = home / "odoo-ai" / "opw-dev"
    free = json.loads(odoo_ai("lock", "status", "dev", "--json", repo=repo, home=home).stdout)
    assert free["held"] is False and free["summary"] == "free"
    taken = odoo_ai("lock", "acquire", "dev", "-m", "db upgrade until 14:00", "--json", repo=repo, home=home,
                    env={"USER": "alice"})
    assert taken.returncode == 0, taken.stderr
    holder = json.loads(taken.stdout)["holder"]
    try:
        assert holder["manual"] and holder["message"] == "db upgrade until 14:00" and holder["actor"] == "alice"
        status = json.loads(odoo_ai("lock", "status", "dev", "--json", repo=repo, home=home).stdout)
        assert status["held"] and status["holder"]["pid"] == holder["pid"]
        human = odoo_ai("lock", "status", "dev", repo=repo, home=home).stdout
        assert "alice by hand" in human and "db upgrade until 14:00" in human
        again = odoo_ai("lock", "acquire", "dev", "-m", "me too", "--lock-timeout", "0", repo=repo, home=home)
        assert again.returncode == 1 and "db upgrade until 14:00" in again.stderr
        # up/down and deploys take the same lock: an up waits its timeout, then says why
        # (a deploy's refusal is the same LockHeld, tested in test_lock_by_hand.py)
    finally:
        released = odoo_ai("lock", "release", "dev", "--json", repo=repo, home=home)
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)["released"] is True
    assert json.loads(odoo_ai("lock", "status", "dev", "--json", repo=repo, home=home).stdout)["held"] is False
    assert (root / "deploy.lock").read_text() == ""
    nothing = odoo_ai("lock", "release", "dev", repo=repo, home=home)
    assert nothing.returncode == 0 and "free" in nothing.stdout


def test_releasing_a_live_processs_lock_needs_force_and_yes(repo: Path, home: Path, tmp_path: Path) -> None:
    path = home / "odoo-ai" / "opw-dev" / "deploy.lock"
    src = str(Path(__file__).resolve().parents[2] / "src")
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from pathlib import Path;"
            "from odoo_ai.lock import EnvLock; EnvLock(Path(sys.argv[1]), command='deploy dev dev-7').acquire();"
            "print('locked', flush=True); time.sleep(120)")
    child = subprocess.Popen([sys.executable, "-c", code, str(path), src], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        refused = odoo_ai("lock", "release", "dev", repo=repo, home=home)
        assert refused.returncode == 2 and f"pid {child.pid}" in refused.stderr and "deploy dev dev-7" in refused.stderr
        unasked = odoo_ai("lock", "release", "dev", "--force", repo=repo, home=home)
        assert unasked.returncode == 2 and "without confirmation" in unasked.stderr and child.poll() is None
        forced = odoo_ai("lock", "release", "dev", "--force", "--yes", "--json", repo=repo, home=home)
        assert forced.returncode == 0, forced.stderr
        assert json.loads(forced.stdout)["forced"] is True
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_confirm_refuses_without_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    confirm("Really?", yes=True, what="x")  # --yes: no question
    with pytest.raises(OdooAiError) as info:
        confirm("Really?", yes=False, what="delete 3 image(s)")
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message == ("refusing to delete 3 image(s) without confirmation (no terminal to ask on): "
                                  "pass --yes; nothing changed")


# ---------------------------------------------------------------- the post-release hook
def test_the_hook_gets_the_record_on_stdin_and_never_raises(tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    script = tmp_path / "hook.py"
    script.write_text("import json, os, sys\nrecord = json.load(sys.stdin)\n"
                      f"open({str(seen)!r}, 'w').write(json.dumps([record, os.environ['ODOO_AI_RELEASE_STATUS']]))\n"
                      "print('posted')\n")
    ok = run_post_release_hook([sys.executable, str(script)], release(), timeout=10)
    assert ok.ok and ok.exit_code == 0 and ok.output == "posted"
    record, status = json.loads(seen.read_text())
    assert record["image_tag"] == "dev-1a2b3c4" and status == "success"
    failed = run_post_release_hook([sys.executable, "-c", "import sys; print('chat down'); sys.exit(3)"],
                                   release(), timeout=10)
    assert not failed.ok and failed.exit_code == 3 and "exit 3" in failed.note and "chat down" in failed.note
    start = time.monotonic()
    hung = run_post_release_hook(["sh", "-c", "sleep 60 & sleep 60"], release(), timeout=1)
    assert not hung.ok and hung.exit_code is None and "timed out after 1s" in hung.note
    assert time.monotonic() - start < 10
    missing = run_post_release_hook([str(tmp_path / "nope")], release(), timeout=1)
    assert not missing.ok and "did not start" in missing.note
    assert run_post_release_hook([], release(), timeout=1) is None


def test_the_hook_settings(repo: Path, home: Path) -> None:
    env_file = repo / "docker" / "config" / "dev.env"
    env_file.write_text("ODOO_POST_RELEASE_HOOK=scripts/post.sh --channel 'ops room'\nODOO_POST_RELEASE_HOOK_TIMEOUT=5\n")
    stack = load_stack("dev", repo_root=repo, home=home, environ={})
    assert stack.hooks.post_release == ("scripts/post.sh", "--channel", "ops room")
    assert stack.hooks.post_release_timeout == 5
    from_env = load_stack("dev", repo_root=repo, home=home, environ={"ODOO_POST_RELEASE_HOOK": "notify"}) \
        if not env_file.write_text("") else None
    assert from_env.hooks.post_release == ("notify",)
    env_file.write_text("ODOO_POST_RELEASE_HOOK=post 'unclosed\n")
    with pytest.raises(ConfigError, match=r"dev.env:1: ODOO_POST_RELEASE_HOOK=.*cannot be split"):
        load_stack("dev", repo_root=repo, home=home, environ={})
    env_file.write_text("ODOO_POST_RELEASE_HOOK_TIMEOUT=0\n")
    with pytest.raises(ConfigError, match="out of range"):
        load_stack("dev", repo_root=repo, home=home, environ={})


# ---------------------------------------------------------------- --version, completion
def test_version_is_instant_and_says_the_package_version(repo: Path, home: Path) -> None:
    from importlib.metadata import version

    proc = odoo_ai("--version", repo=repo, home=home)
    assert proc.returncode == 0 and proc.stdout.startswith(f"odoo-ai {version('odoo-ai')} (Python ")


def test_shell_completion_scripts_and_answers(repo: Path, home: Path) -> None:
    for shell, needle in (("bash", "complete -o default -F _odoo_ai_completion odoo-ai"),
                          ("zsh", "compdef _odoo_ai_completion odoo-ai"), ("fish", "complete --command odoo-ai")):
        proc = odoo_ai("--show-completion", shell, repo=repo, home=home,
                       env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
        assert proc.returncode == 0 and needle in proc.stdout, (shell, proc.stdout, proc.stderr)
    root = home / "odoo-ai" / "opw-dev"
    root.mkdir(parents=True)
    (root / "releases.log").write_text("\n".join(json.dumps(r) for r in (
        release("dev-1111111"), release("dev-2222222", status="failed"), release("dev-3333333"))) + "\n")

    def complete(line: str) -> list[str]:
        words = ["odoo-ai", "--repo", str(repo), "--config-dir", str(repo / "docker" / "config"), *line.split()]
        if line.endswith(" "):
            words.append("")
        proc = subprocess.run([sys.executable, "-m", "odoo_ai"], capture_output=True, text=True, timeout=60,
                              env={"HOME": str(home), "PATH": os.environ["PATH"], "_ODOO_AI_COMPLETE": "complete_bash",
                                   "COMP_WORDS": " ".join(words), "COMP_CWORD": str(len(words) - 1)})
        return proc.stdout.split()

    assert complete("status ") == ["dev", "testing"]
    assert complete("deploy t") == ["testing"]
    assert complete("deploy dev --tag ") == ["dev-3333333", "dev-2222222", "dev-1111111"]
    assert complete("rollback dev --to dev-") == ["dev-3333333", "dev-1111111"]  # successful ones only
