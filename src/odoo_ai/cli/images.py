"""Images: build (and push), pull, promote, prune-images."""

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from odoo_ai.cli.common import (
    TYPER_SETTINGS,
    DryRunOpt,
    EnvArg,
    HostOpt,
    JsonOpt,
    KnownHostsOpt,
    SshKeyOpt,
    TagOpt,
    YesOpt,
    confirm,
    emit,
    err,
    load,
    local_host,
    out,
    runner,
    state,
    tag_for,
)
from odoo_ai.errors import ExitCode, OdooAiError

if TYPE_CHECKING:
    from odoo_ai.config.stack import StackConfig

app = typer.Typer(**TYPER_SETTINGS)


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
    addon_repos: Annotated[Path | None, typer.Option("--addon-repos", help="Addon repositories to fetch, each pinned to a commit (default: addon-repos.yaml at the repo root, if any; docs/images.md).")] = None,
    addons_ssh_key: Annotated[Path | None, typer.Option("--addons-ssh-key", help="SSH private key that may read the addon repositories fetched over ssh (a BuildKit secret; the images are scanned for it).")] = None,
    addons_known_hosts: Annotated[Path | None, typer.Option("--addons-known-hosts", help="Pinned known_hosts file for the addon repositories' git hosts.")] = None,
    push: Annotated[bool, typer.Option("--push", help="Push both images to the registry of ODOO_IMAGE and report their digests (also to $GITHUB_OUTPUT under GitHub Actions). Credentials: ODOO_REGISTRY_USER/ODOO_REGISTRY_PASSWORD (GHCR: GITHUB_TOKEN) from the environment.")] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Build the `web` and `script-runner` images locally, tagged ENV-<short-sha>.

    With an Enterprise key, both images are then scanned (every layer, config and
    history) for the key and its path; the build fails if it is found."""
    from odoo_ai import build as build_uc
    from odoo_ai import images as images_uc

    state.json = as_json
    stack = load(env)
    # One code path: a dry run is the real build against the dry connector (git reads real,
    # each docker build printed and assumed, nothing written).
    from odoo_ai.hosts import LocalHost

    host = LocalHost(runner(False))
    dry = build_uc.dry_connector(host, out=sys.stderr if as_json else sys.stdout) if dry_run else None
    on = dry or host
    inputs = build_uc.build_inputs(
        stack, sha=sha, host=on, base_image=base_image, odoo_git_url=odoo_git, odoo_ref=odoo_ref,
        odoo_src=odoo_src, addons_dir=addons, enterprise_git_url=enterprise_git, enterprise_sha=enterprise_sha,
        enterprise_key=enterprise_key, enterprise_known_hosts=enterprise_known_hosts, ca_file=ca_file,
        addon_repos_file=addon_repos, addons_key=addons_ssh_key, addons_known_hosts=addons_known_hosts,
    )
    key = inputs.enterprise_key

    def scan(record: dict[str, Any]) -> dict[str, Any]:
        return images_uc.scan_images(on, [i["ref"] for i in record["images"].values()], key,
                                     docker=stack.docker, addons_key=inputs.addons_key)

    scanning = key is not None or inputs.addons_key is not None
    record = build_uc.build(stack, on, inputs, verify=scan if scanning else None)
    human = f"built {record['tag']}: " + ", ".join(i["ref"] for i in record["images"].values())
    if push:
        record = images_uc.push(stack, on, record, environ=os.environ, progress=_progress,
                                enterprise=bool(inputs.enterprise_git_url))
        human += _pushed_lines(record)
    if dry is not None:
        record = {**record, "status": "dry-run", "plan": [c.display() for c in dry.commands],
                  "assumptions": dry.assumptions, "reads": dry.reads}
    emit(record, None if dry_run else human)


def _progress(line: str) -> None:
    """Progress on stderr, also with --json: a CI log shows each step as it happens."""
    err.print(line, markup=False)


def _pushed_lines(record: dict[str, Any]) -> str:
    return "".join(f"\npushed {i['ref'].rsplit(':', 1)[0]}@{i['digest']} ({i.get('layers_pushed', 0)} layers "
                   f"uploaded, {i.get('layers_existing', 0)} already there)"
                   for i in record["images"].values() if i.get("digest"))


ImageIdOpt = Annotated[list[str] | None, typer.Option("--image-id", metavar="TARGET=sha256:HEX", help="The image ID that was built and tested, web=sha256:… and/or script-runner=sha256:… (repeatable; default: the IDs the last `odoo-ai build` of TAG recorded). Nothing is pushed if a tag now names another image.")]


def _parse_ids(values: list[str] | None) -> dict[str, str]:
    import re

    ids: dict[str, str] = {}
    for value in values or []:
        match = re.fullmatch(r"(web|script-runner)=(sha256:[0-9a-f]{64})", value.strip())
        if not match:
            raise OdooAiError(f"--image-id {value!r}: TARGET=sha256:<64 hex> with TARGET web or script-runner",
                              exit_code=ExitCode.USAGE)
        if match[1] in ids:
            raise OdooAiError(f"--image-id {match[1]} given twice", exit_code=ExitCode.USAGE)
        ids[match[1]] = match[2]
    return ids


@app.command("push")
def push_cmd(
    env: EnvArg,
    tag: TagOpt = None,
    image_id: ImageIdOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Push ENV's web and script-runner images of TAG (default: the last build) exactly as built and tested.

    Refuses (exit 1, nothing pushed) when a tag no longer names the image ID that was built
    (--image-id, else the last build's record), an Enterprise image the build did not scan,
    and, on GHCR, an Enterprise image for a public package. After the push the registry's
    manifest must be that image. Reports the digests (also to $GITHUB_OUTPUT under GitHub
    Actions): deploy them with `odoo-ai deploy ENV --tag TAG --digest web=… --digest script-runner=…`."""
    from odoo_ai import build as build_uc
    from odoo_ai import images as images_uc

    state.json = as_json
    stack = load(env)
    expected = _parse_ids(image_id)
    record = build_uc.push_record(stack, tag)
    result = images_uc.push(stack, runner(dry_run), record, environ=os.environ, progress=_progress,
                            expected_ids=expected or None, enterprise=bool(record.get("enterprise")))
    emit(result, None if dry_run else f"pushed {result['tag']}:" + _pushed_lines(result))


@app.command()
def pull(
    env: EnvArg,
    tag: TagOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Pull ENV's web and script-runner images BY DIGEST (resolved from the registry now)."""
    from odoo_ai import images as images_uc

    state.json = as_json
    stack = load(env)
    resolved = tag_for(stack, tag)
    if not resolved:
        raise OdooAiError("no tag: pass --tag ENV-<short-sha>", exit_code=ExitCode.USAGE)
    result = images_uc.pull(stack, runner(dry_run), tag=resolved, environ=os.environ)
    emit(result, None if dry_run else "pulled " + ", ".join(i["ref"] for i in result["images"].values()))


@app.command()
def promote(
    from_env: Annotated[str, typer.Argument(help="Env whose tested image is promoted, e.g. dev.")],
    to_env: Annotated[str, typer.Argument(help="Env that gets it, e.g. testing.")],
    tag: Annotated[str, typer.Option("--tag", help="FROM_ENV's tag, FROM_ENV-<short-sha>.")],
    tested_only: Annotated[bool, typer.Option("--tested-only", help="Refuse a tag that has no successful release in FROM_ENV's release log (never promote what a tag merely names now).")] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-tag FROM_ENV's tested image as TO_ENV-<short-sha> in the registry (same digests, no rebuild).

    The digests are those FROM_ENV's release log recorded for TAG (what was tested),
    else TAG's current ones; nothing is pulled or pushed, only the manifests are re-tagged."""
    from odoo_ai import images as images_uc
    from odoo_ai.config.stack import validate_tag

    state.json = as_json
    validate_tag(tag)
    result = images_uc.promote(load(from_env), load(to_env), local_host(dry_run), tag=tag, environ=os.environ,
                               tested_only=tested_only)
    lines = [f"promoted {tag} to {result['new_tag']} (digests from the {result['source']}):"]
    lines += [f"  {i['ref']} = {i['digest']}" for i in result["images"].values()]
    lines += [f"note: {n}" for n in result["notes"]]
    emit(result, None if dry_run else "\n".join(lines))


def _all_stacks() -> "list[StackConfig]":
    """Every env of the repo: prune must honour all their release logs and pins."""
    from odoo_ai.config.stack import find_repo_root, known_envs

    return [load(name) for name in known_envs(state.repo or find_repo_root())]


def _prune_human(result: dict[str, Any]) -> str:
    """The table of images (printed on stdout) and the summary lines under it."""
    from rich.markup import escape
    from rich.table import Table

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
        table.add_row(f"[{style}]{escape(action)}[/{style}]", escape(name), escape("; ".join(reasons)))
    out.print(table)
    count = result.get("would_delete", result.get("deleted", 0))
    lines = [f"{verb} {count}, kept {result['kept']}"]
    lines += [f"not pruned: {why}" for why in result["skipped_envs"].values()]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)


def _prune_deletes(result: dict[str, Any]) -> list[str]:
    """The images a prune result deletes (or would), one line each."""
    if result.get("local"):
        rows = [(", ".join(r["tags"] or r["digests"]) or r["id"][:19], r["reasons"]) for r in result["images"]
                if r["action"] == "delete"]
    else:
        rows = [(f"{repo['repository']}:{','.join(r['tags']) or r['digest'][:19]}", r["reasons"])
                for reg in result["registries"] for repo in reg["repositories"] for r in repo["images"]
                if r["action"] == "delete"]
    return [f"  delete {name} ({'; '.join(reasons)})" for name, reasons in rows]


def _remote_prune_stacks(stacks: "list[StackConfig]", host_url: str, ssh_key: Path | None,
                         known_hosts: Path | None, mirror: Path) -> "tuple[list[StackConfig], Any]":
    """prune-images --local --host: what the prune reads of each env on the Docker host (its
    release log; the image refs of its rendered .env, never its secrets), copied into a
    private folder here, and the host's connector for the docker commands."""
    from odoo_ai import releases
    from odoo_ai.cli.common import on_host
    from odoo_ai.config.envfile import format_env, write_private_file
    from odoo_ai.stack import rendered_on

    mirrored, host = [], None
    for stack in stacks:
        remote, on = on_host(stack, host_url, ssh_key, known_hosts, sync=False)
        host = host or on
        root = mirror / stack.env
        root.mkdir(mode=0o700)
        log = host.read_text(remote.state_root / releases.RELEASE_LOG)
        if log is not None:
            write_private_file(root / releases.RELEASE_LOG, log)
        rendered = rendered_on(remote, host)
        if rendered is not None:
            keep = ("ODOO_IMAGE_TAG", "ODOO_WEB_IMAGE", "ODOO_SCRIPT_RUNNER_IMAGE")
            write_private_file(root / ".env", format_env({k: rendered[k] for k in keep if rendered.get(k)}))
        mirrored.append(remote.model_copy(update={"state_root": root}))
    return mirrored, host


@app.command("prune-images")
def prune_images(
    keep: Annotated[int, typer.Option("--keep", min=0, help="Images of the last N successful releases of EVERY env stay (the deployed one always stays).")],
    env: Annotated[list[str] | None, typer.Option("--env", help="Prune only this env's <env>-<sha> images (repeatable; default: every env).")] = None,
    local: Annotated[bool, typer.Option("--local", help="Prune this Docker host's images (offline-rollback retention) instead of the registry.")] = False,
    min_age: Annotated[float, typer.Option("--min-age", min=0, help="Registry: also keep images created less than this many hours ago (pushed, not deployed yet).")] = 24.0,
    yes: YesOpt = False,
    host: HostOpt = None,
    ssh_key: SshKeyOpt = None,
    known_hosts: KnownHostsOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete old <env>-<sha> images from the registry (or, with --local, from this Docker host, or with --local --host from that one).

    Never deleted: images of the last --keep successful releases of any env, the one
    each env runs now, ODOO_PRUNE_PINNED tags/digests, images also tagged for an env
    not being pruned; envs without a release log are not pruned at all. Without --dry-run
    it lists what it would delete and asks y/N on a terminal (--yes otherwise)."""
    import io
    import shutil
    import tempfile

    from odoo_ai import images as images_uc
    from odoo_ai.cli.common import check_host, dry_host
    from odoo_ai.dryhost import DryHost

    state.json = as_json
    check_host(host, ssh_key, known_hosts)
    if host is not None and not local:
        raise OdooAiError("--host is for --local (a Docker host's images); the registry is pruned from here",
                          exit_code=ExitCode.USAGE)
    stacks = _all_stacks()
    names = list(dict.fromkeys(env or []))
    by_name = {s.env: s for s in stacks}
    for name in names:
        if name not in by_name:
            load(name)  # raises the unknown-env error
    mirror = Path(tempfile.mkdtemp(prefix="odoo-ai-prune-")) if host else None
    try:
        on = local_host()
        if mirror is not None:
            stacks, on = _remote_prune_stacks(stacks, host, ssh_key, known_hosts, mirror)
            by_name = {s.env: s for s in stacks}
        scope = [by_name[n] for n in names] if names else stacks

        def prune(connector: Any) -> dict[str, Any]:
            if local:
                return images_uc.prune_local(stacks, scope, connector, keep=keep, all_envs=not names)
            return images_uc.prune_registry(stacks, scope, connector, keep=keep, environ=os.environ,
                                            min_age_hours=min_age, explicit=bool(names))

        if not dry_run and not yes:  # decide first (a dry run: nothing deleted), then ask
            preview = prune(DryHost(on, out=io.StringIO()))
            deletes = _prune_deletes(preview)
            if deletes:
                where = f" on {host}" if host else " on this Docker host" if local else " from the registry"
                confirm(f"Delete these {len(deletes)} image(s){where}?", yes=False,
                        what=f"delete {len(deletes)} image(s){where}",
                        lines=[f"prune-images --keep {keep} would delete{where}:", *deletes])
        result = prune(dry_host(on) if dry_run else on)
    finally:
        if mirror is not None:
            shutil.rmtree(mirror, ignore_errors=True)
    emit(result, None if as_json else _prune_human(result))
    if not as_json:
        for warning in result.get("warnings", []) + result.get("failures", []):
            err.print(f"warning: {warning}", markup=False)
    if result.get("failures"):
        raise typer.Exit(ExitCode.FAILED)


def _housekeeping_human(result: dict[str, Any]) -> str:
    lines = ["housekeeping (dry run: nothing was removed)"] if result["dry_run"] else []
    if "images" in result:
        lines.append(_prune_human(result["images"]))
    cache = result.get("build_cache")
    if cache:
        lines.append(f"builder cache unused for {cache['older_than_hours']:g}h: "
                     + ("removed" if cache["ok"] else "FAILED") + (f" ({cache['reclaimed']})" if cache.get("reclaimed") else ""))
    for stack in result["stacks"]:
        snaps = stack.get("snapshots") or {}
        log = stack.get("log") or {}
        parts = []
        if snaps:
            parts.append(f"snapshots: {len(snaps.get('removed') or [])} removed, {len(snaps.get('kept') or [])} kept")
        if log:
            size = log.get("bytes")
            parts.append(f"log {log['file']}: " + ("rotated" if log.get("rotated") else
                                                   "absent" if size is None else f"{size} bytes, kept"))
        line = f"{stack['env']}: " + ("; ".join(parts) or "nothing to do")
        lines.append(line + "".join(f"\n  note: {n}" for n in stack.get("notes") or []))
    lines += [f"failed: {f}" for f in result.get("failures") or []]
    return "\n".join(lines)


@app.command()
def housekeeping(
    keep: Annotated[int, typer.Option("--keep", min=0, help="Local images of the last N successful releases of EVERY env stay (the deployed one always stays).")],
    env: Annotated[list[str] | None, typer.Option("--env", help="Only this env (repeatable; default: every env whose state root is on this host).")] = None,
    build_cache_hours: Annotated[float | None, typer.Option("--build-cache-hours", min=0, help="Remove builder cache not used for this many hours (docker builder prune --all --filter until=); unset: keep it.")] = None,
    builds_older_than_hours: Annotated[float | None, typer.Option("--builds-older-than-hours", min=0, help="Also remove <env>-<sha> builds that never left this host (never pushed) once this old; unset: keep them.")] = None,
    log_max_mb: Annotated[float, typer.Option("--log-max-mb", min=0, help="Rotate Odoo's log file under logs/ once it is this big (0: at every run).")] = 100.0,
    log_keep: Annotated[int, typer.Option("--log-keep", min=1, max=100, help="Rotated log files kept (odoo.log.1, odoo.log.2.gz, …).")] = 10,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Keep the Docker host tidy: old local images, old builder cache, old snapshots, Odoo's log.

    Local images as `prune-images --local --keep N`; builder cache unused for
    --build-cache-hours; per env, holding its deploy lock (an env being deployed is
    skipped): creates <state_root>/cache/, removes the snapshots no rollback can use (those
    of the last ODOO_DEPLOY_KEEP_SNAPSHOTS successful releases stay) and rotates Odoo's
    log file once it reaches --log-max-mb, keeping --log-keep rotated files."""
    import datetime as dt

    from odoo_ai import housekeeping as uc

    state.json = as_json
    stacks = _all_stacks()
    names = list(dict.fromkeys(env or []))
    by_name = {s.env: s for s in stacks}
    for name in names:
        if name not in by_name:
            load(name)  # raises the unknown-env error
    scope = [by_name[n] for n in names] if names else stacks
    older = dt.timedelta(hours=builds_older_than_hours) if builds_older_than_hours is not None else None
    result = uc.housekeeping(stacks, scope, local_host(dry_run), keep=keep, all_envs=not names,
                             build_cache_hours=build_cache_hours, log_max_bytes=int(log_max_mb * 1024 * 1024),
                             log_keep=log_keep, builds_older_than=older)
    emit(result, None if as_json else _housekeeping_human(result))
    if not as_json:
        for warning in (result.get("images") or {}).get("warnings", []):
            err.print(f"warning: {warning}", markup=False)
    if result.get("failures"):
        raise typer.Exit(ExitCode.FAILED)
