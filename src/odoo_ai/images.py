"""Use-cases for the stack images and their registry: secret scan, push, pull,
promote, prune (registry and local retention).

Facts are observed first (registry listings, local images, release logs), the
decision is pure (plan.images), then the actions run: through the runner for
docker commands, through the registry backend for HTTP. `--dry-run` observes and
decides, and acts on nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odoo_ai import releases, secretscan
from odoo_ai.config.render import rendered_value
from odoo_ai.config.stack import StackConfig
from odoo_ai.errors import ConfigError, ExitCode, OdooAiError
from odoo_ai.plan import images as plan
from odoo_ai.plan.build import TARGETS
from odoo_ai.plan.compose import docker_binary
from odoo_ai.registry import (
    Backend,
    NotFound,
    RegistryAuthError,
    RegistryError,
    RegistrySettings,
    open_backend,
    registry_settings,
    split_image,
)
from odoo_ai.runners.base import Runner

if TYPE_CHECKING:
    from odoo_ai.hosts import Host

PUSH_DIGEST_RE = re.compile(r"digest: (sha256:[0-9a-f]{64})")
Note = Callable[[str], None]


class SecretLeak(OdooAiError):
    """The secret scan found the Enterprise key (or its path) in an image."""

    exit_code = ExitCode.FAILED


# ---------------------------------------------------------------- secret scan
ADDONS_KEY_LABEL = "the addons ssh key"


def scan_images(runner: Runner, refs: list[str], key_path: Path | None, *, docker: str | None = None,
                addons_key: Path | None = None) -> dict[str, Any]:
    """`docker save` the images and look for the Enterprise key (and the addon repositories'
    ssh key, `addons_key`) in every layer, config and history (`docker`: the stack's docker
    CLI, `stack.docker`).

    Raises SecretLeak naming the image, layer and file of the first finding.
    """
    docker = docker or docker_binary()
    needles: list[secretscan.Needle] = []
    for name, path in (("the Enterprise key", key_path), (ADDONS_KEY_LABEL, addons_key)):
        if path is None:
            continue
        try:
            found = secretscan.key_needles(path.read_bytes(), path)
        except OSError as exc:
            raise ConfigError(f"cannot read {name} {path}: {exc.strerror}") from None
        prefix = "" if name == "the Enterprise key" else f"{ADDONS_KEY_LABEL}: "
        needles += [secretscan.Needle(prefix + n.label, n.data) for n in found]
    if runner.dry_run:
        runner.run(plan.save(docker, refs, "$TMPDIR/odoo-ai-scan/images.tar"))
        for ref in refs:
            runner.run(plan.history(docker, ref))
        runner.note(f"scan every layer, config and the history of {', '.join(refs)} for the Enterprise key "
                    f"({len(needles)} patterns, incl. its host path); fail if found")
        return {"scanned": False}
    started = time.monotonic()
    stats: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="odoo-ai-scan-") as tmp:
        archive = Path(tmp) / "images.tar"
        saved = runner.run(plan.save(docker, refs, str(archive)), capture=True)
        if not saved.ok:
            raise OdooAiError(f"docker image save failed: {saved.tail(1)}", exit_code=ExitCode.INFRA)
        findings = secretscan.scan_saved(archive, needles, stats)
    for ref in refs:
        result = runner.run(plan.history(docker, ref), capture=True)
        if not result.ok:
            raise OdooAiError(f"docker image history {ref} failed: {result.tail(1)}", exit_code=ExitCode.INFRA)
        for label in secretscan.scan_bytes(result.stdout.encode(), needles):
            findings.append(secretscan.Finding((ref,), "history", None, label))
    if findings:
        # The worst first: key material in a layer's files, then configs and history, then the path.
        findings.sort(key=lambda f: (not f.where.startswith("layer"), "host path" in f.needle))
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        which = ADDONS_KEY_LABEL if findings[0].needle.startswith(ADDONS_KEY_LABEL) else "the Enterprise key"
        raise SecretLeak(
            f"secret scan: {which} leaked into {findings[0].describe()}{more}",
            hint="the images were not pushed; remove them (docker image rm) and keep the key a BuildKit secret",
        )
    return {"scanned": True, "images": refs, "patterns": len(needles), "findings": 0,
            "seconds": round(time.monotonic() - started, 2), **stats}


# ---------------------------------------------------------------- registry login
@contextmanager
def docker_auth(settings: RegistrySettings, runner: Runner, docker: str) -> Iterator[str | None]:
    """Log docker in for the duration of the block, into a private throw-away
    DOCKER_CONFIG (credentials never persist, never in argv: --password-stdin).
    Without credentials in the environment, docker's own configuration is used."""
    creds = settings.credentials
    if creds is None:
        yield None
        return
    if runner.dry_run:
        config_dir = "$TMPDIR/odoo-ai-docker-XXXXXX"
        runner.run(plan.login(docker, settings.host, creds.user, creds.password, config_dir=config_dir))
        yield config_dir
        return
    config_dir = tempfile.mkdtemp(prefix="odoo-ai-docker-")  # mode 0700
    try:
        result = runner.run(plan.login(docker, settings.host, creds.user, creds.password, config_dir=config_dir),
                            capture=True)
        if not result.ok:
            raise RegistryAuthError(
                f"registry {settings.host}: docker login failed for user {creds.user}: {result.tail(1)}"
            )
        yield config_dir
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)


def _backend(settings: RegistrySettings, transport: Any = None) -> Backend:
    return open_backend(settings, transport=transport)


# ---------------------------------------------------------------- push
def parse_push(output: str) -> dict[str, Any]:
    """Layer counts and the digest from `docker push` output."""
    lines = output.splitlines()
    match = PUSH_DIGEST_RE.search(output)
    return {
        "layers_pushed": sum(1 for line in lines if line.rstrip().endswith(": Pushed")),
        "layers_existing": sum(1 for line in lines if line.rstrip().endswith(("Layer already exists", "Mounted from")) or ": Mounted from " in line),
        "digest": match.group(1) if match else None,
    }


class PushRefused(OdooAiError):
    """What would be pushed is not what was built and tested (or may not be pushed at all)."""

    exit_code = ExitCode.FAILED


PRIVATE_HINT = (
    "make the package private before any Enterprise image goes there: on GitHub, the package "
    "({url}) → Package settings → Danger Zone → Change visibility → Private (an organization must "
    "allow private packages; docs/images.md, \"Enterprise stays secret\")"
)


def _package_url(settings: RegistrySettings, repo: str) -> str:
    owner = settings.owner or ""
    package = repo[len(owner) + 1:] if repo.startswith(owner + "/") else repo
    kind = "orgs" if settings.owner_type == "orgs" else "users"
    return f"https://github.com/{kind}/{owner}/packages/container/package/{package}"


def check_private(backend: Any, settings: RegistrySettings, repos: list[str], *, pushed: bool) -> list[str]:
    """GHCR, images with Enterprise: every package must be private (or internal). Before
    the push (`pushed=False`) a package that does not exist yet is judged by the
    repository a workflow's first push links it to (it inherits that visibility);
    after it, every package must exist and not be public. Fails closed: an answer the
    API does not give refuses. Returns notes."""
    notes = []
    for repo in repos:
        try:
            package = backend.package(repo)
        except RegistryError as exc:
            raise PushRefused(f"cannot tell whether the GHCR package {repo} is private ({exc.message}): "
                              "refusing to push images with Enterprise", hint=exc.hint) from None
        url = _package_url(settings, repo)
        if package is None:
            if pushed:
                raise PushRefused(f"GHCR package {repo} not found after the push: cannot tell it is private")
            linked = settings.github_repository
            visibility = backend.repository_visibility(linked) if linked else None
            if linked and visibility == "public":
                raise PushRefused(
                    f"GHCR package {repo} does not exist yet and a push from this workflow would create it "
                    f"linked to the PUBLIC repository {linked}, i.e. public: refusing to push images with Enterprise",
                    hint="create the package private first (push any image to it with a personal access token: "
                         "a package created that way is private), then " + PRIVATE_HINT.format(url=url))
            notes.append(f"{repo}: new package" + (f" (linked to the {visibility} repository {linked})"
                                                   if visibility else "") + "; checked again after the push")
            continue
        visibility = str(package.get("visibility") or "unknown")
        if visibility == "public":
            when = "was pushed to" if pushed else "would be pushed to"
            raise PushRefused(f"an image with Odoo Enterprise {when} the PUBLIC GHCR package {repo}"
                              + ("" if pushed else ": refusing to push"), hint=PRIVATE_HINT.format(url=url))
        if visibility not in ("private", "internal"):
            raise PushRefused(f"GHCR package {repo}: visibility {visibility!r}: refusing to push images with Enterprise",
                              hint=PRIVATE_HINT.format(url=url))
    return notes


def local_ids(stack: StackConfig, runner: Runner, record: dict[str, Any]) -> dict[str, str | None]:
    """The image ID each ref of `record` names on this engine now (None: no such image)."""
    found: dict[str, str | None] = {}
    for target, image in record["images"].items():
        result = runner.run(plan.image_id(stack.docker, image["ref"]), capture=True)
        found[target] = result.stdout.strip() or None if result.ok else None
    return found


def push(stack: StackConfig, runner: Runner, record: dict[str, Any], *, environ: Mapping[str, str],
         transport: Any = None, progress: Note | None = None, expected_ids: Mapping[str, str] | None = None,
         enterprise: bool = False) -> dict[str, Any]:
    """Push the images of `record` (from build.build) and add their digests.

    Build once: each ref must still name the image ID that was built and tested
    (`expected_ids`, else the ids `record` holds): otherwise nothing is pushed
    (PushRefused). After the push, the registry's manifest must describe that same
    image (its config digest is the image ID). With Enterprise on GHCR, the packages
    must be private (check_private), before and after the push."""
    settings = registry_settings(stack, environ)
    docker = stack.docker
    expected = {t: i for t, i in (expected_ids or {}).items() if i} or \
        {t: image["id"] for t, image in record["images"].items() if image.get("id")}
    notes: list[str] = list(record.get("notes") or [])
    if not runner.dry_run:
        found = local_ids(stack, runner, record)
        for target, image in record["images"].items():
            if found[target] is None:
                raise PushRefused(f"no image {image['ref']} on this engine: nothing pushed",
                                  hint=f"build it first (odoo-ai build {stack.env})")
            image["id"] = found[target]
        wrong = [t for t, want in expected.items() if found.get(t) != want]
        if wrong:
            target = wrong[0]
            raise PushRefused(
                f"{record['images'][target]['ref']} is now image {found.get(target)}, not the {expected[target]} "
                "that was built and tested: refusing to push (nothing was pushed)",
                hint="another build re-used the tag; build and test again, then push what was tested")
        if not expected:
            notes.append("no expected image id was given: pushed whatever the tag names on this engine")
    repos = [settings.repository(t) for t in record["images"]]
    backend = _backend(settings, transport)
    # With credentials in the environment, the registry API checks them first (one
    # clear line) and is asked for the digests. Without (docker is logged in by other
    # means, e.g. docker/login-action), docker's own push output gives the digest.
    use_api = settings.credentials is not None
    try:
        if enterprise and settings.kind == "ghcr":
            if runner.dry_run:
                runner.note(f"GET the GHCR packages {', '.join(repos)}: refuse to push if one is public")
            else:
                notes += check_private(backend, settings, repos, pushed=False)
        if use_api and not runner.dry_run:
            backend.list_tags(repos[0])
        with docker_auth(settings, runner, docker) as config_dir:
            for target, image in record["images"].items():
                ref = image["ref"]
                if progress and not runner.dry_run:
                    progress(f"pushing {ref} ({image.get('id') or 'image id unknown'})")
                started = time.monotonic()
                result = runner.run(plan.push(docker, ref, config_dir=config_dir), capture=True)
                if not result.ok:
                    raise OdooAiError(f"docker push {ref} failed: {result.tail(1)}", exit_code=ExitCode.INFRA)
                if runner.dry_run:
                    image["digest"] = None
                    continue
                stats = parse_push(result.stdout)
                repo = settings.repository(target)
                if use_api:
                    digest = backend.resolve_digest(repo, ref.rsplit(":", 1)[1])
                elif stats["digest"]:
                    digest = stats["digest"]
                else:
                    raise OdooAiError(f"docker push {ref}: no digest in its output", exit_code=ExitCode.INFRA)
                if stats["digest"] and stats["digest"] != digest:
                    raise RegistryError(f"{ref}: docker pushed {stats['digest']} but the registry now has {digest}")
                image.update(digest=digest, layers_pushed=stats["layers_pushed"],
                             layers_existing=stats["layers_existing"],
                             push_seconds=round(time.monotonic() - started, 2))
                image["verified"] = _verify_pushed(backend, repo, digest, image.get("id"), notes)
                if progress:
                    progress(f"pushed {ref.rsplit(':', 1)[0]}@{digest}"
                             + (" (the registry's manifest is that image)" if image["verified"] else ""))
        if enterprise and settings.kind == "ghcr" and not runner.dry_run:
            check_private(backend, settings, repos, pushed=True)
    finally:
        backend.close()
    record["pushed"] = not runner.dry_run
    record["registry"] = settings.host
    record["notes"] = notes
    if not runner.dry_run:
        written = write_github_output(record, environ)
        if written:
            record["github_output"] = str(written)
    return record


def _verify_pushed(backend: Any, repo: str, digest: str, image_id: str | None, notes: list[str]) -> bool:
    """The manifest `digest` in the registry must be the local image `image_id`."""
    if not image_id:
        return False
    try:
        ids = backend.image_ids(repo, digest)
    except RegistryAuthError:
        notes.append(f"{repo}@{digest}: not compared with the local image (no registry API credentials)")
        return False
    if image_id not in ids:
        raise PushRefused(f"{repo}@{digest} in the registry is not the local image {image_id} "
                          f"(it describes {', '.join(sorted(ids - {digest})) or 'another image'}): "
                          "the tag changed during the push; do not deploy it",
                          hint="push again; deploy by the digests a push reports (odoo-ai deploy --digest)")
    return True


def write_github_output(record: dict[str, Any], environ: Mapping[str, str]) -> Path | None:
    """Under GitHub Actions, append tag, refs and digests to $GITHUB_OUTPUT."""
    if environ.get("GITHUB_ACTIONS") != "true" or not environ.get("GITHUB_OUTPUT"):
        return None
    path = Path(environ["GITHUB_OUTPUT"])
    lines = [f"tag={record['tag']}"]
    summary = {}
    for target, image in record["images"].items():
        lines += [f"{target}-ref={image['ref']}", f"{target}-digest={image.get('digest') or ''}"]
        summary[target] = {"ref": image["ref"], "digest": image.get("digest")}
    lines.append("images=" + json.dumps(summary, separators=(",", ":")))
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------- pull
def pull(stack: StackConfig, runner: Runner, *, tag: str, environ: Mapping[str, str],
         transport: Any = None) -> dict[str, Any]:
    """Pull both images BY DIGEST (resolved from the registry now), as deploys pin them."""
    settings = registry_settings(stack, environ)
    docker = stack.docker
    backend = _backend(settings, transport)
    images: dict[str, dict[str, Any]] = {}
    try:
        for target in TARGETS:
            digest = backend.resolve_digest(settings.repository(target), tag)  # anonymous if no credentials
            images[target] = {"ref": settings.reference(target, digest), "tag": tag, "digest": digest}
    except RegistryAuthError:
        if settings.credentials is not None:
            raise
        raise RegistryAuthError(
            f"registry {settings.host}: cannot resolve {tag} to digests without credentials",
            hint="set ODOO_REGISTRY_USER and ODOO_REGISTRY_PASSWORD (GHCR: GITHUB_TOKEN) in the environment",
        ) from None
    finally:
        backend.close()
    with docker_auth(settings, runner, docker) as config_dir:
        for image in images.values():
            result = runner.run(plan.pull(docker, image["ref"], config_dir=config_dir), capture=True)
            if not result.ok:
                raise OdooAiError(f"docker pull {image['ref']} failed: {result.tail(1)}", exit_code=ExitCode.INFRA)
    return {"env": stack.env, "tag": tag, "images": images, "pulled": not runner.dry_run}


# ---------------------------------------------------------------- promote
def promote(from_stack: StackConfig, to_stack: StackConfig, host: Host, *, tag: str,
            environ: Mapping[str, str], transport: Any = None, tested_only: bool = False) -> dict[str, Any]:
    """Point `<to_env>-<sha>` at the manifests of `<from_env>-<sha>`: no rebuild, no
    pull, same digests. The digests are the ones FROM_ENV's release log recorded for
    that tag when there is such a successful release (what was tested), else the
    tag's current digests; `tested_only` refuses a tag without such a release (a tag
    alone can be moved by anyone who may push to the registry). The registry's client
    comes from the connector (`host.registry`): a dry one reads for real and prints the
    manifest put."""
    match = re.fullmatch(rf"{re.escape(from_stack.env)}-({plan.SHA_PART})", tag)
    if not match:
        raise ConfigError(f"--tag {tag!r} is not a {from_stack.env}-<short-sha> tag of {from_stack.env}")
    if from_stack.env == to_stack.env:
        raise ConfigError("promote needs two different envs")
    new_tag = f"{to_stack.env}-{match.group(1)}"
    source = registry_settings(from_stack, environ)
    target_settings = registry_settings(to_stack, environ)
    if (source.host, source.namespace) != (target_settings.host, target_settings.namespace):
        raise ConfigError(
            f"promote re-tags within one registry repository, but ODOO_IMAGE differs: "
            f"{from_stack.env}={from_stack.image}, {to_stack.env}={to_stack.image}"
        )
    log_path = releases.release_log_path(from_stack)
    history = releases.parse_releases(host.read_text(log_path) or "", log_path)
    tested = [r for r in releases.successful(history, from_stack.env) if r.get("image_tag") == tag]
    tested_digests = (tested[-1].get("digests") or {}) if tested else {}
    if tested_only and not all(tested_digests.get(t) for t in TARGETS):
        raise PushRefused(
            f"{tag} has no successful release with both digests in {from_stack.env}'s release log ({log_path}): "
            "refusing to promote what a tag names now (--tested-only)",
            hint=f"promote a tag that was deployed to {from_stack.env} (odoo-ai releases {from_stack.env})")
    notes: list[str] = []
    images: dict[str, dict[str, Any]] = {}
    backend = host.registry(target_settings, transport)
    try:
        plan_rows = []
        for target in TARGETS:
            repo = source.repository(target)
            current = backend.resolve_digest(repo, tag)
            digest = tested_digests.get(target) or current
            if digest != current:
                backend.resolve_digest(repo, digest)  # the tested manifest must still exist
                notes.append(f"{repo}:{tag} now points to {current}; promoting the tested {digest}")
            try:
                previous = backend.resolve_digest(repo, new_tag)
            except NotFound:
                previous = None
            plan_rows.append((target, repo, digest, previous))
        for target, repo, digest, previous in plan_rows:
            if previous != digest:
                backend.copy_tag(repo, digest, new_tag)
                if backend.resolve_digest(repo, new_tag) != digest:
                    raise RegistryError(f"{repo}:{new_tag} does not point to {digest} after tagging")
            images[target] = {"ref": target_settings.reference(target, new_tag), "digest": digest,
                              "source_ref": source.reference(target, tag), "previous_digest": previous}
    finally:
        backend.close()
    return {"from_env": from_stack.env, "to_env": to_stack.env, "tag": tag, "new_tag": new_tag,
            "source": "release-log" if tested_digests else "registry", "images": images,
            "promoted": not host.dry_run, "notes": notes}


# ---------------------------------------------------------------- what must stay
def protection(stacks: list[StackConfig], keep: int, warnings: list[str]) -> dict[str, list[str]]:
    """releases.protected_refs plus what each stack's rendered .env runs right now."""
    def report(path: Path, lineno: int, why: str) -> None:
        warnings.append(f"{path}:{lineno}: skipped a corrupt release line: {why}")

    protected = releases.protected_refs(stacks, keep, on_error=report)
    for stack in stacks:
        for key in ("ODOO_IMAGE_TAG", "ODOO_WEB_IMAGE", "ODOO_SCRIPT_RUNNER_IMAGE"):
            value = rendered_value(stack, key) if stack.dotenv_path.exists() else None
            if not value:
                continue
            if "@" in value:
                ref = value.rpartition("@")[2]  # name@sha256:... (how deploys pin)
            elif key == "ODOO_IMAGE_TAG":
                ref = value
            else:
                last = value.rsplit("/", 1)[-1]
                ref = last.rpartition(":")[2] if ":" in last else ""  # name:tag (a port is no tag)
            if ref:
                protected.setdefault(ref, []).append(f"{stack.env}: {key} of its rendered .env (the running stack)")
        if stack.image_tag:
            protected.setdefault(stack.image_tag, []).append(f"{stack.env}: ODOO_IMAGE_TAG setting")
    return protected


def _skipped(stacks: list[StackConfig]) -> dict[str, str]:
    skipped = {}
    for stack in stacks:
        path = releases.release_log_path(stack)
        if not path.exists():
            skipped[stack.env] = (f"{stack.env} has no release log ({path}): cannot tell what is deployed "
                                  "(an empty file declares no deploys)")
    return skipped


def _rules(all_stacks: list[StackConfig], scope: list[StackConfig], keep: int, warnings: list[str],
           *, min_age_hours: float = 0.0, now: dt.datetime | None = None) -> plan.PruneRules:
    if keep < 0:
        raise ConfigError("--keep must be 0 or more")
    return plan.PruneRules(
        scope=tuple(s.env for s in scope), protected=protection(all_stacks, keep, warnings), keep=keep,
        skipped=_skipped(scope), min_age=dt.timedelta(hours=min_age_hours),
        now=now or dt.datetime.now(dt.UTC),
    )


# ---------------------------------------------------------------- prune: registry
def prune_registry(all_stacks: list[StackConfig], scope: list[StackConfig], host: Host, *, keep: int,
                   environ: Mapping[str, str], min_age_hours: float = 0.0, now: dt.datetime | None = None,
                   explicit: bool = True, transport: Any = None) -> dict[str, Any]:
    """Delete old `<env>-<sha>` images of the `scope` envs from the registry.

    Everything is listed and decided before the first delete: an unreachable
    registry or bad credentials change nothing. Unless the envs were named
    (`explicit`), envs whose ODOO_IMAGE names no registry are left out. The registry's
    client comes from the connector: a dry one lists for real and prints the deletes.
    """
    warnings: list[str] = []
    not_in_registry: dict[str, str] = {}
    if not explicit:
        for stack in scope:
            if split_image(stack.image)[0] is None:
                not_in_registry[stack.env] = f"{stack.env}: ODOO_IMAGE={stack.image} is in no registry"
        scope = [s for s in scope if s.env not in not_in_registry]
    rules = _rules(all_stacks, scope, keep, warnings, min_age_hours=min_age_hours, now=now)
    groups: dict[tuple[str, str, str], RegistrySettings] = {}
    for stack in scope:
        settings = registry_settings(stack, environ)
        groups.setdefault((settings.host, settings.base_url, settings.namespace), settings)

    decided: list[tuple[Backend, RegistrySettings, str, list[plan.Verdict]]] = []
    backends: list[Backend] = []
    try:
        for settings in groups.values():  # observe and decide everything first
            backend = host.registry(settings, transport)
            backends.append(backend)
            for target in TARGETS:
                repo = settings.repository(target)
                decided.append((backend, settings, repo, plan.plan_registry_prune(backend.list_versions(repo), rules)))
        deleted = 0
        planned = sum(1 for *_, verdicts in decided for v in verdicts if v.delete)
        for backend, _settings, repo, verdicts in decided:
            for verdict in verdicts:
                if not verdict.delete:
                    continue
                try:
                    backend.delete(repo, verdict.version)
                except OdooAiError as exc:
                    exc.message += f" (after {deleted} of {planned} deletes)"
                    raise
                deleted += 1
    finally:
        for backend in backends:
            backend.close()
    notes = sorted({b.gc_note for b, *_ in decided if b.gc_note}) if deleted else []
    registries: dict[str, dict[str, Any]] = {}
    for _, settings, repo, verdicts in decided:
        entry = registries.setdefault(settings.host, {"registry": settings.host, "repositories": []})
        entry["repositories"].append({"repository": repo, "images": [v.as_dict() for v in verdicts]})
    return {
        "dry_run": host.dry_run, "keep": keep, "min_age_hours": min_age_hours,
        "envs": list(rules.scope), "skipped_envs": {**not_in_registry, **rules.skipped},
        "would_delete" if host.dry_run else "deleted": planned if host.dry_run else deleted,
        "kept": sum(1 for *_, verdicts in decided for v in verdicts if not v.delete),
        "registries": list(registries.values()), "notes": notes, "warnings": warnings,
    }


# ---------------------------------------------------------------- prune: local images
def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def prune_local(all_stacks: list[StackConfig], scope: list[StackConfig], host: Host, *, keep: int, all_envs: bool, builds_older_than: dt.timedelta | None = None,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """Remove old images of the `scope` envs from this Docker host, keeping those of
    the last `keep` successful releases (offline rollback). Never `docker image prune`,
    never `--force`: only named references of images that can be pulled again (and, with
    `builds_older_than`, of `<env>-<sha>` builds that never left this host, once that old).
    Everything runs through the connector `host`: a dry one lists and inspects for real
    and prints the removals."""
    warnings: list[str] = []
    rules = _rules(all_stacks, scope, keep, warnings, now=now)
    docker = all_stacks[0].docker if all_stacks else docker_binary()
    repositories = sorted({f"{s.image}-{t}" for s in all_stacks for t in TARGETS})
    ids: list[str] = []
    for repo in repositories:
        result = host.run(plan.list_image_ids(docker, repo), capture=True)
        if not result.ok:
            raise OdooAiError(f"docker image ls {repo} failed: {result.tail(1)}", exit_code=ExitCode.INFRA)
        ids += [i for i in result.stdout.split() if i not in ids]
    images: list[plan.LocalImage] = []
    if ids:
        result = host.run(plan.inspect_images(docker, ids), capture=True)
        if not result.ok:
            raise OdooAiError(f"docker image inspect failed: {result.tail(1)}", exit_code=ExitCode.INFRA)
        images = [plan.LocalImage.from_inspect(row) for row in _json_lines(result.stdout)]
    in_use: set[str] = set()
    containers = host.run(plan.container_ids(docker), capture=True)
    if containers.ok and containers.stdout.split():
        used = host.run(plan.container_images(docker, containers.stdout.split()), capture=True)
        in_use = set(used.stdout.split())
    release_digests = {}
    for stack in all_stacks:
        digests: set[str] = set()
        for release in releases.read_releases(releases.release_log_path(stack), on_error=lambda *a: None):
            digests |= {d for d in (release.get("digests") or {}).values() if isinstance(d, str)}
        release_digests[stack.env] = digests
    verdicts = plan.plan_local_prune(images, rules, repositories=repositories, in_use=in_use,
                                     release_digests=release_digests, all_envs=all_envs,
                                     builds_older_than=builds_older_than)
    removed, failures = 0, []
    for verdict in verdicts:
        if not verdict.delete:
            continue
        failed = False
        for ref in verdict.refs:
            result = host.run(plan.remove(docker, ref), capture=True)
            if not result.ok and "no such image" not in result.stderr.lower():  # gone already: fine
                failed = True
                failures.append(f"{ref}: {result.tail(1)}")
        removed += 0 if failed else 1
    planned = sum(1 for v in verdicts if v.delete)
    # With failures the report still comes out; the CLI then exits 1.
    return {
        "dry_run": host.dry_run, "local": True, "keep": keep, "envs": list(rules.scope),
        "skipped_envs": dict(rules.skipped),
        "would_delete" if host.dry_run else "deleted": planned if host.dry_run else removed,
        "kept": sum(1 for v in verdicts if not v.delete),
        "images": [v.as_dict() for v in verdicts], "warnings": warnings, "failures": failures,
    }
