"""Releases: deploy, rollback, releases (locally or on a Docker host over ssh)."""

import os
import re
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
    YesOpt,
    check_host,
    complete_release_tag,
    complete_tag,
    confirm,
    emit,
    err,
    fail,
    load,
    on_host,
    out,
    state,
    unabridged_console,
)
from odoo_ai.errors import ExitCode, OdooAiError

if TYPE_CHECKING:
    from odoo_ai import deploy as deploy_uc
    from odoo_ai.config.stack import StackConfig
    from odoo_ai.hosts import Host

app = typer.Typer(**TYPER_SETTINGS)

UpdateOpt = Annotated[str, typer.Option("--update", help="Module update: auto (only when an addon changed), always, never.")]
AnyTagOpt = Annotated[bool, typer.Option("--any-tag", help="Allow a tag that is not ENV-<short sha> (e.g. a promoted or hand-made tag).")]
DigestOpt = Annotated[list[str] | None, typer.Option("--digest", metavar="TARGET=sha256:HEX", help="Pin exactly the image CI built and tested: web=sha256:… and/or script-runner=sha256:… (repeatable). The deploy pulls that digest and refuses an image whose digest differs.")]
DIGEST_RE = re.compile(r"^(web|script-runner)=(sha256:[0-9a-f]{64})$")


def check_tag(env: str, tag: str, *, any_tag: bool) -> None:
    """A deploy of ENV takes ENV-<short sha> tags: `testing-1a2b3c4` cannot reach dev, nor
    `latest` anything, by mistake."""
    from odoo_ai.config.stack import validate_tag

    validate_tag(tag)
    if not any_tag and not re.fullmatch(rf"{re.escape(env)}-[0-9a-f]{{7,40}}", tag):
        raise OdooAiError(f"--tag {tag!r}: a deploy of {env} takes {env}-<short sha> tags (e.g. {env}-1a2b3c4); "
                          "--any-tag allows another", exit_code=ExitCode.USAGE)


def parse_digests(values: list[str] | None) -> dict[str, str]:
    digests: dict[str, str] = {}
    for value in values or []:
        match = DIGEST_RE.match(value.strip())
        if not match:
            raise OdooAiError(f"--digest {value!r}: TARGET=sha256:<64 hex> with TARGET web or script-runner",
                              exit_code=ExitCode.USAGE)
        if match[1] in digests:
            raise OdooAiError(f"--digest {match[1]} given twice", exit_code=ExitCode.USAGE)
        digests[match[1]] = match[2]
    return digests


def _image_lookup(stack: "StackConfig"):
    """For a dry run: does the registry have this image? True/False, None when it cannot tell."""
    from odoo_ai.registry import RegistryError, open_backend, registry_settings, split_image

    if split_image(stack.image)[0] is None:
        return None

    def lookup(ref: str) -> bool | None:
        from odoo_ai.registry import NotFound

        name, _, tag = ref.rpartition(":")
        try:
            settings = registry_settings(stack, os.environ)
            backend = open_backend(settings)
        except (OdooAiError, OSError):
            return None
        try:
            backend.resolve_digest(name.split("/", 1)[1], tag)
            return True
        except NotFound:
            return False
        except (RegistryError, OSError):
            return None
        finally:
            backend.close()

    return lookup


def _on_host(stack: "StackConfig", host_url: str | None, ssh_key: Path | None, known_hosts: Path | None,
             *, sync: bool = True) -> "tuple[StackConfig, Host]":
    """The stack as seen from the Docker host it runs on, and that host (cli.common.on_host)."""
    return on_host(stack, host_url, ssh_key, known_hosts, sync=sync)


class PhaseProgress:
    """Phase lines on stderr; on a terminal, a spinner with the elapsed time while one runs."""

    def __init__(self) -> None:
        self._status: Any = None

    def __call__(self, line: str) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        if line.startswith("… ") and err.is_terminal:
            self._status = err.status(f"{line[2:]}…", spinner="dots")
            self._status.start()
        else:  # in CI logs the start line shows what a long phase is doing
            err.print(line, markup=False)


def _deployer(stack: "StackConfig", host: "Host", lock_timeout: float | None,
              gate_timeout: float | None) -> "deploy_uc.Deployer":
    from odoo_ai import deploy as deploy_uc

    settings = deploy_uc.DeploySettings.from_stack(stack, lock_timeout=lock_timeout, gate_timeout=gate_timeout)
    progress = PhaseProgress()  # stderr, also with --json: a CI log shows each phase as it happens
    if stack.engine == "swarm":  # ODOO_ENGINE=swarm: the same sequence on a Docker Swarm stack
        from odoo_ai.swarm.engine import SwarmDeployer

        return SwarmDeployer(stack, host, settings=settings, environ=os.environ, progress=progress)
    return deploy_uc.Deployer(stack, host, settings=settings, environ=os.environ, progress=progress)


def _deploy_report(result: dict[str, Any], hook: dict[str, Any] | None = None) -> None:
    phases = ", ".join(f"{p['name']} {p['seconds']:.1f}s" for p in result["phases"])
    line = f"{result['kind']} of {result['tag']} to {result['env']}: {result['status']}"
    if result["status"] == "unchanged":
        line += f": {result.get('note', '')}"
    elif result["status"] == "dry-run":
        line += f" ({len(result.get('assumptions', []))} assumption(s), {len(result.get('reads', []))} read(s); "\
            "nothing was run or written)"
    else:
        line += f" ({phases})"
    if hook is not None:
        result = {**result, "post_release_hook": hook}
    emit(result, line)


def _dry_run(stack: "StackConfig", host: "Host", tag: str, lock_timeout: float | None, gate_timeout: float | None,
             **run_args: Any) -> dict[str, Any]:
    """The real deploy/rollback against the dry connector (its lines on stdout, or on
    stderr with --json so that stdout stays one document)."""
    from odoo_ai import deploy as deploy_uc

    settings = deploy_uc.DeploySettings.from_stack(stack, lock_timeout=lock_timeout, gate_timeout=gate_timeout)
    if stack.engine == "swarm":  # the swarm engine against the same dry connector
        from odoo_ai.swarm.dry import dry_run as swarm_dry_run

        return swarm_dry_run(stack, host, tag, settings=settings, environ=os.environ,
                             out=sys.stderr if state.json else sys.stdout, image_lookup=_image_lookup(stack),
                             **run_args)
    return deploy_uc.dry_run(stack, host, tag, settings=settings, environ=os.environ,
                             out=sys.stderr if state.json else sys.stdout, image_lookup=_image_lookup(stack),
                             **run_args)


def _step_summary(result: dict[str, Any] | None = None, *, failed: "deploy_uc.DeployFailed | None" = None,
                  not_recorded: tuple[str, str, str | None, OdooAiError] | None = None) -> None:
    """Under GitHub Actions ($GITHUB_STEP_SUMMARY set), append the deploy's or rollback's
    verdict, its phases as a Mermaid Gantt chart and its notes (odoo_ai.stepsummary). A
    summary that cannot be written is a warning on stderr, never the command's outcome."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    from odoo_ai import stepsummary

    try:
        if failed is not None:
            text = stepsummary.deploy_markdown(
                failed.report, failed_phase=failed.phase,
                error=failed.message.removeprefix(f"deploy failed in phase {failed.phase}: "))
        elif not_recorded is not None:
            kind, env, tag, exc = not_recorded
            if exc.exit_code == ExitCode.USAGE:  # bad input is no deploy
                return
            text = stepsummary.not_recorded_markdown(kind, env, tag, exc.message)
        else:
            text = stepsummary.deploy_markdown(result or {})
        stepsummary.append(path, text)
    except Exception as exc:  # noqa: BLE001 - the summary is a nicety: the deploy's outcome stands
        err.print(f"warning: cannot write GITHUB_STEP_SUMMARY: {exc}", markup=False)


def _deploy_failed(exc: "deploy_uc.DeployFailed", hook: dict[str, Any] | None = None) -> NoReturn:
    """The one error path, with the deploy's report, its phase and the last lines of the
    failing command's output (framed on stderr, a key of the JSON document)."""
    extra = {**exc.report, "failed_phase": exc.phase, "output": exc.output}
    if hook is not None:
        extra["post_release_hook"] = hook
    fail(exc, extra=extra, output_title=f"last lines of {exc.phase}")


class PostRelease:
    """The post-release hook of one deploy or rollback (ODOO_POST_RELEASE_HOOK of the env's
    settings on this machine): run once the outcome is known, success or failure, with the
    release record on stdin. Its outcome is a note (stderr, and `post_release_hook` in
    --json); it never changes the command's exit code."""

    def __init__(self, stack: "StackConfig", kind: str, tag: str | None) -> None:
        self.argv, self.timeout = stack.hooks.post_release, stack.hooks.post_release_timeout
        self.cwd, self.env, self.kind, self.tag = stack.repo_root, stack.env, kind, tag

    def run(self, record: dict[str, Any] | None) -> dict[str, Any] | None:
        if not self.argv or not record:
            return None
        from odoo_ai.hooks import run_post_release_hook
        from odoo_ai.releases import SCHEMA

        outcome = run_post_release_hook(self.argv, {"schema": SCHEMA, **record}, timeout=self.timeout, cwd=self.cwd)
        if outcome is None:
            return None
        err.print(("" if outcome.ok else "warning: ") + outcome.note, markup=False)
        return outcome.as_dict()

    def not_recorded(self, exc: OdooAiError) -> dict[str, Any] | None:
        """A deploy that failed before it could record a release (the lock held, the host
        unreachable): the hook still hears of it, by a record marked `recorded: false`.
        Bad input (exit 2) is no deploy: no hook."""
        if exc.exit_code == ExitCode.USAGE:
            return None
        from odoo_ai.deploy.journal import now
        from odoo_ai.deploy.record import actor, ci_url
        from odoo_ai.lock import LockHeld

        return self.run({"timestamp": now(), "env": self.env, "kind": self.kind, "image_tag": self.tag,
                         "status": "failed", "phase": "lock" if isinstance(exc, LockHeld) else None,
                         "error": exc.message, "actor": actor(), "ci_run_url": ci_url(), "recorded": False})


@app.command()
def deploy(
    env: EnvArg,
    tag: Annotated[str, typer.Option("--tag", help="Image tag to deploy, e.g. dev-1a2b3c4.", autocompletion=complete_tag)],
    update: UpdateOpt = "auto",
    digest: DigestOpt = None,
    any_tag: AnyTagOpt = False,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    lock_timeout: LockTimeoutOpt = None,
    gate_timeout: GateTimeoutOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Deploy TAG to ENV: pull, snapshot, module update in a one-off container of the new image, start the new web beside the old one, health-gate it, switch the proxy, drain the old one, record the release. Any failure leaves the previous release serving (data restored from the snapshot when the update ran)."""
    from odoo_ai import deploy as deploy_uc

    state.json = as_json
    if update not in ("auto", "always", "never"):
        raise OdooAiError(f"--update {update!r}: auto, always or never", exit_code=ExitCode.USAGE)
    check_host(host, ssh_key, known_hosts)
    check_tag(env, tag, any_tag=any_tag)
    digests = parse_digests(digest)
    stack = load(env)
    pinned = {target: f"{deploy_uc.repository_of(stack.image_ref(target, tag))}@{value}"
              for target, value in digests.items()}
    hook = PostRelease(stack, "deploy", tag)
    try:
        stack, target = _on_host(stack, host, ssh_key, known_hosts, sync=not dry_run)
        if dry_run:
            result = _dry_run(stack, target, tag, lock_timeout, gate_timeout, update=update, pinned=pinned or None,
                              expected_digests=digests)
        else:
            result = _deployer(stack, target, lock_timeout, gate_timeout).run(
                tag, update=update, pinned=pinned or None, expected_digests=digests)
    except deploy_uc.DeployFailed as exc:
        if not dry_run:
            _step_summary(failed=exc)
        _deploy_failed(exc, None if dry_run else hook.run(exc.report.get("release")))
    except OdooAiError as exc:
        if not dry_run:
            hook.not_recorded(exc)
            _step_summary(not_recorded=("deploy", env, tag, exc))
        raise
    if not dry_run:
        _step_summary(result)
    _deploy_report(result, None if dry_run else hook.run(result.get("release") if result["status"] != "unchanged"
                                                         else None))


@app.command()
def rollback(
    env: EnvArg,
    to: Annotated[str | None, typer.Option("--to", help="Tag of a successful release to go back to (default: the one before the current).", autocompletion=complete_release_tag)] = None,
    restore_db: Annotated[bool, typer.Option("--restore-db", help="Also restore the database and filestore as they were before the first module update after the target release (replaces the current data: asks y/N on a terminal, --yes otherwise).")] = False,
    yes: YesOpt = False,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    lock_timeout: LockTimeoutOpt = None,
    gate_timeout: GateTimeoutOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Go back to an earlier successful release by its pinned digests (images already on the host are used when the registry is unreachable). No module update runs; --restore-db also restores the snapshot taken just before the first later module update, i.e. the target's data."""
    from odoo_ai import deploy as deploy_uc

    state.json = as_json
    local = load(env)
    hook = PostRelease(local, "rollback", to)
    try:
        stack, on = _on_host(local, host, ssh_key, known_hosts, sync=not dry_run)
    except OdooAiError as exc:
        if not dry_run:
            hook.not_recorded(exc)
            _step_summary(not_recorded=("rollback", env, to, exc))
        raise
    target, data_snapshot = deploy_uc.rollback_target(on, stack, to)
    hook.tag = target["image_tag"]
    snapshot = data_snapshot if restore_db else None
    if snapshot and not dry_run:
        where = f" on {on.target}" if on.remote else ""
        confirm(f"Replace {env}'s database and filestore{where} with snapshot {snapshot}?", yes=yes,
                what=f"replace {env}'s data with snapshot {snapshot}",
                lines=[f"rollback {env} to {target['image_tag']} --restore-db: the database {stack.db_name} and its "
                       f"filestore{where} are replaced by snapshot {snapshot} (the data of {target['image_tag']}); "
                       "the current data goes into a new snapshot first, so a rollback forward can bring it back"])
    warnings: list[str] = []
    if restore_db and not data_snapshot:
        warnings.append(f"nothing to restore: the data has not changed since {target['image_tag']} "
                        "(no module update or restore ran after it)")
    elif data_snapshot and not restore_db:
        warnings.append(f"the data changed since {target['image_tag']} (snapshot {data_snapshot}): its code meets "
                        "the newer schema; --restore-db brings back the data as it was then")
    for line in warnings:
        err.print(f"warning: {line}", markup=False)
    pinned = target.get("images") or {}
    run_args = dict(kind="rollback", pinned=pinned, update="never", restore_snapshot=snapshot, warnings=warnings,
                    known_digests=target.get("digests") or {})
    try:
        if dry_run:
            result = _dry_run(stack, on, target["image_tag"], lock_timeout, gate_timeout, **run_args)
        else:
            result = _deployer(stack, on, lock_timeout, gate_timeout).run(target["image_tag"], **run_args)
    except deploy_uc.DeployFailed as exc:
        if not dry_run:
            _step_summary(failed=exc)
        _deploy_failed(exc, None if dry_run else hook.run(exc.report.get("release")))
    except OdooAiError as exc:
        if not dry_run:
            hook.not_recorded(exc)
            _step_summary(not_recorded=("rollback", env, target["image_tag"], exc))
        raise
    if not dry_run:
        _step_summary(result)
    _deploy_report(result, None if dry_run else hook.run(result.get("release")))


modules_app = typer.Typer(help="What a deploy would install and update.", **TYPER_SETTINGS)


@modules_app.command("changed")
def modules_changed(
    env: EnvArg,
    tag: Annotated[str, typer.Option("--tag", help="Image tag a deploy would take, e.g. dev-1a2b3c4.", autocompletion=complete_tag)],
    update: UpdateOpt = "auto",
    any_tag: AnyTagOpt = False,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List, without changing anything, the modules a deploy of TAG would install or update and why (checksum changed, new, or the addons hash when the database has no checksums yet), the installed modules that depend on them (Odoo updates those too), and installed modules the image no longer has."""
    from odoo_ai import deploy as deploy_uc

    state.json = as_json
    if update not in ("auto", "always", "never"):
        raise OdooAiError(f"--update {update!r}: auto, always or never", exit_code=ExitCode.USAGE)
    check_host(host, ssh_key, known_hosts)
    check_tag(env, tag, any_tag=any_tag)
    stack, on = _on_host(load(env), host, ssh_key, known_hosts, sync=False)
    settings = deploy_uc.DeploySettings.from_stack(stack)
    result = deploy_uc.Deployer(stack, on, settings=settings, environ=os.environ).preview(tag, update=update)
    lines = [f"{env}: a deploy of {tag} (current: {result['current'] or 'none'}) would "
             + ("run nothing" if not (result["install"] or result["update"]) else
                " and ".join(p for p in (f"install {', '.join(result['install'])}" if result["install"] else "",
                                         f"update {result['update']}" if result["update"] else "") if p))
             + f" — {result['reason']}"]
    for name, why in sorted(result["why"].items()):
        lines.append(f"  {name}: {why}")
    if result["dependents"]:
        lines.append(f"  updated with them (installed, depending on them): {', '.join(result['dependents'])}")
    if result["removed"]:
        lines.append(f"  installed but no longer in the image (left as they are): {', '.join(result['removed'])}")
    emit(result, "\n".join(lines))


WideOpt = Annotated[bool, typer.Option("--wide", help="Unabridged columns (full digests and commits) instead of fitting the terminal's width.")]


@app.command("releases")
def releases_cmd(
    env: EnvArg,
    limit: Annotated[int, typer.Option("--limit", help="Newest N records.", min=1)] = 20,
    show: Annotated[int | None, typer.Option("--show", metavar="N", min=1, help="Only the Nth newest record (1: the latest), with its phases and notes.")] = None,
    chart: Annotated[bool, typer.Option("--chart", help="A Mermaid chart (a ```mermaid block, to paste into GitHub Markdown) instead of the table: the last --limit releases, one bar each as long as it took (✓ success, ✗ failed, ↩ rollback); with --show N, that release's phases.")] = False,
    wide: WideOpt = False,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show ENV's release history (the append-only releases.log): time, tag, commit, digest, status, failing phase, duration, actor; fitted to the terminal (--wide: unabridged; a pipe always gets every character). --show N: one release in full; --chart: as a Mermaid chart."""
    from odoo_ai import charts
    from odoo_ai import deploy as deploy_uc
    from odoo_ai import releases as releases_mod

    state.json = as_json
    stack, on = _on_host(load(env), host, ssh_key, known_hosts, sync=False)
    problems: list[str] = []
    records = deploy_uc.read_history(on, stack, problems)
    current = releases_mod.current_release(records)
    shown = records[-limit:]
    if show is not None:
        if show > len(records):
            raise OdooAiError(f"--show {show}: {env} has {len(records)} release record(s) "
                              f"in {stack.state_root / releases_mod.RELEASE_LOG}", exit_code=ExitCode.USAGE)
        record = records[-show]
        text = charts.release_gantt(record) if chart else None
        emit({"env": env, "release": record, "is_current": record is current, "skipped_lines": problems,
              **({"chart": text} if text else {})}, charts.fenced(text) if text else release_text(record))
    elif as_json or chart:
        text = charts.history_gantt(shown, env=env) if chart and shown else None
        emit({"env": env, "current": current, "releases": shown, "skipped_lines": problems,
              **({"chart": text} if text else {})},
             charts.fenced(text) if text else f"{env}: no release in {stack.state_root / releases_mod.RELEASE_LOG}")
    else:
        fit = None if wide or not out.is_terminal else out.width
        table = releases_table(shown, current, wide=wide, width=fit,
                               title=f"{env} releases ({stack.state_root / releases_mod.RELEASE_LOG})")
        (unabridged_console() if wide else out).print(table)
    for problem in problems:
        err.print(f"warning: {problem}", markup=False)


def release_text(record: dict[str, Any]) -> str:
    """One release record for a reader: the verdict, each phase, the notes and warnings."""
    from odoo_ai.charts import seconds_text

    status = str(record.get("status"))
    line = (f"{record.get('timestamp') or '?'}  {record.get('kind') or 'deploy'} of {record.get('image_tag')} to "
            f"{record.get('env')} (from {record.get('previous_tag') or 'none'}): {status}")
    if status != "success" and record.get("phase"):
        line += f" in phase {record['phase']}"
    lines = [line + f", {seconds_text(record.get('duration'))}"]
    if record.get("error"):
        lines.append(f"  error: {record['error']}")
    for target, digest in sorted((record.get("digests") or {}).items()):
        lines.append(f"  {target}: {digest}")
    phases = [p for p in record.get("phases") or [] if isinstance(p, dict)]
    lines += [f"  {'✓' if p.get('ok') else '✗'} {p.get('name')} {seconds_text(p.get('seconds'))}" for p in phases]
    if not phases:
        lines.append("  (no phase timings recorded)")
    lines += [f"  note: {n}" for n in [*(record.get("notes") or []), *([record["note"]] if record.get("note") else [])]]
    lines += [f"  warning: {w}" for w in record.get("warnings") or []]
    return "\n".join(lines)


# The release table's columns: header, how narrow it may get (None: never cut), and which
# go first when even that does not fit the terminal (the lower, the later).
RELEASE_COLUMNS = (("", None, 9), ("time (UTC)", None, 9), ("kind", 6, 2), ("tag", None, 9),
                   ("commit", 7, 4), ("digest", 7, 3), ("status", None, 9), ("phase", 6, 6),
                   ("duration", None, 5), ("actor", 8, 1))
GAP = 2  # spaces between columns


def fit_columns(natural: list[int], width: int) -> list[int | None]:
    """Per column: the width it gets (None: left out), so that the row fits `width`. Cuttable
    columns shrink to their minimum first (actor, commit, digest, phase, kind), then columns
    are dropped in RELEASE_COLUMNS' order of importance."""
    widths: list[int | None] = list(natural)

    def total() -> int:
        shown = [w for w in widths if w is not None]
        return sum(shown) + GAP * (len(shown) - 1)

    for index in (9, 4, 5, 7, 2):
        floor = RELEASE_COLUMNS[index][1]
        current = widths[index]
        if total() <= width or current is None or floor is None:
            continue
        widths[index] = max(floor, current - (total() - width))
    for index in sorted(range(len(widths)), key=lambda i: RELEASE_COLUMNS[i][2]):
        if total() <= width or RELEASE_COLUMNS[index][2] >= 9:
            break
        widths[index] = None
    return widths


def releases_table(records: list[dict[str, Any]], current: dict[str, Any] | None, *, title: str,
                   wide: bool = False, width: int | None = None) -> Any:
    """The release log as a table, newest last, the current release marked `*`: fitted to
    `width` (long cells end in …, the least useful columns go) unless `wide`."""
    from rich.markup import escape
    from rich.table import Table

    rows = []
    for r in records:
        duration = r.get("duration")
        digest = str((r.get("digests") or {}).get("web") or "-")
        rows.append([
            "*" if r is current else "", str(r.get("timestamp") or "-").replace("T", " ").removesuffix("Z"),
            str(r.get("kind") or "deploy"), str(r.get("image_tag")),
            str(r.get("commit") or "-")[: None if wide else 12],
            digest if wide else digest.removeprefix("sha256:")[:12], str(r.get("status")),
            str(r.get("phase") or "-"), "-" if not isinstance(duration, int | float) else f"{duration:.1f}s",
            str(r.get("actor") or "-"),
        ])
    natural = [max([len(name), *(len(row[i]) for row in rows)]) for i, (name, _, _) in enumerate(RELEASE_COLUMNS)]
    widths = natural if wide or width is None else fit_columns(natural, width)
    table = Table(title=title, box=None, pad_edge=False, padding=(0, GAP, 0, 0), header_style="bold",
                  title_justify="left")
    shown = [i for i, w in enumerate(widths) if w is not None]
    for i in shown:
        name = RELEASE_COLUMNS[i][0]
        table.add_column(name, no_wrap=True, overflow="ellipsis", width=widths[i],
                         justify="right" if name == "duration" else "left")
    for row in rows:
        cells = []
        for i in shown:
            cell = escape(row[i])
            if i == 6:
                style = "green" if row[i] == "success" else "red"
                cell = f"[{style}]{cell}[/{style}]"
            cells.append(cell)
        table.add_row(*cells)
    return table
