"""Databases: backup, restore, copy between envs, restore drills, backup rotation
(locally or on a Docker host over ssh). See docs/databases.md."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from odoo_ai.cli.common import (
    TYPER_SETTINGS,
    DryRunOpt,
    EnvArg,
    GateTimeoutOpt,
    HostOpt,
    JsonOpt,
    KnownHostsOpt,
    LockTimeoutOpt,
    SshKeyOpt,
    emit,
    err,
    fail,
    load,
    out,
    state,
)
from odoo_ai.errors import ExitCode, OdooAiError

if TYPE_CHECKING:
    from odoo_ai.databases import Databases, DbFailed
    from odoo_ai.hosts import Host

app = typer.Typer(help="Backups Odoo can read, gated restores, neutralized copies between envs, restore drills.",
                  no_args_is_help=True, **TYPER_SETTINGS)

FormatOpt = Annotated[str | None, typer.Option("--format", help="zip: Odoo's own backup (dump.sql, filestore/, manifest.json), restorable by Odoo's database manager; dump: pg_dump -Fc + a filestore tar (faster for large databases). Default: ODOO_BACKUP_FORMAT (zip).")]
YesOpt = Annotated[bool, typer.Option("--yes", help="Do not ask: off a terminal, a restore needs it.")]
SkipVersionOpt = Annotated[bool, typer.Option("--skip-version-check", help="Restore a backup without a manifest.json (e.g. a bare pg_dump) whose Odoo version cannot be checked.")]


def _progress(line: str) -> None:
    err.print(line, markup=False)


def _ops(env: str, host_url: str | None, ssh_key: Path | None, known_hosts: Path | None, *, dry_run: bool,
         gate_timeout: float | None = None, lock_timeout: float | None = None,
         confirm: Any = None) -> Databases:
    from odoo_ai.cli.deploy import _on_host
    from odoo_ai.databases import Databases

    stack, host = _on_host(load(env), host_url, ssh_key, known_hosts, sync=not dry_run)
    if dry_run:
        host = _dry(host)
    return Databases(stack, host, progress=_progress, gate_timeout=gate_timeout, lock_timeout=lock_timeout,
                     confirm=confirm)


def _dry(host: Host) -> Host:
    """The dry connector of deploys, answering for the db commands too: reads (listing the
    backup folder) are real, the rest printed and assumed."""
    import json

    from odoo_ai.dryhost import DryHost
    from odoo_ai.runners.base import Command, Result

    image = {"version": "<the image's>", "version_info": [], "major_version": "<the image's>"}

    class DbDryHost(DryHost):
        def run(self, command: Command, *, capture: bool = True) -> Result:
            if command.purpose == "list_backups":
                self.commands.append(command)
                self._print(command.display())
                result = self.inner.run(command, capture=True)
                self._read(f"{command.argv[-1]} ({len(result.stdout.splitlines())} file(s))")
                return result
            return super().run(command, capture=capture)

        def _answer_verify(self, command: Command) -> Result:
            self._assume("the backup is intact and from the image's Odoo series")
            return Result(0, json.dumps({"format": "zip", "manifest": {**image, "modules": {}}, "image": image}))

        def _answer_stage(self, command: Command) -> Result:
            return Result(0, json.dumps({"format": "zip", "filestore_files": 0}))

        def _answer_manifest_info(self, command: Command) -> Result:
            self._assume("the database is an Odoo database")
            return Result(0, json.dumps({"server_version_num": 160000, "modules": {}}) + "\n")

        def _answer_pack(self, command: Command) -> Result:
            i = command.argv.index("pack")
            fmt, base = command.argv[i + 1], command.argv[i + 5]
            suffixes = ("zip",) if fmt == "zip" else ("dump", "filestore.tar", "manifest.json")
            files = [{"name": f"{base}.{suffix}", "size": 0, "sha256": ""} for suffix in (*suffixes, "sha256")]
            return Result(0, json.dumps({"files": files, "filestore_files": 0, "manifest": None}))

        def _answer_facts(self, command: Command) -> Result:
            self._assume("the restored database has the backup's modules, none pending")
            return Result(0, "neutralized\ttrue\nchecksums\tt\ninstalled\t0\npending\t0\n")

        def _answer_swap_in(self, command: Command) -> Result:
            return Result(0, "swapped\tt\n")

    state.dry_runner = None
    return DbDryHost(host, out=sys.stderr if state.json else sys.stdout)


def _failed(exc: DbFailed) -> NoReturn:
    fail(exc, extra=exc.report, output_title="what failed")


def _ask(question: str) -> bool | None:
    from odoo_ai.stack import ask_on_terminal

    return ask_on_terminal(question)


@app.command()
def backup(
    env: EnvArg,
    fmt: FormatOpt = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="Put the backup here on this machine (a folder, or the zip's file name) instead of <state_root>/backups on the Docker host.")] = None,
    no_copy: Annotated[bool, typer.Option("--no-copy", help="Skip the off-host copy (ODOO_BACKUP_COPY_COMMAND).")] = False,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Back up ENV's database and filestore while it serves: Odoo 18's backup zip (or pg_dump -Fc + a filestore tar) with a .sha256, packed on the Docker host (never held in memory), in <state_root>/backups or --out; then the off-host copy command if set."""
    from odoo_ai.databases import DbFailed

    state.json = as_json
    ops = _ops(env, host, ssh_key, known_hosts, dry_run=dry_run)
    try:
        result = ops.backup(fmt=fmt, out=out_path, copy=not no_copy)
    except DbFailed as exc:
        _failed(exc)
    if dry_run:
        result = {**result, "status": "dry-run"}
    where = ", ".join(result.get("out") or []) or f"{result['folder']} on {result['host']}"
    emit(result, ("dry run (nothing was run or written): " if dry_run else "") + f"backup of {env} ({result['format']}, {result['size']} bytes, {result.get('filestore_files')} "
                 f"filestore file(s)): {result['name']} in {where}"
                 + (" (copied off the host)" if result.get("copied") else ""))


@app.command()
def restore(
    env: EnvArg,
    source: Annotated[str, typer.Argument(help="A backup file here (Odoo's zip, from odoo-ai, Odoo's database manager or Odoo.sh; or a pg_dump -Fc), or the name of one in ENV's backup folder on the Docker host, or `latest`.")],
    neutralize: Annotated[bool, typer.Option("--neutralize", help="Run `odoo-bin neutralize` on it before it serves (no mail out, no crons, ...); the mail goes to the env's mail catcher.")] = False,
    yes: YesOpt = False,
    skip_version_check: SkipVersionOpt = False,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    gate_timeout: GateTimeoutOpt = None,
    lock_timeout: LockTimeoutOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Replace ENV's database and filestore with a backup: checked (checksums, integrity, the manifest's Odoo series against the image's), loaded beside the live one, swapped in by rename while the web is paused, the old one kept until the restored one passes the readiness gate (else swapped back). Asks first; --yes off a terminal."""
    from odoo_ai.databases import DbFailed

    state.json = as_json
    ops = _ops(env, host, ssh_key, known_hosts, dry_run=dry_run, gate_timeout=gate_timeout, lock_timeout=lock_timeout,
               confirm=_ask)
    try:
        result = ops.restore(ops.source(source), neutralize=neutralize, yes=yes, skip_version_check=skip_version_check)
    except DbFailed as exc:
        _failed(exc)
    _report(result, f"restore of {Path(result['source']).name} into {env}", dry_run)


@app.command()
def copy(
    from_env: Annotated[str, typer.Argument(metavar="FROM_ENV", help="The env whose database is copied.")],
    to_env: Annotated[str, typer.Argument(metavar="TO_ENV", help="The env that gets it (never a protected one).")],
    neutralize: Annotated[bool | None, typer.Option("--neutralize/--no-neutralize", help="Required, one or the other: neutralize the copy (odoo-bin neutralize in a one-off script-runner of TO_ENV's image) or, explicitly, not.")] = None,
    yes: YesOpt = False,
    host: HostOpt = None,
    from_host: Annotated[str | None, typer.Option("--from-host", help="FROM_ENV's Docker host when it is not --host's (ssh://USER@HOST[:PORT]); the copy then streams through this machine.")] = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    gate_timeout: GateTimeoutOpt = None,
    lock_timeout: LockTimeoutOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy FROM_ENV's database and filestore into TO_ENV (e.g. dev -> testing), restored there like `restore` (gated, swapped in by rename), neutralized with --neutralize, with a new database uuid; recorded in TO_ENV's release log. Never into a protected (production) env."""
    from odoo_ai.databases import DbFailed, copy_env

    state.json = as_json
    if neutralize is None:
        raise OdooAiError(f"db copy into {to_env}: say --neutralize (the usual: no mail out, no crons) or, explicitly, "
                          "--no-neutralize; nothing changed", exit_code=ExitCode.USAGE)
    if from_env == to_env:
        raise OdooAiError("db copy: FROM_ENV and TO_ENV are the same env", exit_code=ExitCode.USAGE)

    def confirm(question: str) -> bool | None:
        answer = _ask(question)
        return True if answer is None else answer  # off a terminal the explicit --(no-)neutralize is the intent

    target = _ops(to_env, host, ssh_key, known_hosts, dry_run=dry_run, gate_timeout=gate_timeout,
                  lock_timeout=lock_timeout, confirm=confirm)
    if target.stack.backup.protected:
        raise OdooAiError(f"db copy: {to_env} is a protected env (ODOO_DB_PROTECTED or a production name): nothing is "
                          "ever copied into it", exit_code=ExitCode.USAGE)
    source = _ops(from_env, from_host if from_host is not None else host, ssh_key, known_hosts, dry_run=dry_run)
    try:
        result = copy_env(source, target, neutralize=neutralize, yes=yes)
    except DbFailed as exc:
        _failed(exc)
    _report(result, f"copy of {from_env} into {to_env}" + (" (neutralized)" if neutralize else " (NOT neutralized)"),
            dry_run)


def _report(result: dict[str, Any], what: str, dry_run: bool) -> None:
    for line in result.get("warnings") or []:
        err.print(f"warning: {line}", markup=False)
    if dry_run:
        emit({**result, "status": "dry-run"}, f"{what}: dry run (nothing was run or written)")
        return
    phases = ", ".join(f"{p['name']} {p['seconds']:.1f}s" for p in result.get("phases") or [])
    emit(result, f"{what}: {result['status']} ({phases})")


@app.command()
def drill(
    env: EnvArg,
    backup_name: Annotated[str, typer.Option("--backup", help="The backup to drill: a name in ENV's backup folder on the Docker host, a file here, or `latest`.")] = "latest",
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    gate_timeout: GateTimeoutOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore drill: the latest backup (or --backup) restored into a throw-away database, neutralized, gated by a throw-away web container (/web/health, /web/login, no pending module), then dropped. Exit 0 when it passes, 1 when it does not; recorded in the release log."""
    from odoo_ai.databases import DbFailed

    state.json = as_json
    ops = _ops(env, host, ssh_key, known_hosts, dry_run=dry_run, gate_timeout=gate_timeout)
    try:
        result = ops.drill(backup_name)
    except DbFailed as exc:
        _failed(exc)
    for line in result.get("warnings") or []:
        err.print(f"warning: {line}", markup=False)
    if dry_run:
        result = {**result, "status": "dry-run"}
    emit(result, ("dry run (nothing was run or written): " if dry_run else "") + f"restore drill of {Path(result['backup']).name} on {env}: {result['status']} "
                 f"({result['gate']['detail']}, {result['seconds']:.1f}s)")


@app.command("prune-backups")
def prune_backups(
    env: EnvArg,
    keep_daily: Annotated[int | None, typer.Option("--keep-daily", min=0, help="Default ODOO_BACKUP_KEEP_DAILY (7).")] = None,
    keep_weekly: Annotated[int | None, typer.Option("--keep-weekly", min=0, help="Default ODOO_BACKUP_KEEP_WEEKLY (4).")] = None,
    keep_monthly: Annotated[int | None, typer.Option("--keep-monthly", min=0, help="Default ODOO_BACKUP_KEEP_MONTHLY (3).")] = None,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete old backups of ENV on the Docker host: the newest of each of the last N days, ISO weeks and months that have one stay (and always the newest); only files named like a backup of ENV's database are ever deleted."""
    state.json = as_json
    ops = _ops(env, host, ssh_key, known_hosts, dry_run=False)
    result = ops.prune(dry_run=dry_run, daily=keep_daily, weekly=keep_weekly, monthly=keep_monthly)
    verb = "would delete" if dry_run else "deleted"
    lines = [f"{env}: kept {len(result['kept'])} backup(s), {verb} {len(result['deleted'])}"]
    lines += [f"  keep {b['name']} ({', '.join(b['why'])})" for b in result["kept"]]
    lines += [f"  {verb.split()[-1]} {b['name']}" for b in result["deleted"]]
    emit(result, "\n".join(lines))


@app.command("backups")
def list_backups(
    env: EnvArg,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List ENV's backups on the Docker host (<state_root>/backups), newest first."""
    state.json = as_json
    ops = _ops(env, host, ssh_key, known_hosts, dry_run=False)
    sets = [s.as_dict() for s in ops.list_backups()]
    if as_json:
        emit({"env": env, "folder": str(ops.backups), "backups": sets})
        return
    from rich.table import Table

    table = Table(title=f"{env} backups ({ops.backups})")
    for col in ("name", "time (UTC)", "format", "size"):
        table.add_column(col)
    for s in sets:
        table.add_row(s["name"], s["time"], s["format"], f"{s['size']:,}")
    out.print(table)
