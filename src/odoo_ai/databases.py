"""Use-case: an env's database as a first-class thing — backups Odoo can read, restores
gated like a deploy, neutralized copies between envs, restore drills, backup rotation.

    backup   pg_dump (online, in the db container) → packed on the Docker host by dbtool in
             a one-off script-runner: Odoo 18's zip (dump.sql, filestore/, manifest.json) or
             pg_dump -Fc + a filestore tar, with a .sha256 → <state_root>/backups, or --out
    restore  verify (checksums, CRCs, the manifest's Odoo series against the image's) →
             lock → a new database beside the live one, loaded, optionally neutralized →
             swapped in by rename while the web is paused (the old one kept) → the
             readiness gate → the old one dropped; or, gate failed, swapped back
    copy     a backup of FROM, restored into TO (neutralized unless --no-neutralize)
    drill    the latest backup restored into a throw-away database, gated by a throw-away
             web container, dropped; the result reported and recorded
    prune    daily/weekly/monthly rotation of the backup folder

Every command goes through the connector (`host`: local, ssh or dry), so `--host` works
for all of it; the data stays on the Docker host except what is asked to leave it (--out,
the off-host copy command, a copy between two hosts), which streams through this
process in chunks. Restores and copies take the env's deploy lock; a killed restore is
undone by the next `db` command of the env from its journal (<state_root>/db-journal.json).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odoo_ai import dbtool, releases
from odoo_ai.config.envfile import parse_env_text
from odoo_ai.config.stack import StackConfig, required_modules
from odoo_ai.deploy.policy import answers_500, gate_rows, neutralize_retry_reason, running
from odoo_ai.deploy.swap import paused_swap
from odoo_ai.errors import ConfigError, ExitCode, OdooAiError
from odoo_ai.hosts import Host
from odoo_ai.plan import db as plan
from odoo_ai.plan import deploy as dplan
from odoo_ai.runners.base import Command, Result

CHUNK = 1 << 20
GATE_ERROR_PROBES = 3  # HTTP 500 answers in a row: Odoo cannot load the database
NEUTRALIZE_ATTEMPTS = 3  # a neutralize that never reached PostgreSQL (a DNS hiccup) is run again
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
DEPLOY_JOURNAL = "deploy-journal.json"


class Refused(OdooAiError):
    """The backup is corrupt, incomplete, unsafe or for another Odoo: nothing was changed."""

    exit_code = ExitCode.USAGE


class DbFailed(OdooAiError):
    exit_code = ExitCode.FAILED

    def __init__(self, message: str, *, output: str = "", hint: str | None = None,
                 report: dict[str, Any] | None = None):
        super().__init__(message, hint=hint, output=output)
        self.report = report or {}


def now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _actor() -> str:
    return os.environ.get("GITHUB_ACTOR") or os.environ.get("USER") or str(os.getuid())


def _ci_url() -> str | None:
    server, repo, run_id = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run_id}" if server and repo and run_id else None


@contextmanager
def _signals(mode: str) -> Iterator[None]:
    """`raise`: SIGTERM/SIGINT/SIGHUP raise KeyboardInterrupt (the restore undoes itself);
    `ignore`: they are ignored while it undoes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
    for sig in HANDLED_SIGNALS:
        signal.signal(sig, _raise if mode == "raise" else signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------- moving files to and from the host
def _ssh_argv(host: Host, command: Command) -> list[str]:
    from odoo_ai.runners.ssh import remote_line

    return host.target.ssh_argv(remote_line(command))  # type: ignore[attr-defined]


def fetch(host: Host, remote: Path, local: Path) -> str:
    """Copy a file of the Docker host here, in chunks (never whole in memory); its sha256."""
    digest = hashlib.sha256()
    tmp = local.with_name(f".{local.name}.partial")
    try:
        with open(tmp, "wb") as out:
            if not host.remote:
                with open(remote, "rb") as src:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
            else:
                proc = subprocess.Popen(_ssh_argv(host, Command(["cat", "--", str(remote)])),  # noqa: S603
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                assert proc.stdout is not None
                while chunk := proc.stdout.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
                if proc.wait() != 0:
                    raise OdooAiError(f"copying {remote} from the Docker host failed: {err.strip()[-300:]}",
                                      exit_code=ExitCode.INFRA)
        os.replace(tmp, local)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()
    return digest.hexdigest()


_RECEIVE = 'umask 027; mkdir -p "$(dirname "$1")" && cat > "$1.partial" && mv -f "$1.partial" "$1"'


def send(host: Host, local: Path, remote: Path) -> None:
    """Copy a file here to the Docker host, in chunks."""
    if not host.remote:
        remote.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, remote)
        return
    with open(local, "rb") as src:
        proc = subprocess.run(_ssh_argv(host, Command(["sh", "-c", _RECEIVE, "sh", str(remote)])),  # noqa: S603
                              stdin=src, capture_output=True, check=False, timeout=plan.DUMP_TIMEOUT)
    if proc.returncode != 0:
        raise OdooAiError(f"copying {local.name} to the Docker host failed: "
                          f"{proc.stderr.decode('utf-8', 'replace').strip()[-300:]}", exit_code=ExitCode.INFRA)


# ---------------------------------------------------------------- what a restore reads
@dataclass
class Source:
    """A backup as the dbtool container sees it: the path of its main file (the zip or the
    -Fc dump; sidecars beside it), the extra mounts, what to call it, how to clean up."""

    path: str
    label: str
    mounts: list[tuple[str, str, bool]] = field(default_factory=list)
    cleanup: Callable[[], None] | None = None

    def done(self) -> None:
        if self.cleanup is not None:
            self.cleanup()


@dataclass
class GateResult:
    ok: bool
    detail: str
    seconds: float
    output: str = ""


class Databases:
    def __init__(self, stack: StackConfig, host: Host, *, progress: Callable[[str], None] | None = None,
                 gate_timeout: float | None = None, lock_timeout: float | None = None,
                 confirm: Callable[[str], bool | None] | None = None):
        self.stack = stack
        self.host = host
        self.progress = progress or (lambda _line: None)
        self.gate_timeout = gate_timeout if gate_timeout is not None else stack.deploy.gate_timeout
        self.gate_interval = stack.deploy.gate_interval
        self.lock_timeout = lock_timeout if lock_timeout is not None else stack.deploy.lock_timeout
        self.confirm = confirm
        self.backups = stack.state_root / plan.BACKUPS
        self.journal_path = stack.state_root / plan.JOURNAL
        self.notes: list[str] = []
        self.warnings: list[str] = []

    # ------------------------------------------------------------ helpers
    def _run(self, command: Command) -> Result:
        return self.host.run(command, capture=True)

    def _must(self, command: Command, what: str, *, exit_code: ExitCode = ExitCode.FAILED) -> Result:
        result = self._run(command)
        if not result.ok:
            raise OdooAiError(f"{self.stack.env}: {what} failed (exit {result.returncode})", output=result.tail(),
                              exit_code=exit_code)
        return result

    def _json(self, command: Command, what: str) -> dict[str, Any]:
        """A dbtool answer: its JSON document; a refusal (exit 65) is Refused (exit 2)."""
        result = self._run(command)
        doc: dict[str, Any] = {}
        for line in reversed(result.stdout.strip().splitlines()):
            with suppress(ValueError):
                doc = json.loads(line)
                break
        if result.returncode == plan.EX_DATAERR:
            raise Refused(f"{self.stack.env}: backup refused, nothing changed: {doc.get('error') or result.tail(2)}",
                          hint="check the file (a download cut short, a copy of another file); its .sha256 beside it "
                               "is checked when present")
        if not result.ok or not isinstance(doc, dict) or "error" in doc:
            raise OdooAiError(f"{self.stack.env}: {what} failed (exit {result.returncode})",
                              output=result.tail(), exit_code=ExitCode.FAILED)
        return doc

    def _stamp(self) -> str:
        return f"{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}{os.getpid() % 1000:03d}"

    def require_stack(self) -> None:
        """The env was brought up on this host (its .env rendered) and its db answers."""
        if self.host.size(self.stack.dotenv_path) == 0:  # (its content, secrets included, is not read)
            raise ConfigError(f"{self.stack.env}: no rendered {self.stack.dotenv_path} on the Docker host: bring the "
                              f"env up first (odoo-ai up {self.stack.env}, or a deploy)")
        exists = self._run(dplan.db_exists(self.stack))
        if not exists.ok:
            raise OdooAiError(f"{self.stack.env}: the database service does not answer: {exists.tail(2)}",
                              exit_code=ExitCode.INFRA, hint=f"odoo-ai status {self.stack.env}; odoo-ai up {self.stack.env}")

    def db_exists(self, name: str | None = None) -> bool:
        stack = self.stack if name is None else self.stack.model_copy(update={"db_name": name})
        result = self._run(dplan.db_exists(stack))
        return result.ok and result.stdout.strip() == "1"

    def rendered_tag(self) -> str | None:
        text = self.host.read_text(self.stack.dotenv_path) or ""
        with suppress(ConfigError):
            return parse_env_text(text, source=str(self.stack.dotenv_path)).get("ODOO_IMAGE_TAG") or None
        return None

    def record(self, kind: str, status: str, started: float, **extra: Any) -> dict[str, Any]:
        """One line in the env's release log: not a release (status is never `success`, so
        deploys and rollbacks ignore it), the history of what happened to the data."""
        record = {"timestamp": now_text(), "env": self.stack.env, "kind": kind, "status": status,
                  "image_tag": self.rendered_tag(), "duration": round(time.monotonic() - started, 3),
                  "actor": _actor(), "ci_run_url": _ci_url(), "notes": list(self.notes),
                  "warnings": list(self.warnings), **extra}
        self.host.append_record(self.stack.state_root / releases.RELEASE_LOG, record)
        return record

    # ------------------------------------------------------------ listing
    def list_backups(self) -> list[plan.BackupSet]:
        result = self._run(plan.list_backups(self.backups))
        if not result.ok:
            raise OdooAiError(f"{self.stack.env}: cannot list {self.backups}: {result.tail(2)}",
                              exit_code=ExitCode.INFRA)
        return plan.backup_sets(plan.parse_listing(result.stdout), self.stack.db_name)

    # ------------------------------------------------------------ backup
    def backup(self, *, fmt: str | None = None, out: Path | None = None, copy: bool = True,
               outdir: Path | None = None) -> dict[str, Any]:
        """A backup of the env's database and filestore, online. Lands in <state_root>/backups
        on the Docker host (or `outdir` there); with `out`, it is moved (or, from a remote
        host, streamed) to that path here instead."""
        fmt = fmt or self.stack.backup.format
        if fmt not in plan.FORMATS:
            raise ConfigError(f"--format {fmt!r}: zip or dump")
        if out is not None and fmt == "dump" and not (out.is_dir() or str(out).endswith("/")):
            raise ConfigError(f"--out {out}: a dump backup is several files: give a folder")
        started = time.monotonic()
        self.require_stack()
        if not self.db_exists():
            raise ConfigError(f"{self.stack.env}: the database {self.stack.db_name} does not exist: nothing to back up")
        info_result = self._must(plan.manifest_info(self.stack), "reading the installed modules")
        try:
            raw = json.loads(info_result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raw = json.loads(plan.dry_manifest(self.stack)) if self.host.dry_run else None
        if not isinstance(raw, dict):
            raise OdooAiError(f"{self.stack.env}: unexpected answer from psql: {info_result.stdout[:200]!r}")
        info = {"db_name": self.stack.db_name, "pg_version": plan.pg_version_text(int(raw["server_version_num"])),
                "modules": raw.get("modules") or {}}
        target_dir = outdir or self.backups
        self.host.mkdir(target_dir)
        self.host.mkdir(self.stack.state_root / "snapshots")
        when = dt.datetime.now(dt.UTC)
        existing = {b.base for b in self.list_backups()} if target_dir == self.backups else set()
        while plan.backup_base(self.stack.db_name, when) in existing:
            when += dt.timedelta(seconds=1)
        base = plan.backup_base(self.stack.db_name, when)
        stamp = self._stamp()
        tmp = f".odoo-ai-backup-{stamp}.{'sql' if fmt == 'zip' else 'dump'}"
        self.progress(f"… pg_dump of {self.stack.db_name} ({fmt})")
        try:
            self._must(plan.dump_database(self.stack, self.stack.db_name, tmp, custom=fmt == "dump"), "pg_dump")
            self.progress(f"… packing {base} with the filestore")
            packed = self._json(plan.pack(self.stack, fmt, tmp, target_dir, base, info,
                                          name=f"{self.stack.project}-db-{stamp}"), "packing the backup")
        except BaseException:
            self._run(plan.remove_paths(self.stack, [f"{plan.STATE_MOUNT}/snapshots/{tmp}"]))
            raise
        files = packed.get("files") or []
        host_paths = [target_dir / f["name"] for f in files]
        report: dict[str, Any] = {
            "env": self.stack.env, "db": self.stack.db_name, "format": fmt, "name": f"{base}.{fmt}",
            "host": str(getattr(self.host, "target", "") or "local"), "folder": str(target_dir),
            "files": files, "size": sum(int(f.get("size") or 0) for f in files),
            "filestore_files": packed.get("filestore_files"), "manifest": packed.get("manifest"),
        }
        local_paths: list[Path] = []
        if out is not None:
            local_paths = self._deliver(host_paths, files, out)
            report["out"] = [str(p) for p in local_paths]
        if copy and self.stack.backup.copy_command:
            report["copied"] = self._copy_off_host(host_paths, files, local_paths)
        report["seconds"] = round(time.monotonic() - started, 3)
        return report

    def _deliver(self, host_paths: list[Path], files: list[dict[str, Any]], out: Path) -> list[Path]:
        """The backup files to `out` on this machine — a folder (names kept), or the zip's
        new name (its checksum file beside it as `<out>.sha256`) — then off the host's folder."""
        if self.host.dry_run:
            self.host.note(f"move {', '.join(p.name for p in host_paths)} to {out}")
            return [out]
        as_folder = out.is_dir() or str(out).endswith("/")
        folder = out if as_folder else out.parent
        folder.mkdir(parents=True, exist_ok=True)
        delivered: list[Path] = []
        for path, info in zip(host_paths, files, strict=True):
            if not as_folder and path.suffix == ".sha256":
                continue
            target = folder / path.name if as_folder else out
            digest = fetch(self.host, path, target)
            if info.get("sha256") and digest != info["sha256"]:
                raise OdooAiError(f"{target}: checksum mismatch after the copy from the Docker host",
                                  exit_code=ExitCode.INFRA)
            delivered.append(target)
            if not as_folder:
                sums = out.with_name(out.name + ".sha256")
                sums.write_text(f"{digest}  {out.name}\n", encoding="utf-8")
                delivered.append(sums)
        self._run(plan.delete_files(host_paths[0].parent, [p.name for p in host_paths]))
        return delivered

    def _copy_off_host(self, host_paths: list[Path], files: list[dict[str, Any]], local_paths: list[Path]) -> bool:
        """ODOO_BACKUP_COPY_COMMAND once per file, here (a remote host's files are streamed
        to a temporary folder first); a failure fails the backup (exit 1), the backup stays."""
        command = self.stack.backup.copy_command
        if self.host.dry_run:
            for path in local_paths or host_paths:
                self.host.note("off-host copy: " + " ".join(plan.copy_hook_argv(command, str(path))))
            return False
        tmpdir: Path | None = None
        try:
            paths = local_paths
            if not paths:
                if self.host.remote:
                    tmpdir = Path(tempfile.mkdtemp(prefix="odoo-ai-backup-"))
                    paths = []
                    for path in host_paths:
                        fetch(self.host, path, tmpdir / path.name)
                        paths.append(tmpdir / path.name)
                else:
                    paths = host_paths
            for path in paths:
                argv = plan.copy_hook_argv(command, str(path))
                self.progress(f"… off-host copy of {path.name}")
                try:
                    proc = subprocess.run(argv, capture_output=True, text=True, timeout=plan.HOOK_TIMEOUT,  # noqa: S603
                                          check=False)
                except subprocess.TimeoutExpired:
                    raise DbFailed(f"{self.stack.env}: the off-host copy of {path.name} timed out after "
                                   f"{plan.HOOK_TIMEOUT // 60} min",
                                   hint="ODOO_BACKUP_COPY_COMMAND; the backup itself is on the Docker host") from None
                except OSError as exc:
                    raise DbFailed(f"{self.stack.env}: the off-host copy command failed: {exc}",
                                   hint="ODOO_BACKUP_COPY_COMMAND; the backup itself is on the Docker host") from None
                if proc.returncode != 0:
                    raise DbFailed(f"{self.stack.env}: the off-host copy of {path.name} failed (exit {proc.returncode})",
                                   output=(proc.stderr or proc.stdout)[-2000:],
                                   hint="ODOO_BACKUP_COPY_COMMAND; the backup itself is on the Docker host")
            return True
        finally:
            if tmpdir is not None:
                shutil.rmtree(tmpdir, ignore_errors=True)

    # ------------------------------------------------------------ sources
    def source(self, spec: str) -> Source:
        """FILE (a backup on this machine: uploaded to a remote host first), or the name of a
        backup in the env's backup folder on the Docker host, or `latest`."""
        local = Path(spec).expanduser()
        if local.is_file():
            local = local.resolve()
            files = [local, *(Path(p) for p in dbtool.sidecars(str(local)).values())]
            if not self.host.remote:
                folder = plan.check_mount_path(local.parent, "the backup's folder")
                return Source(f"{plan.IN_MOUNT}/{local.name}", str(local), mounts=[(folder, plan.IN_MOUNT, True)])
            incoming = self.backups / plan.INCOMING / self._stamp()
            self.host.mkdir(incoming)
            self.progress(f"… copying {local.name} to the Docker host")
            for path in files:
                if self.host.dry_run:
                    self.host.note(f"copy {path} to {incoming / path.name}")
                else:
                    send(self.host, path, incoming / path.name)
            return Source(f"{plan.state_path(self.stack, incoming)}/{local.name}", str(local),
                          cleanup=lambda: self.host.remove_tree(incoming))
        if "/" in spec:
            raise ConfigError(f"no such file: {spec}")
        sets = self.list_backups()
        if spec == "latest":
            if not sets:
                raise ConfigError(f"{self.stack.env}: no backup in {self.backups} on the Docker host")
            chosen = sets[0]
        else:
            chosen = next((s for s in sets if spec in (s.base, s.main, *s.files)), None)
            if chosen is None:
                raise ConfigError(f"{spec}: neither a file here nor a backup of {self.stack.env} on the Docker host "
                                  f"(odoo-ai db backups {self.stack.env} lists them)")
        if chosen.main is None:
            raise ConfigError(f"{chosen.base}: incomplete backup (no .zip nor .dump)")
        return Source(f"{plan.state_path(self.stack, self.backups)}/{chosen.main}", chosen.main)

    def host_folder_source(self, folder: Path, name: str, label: str) -> Source:
        """A backup in another stack's folder on the same Docker host (a db copy)."""
        mount = plan.check_mount_path(folder, "the backup's folder")
        return Source(f"{plan.IN_MOUNT}/{name}", label, mounts=[(mount, plan.IN_MOUNT, True)])

    # ------------------------------------------------------------ verify
    def verify(self, source: Source, *, skip_version_check: bool = False, tools: str | None = None) -> dict[str, Any]:
        """Checksums, integrity, manifest and the image's Odoo (one container run, reads only).
        Refused (exit 2, nothing changed) when corrupt or for another Odoo series."""
        self.progress(f"… verifying {Path(source.label).name}")
        info = self._json(plan.verify(self.stack, source.path, source.mounts, tools=tools), "verifying the backup")
        if self.host.dry_run and not info:
            info = {"format": "zip", "manifest": None, "image": {}}
        problem = plan.version_problem(info.get("manifest"), info.get("image") or {})
        if problem and not self.host.dry_run:
            if not skip_version_check:
                raise Refused(f"{self.stack.env}: backup refused, nothing changed: {problem}",
                              hint="restore it with the image of its Odoo series; --skip-version-check only for a "
                                   "backup without a manifest you know to be from this series")
            self.warnings.append(f"version not checked (--skip-version-check): {problem}")
        return info

    # ------------------------------------------------------------ loading a database
    def _load(self, source: Source, database: str, filestore_dir: str, stamp: str,
              tools: str | None = None) -> dict[str, Any]:
        """Create `database` and load the backup into it; its filestore staged in
        /volumes/data/filestore/<filestore_dir>."""
        tmp = f".odoo-ai-restore-{stamp}"
        self._must(plan.create_database(self.stack, database), f"creating the database {database}")
        try:
            staged = self._json(plan.stage(self.stack, source.path, tmp, filestore_dir, source.mounts, tools=tools),
                                "unpacking the backup")
            self.progress(f"… loading into {database} ({staged.get('format', '?')}, "
                          f"{staged.get('filestore_files', 0)} filestore file(s))")
            loader = plan.load_sql if staged.get("format", "zip") == "zip" else plan.restore_dump
            result = self._run(loader(self.stack, database, tmp))
            output = result.stdout + result.stderr
            fatal = plan.fatal_restore_errors(output)
            if fatal or (not result.ok and staged.get("format") == "zip"):
                raise DbFailed(f"{self.stack.env}: loading the backup into {database} failed: "
                               f"{len(fatal)} error(s), nothing changed",
                               output="\n".join(fatal[:20]) or result.tail(),
                               hint="the backup's dump.sql does not load on this PostgreSQL")
            harmless = [line for line in output.splitlines() if "ERROR:" in line]
            if harmless:
                self.notes.append(f"{len(harmless)} harmless restore error(s) ignored (e.g. {harmless[0].strip()[:160]})")
            return staged
        finally:
            self._run(plan.remove_paths(self.stack, [f"{plan.STATE_MOUNT}/snapshots/{tmp}"], tools=tools))

    def _prepare(self, database: str, *, neutralize: bool, new_identity: bool) -> dict[str, str]:
        if neutralize:
            self.progress(f"… odoo-bin neutralize -d {database}")
            for attempt in range(NEUTRALIZE_ATTEMPTS):
                result = self._run(plan.neutralize(self.stack, database))
                why = None if result.ok else neutralize_retry_reason(result.stdout + result.stderr)
                if not why or attempt == NEUTRALIZE_ATTEMPTS - 1:
                    break
                self.notes.append(f"odoo-bin neutralize ran again: {why}")
                self.host.sleep(1.0, "neutralize: PostgreSQL unreachable, once more")
            if not result.ok:
                raise DbFailed(f"{self.stack.env}: odoo-bin neutralize failed (exit {result.returncode}): the copy "
                               "is NOT neutralized and is dropped, nothing changed",
                               output=result.tail(), hint="see the output of neutralize")
            if self.stack.mail.smtp:
                self._must(plan.point_mail_at_catcher(self.stack, database, self.stack.mail.smtp),
                           "pointing the mail server at the mail catcher")
                self.notes.append(f"outgoing mail goes to the mail catcher {self.stack.mail.smtp}")
        if new_identity:
            self._must(plan.new_identity(self.stack, database), "giving the copy a new database.uuid/secret")
        result = self._run(plan.facts(self.stack, database))
        return plan.parse_facts(result.stdout) if result.ok else {}

    # ------------------------------------------------------------ the gate
    def _gate(self, container: str, database: str) -> GateResult:
        """The deploy's readiness gate on one web container for `database`: /web/health and
        /web/login?db= answer 200, /websocket 101 (Odoo's bus; probed inside the container),
        no module left pending."""
        started = time.monotonic()
        deadline = started + self.gate_timeout
        stack = self.stack.model_copy(update={"db_name": database})
        last, errors = "no answer yet", 0
        while True:
            state = self._run(dplan.container_state(container))
            try:
                info = json.loads(state.stdout)
            except ValueError:
                info = {"status": "missing", "restarts": 0}
            if info.get("status") in ("exited", "dead", "missing") or info.get("restarts", 0) > 0:
                logs = self._run(dplan.container_logs(container, 40))
                return GateResult(False, f"the web container stopped ({info.get('status')}, exit {info.get('exit')})",
                                  time.monotonic() - started, output=(logs.stdout + logs.stderr)[-4000:])
            probe = self._run(dplan.gate_probe(container, database))
            if probe.ok:
                errors = 0
                check = self._run(dplan.gate_modules(stack, []))
                pending, _ = gate_rows(check.stdout) if check.ok else (None, {})
                if pending == 0:
                    return GateResult(True, "/web/health and /web/login answer 200, /websocket 101, no module pending",
                                      time.monotonic() - started)
                last = f"{pending} module(s) pending" if check.ok else f"module check failed: {check.tail(2)}"
            else:
                last = probe.stdout.strip() or probe.tail(2) or f"probe exit {probe.returncode}"
                errors = errors + 1 if answers_500(probe.stdout) else 0
                if errors >= GATE_ERROR_PROBES:
                    logs = self._run(dplan.container_logs(container, 40))
                    return GateResult(False, f"the web answers HTTP 500 ({last}): Odoo cannot load the database",
                                      time.monotonic() - started, output=(logs.stdout + logs.stderr)[-4000:])
            if time.monotonic() + self.gate_interval > deadline:
                return GateResult(False, f"timed out after {self.gate_timeout:.0f}s (last: {last})",
                                  time.monotonic() - started)
            self.host.sleep(self.gate_interval, "gate: next probe")

    def _gate_throwaway(self, database: str, stamp: str) -> GateResult:
        """The gate on a throw-away web container serving only `database` (no cron)."""
        name = f"{self.stack.project}-dbgate-{stamp}"
        self.progress(f"… starting a throw-away web for {database}")
        try:
            started = self._run(plan.start_gate_web(self.stack, name, database))
            if not started.ok:
                return GateResult(False, "the throw-away web container did not start", 0.0, output=started.tail())
            return self._gate(name, database)
        finally:
            self._run(dplan.remove_container(name))

    @contextmanager
    def _tools(self, source: Source | None = None) -> Iterator[str]:
        """The operation's script-runner container (see plan.start_tools), removed at the end."""
        name = f"{self.stack.project}-dbtools-{self._stamp()}"
        started = self._run(plan.start_tools(self.stack, name, source.mounts if source else ()))
        try:
            if not started.ok:
                raise OdooAiError(f"{self.stack.env}: starting a script-runner container failed: {started.tail(3)}",
                                  exit_code=ExitCode.INFRA)
            yield name
        finally:
            self._run(dplan.remove_container(name))

    def _web_ids(self) -> list[str]:
        result = self._run(dplan.web_container_ids(self.stack))
        return [container_id for container_id, _ in dplan.web_containers(result.stdout)] if result.ok else []

    def _proxy_id(self) -> str | None:
        """The running proxy container (held around a swap), if any."""
        result = self._run(dplan.project_containers(self.stack))
        return next(iter(running(dplan.container_rows(result.stdout) if result.ok else [], "proxy")), None)

    # ------------------------------------------------------------ journal and recovery
    def _save_journal(self, journal: dict[str, Any]) -> None:
        self.host.write_private(self.journal_path, json.dumps(journal, sort_keys=True))

    def _databases(self, names: list[str]) -> set[str]:
        result = self._run(plan.databases_named(self.stack, names))
        if not result.ok:
            raise OdooAiError(f"{self.stack.env}: cannot list the databases: {result.tail(2)}",
                              exit_code=ExitCode.INFRA)
        return {line.strip() for line in result.stdout.splitlines() if line.strip()}

    def _undo(self, journal: dict[str, Any], tools: str | None = None) -> list[str]:
        """Put the env back as it was before a restore that did not pass its gate (or was
        killed): the restored database dropped or swapped back out, the old one back."""
        done: list[str] = []
        paused = self._run(dplan.paused_containers(self.stack))
        ids = paused.stdout.split() if paused.ok else []
        if ids:
            self._run(dplan.unpause(ids))
            done.append(f"unpaused {len(ids)} container(s)")
        db, restored, kept, failed = (journal[k] for k in ("db", "restored", "kept", "failed"))
        phase = journal.get("phase")
        if phase == "cleanup":  # the gate had passed: finish
            self._run(plan.drop_database(self.stack, kept))
            self._run(plan.remove_filestore(self.stack, kept, tools=tools))
            done.append(f"dropped the replaced database {kept}")
            return done
        present = self._databases([restored, kept, db])
        if restored in present or phase == "load":
            self._run(plan.drop_database(self.stack, restored))
            self._run(plan.remove_filestore(self.stack, f"{db}.restored", tools=tools))
            done.append(f"dropped the unfinished restore {restored}")
        else:
            with paused_swap(self._run, self.host.sleep, self._web_ids(),
                             lambda force: plan.swap_back(self.stack, kept, failed, force=force),
                             proxy=self._proxy_id()) as back:
                if not back.ok:
                    raise OdooAiError(f"{self.stack.env}: swapping the previous database back failed: {back.tail(3)}",
                                      exit_code=ExitCode.INFRA)
                self._run(plan.filestore_back(self.stack, kept, failed, tools=tools))
            self._run(plan.signal_reload(self.stack, db, live_exists=False))
            self._run(plan.drop_database(self.stack, failed))
            done.append(f"put the previous database back under {db}" if kept in present else
                        f"removed the restored database (there was no {db} before)")
        return done

    def recover(self, tools: str | None = None) -> str | None:
        text = self.host.read_text(self.journal_path)
        if text is None:
            return None
        try:
            journal = json.loads(text)
            done = self._undo(journal, tools)
        except (ValueError, KeyError, TypeError):
            self.host.unlink(self.journal_path)
            return "discarded an unreadable db journal"
        self.host.unlink(self.journal_path)
        note = f"recovered an interrupted {journal.get('kind', 'restore')} (phase {journal.get('phase')}): " \
               + "; ".join(done or ["nothing to undo"])
        self.record(journal.get("kind", "db-restore"), "failed", time.monotonic(), phase=journal.get("phase"),
                    note=note, undone=done)
        return note

    # ------------------------------------------------------------ restore
    def restore(self, source: Source, *, neutralize: bool, yes: bool = False, skip_version_check: bool = False,
                kind: str = "db-restore", new_identity: bool | None = None,
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Replace the env's database and filestore with a backup, swapped in by rename with
        the old ones kept until the restored database passes the readiness gate."""
        try:
            if neutralize and self.stack.backup.protected:
                raise ConfigError(f"{self.stack.env} is a protected env (ODOO_DB_PROTECTED or a production name): "
                                  "never neutralized")
            started = time.monotonic()
            self.require_stack()
            with self._tools(source) as tools:
                return self._restore(source, neutralize=neutralize, yes=yes, skip_version_check=skip_version_check,
                                     kind=kind, new_identity=new_identity, extra=extra, tools=tools, started=started)
        finally:
            source.done()

    def _restore(self, source: Source, *, neutralize: bool, yes: bool, skip_version_check: bool, kind: str,
                 new_identity: bool | None, extra: Mapping[str, Any] | None, tools: str,
                 started: float) -> dict[str, Any]:
        stack = self.stack
        info = self.verify(source, skip_version_check=skip_version_check, tools=tools)
        manifest = info.get("manifest") or {}
        what = (f"replace the database {stack.db_name} of {stack.env} (and its filestore) with "
                f"{Path(source.label).name} (Odoo {manifest.get('version', '?')}, "
                f"{len(manifest.get('modules') or {})} module(s))" + (", neutralized" if neutralize else ""))
        if not yes and not self.host.dry_run:
            answer = self.confirm(what[0].upper() + what[1:] + "?") if self.confirm else None
            if answer is None:
                raise ConfigError(f"refusing to {what} without confirmation (no terminal to ask on): pass --yes; "
                                  "nothing changed")
            if not answer:
                raise ConfigError("not confirmed: nothing changed")
        if self.host.read_text(stack.state_root / DEPLOY_JOURNAL) is not None:
            raise ConfigError(f"{stack.env}: a deploy was interrupted (its journal is there): run odoo-ai deploy or "
                              f"rollback {stack.env} first, it undoes it; nothing changed")
        with self.host.lock(stack.state_root / "deploy.lock", command=f"db {kind} {stack.env}",
                            timeout=self.lock_timeout), _signals("raise"):
            recovered = self.recover(tools)
            if recovered:
                self.notes.append(recovered)
            return self._replace(source, info, neutralize=neutralize, kind=kind, started=started,
                                 new_identity=neutralize if new_identity is None else new_identity,
                                 extra=dict(extra or {}), tools=tools)

    def _replace(self, source: Source, info: dict[str, Any], *, neutralize: bool, kind: str, started: float,
                 new_identity: bool, extra: dict[str, Any], tools: str) -> dict[str, Any]:
        stack = self.stack
        stamp = self._stamp()
        journal = {"kind": kind, "db": stack.db_name, "phase": "load", "stamp": stamp,
                   "restored": plan.db_name_with(stack.db_name, f"__restore_{stamp}"),
                   "kept": plan.db_name_with(stack.db_name, f"__before_restore_{stamp}"),
                   "failed": plan.db_name_with(stack.db_name, f"__restore_failed_{stamp}")}
        restored, kept = journal["restored"], journal["kept"]
        report: dict[str, Any] = {"env": stack.env, "db": stack.db_name, "kind": kind, "source": source.label,
                                  "format": info.get("format"), "manifest_version": (info.get("manifest") or {}).get("version"),
                                  "image_version": (info.get("image") or {}).get("version"), "neutralized": neutralize}
        phases: list[dict[str, Any]] = []

        @contextmanager
        def phase(name: str) -> Iterator[None]:
            t0 = time.monotonic()
            self.progress(f"… {name}")
            ok = False
            try:
                yield
                ok = True
            finally:
                phases.append({"name": name, "seconds": round(time.monotonic() - t0, 3), "ok": ok})
                self.progress(f"{'✓' if ok else '✗'} {name} {time.monotonic() - t0:.1f}s")

        try:
            self._save_journal(journal)
            with phase("load"):
                staged = self._load(source, restored, f"{stack.db_name}.restored", stamp, tools)
                report["filestore_files"] = staged.get("filestore_files")
            with phase("prepare"):
                facts = self._prepare(restored, neutralize=neutralize, new_identity=new_identity)
                self._facts_warnings(facts, neutralize)
            with phase("swap"):
                live_exists = self.db_exists()
                self._run(plan.signal_reload(stack, restored, live_exists=live_exists))
                journal["phase"] = "swap"
                self._save_journal(journal)
                # (the journal says "swap" throughout: an undo finds out from the databases
                # themselves whether the rename happened, and nothing more is written while paused)
                with paused_swap(self._run, self.host.sleep, self._web_ids(),
                                 lambda force: plan.swap_in(stack, restored, kept, force=force),
                                 proxy=self._proxy_id()) as swap:
                    if not swap.ok:
                        raise DbFailed(f"{stack.env}: swapping the restored database in failed", output=swap.tail())
                    files = self._run(plan.filestore_in(stack, kept, tools=tools))
                    if not files.ok:
                        raise DbFailed(f"{stack.env}: swapping the restored filestore in failed", output=files.tail())
                journal["phase"] = "gate"
                self._save_journal(journal)
            with phase("gate"):
                gate = self._gate_env(stamp)
                report["gate"] = {"ok": gate.ok, "detail": gate.detail, "seconds": round(gate.seconds, 3)}
                if not gate.ok:
                    raise DbFailed(f"{stack.env}: the restored database did not pass the readiness gate: {gate.detail}; "
                                   "the previous database is back", output=gate.output,
                                   hint=f"odoo-ai logs {stack.env} web")
            journal["phase"] = "cleanup"
            self._save_journal(journal)
            self._run(plan.drop_database(stack, kept))
            self._run(plan.remove_filestore(stack, kept, tools=tools))
            self.host.unlink(self.journal_path)
        except (OdooAiError, KeyboardInterrupt) as exc:
            with _signals("ignore"):
                try:
                    undone = self._undo(journal, tools) if journal["phase"] != "cleanup" else []
                except OdooAiError as undo_exc:
                    undone = [f"UNDO FAILED: {undo_exc.message}"]
                else:
                    self.host.unlink(self.journal_path)
                message = exc.message if isinstance(exc, OdooAiError) else f"interrupted by {exc.args[0] if exc.args else 'SIGINT'}"
                record = self.record(kind, "failed", started, source=source.label, error=message, undone=undone,
                                     phases=phases, **extra)
            if isinstance(exc, Refused):
                raise
            output = exc.output if isinstance(exc, OdooAiError) else ""
            hint = exc.hint if isinstance(exc, OdooAiError) and exc.hint else \
                f"{stack.env} still has its previous database; see odoo-ai releases {stack.env}"
            raise DbFailed(message, output=output, hint=hint,
                           report={**report, "status": "failed", "phases": phases, "undone": undone,
                                   "release": record}) from None
        record = self.record(kind, "done", started, source=source.label, neutralized=neutralize,
                             manifest_version=report["manifest_version"], phases=phases, **extra)
        return {**report, "status": "done", "phases": phases, "notes": self.notes, "warnings": self.warnings,
                "release": record, "seconds": round(time.monotonic() - started, 3)}

    def _facts_warnings(self, facts: dict[str, str], neutralize: bool) -> None:
        if not neutralize and facts.get("neutralized", "") not in ("True", "true", "1"):
            self.warnings.append("the restored database is NOT neutralized: its crons and mail servers are live "
                                 "(--neutralize for a copy of production)")
        if facts.get("checksums") == "f":
            self.warnings.append("the backup has no odoo-ai module checksums: the next deploy decides module updates "
                                 "by the addons hash (deploy --update always when the backup's code differs)")
        if facts.get("pending", "0") not in ("0", ""):
            self.warnings.append(f"{facts['pending']} module(s) left pending (to upgrade/install/remove) in the backup")
        missing = [m for m in required_modules(self.stack) if m != "base"]
        if missing:
            self.notes.append(f"required modules of {self.stack.env} ({', '.join(missing)}) are installed by the next deploy "
                              "if the backup lacks them")

    def _gate_env(self, stamp: str) -> GateResult:
        webs = self._web_ids()
        if not webs:
            self.notes.append("no web container was running: gated on a throw-away one")
            return self._gate_throwaway(self.stack.db_name, stamp)
        result = GateResult(True, "", 0.0)
        for web in webs:
            result = self._gate(web, self.stack.db_name)
            if not result.ok:
                return result
        return result

    # ------------------------------------------------------------ drill
    def drill(self, spec: str = "latest") -> dict[str, Any]:
        """Restore a backup (default: the latest on the host) into a throw-away database,
        neutralized, gate it on a throw-away web container, drop it; the result."""
        stack = self.stack
        started = time.monotonic()
        self.require_stack()
        self._sweep_drills()
        source = self.source(spec)
        stamp = self._stamp()
        drill_db = plan.db_name_with(stack.db_name, f"__drill_{stamp}")
        report: dict[str, Any] = {"env": stack.env, "backup": source.label, "database": drill_db}
        gate = GateResult(False, "not reached", 0.0)
        try:
            with self._tools(source) as tools:
                try:
                    try:
                        info = self.verify(source, tools=tools)
                    except Refused as exc:
                        gate = GateResult(False, exc.message, 0.0)
                        report["verify"] = {"ok": False, "detail": exc.message}
                    else:
                        report["verify"] = {"ok": True, "format": info.get("format"),
                                            "manifest_version": (info.get("manifest") or {}).get("version"),
                                            "image_version": (info.get("image") or {}).get("version")}
                        self._load(source, drill_db, drill_db, stamp, tools)
                        facts = self._prepare(drill_db, neutralize=True, new_identity=True)
                        report["installed_modules"] = int(facts.get("installed", "-1") or -1)
                        wanted = len((info.get("manifest") or {}).get("modules") or {})
                        if info.get("manifest") and report["installed_modules"] != wanted:
                            self.warnings.append(f"the manifest lists {wanted} installed module(s), the restored "
                                                 f"database has {report['installed_modules']}")
                        self._run(plan.signal_reload(stack, drill_db, live_exists=False))
                        gate = self._gate_throwaway(drill_db, stamp)
                finally:
                    self._run(plan.drop_database(stack, drill_db))
                    self._run(plan.remove_filestore(stack, drill_db, tools=tools))
        except OdooAiError as exc:
            gate = GateResult(False, exc.message, 0.0, output=exc.output)
        finally:
            source.done()
        report["gate"] = {"ok": gate.ok, "detail": gate.detail, "seconds": round(gate.seconds, 3)}
        report["status"] = "passed" if gate.ok else "failed"
        report["warnings"] = self.warnings
        if not self.host.dry_run:
            report["release"] = self.record("db-drill", "done" if gate.ok else "failed", started, backup=source.label,
                                            gate=report["gate"])
        report["seconds"] = round(time.monotonic() - started, 3)
        if not gate.ok:
            raise DbFailed(f"{stack.env}: restore drill of {Path(source.label).name} failed: {gate.detail}",
                           output=gate.output, report=report,
                           hint="the backup may not be restorable: check it before the day it is needed")
        return report

    def _sweep_drills(self) -> None:
        """What a killed drill left: its throw-away web container, database and filestore."""
        containers = self._run(plan.drill_containers(self.stack))
        for cid in containers.stdout.split() if containers.ok else []:
            self._run(dplan.remove_container(cid))
        prefix = plan.db_name_with(self.stack.db_name, "__drill_" + "0" * 17)[:-17]  # as drill() names them
        found = self._run(plan.databases_like(self.stack, prefix))
        for name in found.stdout.split() if found.ok else []:
            self._run(plan.drop_database(self.stack, name))
            self._run(plan.remove_filestore(self.stack, name))
            self.notes.append(f"dropped {name}, left by an interrupted drill")

    # ------------------------------------------------------------ prune
    def prune(self, *, dry_run: bool = False, daily: int | None = None, weekly: int | None = None,
              monthly: int | None = None) -> dict[str, Any]:
        cfg = self.stack.backup
        counts = {"daily": cfg.keep_daily if daily is None else daily,
                  "weekly": cfg.keep_weekly if weekly is None else weekly,
                  "monthly": cfg.keep_monthly if monthly is None else monthly}
        sets = self.list_backups()
        keep, delete = plan.plan_prune(sets, **counts)
        names = [name for s in delete for name in s.files]
        if names and not dry_run:
            result = self._run(plan.delete_files(self.backups, names))
            if not result.ok:
                raise OdooAiError(f"{self.stack.env}: deleting old backups failed: {result.tail(2)}")
        return {"env": self.stack.env, "folder": str(self.backups), "keep_counts": counts, "dry_run": dry_run,
                "kept": [{**s.as_dict(), "why": keep[s.base]} for s in sets if s.base in keep],
                "deleted": [s.as_dict() for s in delete]}


# ---------------------------------------------------------------- copy between envs
def same_host(a: Host, b: Host) -> bool:
    if not a.remote and not b.remote:
        return True
    return a.remote and b.remote and str(getattr(a, "target", "")) == str(getattr(b, "target", ""))


def copy_env(source: Databases, target: Databases, *, neutralize: bool, yes: bool = False) -> dict[str, Any]:
    """FROM's database and filestore into TO: a dump-format backup of FROM (online, in a
    staging folder of FROM's backups), restored into TO like `restore` (neutralized with
    `odoo-bin neutralize` in a one-off script-runner of TO's image, a new database.uuid),
    recorded in TO's release log."""
    if source.stack.env == target.stack.env:
        raise ConfigError("db copy: FROM and TO are the same env")
    if target.stack.backup.protected:
        raise ConfigError(f"db copy: {target.stack.env} is a protected env (ODOO_DB_PROTECTED or a production name): "
                          "nothing is ever copied into it")
    if source.stack.state_root == target.stack.state_root and same_host(source.host, target.host):
        raise ConfigError("db copy: FROM and TO share a state root")
    target.require_stack()
    stamp = source._stamp()
    staging = source.backups / plan.STAGING / stamp
    local_tmp: Path | None = None
    try:
        made = source.backup(fmt="dump", copy=False, outdir=staging)
        main = next(f["name"] for f in made["files"] if f["name"].endswith(".dump"))
        if same_host(source.host, target.host):
            src = target.host_folder_source(staging, main, f"{source.stack.env}:{main}")
        else:
            local_tmp = Path(tempfile.mkdtemp(prefix="odoo-ai-copy-"))
            for f in made["files"]:
                fetch(source.host, staging / f["name"], local_tmp / f["name"])
            src = target.source(str(local_tmp / main))
        return target.restore(src, neutralize=neutralize, yes=yes, kind="db-copy", new_identity=True,
                              extra={"source_env": source.stack.env})
    finally:
        source.host.remove_tree(staging)
        if local_tmp is not None:
            shutil.rmtree(local_tmp, ignore_errors=True)
