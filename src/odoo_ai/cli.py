"""The `odoo-ai` command line: parse, call a use-case, render.

Humans read stderr; `--json` prints one JSON document on stdout (also on
error). Errors map to exit codes in one place, `main()`:
0 ok, 1 the operation failed, 2 bad input or config (nothing changed),
3 infrastructure (Docker, network) failed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from odoo_ai import build as build_uc
from odoo_ai import deploy as deploy_uc
from odoo_ai import images as images_uc
from odoo_ai import releases as releases_mod
from odoo_ai import stack as stack_uc
from odoo_ai.config.stack import StackConfig, find_repo_root, known_envs, load_stack, validate_tag
from odoo_ai.errors import ExitCode, OdooAiError
from odoo_ai.hosts import Host, LocalHost, RemoteHost
from odoo_ai.runners import DryRunner, LocalRunner, Runner
from odoo_ai.runners.ssh import SshTarget
from odoo_ai.testing.cli import app as test_app

JSON_SCHEMA = "odoo-ai/1"
err = Console(stderr=True, highlight=False, soft_wrap=True)


class State:
    json = False
    verbose = False
    repo: Path | None = None
    config_dir: Path | None = None
    dry_runner: DryRunner | None = None


state = State()

app = typer.Typer(
    name="odoo-ai",
    help=(
        "Odoo 18 dev/testing stacks on a Docker host: config, images, local stacks.\n\n"
        "Exit codes: 0 ok; 1 the operation failed; 2 bad input or config (nothing changed); "
        "3 Docker/infrastructure failure."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect a stack's resolved settings.", no_args_is_help=True)
env_app = typer.Typer(help="Render a stack's .env for Compose.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(env_app, name="env")
app.add_typer(test_app, name="test", help="Run Odoo tests / parse Odoo test logs (same as the `test` command).")

EnvArg = Annotated[str, typer.Argument(help="Stack env: a name with environments/<ENV>.yaml (dev, testing).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the exact commands; run and write nothing.")]
TagOpt = Annotated[str | None, typer.Option("--tag", help="Image tag, e.g. dev-1a2b3c4 (default: ODOO_IMAGE_TAG, then the last rendered or built tag).")]


@app.callback()
def _global(
    repo: Annotated[Path | None, typer.Option("--repo", help="Stack repository (default: ODOO_AI_REPO, else found upwards from the current directory).")] = None,
    config_dir: Annotated[Path | None, typer.Option("--config-dir", help="Folder of <env>.env files (default: ODOO_AI_CONFIG_DIR, else docker/config).")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Show commands as they run; tracebacks on errors.")] = False,
) -> None:
    state.repo = repo.resolve() if repo else None
    state.config_dir = config_dir.resolve() if config_dir else None
    state.verbose = verbose


def _stack(env: str, tag: str | None = None) -> StackConfig:
    return load_stack(env, repo_root=state.repo, config_dir=state.config_dir, tag=tag)


def _runner(dry_run: bool) -> Runner:
    if dry_run:
        # With --json the plan goes into the JSON document; stdout carries only that.
        state.dry_runner = DryRunner(out=sys.stderr if state.json else sys.stdout)
        return state.dry_runner
    return LocalRunner(echo=(lambda line: err.print(f"[dim]$ {line}[/dim]")) if state.verbose else None)


def _emit(data: dict[str, Any], human: str | None = None) -> None:
    if state.json:
        if state.dry_runner is not None:
            data = {**data, "plan": [c.display() for c in state.dry_runner.commands]}
        print(json.dumps({"schema": JSON_SCHEMA, **data}, default=str))
    elif human:
        err.print(human)


def _tag_for(stack: StackConfig, tag: str | None) -> str | None:
    if tag:
        validate_tag(tag)
    return stack_uc.resolve_tag(stack, tag) or build_uc.last_built_tag(stack)


# ---------------------------------------------------------------- config / env
@config_app.command("show")
def config_show(env: EnvArg, as_json: JsonOpt = False) -> None:
    """Print ENV's resolved settings (secrets masked)."""
    state.json = as_json
    view = _stack(env).public_view()
    if as_json:
        _emit(view)
        return
    table = Table(show_header=False, box=None)
    for key, value in view.items():
        if isinstance(value, dict):
            value = "\n".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif isinstance(value, list):
            value = "\n".join(map(str, value))
        table.add_row(f"[bold]{key}[/bold]", "-" if value is None else str(value))
    err.print(table)


@env_app.command("render")
def env_render(
    env: EnvArg,
    tag: TagOpt = None,
    generate_missing: Annotated[bool, typer.Option("--generate-missing", help="Generate missing secrets (kept in <state_root>/.secrets.env); for local stacks.")] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write <state_root>/.env (mode 600, atomic) from the env file plus secrets taken from the process environment (names in ODOO_SECRETS)."""
    state.json = as_json
    stack = _stack(env)
    resolved = _tag_for(stack, tag)
    result = stack_uc.render(
        stack, _runner(dry_run), environ=os.environ, tag=resolved, tag_from_cli=bool(tag),
        allow_generate=generate_missing,
    )
    what = "would write" if dry_run else "wrote"
    _emit({"env": env, **result}, f"{what} {result['dotenv']}" + (f" (tag {resolved})" if resolved else ""))


# ---------------------------------------------------------------- build
@app.command()
def build(
    env: EnvArg,
    sha: Annotated[str | None, typer.Option(help="Commit the tag names (default: git HEAD of the repo).")] = None,
    odoo_src: Annotated[Path | None, typer.Option("--odoo-src", help="Local Odoo source folder (inside the repo, e.g. vendor/odoo). Setting: ODOO_BUILD_ODOO_SRC.")] = None,
    odoo_git: Annotated[str | None, typer.Option("--odoo-git", help="Odoo git URL to clone instead. Setting: ODOO_BUILD_ODOO_GIT_URL.")] = None,
    odoo_ref: Annotated[str | None, typer.Option("--odoo-ref", help="Odoo branch/tag for --odoo-git (default 18.0).")] = None,
    addons: Annotated[Path | None, typer.Option("--addons", help="Custom addons folder (default: addons/). Setting: ODOO_BUILD_ADDONS_DIR.")] = None,
    base_image: Annotated[str | None, typer.Option("--base-image", help="Base image (default debian:bookworm-slim). Setting: ODOO_BUILD_BASE_IMAGE.")] = None,
    enterprise_git: Annotated[str | None, typer.Option("--enterprise-git", help="Enterprise git URL (ssh). Empty = community-only.")] = None,
    enterprise_sha: Annotated[str | None, typer.Option("--enterprise-sha", help="Enterprise commit; keys the build cache.")] = None,
    enterprise_key: Annotated[Path | None, typer.Option("--enterprise-key", help="SSH private key file, passed as a BuildKit secret.")] = None,
    enterprise_known_hosts: Annotated[Path | None, typer.Option("--enterprise-known-hosts", help="Pinned known_hosts file for the Enterprise git host.")] = None,
    ca_file: Annotated[Path | None, typer.Option("--ca-file", help="Extra CA bundle for pip behind an intercepting proxy (BuildKit secret). Setting: ODOO_BUILD_CA_FILE.")] = None,
    push: Annotated[bool, typer.Option("--push", help="Push both images to the registry of ODOO_IMAGE and report their digests (also to $GITHUB_OUTPUT under GitHub Actions). Credentials: ODOO_REGISTRY_USER/ODOO_REGISTRY_PASSWORD (GHCR: GITHUB_TOKEN) from the environment.")] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Build the `web` and `script-runner` images locally, tagged ENV-<short-sha>.

    With an Enterprise key, both images are then scanned (every layer, config and
    history) for the key and its path; the build fails if it is found."""
    state.json = as_json
    stack = _stack(env)
    inputs = build_uc.build_inputs(
        stack, sha=sha, base_image=base_image, odoo_git_url=odoo_git, odoo_ref=odoo_ref, odoo_src=odoo_src,
        addons_dir=addons, enterprise_git_url=enterprise_git, enterprise_sha=enterprise_sha,
        enterprise_key=enterprise_key, enterprise_known_hosts=enterprise_known_hosts, ca_file=ca_file,
    )
    runner = _runner(dry_run)
    key = inputs.enterprise_key

    def scan(record: dict[str, Any]) -> dict[str, Any]:
        assert key is not None
        return images_uc.scan_images(runner, [i["ref"] for i in record["images"].values()], key)

    record = build_uc.build(stack, runner, inputs, verify=scan if key is not None else None)
    human = f"built {record['tag']}: " + ", ".join(i["ref"] for i in record["images"].values())
    if push:
        record = images_uc.push(stack, runner, record, environ=os.environ,
                                progress=None if as_json else (lambda line: err.print(line, markup=False)))
        human += "".join(f"\npushed {i['ref'].rsplit(':', 1)[0]}@{i['digest']} ({i.get('layers_pushed', 0)} layers "
                         f"uploaded, {i.get('layers_existing', 0)} already there)"
                         for i in record["images"].values() if i.get("digest"))
    _emit(record, None if dry_run else human)


# ---------------------------------------------------------------- stack
@app.command()
def up(
    env: EnvArg,
    tag: TagOpt = None,
    build_first: Annotated[bool, typer.Option("--build", help="Build the images first (inputs from ODOO_BUILD_* settings; default Odoo 18.0 from GitHub) and start that tag.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds to wait for /web/health through the published port (0 = don't wait).")] = 180.0,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Render the .env and start ENV's stack (db, web, proxy), then wait until /web/health answers 200 through the published port."""
    state.json = as_json
    stack = _stack(env)
    if build_first:
        if tag:
            raise OdooAiError("--build and --tag exclude each other: --build starts the tag it builds",
                              exit_code=ExitCode.USAGE)
        record = build_uc.build(stack, _runner(dry_run), build_uc.build_inputs(stack, sha=None))
        tag = record["tag"]
    resolved = _tag_for(stack, tag)
    result = stack_uc.up(
        stack, _runner(dry_run), environ=os.environ, tag=resolved, tag_from_cli=bool(tag),
        wait_timeout=wait_timeout,
    )
    human = f"{env} is up at {result['url'].removesuffix('/web/health')} (tag {resolved})"
    _emit(result, None if dry_run else human)


@app.command()
def down(
    env: EnvArg,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also remove named volumes (bind-mounted data under the state root stays).")] = False,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the state root: database, filestore, logs and .env. Irreversible.")] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop and remove ENV's containers and networks; the data under the state root stays unless --purge."""
    state.json = as_json
    result = stack_uc.down(_stack(env), _runner(dry_run), volumes=volumes, purge=purge)
    _emit(result, None if dry_run else result.get("note") or f"{env} is down")


@app.command()
def status(env: EnvArg, dry_run: DryRunOpt = False, as_json: JsonOpt = False) -> None:
    """Show ENV's containers, their health, and /web/health through the published port."""
    state.json = as_json
    result = stack_uc.status(_stack(env), _runner(dry_run))
    if dry_run:
        return
    if as_json:
        _emit(result)
        return
    table = Table(title=f"{env} ({result['project']}) tag {result['tag'] or '-'}")
    for col in ("service", "state", "health", "image", "status"):
        table.add_column(col)
    for row in result["services"]:
        table.add_row(*(str(row.get(c) or "-") for c in ("service", "state", "health", "image", "status")))
    err.print(table)
    probe = result["health"]
    err.print(f"{probe['url']}: {'200 OK' if probe['ok'] else probe['status'] or 'unreachable'}")
    unfinished = result["unfinished_deploy"]
    if unfinished:
        err.print(f"[bold red]UNFINISHED {str(unfinished.get('kind') or 'deploy').upper()}[/bold red] of "
                  f"{unfinished.get('tag')}, in phase {unfinished.get('phase')} since {unfinished.get('started')}: "
                  "running now, or killed (the next deploy undoes it)")
    if result["update_containers"]:
        err.print(f"[bold red]MODULE UPDATE CONTAINER(S) RUNNING[/bold red]: {', '.join(result['update_containers'])}"
                  " (a killed deploy's update goes on changing the database until the next deploy stops it)")
    if not probe["ok"]:
        raise typer.Exit(ExitCode.FAILED)


@app.command()
def logs(
    env: EnvArg,
    services: Annotated[list[str] | None, typer.Argument(help="Services (default: all).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming.")] = False,
    tail: Annotated[int | None, typer.Option(help="Lines from the end of each log.", min=0)] = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Show the container logs of ENV (Odoo's own log file is under the state root's logs/)."""
    code = stack_uc.logs(_stack(env), _runner(dry_run), services or [], follow=follow, tail=tail)
    raise typer.Exit(code)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def compose(
    ctx: typer.Context,
    env: EnvArg,
    dry_run: DryRunOpt = False,
) -> None:
    """Run `docker compose` for ENV with the right -p/-f/--env-file: odoo-ai compose ENV -- ARGS..."""
    args = list(ctx.args)
    if not args:
        raise OdooAiError("nothing to run: odoo-ai compose ENV -- ARGS...", exit_code=ExitCode.USAGE)
    raise typer.Exit(stack_uc.compose_passthrough(_stack(env), _runner(dry_run), args))


# ---------------------------------------------------------------- deploy / rollback
UpdateOpt = Annotated[str, typer.Option("--update", help="Module update: auto (only when an addon changed), always, never.")]
LockTimeoutOpt = Annotated[float | None, typer.Option("--lock-timeout", help="Seconds to wait for another deploy of ENV to finish (default 30; setting ODOO_DEPLOY_LOCK_TIMEOUT).", min=0)]
GateTimeoutOpt = Annotated[float | None, typer.Option("--gate-timeout", help="Seconds the new web gets to pass the health gate (default 180; setting ODOO_DEPLOY_GATE_TIMEOUT).", min=1)]


HostOpt = Annotated[str | None, typer.Option("--host", help="Remote Docker host, ssh://USER@HOST[:PORT] (OpenSSH, host key checked). Default: this machine.")]
SshKeyOpt = Annotated[Path | None, typer.Option("--ssh-key", envvar="ODOO_AI_SSH_KEY", help="Private key for --host (env ODOO_AI_SSH_KEY).")]
KnownHostsOpt = Annotated[Path | None, typer.Option("--known-hosts", envvar="ODOO_AI_KNOWN_HOSTS", help="Pinned known_hosts file for --host (env ODOO_AI_KNOWN_HOSTS).")]


def _on_host(stack: StackConfig, host_url: str | None, ssh_key: Path | None, known_hosts: Path | None,
             *, sync: bool = True) -> tuple[StackConfig, Host]:
    """The stack as seen from the Docker host it runs on, and that host."""
    if not host_url:
        return stack, LocalHost()
    target = SshTarget.parse(host_url, key_file=ssh_key, known_hosts=known_hosts)
    source = str(stack.env_file or f"{stack.env} defaults")
    if not stack.values.get("ODOO_STATE_ROOT"):
        raise OdooAiError(f"{source}: a remote stack must set ODOO_STATE_ROOT (e.g. /opt/odoo-ai/data/{stack.project})",
                          exit_code=ExitCode.USAGE)
    remote_dir = Path(stack.values.get("ODOO_REMOTE_REPO_DIR") or f"/opt/odoo-ai/repos/{stack.project}")
    if not remote_dir.is_absolute():
        raise OdooAiError(f"{source}: ODOO_REMOTE_REPO_DIR must be an absolute path", exit_code=ExitCode.USAGE)
    host = RemoteHost(target)
    if sync:
        host.sync_stack_files(stack.repo_root, remote_dir)
    remote = stack.model_copy(update={
        "repo_root": remote_dir,
        "compose_files": [remote_dir / "docker-compose.yml", remote_dir / "environments" / f"{stack.env}.yaml"],
    })
    return remote, host


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


def _deployer(stack: StackConfig, host: Host, lock_timeout: float | None, gate_timeout: float | None) -> deploy_uc.Deployer:
    settings = deploy_uc.DeploySettings.from_stack(stack, lock_timeout=lock_timeout, gate_timeout=gate_timeout)
    progress = PhaseProgress()  # stderr, also with --json: a CI log shows each phase as it happens
    return deploy_uc.Deployer(stack, host, settings=settings, environ=os.environ, progress=progress)


def _deploy_report(result: dict[str, Any]) -> None:
    phases = ", ".join(f"{p['name']} {p['seconds']:.1f}s" for p in result["phases"])
    _emit(result, f"{result['kind']} of {result['tag']} to {result['env']}: {result['status']} ({phases})")


def _deploy_failed(exc: deploy_uc.DeployFailed) -> None:
    if state.json:
        print(json.dumps({"schema": JSON_SCHEMA, **exc.report, "error": exc.message, "hint": exc.hint,
                          "failed_phase": exc.phase, "output": exc.output, "exit_code": int(exc.exit_code)}))
    else:
        if exc.output:
            err.print(f"--- last lines of {exc.phase} ---", markup=False)
            err.print(exc.output, markup=False)
            err.print("---", markup=False)
    err.print(f"[bold red]odoo-ai: error:[/bold red] {exc.message}")
    if exc.hint:
        err.print(f"hint: {exc.hint}", markup=False)
    raise typer.Exit(int(exc.exit_code))


@app.command()
def deploy(
    env: EnvArg,
    tag: Annotated[str, typer.Option("--tag", help="Image tag to deploy, e.g. dev-1a2b3c4.")],
    update: UpdateOpt = "auto",
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    lock_timeout: LockTimeoutOpt = None,
    gate_timeout: GateTimeoutOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Deploy TAG to ENV: pull, snapshot, module update in a one-off container of the new image, start the new web beside the old one, health-gate it, switch the proxy, drain the old one, record the release. Any failure leaves the previous release serving (data restored from the snapshot when the update ran)."""
    state.json = as_json
    if update not in ("auto", "always", "never"):
        raise OdooAiError(f"--update {update!r}: auto, always or never", exit_code=ExitCode.USAGE)
    validate_tag(tag)
    stack = _stack(env)
    if dry_run:
        if host:
            SshTarget.parse(host, key_file=ssh_key, known_hosts=known_hosts)
        _emit(deploy_uc.dry_run_plan(stack, _runner(True), tag, update=update))
        return
    stack, target = _on_host(stack, host, ssh_key, known_hosts)
    try:
        result = _deployer(stack, target, lock_timeout, gate_timeout).run(tag, update=update)
    except deploy_uc.DeployFailed as exc:
        _deploy_failed(exc)
    _deploy_report(result)


@app.command()
def rollback(
    env: EnvArg,
    to: Annotated[str | None, typer.Option("--to", help="Tag of a successful release to go back to (default: the one before the current).")] = None,
    restore_db: Annotated[bool, typer.Option("--restore-db", help="Also restore the database and filestore as they were before the first module update after the target release.")] = False,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    lock_timeout: LockTimeoutOpt = None,
    gate_timeout: GateTimeoutOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Go back to an earlier successful release by its pinned digests (images already on the host are used when the registry is unreachable). No module update runs; --restore-db also restores the snapshot taken just before the first later module update, i.e. the target's data."""
    state.json = as_json
    stack, on = _on_host(_stack(env), host, ssh_key, known_hosts, sync=not dry_run)
    target, data_snapshot = deploy_uc.rollback_target(on, stack, to)
    snapshot = data_snapshot if restore_db else None
    warnings: list[str] = []
    if restore_db and not data_snapshot:
        warnings.append(f"nothing to restore: the data has not changed since {target['image_tag']} "
                        "(no module update or restore ran after it)")
    elif data_snapshot and not restore_db:
        warnings.append(f"the data changed since {target['image_tag']} (snapshot {data_snapshot}): its code meets "
                        "the newer schema; --restore-db brings back the data as it was then")
    for line in warnings:
        err.print(f"warning: {line}", markup=False)
    if dry_run:
        _emit(deploy_uc.dry_run_plan(stack, _runner(True), target["image_tag"], kind="rollback",
                                     restore_snapshot=snapshot, update="never"))
        return
    pinned = target.get("images") or {}
    try:
        result = _deployer(stack, on, lock_timeout, gate_timeout).run(
            target["image_tag"], kind="rollback", pinned=pinned, update="never", restore_snapshot=snapshot,
            warnings=warnings)
    except deploy_uc.DeployFailed as exc:
        _deploy_failed(exc)
    _deploy_report(result)


@app.command("releases")
def releases_cmd(
    env: EnvArg,
    limit: Annotated[int, typer.Option("--limit", help="Newest N records.", min=1)] = 20,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show ENV's release history (the append-only releases.log)."""
    state.json = as_json
    stack, on = _on_host(_stack(env), host, ssh_key, known_hosts, sync=False)
    problems: list[str] = []
    records = deploy_uc.read_history(on, stack, problems)
    current = releases_mod.current_release(records)
    shown = records[-limit:]
    if as_json:
        _emit({"env": env, "current": current, "releases": shown, "skipped_lines": problems})
        return
    table = Table(title=f"{env} releases ({stack.state_root / releases_mod.RELEASE_LOG})")
    for col in ("timestamp", "kind", "tag", "status", "phase", "duration", "actor"):
        table.add_column(col)
    for r in shown:
        mark = " (current)" if r is current else ""
        table.add_row(str(r.get("timestamp")), str(r.get("kind", "deploy")), f"{r.get('image_tag')}{mark}",
                      str(r.get("status")), str(r.get("phase") or "-"), f"{r.get('duration') or 0:.1f}s",
                      str(r.get("actor") or "-"))
    err.print(table)
    for problem in problems:
        err.print(f"warning: {problem}", markup=False)


# ---------------------------------------------------------------- registry images
def _all_stacks() -> list[StackConfig]:
    """Every env of the repo: prune must honour all their release logs and pins."""
    return [_stack(name) for name in known_envs(state.repo or find_repo_root())]


@app.command()
def pull(
    env: EnvArg,
    tag: TagOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Pull ENV's web and script-runner images BY DIGEST (resolved from the registry now)."""
    state.json = as_json
    stack = _stack(env)
    resolved = _tag_for(stack, tag)
    if not resolved:
        raise OdooAiError("no tag: pass --tag ENV-<short-sha>", exit_code=ExitCode.USAGE)
    result = images_uc.pull(stack, _runner(dry_run), tag=resolved, environ=os.environ)
    _emit(result, None if dry_run else "pulled " + ", ".join(i["ref"] for i in result["images"].values()))


@app.command()
def promote(
    from_env: Annotated[str, typer.Argument(help="Env whose tested image is promoted, e.g. dev.")],
    to_env: Annotated[str, typer.Argument(help="Env that gets it, e.g. testing.")],
    tag: Annotated[str, typer.Option("--tag", help="FROM_ENV's tag, FROM_ENV-<short-sha>.")],
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-tag FROM_ENV's tested image as TO_ENV-<short-sha> in the registry (same digests, no rebuild).

    The digests are those FROM_ENV's release log recorded for TAG (what was tested),
    else TAG's current ones; nothing is pulled or pushed, only the manifests are re-tagged."""
    state.json = as_json
    validate_tag(tag)
    result = images_uc.promote(_stack(from_env), _stack(to_env), _runner(dry_run), tag=tag, environ=os.environ)
    lines = [f"promoted {tag} to {result['new_tag']} (digests from the {result['source']}):"]
    lines += [f"  {i['ref']} = {i['digest']}" for i in result["images"].values()]
    lines += [f"note: {n}" for n in result["notes"]]
    _emit(result, None if dry_run else "\n".join(lines))


def _prune_human(result: dict[str, Any]) -> str:
    verb = "would delete" if result["dry_run"] else "deleted"
    table = Table(box=None, show_header=True, pad_edge=False)
    for col in ("action", "image", "why"):
        table.add_column(col, overflow="fold")
    if result.get("local"):
        rows = [(r["action"], ", ".join(r["tags"] or r["digests"]) or r["id"][:19], r["reasons"]) for r in result["images"]]
    else:
        rows = [(r["action"], f"{repo['repository']}:{','.join(r['tags']) or r['digest'][:19]}", r["reasons"])
                for reg in result["registries"] for repo in reg["repositories"] for r in repo["images"]]
    for action, name, reasons in rows:
        style = "red" if action == "delete" else "green"
        table.add_row(f"[{style}]{action}[/{style}]", name, "; ".join(reasons))
    err.print(table)
    count = result.get("would_delete", result.get("deleted", 0))
    lines = [f"{verb} {count}, kept {result['kept']}"]
    lines += [f"not pruned: {why}" for why in result["skipped_envs"].values()]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    lines += [f"warning: {w}" for w in result.get("warnings", []) + result.get("failures", [])]
    return "\n".join(lines)


@app.command("prune-images")
def prune_images(
    keep: Annotated[int, typer.Option("--keep", min=0, help="Images of the last N successful releases of EVERY env stay (the deployed one always stays).")],
    env: Annotated[list[str] | None, typer.Option("--env", help="Prune only this env's <env>-<sha> images (repeatable; default: every env).")] = None,
    local: Annotated[bool, typer.Option("--local", help="Prune this Docker host's images (offline-rollback retention) instead of the registry.")] = False,
    min_age: Annotated[float, typer.Option("--min-age", min=0, help="Registry: also keep images created less than this many hours ago (pushed, not deployed yet).")] = 24.0,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete old <env>-<sha> images from the registry (or, with --local, from this Docker host).

    Never deleted: images of the last --keep successful releases of any env, the one
    each env runs now, ODOO_PRUNE_PINNED tags/digests, images also tagged for an env
    not being pruned; envs without a release log are not pruned at all."""
    state.json = as_json
    stacks = _all_stacks()
    names = list(dict.fromkeys(env or []))
    by_name = {s.env: s for s in stacks}
    for name in names:
        if name not in by_name:
            _stack(name)  # raises the unknown-env error
    scope = [by_name[n] for n in names] if names else stacks
    runner = _runner(dry_run)
    if local:
        result = images_uc.prune_local(stacks, scope, runner, _runner(False), keep=keep, all_envs=not names)
    else:
        result = images_uc.prune_registry(stacks, scope, runner, keep=keep, environ=os.environ, min_age_hours=min_age,
                                          explicit=bool(names))
    _emit(result, None if as_json else _prune_human(result))
    if result.get("failures"):
        raise typer.Exit(ExitCode.FAILED)


# ---------------------------------------------------------------- entry point
def _report_error(exc: OdooAiError) -> int:
    if state.json:
        print(json.dumps({"schema": JSON_SCHEMA, "error": exc.message, "hint": exc.hint,
                          **({"output": exc.output} if exc.output else {}), "exit_code": int(exc.exit_code)}))
    elif exc.output:
        err.print(exc.output, markup=False)
    err.print(f"[bold red]odoo-ai: error:[/bold red] {exc.message}", markup=True)
    if exc.hint:
        err.print(f"hint: {exc.hint}")
    return int(exc.exit_code)


def main(argv: list[str] | None = None) -> int:
    try:
        # Standalone mode: Typer itself reports usage errors (exit 2) and typer.Exit.
        app(args=argv, prog_name="odoo-ai")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except OdooAiError as exc:
        if state.verbose:
            err.print_exception()
        return _report_error(exc)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


def entry() -> None:
    sys.exit(main())
