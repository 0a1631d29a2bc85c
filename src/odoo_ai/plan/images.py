"""Pure planning for images: the docker argv of login/push/pull/tag/rm/save/history,
and the keep-or-delete decision of a prune (registry and local), with reasons.

No side effects here: the decisions take observed facts (registry versions, local
images, release logs) and return verdicts; images.py acts on them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from odoo_ai.plan.compose import purpose
from odoo_ai.registry import ImageVersion, parse_time
from odoo_ai.runners.base import Command

SHA_PART = r"[0-9a-f]{7,40}"


def env_of_tag(tag: str, envs: Iterable[str]) -> str | None:
    """The env whose `<env>-<short-sha>` pattern `tag` follows, if any."""
    for env in envs:
        if re.fullmatch(rf"{re.escape(env)}-{SHA_PART}", tag):
            return env
    return None


# ---------------------------------------------------------------- docker argv
def _env(config_dir: str | None) -> dict[str, str]:
    return {"DOCKER_CONFIG": config_dir} if config_dir else {}


def login(docker: str, host: str, user: str, password: str, *, config_dir: str | None = None) -> Command:
    """`docker login` with the password on stdin, never in argv."""
    return Command([docker, "login", "--username", user, "--password-stdin", host],
                   env=_env(config_dir), stdin=password.encode(), timeout=120)


def logout(docker: str, host: str, *, config_dir: str | None = None) -> Command:
    return Command([docker, "logout", host], env=_env(config_dir), timeout=60)


def push(docker: str, ref: str, *, config_dir: str | None = None) -> Command:
    return Command([docker, "image", "push", ref], env=_env(config_dir), timeout=3600)


def pull(docker: str, ref: str, *, config_dir: str | None = None) -> Command:
    return Command([docker, "image", "pull", ref], env=_env(config_dir), timeout=3600)


def tag(docker: str, source: str, target: str) -> Command:
    return Command([docker, "image", "tag", source, target], timeout=60)


@purpose()
def remove(docker: str, ref: str) -> Command:
    """Untag/remove one reference. Never --force: an image a container uses stays."""
    return Command([docker, "image", "rm", ref], timeout=120)


@purpose(reads=True)
def list_image_ids(docker: str, repository: str) -> Command:
    return Command([docker, "image", "ls", "--quiet", "--no-trunc", repository], timeout=60)


@purpose(reads=True)
def inspect_images(docker: str, ids: list[str]) -> Command:
    return Command([docker, "image", "inspect", "--format", "{{json .}}", *ids], timeout=60)


@purpose(reads=True)
def container_ids(docker: str) -> Command:
    return Command([docker, "container", "ls", "--all", "--quiet", "--no-trunc"], timeout=60)


@purpose(reads=True)
def container_images(docker: str, ids: list[str]) -> Command:
    return Command([docker, "container", "inspect", "--format", "{{.Image}}", *ids], timeout=60)


def save(docker: str, refs: list[str], output: str) -> Command:
    return Command([docker, "image", "save", "--output", output, *refs], timeout=1800)


def image_id(docker: str, ref: str) -> Command:
    """The image ID a reference names on this engine (reads only)."""
    return Command([docker, "image", "inspect", "--format", "{{.Id}}", ref], timeout=60, reads=True)


def history(docker: str, ref: str) -> Command:
    return Command([docker, "image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", ref], timeout=60)


# ---------------------------------------------------------------- prune decisions
def _age(delta: dt.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 2 * 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class Verdict:
    """Keep or delete one registry version, and why."""

    version: ImageVersion
    delete: bool
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        data = self.version.as_dict()
        return {**data, "action": "delete" if self.delete else "keep", "reasons": list(self.reasons)}


@dataclass(frozen=True)
class PruneRules:
    scope: tuple[str, ...]  # envs whose `<env>-<sha>` tags may be pruned
    protected: Mapping[str, list[str]]  # tag or digest -> reasons (releases.protected_refs + more)
    keep: int
    skipped: Mapping[str, str] = field(default_factory=dict)  # env -> why it is not pruned
    min_age: dt.timedelta = dt.timedelta(0)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def plan_registry_prune(versions: list[ImageVersion], rules: PruneRules) -> list[Verdict]:
    """Which versions of one repository go. Deletes come first (indexes before their
    children), then the kept ones; versions without a tag of a pruned env are not listed.

    A version is one digest with all its tags: deleting it deletes every tag on it,
    so it goes only if every tag on it may go. Kept: the refs in `rules.protected`
    (releases, deployed, pinned), anything also tagged outside the pruned envs, envs
    without a release log, versions younger than min_age. An index's untagged
    children go with it unless another kept index (or a protection) still needs them.
    """
    verdicts: dict[str, Verdict] = {}
    for version in versions:
        ours = [t for t in version.tags if env_of_tag(t, rules.scope)]
        if not ours:
            continue
        keep: list[str] = []
        foreign = [t for t in version.tags if t not in ours]
        if foreign:
            keep.append(f"also tagged {', '.join(foreign)} (outside the pruned envs): a delete would remove it too")
        for t in ours:
            env = env_of_tag(t, rules.scope)
            if env in rules.skipped:
                keep.append(rules.skipped[env])  # type: ignore[index]
        for ref in (*version.tags, version.digest):
            keep += rules.protected.get(ref, [])
        age = rules.now - version.created if version.created else None
        if rules.min_age > dt.timedelta(0):
            if age is None:
                keep.append("creation time unknown (kept while a minimum age is set)")
            elif age < rules.min_age:
                keep.append(f"created {_age(age)} ago, younger than the minimum age {_age(rules.min_age)}")
        if keep:
            verdicts[version.digest] = Verdict(version, False, _unique(keep))
        else:
            why = (f"{', '.join(ours)}: not in the last {rules.keep} successful releases of any env, "
                   "not deployed, not pinned")
            if age is not None:
                why += f"; created {_age(age)} ago"
            verdicts[version.digest] = Verdict(version, True, (why,))

    # Index children: whatever a kept index (in scope or not) points to stays.
    by_digest = {v.digest: v for v in versions}

    def holder_of(digest: str) -> ImageVersion | None:
        doomed = {d for d, v in verdicts.items() if v.delete}
        for parent in versions:
            if digest in parent.children and parent.digest not in doomed:
                return parent
        return None

    changed = True
    while changed:  # a rescued index rescues its own children in the next round
        changed = False
        for digest, verdict in list(verdicts.items()):
            holder = holder_of(digest) if verdict.delete else None
            if holder is not None:
                verdicts[digest] = Verdict(verdict.version, False, (
                    f"child of the kept index {', '.join(holder.tags) or holder.digest}",))
                changed = True

    children: dict[str, Verdict] = {}
    for parent in [v.version for v in verdicts.values() if v.version.children]:
        for child in parent.children:
            if child in children or child in verdicts:
                continue  # decided already (a tagged child is decided by its own tags)
            known = by_digest.get(child, ImageVersion(digest=child))
            holder = holder_of(child)
            if holder is not None:
                children[child] = Verdict(known, False, (
                    f"child of the kept index {', '.join(holder.tags) or holder.digest}",))
            elif known.tags:
                children[child] = Verdict(known, False, (f"also tagged {', '.join(known.tags)}",))
            elif rules.protected.get(child):
                children[child] = Verdict(known, False, _unique(rules.protected[child]))
            else:
                name = ", ".join(parent.tags) or parent.digest
                children[child] = Verdict(known, True, (f"untagged child of the deleted index {name}",))

    parents = list(verdicts.values())
    ordered = [v for v in parents if v.delete] + [v for v in children.values() if v.delete]
    ordered += [v for v in parents if not v.delete] + [v for v in children.values() if not v.delete]
    return ordered


@dataclass(frozen=True)
class LocalImage:
    """One image in the Docker host's store (from `docker image inspect`)."""

    id: str
    repo_tags: tuple[str, ...] = ()  # "repo:tag"
    repo_digests: tuple[str, ...] = ()  # "repo@sha256:..."
    created: str | None = None

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any]) -> LocalImage:
        return cls(id=str(data.get("Id")), repo_tags=tuple(data.get("RepoTags") or ()),
                   repo_digests=tuple(data.get("RepoDigests") or ()), created=data.get("Created"))


@dataclass(frozen=True)
class LocalVerdict:
    image: LocalImage
    delete: bool
    reasons: tuple[str, ...]
    refs: tuple[str, ...]  # what `docker image rm` removes, one by one

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.image.id, "tags": list(self.image.repo_tags), "digests": list(self.image.repo_digests),
                "created": self.image.created, "action": "delete" if self.delete else "keep",
                "reasons": list(self.reasons), "refs": list(self.refs)}


def _split_tag(ref: str) -> tuple[str, str]:
    repo, _, tag_ = ref.rpartition(":")
    return (repo, tag_) if "/" not in tag_ else (ref, "")


def plan_local_prune(
    images: list[LocalImage],
    rules: PruneRules,
    *,
    repositories: Iterable[str],
    in_use: Iterable[str] = (),
    release_digests: Mapping[str, set[str]] | None = None,
    all_envs: bool = True,
    builds_older_than: dt.timedelta | None = None,
) -> list[LocalVerdict]:
    """Which local images of our repositories go (offline-rollback retention).

    Only images that can be pulled again (they carry a digest of our registry
    repositories: pulled, or pushed from here) are removed; builds that never left
    this host, images a container uses, and everything `rules` protects stay.
    Digest-only images (pulled by digest) belong to the env whose release log names
    the digest; with no env filter (`all_envs`), to the prune anyway. With
    `builds_older_than`, an `<env>-<sha>` build that never left this host (no registry
    digest: never pushed, e.g. its tests failed) goes too once it is that old.
    """
    repositories = set(repositories)
    in_use = set(in_use)
    release_digests = release_digests or {}
    verdicts: list[LocalVerdict] = []
    for image in images:
        ours_tags = [r for r in image.repo_tags if _split_tag(r)[0] in repositories]
        ours_digests = [r for r in image.repo_digests if r.partition("@")[0] in repositories]
        if not ours_tags and not ours_digests:
            continue
        tags = [_split_tag(r)[1] for r in ours_tags]
        digests = [r.partition("@")[2] for r in ours_digests]
        envs = {env_of_tag(t, rules.scope) for t in tags} - {None}
        envs |= {env for env, known in release_digests.items() if env in rules.scope and known & set(digests)}
        if not envs and not (all_envs and not tags):
            continue  # not an image of the pruned envs
        keep: list[str] = []
        if not envs and rules.skipped:
            keep.append(f"pulled by digest, named by no release log, and {', '.join(sorted(rules.skipped))} "
                        "has no release log: it may be deployed there")
        if image.id in in_use:
            keep.append("used by a container")
        stale_build = None
        if not digests:
            created = parse_time(image.created)
            age = rules.now - created if created else None
            if builds_older_than is not None and envs and age is not None and age >= builds_older_than:
                stale_build = _age(age)
            else:
                keep.append("never pushed or pulled (no registry digest): it could not be pulled again")
        foreign = [r for r in image.repo_tags if r not in ours_tags]
        foreign += [r for r in ours_tags if not env_of_tag(_split_tag(r)[1], rules.scope)]
        if foreign:
            keep.append(f"also tagged {', '.join(foreign)} (outside the pruned envs)")
        for env in sorted(e for e in envs if e in rules.skipped):
            keep.append(rules.skipped[env])  # type: ignore[index]
        for ref in (*tags, *digests):
            keep += rules.protected.get(ref, [])
        # digest references first: removing the last tag would delete the image with them
        refs = tuple(ours_digests + ours_tags)
        if keep:
            verdicts.append(LocalVerdict(image, False, _unique(keep), refs))
        else:
            label = ", ".join(tags) or ", ".join(digests)
            why = (f"a build that never left this host (never pushed: e.g. its tests failed), {stale_build} old"
                   if stale_build else "it can be pulled again")
            verdicts.append(LocalVerdict(image, True, (
                f"{label}: not in the last {rules.keep} successful releases of any env, not deployed, "
                f"not pinned; {why}",), refs))
    return [v for v in verdicts if v.delete] + [v for v in verdicts if not v.delete]
