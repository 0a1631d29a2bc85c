"""Deploy benchmark on the stand-in Odoo (real engine, Postgres, nginx).

Prints: a deploy of an already-pulled image (total and per phase); the plan's
naive shell sequence (pull, up, -u, curl) on the same machine in the same run;
rollback seconds; and the failed HTTP requests a client polling the published
port every 100 ms sees during (a) a successful deploy, (b) a deploy whose image
never gets healthy (no module changed), (c) a deploy whose update fails, (d) a
deploy whose image never gets healthy after its update (both restore the
database: swapped in while the web is paused, so requests wait instead of
failing), rollbacks with and without --restore-db (the latter answers the maintenance
page from the data swap to the switch: counted as "503 maintenance page"), and the naive
sequence.

    uv run python bench/deploy.py          (needs scripts/provision-host.sh and
                                             scripts/build-test-images.sh first)
    uv run python bench/deploy.py --odoo-src vendor/odoo18-test/odoo-18.0
                                           (the same on a real Odoo 18 source, with the
                                            addons of tests/fixtures/real-addons: oai_demo
                                            v1 → v2, update_fails, import_error)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
DOCKER = os.environ.get("ODOO_AI_DOCKER", "/usr/bin/docker")
BASE = os.environ.get("ODOO_AI_BASE_IMAGE", "odoo-ai-test/debian:bookworm")
SCENARIOS = {"ok": "b100000", "ok_v2": "b200000", "never_healthy": "b300000", "update_fails": "b400000"}
# The same scenarios with real Odoo: the addons folder of tests/fixtures/real-addons for each.
REAL_ADDONS = {"ok": "v1", "ok_v2": "v2", "never_healthy": "import_error", "update_fails": "update_fails"}
CA = "/etc/ssl/certs/ca-certificates.crt"


class Poller:
    """GETs `url` every 100 ms from another thread, over one keep-alive connection like a
    browser; counts what fails. A GET whose reused connection the server closed before any
    answer (nginx's graceful reload closes its idle keep-alive connections: a request sent
    at that instant meets the close) is sent again once on a new connection, as browsers
    and RFC 9112 §9.3.1 do for idempotent requests: counted apart as `retried`, and as a
    failure if the second try fails too."""

    def __init__(self, url: str):
        self.url, self.ok, self.failed, self.retried = url, 0, 0, 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _get(self, client: httpx.Client) -> str | None:
        """None when the answer is 200, else what went wrong."""
        try:
            response = client.get(self.url)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if response.status_code == 503 and response.headers.get("x-odoo-ai") == "maintenance":
            return "503 maintenance page"  # said on purpose (rollback --restore-db), still not served
        if response.status_code == 503 and response.headers.get("x-odoo-ai") == "unavailable":
            return "503 no Odoo answered"  # the proxy's page instead of a 502
        return None if response.status_code == 200 else str(response.status_code)

    def _loop(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                error = self._get(client)
                if error == "RemoteProtocolError":  # closed without an answer: once more, new connection
                    self.retried += 1
                    error = self._get(client)
                if error is None:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors.append(error)
                self._stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))

    def why(self) -> str:
        """What the failed requests got, e.g. ` (502 x1)`; the retried ones."""
        counts = {e: self.errors.count(e) for e in dict.fromkeys(self.errors)}
        text = f" ({', '.join(f'{e} x{n}' for e, n in counts.items())})" if counts else ""
        return text + (f", {self.retried} retried after a keep-alive close" if self.retried else "")

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def phase_text(phases: list[dict], seconds: float) -> str:
    """`name=seconds` per phase, then what the command spent outside them (start-up, lock,
    journal, pruning of snapshots and kept databases, the record)."""
    text = " ".join(f"{p['name']}={p['seconds']:.2f}" for p in phases)
    return f"{text} other={seconds - sum(p['seconds'] for p in phases):.2f}" if phases else text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--odoo-src", type=Path, help="a real Odoo source tree (default: the stand-in)")
    args = parser.parse_args(argv)
    real = args.odoo_src is not None
    if real and not (args.odoo_src / "odoo-bin").is_file():
        raise SystemExit(f"--odoo-src {args.odoo_src}: no odoo-bin there (scripts/build-test-images.sh --real "
                         "unpacks ../shared/odoo18 into vendor/odoo18-test/odoo-18.0)")
    odoo_src = args.odoo_src.resolve() if real else REPO / "tests/fixtures/standin-odoo"
    module = "oai_demo" if real else "standin_demo"
    gate_timeout = 90 if real else 15  # real Odoo loads its registry in seconds, not milliseconds
    tmp = Path(tempfile.mkdtemp(prefix="odoo-ai-bench-"))
    project = f"oaib-{os.getpid()}"
    state = tmp / "state"
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (tmp / "config").mkdir()
    (tmp / "config" / "dev.env").write_text("\n".join([
        f"ODOO_PROJECT_NAME={project}", f"ODOO_STATE_ROOT={state}", f"ODOO_PUBLISHED_PORT={port}",
        "ODOO_IMAGE=odoo-ai-test/odoo", "ODOO_DB_IMAGE=odoo-ai-test/postgres:15", "ODOO_PROXY_IMAGE=odoo-ai-test/nginx:1",
        "ODOO_DB_NAME=opw_bench", f"ODOO_UPDATE={module}", f"ODOO_DEPLOY_GATE_TIMEOUT={gate_timeout}", "",
    ]))
    env = {**os.environ, "ODOO_AI_DOCKER": DOCKER, "ODOO_DB_PASSWORD": "bench-db", "ODOO_MASTER_PASSWORD": "bench-m",
           "ODOO_BUILD_WKHTMLTOPDF": "none"}  # a deploy benchmark: no PDF tooling in the images

    def cli(*args: str, check: bool = True) -> dict:
        proc = subprocess.run(["odoo-ai", "--repo", str(REPO), "--config-dir", str(tmp / "config"), *args, "--json"],
                              capture_output=True, text=True, env=env)
        if check and proc.returncode:
            raise SystemExit(f"odoo-ai {' '.join(args)} failed:\n{proc.stderr}")
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    login = f"http://127.0.0.1:{port}/web/login?db=opw_bench"
    rows: list[tuple[str, str]] = []
    try:
        for scenario, sha in SCENARIOS.items():
            addons = REPO / "tests/fixtures/real-addons" / REAL_ADDONS[scenario] if real \
                else REPO / "tests/fixtures/standin-addons" / scenario
            build = ["build", "dev", "--sha", sha, "--odoo-src", str(odoo_src), "--addons", str(addons),
                     "--base-image", BASE]
            cli(*(build + (["--ca-file", CA] if os.path.exists(CA) else [])))
        tag = {s: f"dev-{sha[:7]}" for s, sha in SCENARIOS.items()}
        cli("deploy", "dev", "--tag", tag["ok"])  # first deploy: creates the database

        # The ok_v2 images under another tag: a new release whose addons did not change.
        tag["alias"] = "dev-b200001"
        for target in ("web", "script-runner"):
            subprocess.run([DOCKER, "tag", f"odoo-ai-test/odoo-{target}:{tag['ok_v2']}",  # noqa: S603
                            f"odoo-ai-test/odoo-{target}:{tag['alias']}"], check=True)
        figures: dict[str, float] = {}

        def timed_deploy(label: str, scenario: str, *extra: str, expect_ok: bool) -> dict:
            with Poller(login) as poller:
                start = time.monotonic()
                result = cli("deploy", "dev", "--tag", tag[scenario], *extra, check=expect_ok)
                seconds = time.monotonic() - start
            phases = result.get("phases", [])
            text = phase_text(phases, seconds)
            rows.append((label, f"{seconds:.2f}s total, {poller.failed} failed{poller.why()} / {poller.ok + poller.failed} requests"
                                f" [{result.get('status')}] {text}"))
            figures[label] = seconds
            # time to serve: from the command's start to the end of the switch (the new release
            # answers through the proxy from then on) = total minus what runs after the switch
            after = sum(p["seconds"] for p in phases[[p["name"] for p in phases].index("switch") + 1:]) \
                if any(p["name"] == "switch" for p in phases) else 0.0
            figures[label + " serve"] = seconds - after
            figures[label + " gate+start+switch"] = sum(p["seconds"] for p in phases
                                                       if p["name"] in ("start", "gate", "switch"))
            return result

        timed_deploy("(a) deploy, addon changed (update runs)", "ok_v2", expect_ok=True)
        timed_deploy("(a) deploy, no addon changed", "alias", expect_ok=True)
        timed_deploy("(a) deploy of what already serves (no-op)", "alias", expect_ok=True)

        def timed_rollback(label: str, *extra: str) -> None:
            with Poller(login) as poller:
                start = time.monotonic()
                result = cli("rollback", "dev", *extra)
                seconds = time.monotonic() - start
            phases = result.get("phases", [])
            text = phase_text(phases, seconds)
            rows.append((label, f"{seconds:.2f}s total, {poller.failed} failed{poller.why()} / {poller.ok + poller.failed} requests"
                                f" [{result.get('status')}] {text}"))
            figures[label] = seconds
            figures[label + " gate+start+switch"] = sum(p["seconds"] for p in phases
                                                       if p["name"] in ("start", "gate", "switch"))

        # A rollback with nothing else to do (the failures below leave kept databases that the
        # next success prunes: its time is in "other"), then forward again to the same images.
        timed_rollback("rollback (images on the host)")
        timed_rollback("rollback --to alias (forward again)", "--to", tag["alias"])
        # The stand-in's never-healthy addon has its own version, so say "no module changed" explicitly.
        timed_deploy("(b) deploy, image never healthy (--update never)", "never_healthy", "--update", "never",
                     expect_ok=False)
        timed_deploy("(c) deploy, update fails (db restored)", "update_fails", expect_ok=False)
        timed_deploy("(d) deploy, never healthy after an update (db restored)", "never_healthy", expect_ok=False)

        timed_rollback("rollback after failed deploys (prunes what they kept)")
        timed_rollback("rollback --to ok --restore-db (db restored)", "--to", tag["ok"], "--restore-db", "--yes")

        # The naive sequence, same stack, same machine: point the .env at ok_v2 and run it.
        dotenv = state / ".env"
        text = dotenv.read_text()
        for target in ("web", "script-runner"):
            key = "ODOO_WEB_IMAGE" if target == "web" else "ODOO_SCRIPT_RUNNER_IMAGE"
            lines = [ln if not ln.startswith(f"{key}=") else f'{key}="odoo-ai-test/odoo-{target}:{tag["ok_v2"]}"'
                     for ln in text.splitlines()]
            text = "\n".join(lines) + "\n"
        dotenv.write_text(text)
        compose_args = tmp / "compose-args"
        compose_args.write_text("\n".join([
            DOCKER, "compose", "--project-name", project, "--project-directory", str(REPO),
            "--file", str(REPO / "docker-compose.yml"), "--file", str(REPO / "environments/dev.yaml"),
            "--env-file", str(dotenv)]) + "\n")
        with Poller(login) as poller:
            start = time.monotonic()
            subprocess.run([str(REPO / "bench/naive-deploy.sh"), str(compose_args), "opw_bench", module,
                            f"http://127.0.0.1:{port}/web/health"], check=True, env=env, capture_output=True)
            naive = time.monotonic() - start
            rows.append(("naive shell sequence (pull, up, -u, curl)",
                         f"{naive:.2f}s, {poller.failed} failed{poller.why()} / {poller.ok + poller.failed} requests"))
        plain = "(a) deploy, no addon changed"
        rollback = "rollback (images on the host)"
        rows.append(("ratio: time to serve / naive (target <= 1.0)",
                     f"{figures[plain + ' serve'] / naive:.2f} ({figures[plain + ' serve']:.2f}s / {naive:.2f}s)"))
        rows.append(("ratio: deploy total / naive (target <= 1.5)",
                     f"{figures[plain] / naive:.2f} ({figures[plain]:.2f}s / {naive:.2f}s)"))
        rows.append(("no-op deploy seconds (target <= 1.0)", f"{figures['(a) deploy of what already serves (no-op)']:.2f}s"))
        base = figures[rollback + " gate+start+switch"]
        rows.append(("ratio: rollback / (start+gate+switch) (target <= 1.5)",
                     f"{figures[rollback] / base:.2f} ({figures[rollback]:.2f}s / {base:.2f}s)"))
    finally:
        subprocess.run(["odoo-ai", "--repo", str(REPO), "--config-dir", str(tmp / "config"), "down", "dev", "--purge", "--yes"],
                       capture_output=True, env=env)
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(label) for label, _ in rows)
    source = f"real Odoo from {odoo_src}" if real else "stand-in Odoo"
    print(f"deploy benchmark ({source}, {os.cpu_count()} cores, client polls {login.split('?')[0]} every 100 ms)")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
