"""Pure planning of `docker build` for the stack images (targets web, script-runner), and
the addon repositories file (addon-repos.yaml) the build fetches in its own stage."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from odoo_ai.config.stack import StackConfig
from odoo_ai.errors import ConfigError
from odoo_ai.plan.compose import purpose
from odoo_ai.runners.base import Command

TARGETS = ("web", "script-runner")
ADDON_REPOS_FILE = "addon-repos.yaml"
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
# https://host/path, ssh://[user@]host[:port]/path, or scp-like user@host:path; no blanks,
# no ';' or ',' (the separators of the ADDON_REPOS build argument), no password in the URL.
_URL_RE = re.compile(r"(https://[^\s;,@]+|ssh://([A-Za-z0-9._-]+@)?[A-Za-z0-9.\[\]:_-]+/[^\s;,]+"
                     r"|[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:[^\s;,]+)")
_PATH_RE = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


@dataclass(frozen=True)
class AddonRepo:
    """One repository of addons pinned to a commit; `paths` are directories in it, each an
    addon or a directory of addons ("." = the repository's top level)."""

    url: str
    commit: str
    paths: tuple[str, ...] = (".",)

    @property
    def ssh(self) -> bool:
        return not self.url.startswith("https://")

    def arg(self) -> str:
        return f"{self.url} {self.commit} {','.join(self.paths)}"


def parse_addon_repos(data: Any, source: str) -> tuple[AddonRepo, ...]:
    """The `repos:` list of addon-repos.yaml (already YAML-loaded), checked: a URL without
    credentials, a full 40-hex commit (a branch or short sha would not pin anything), and
    relative paths inside the repository. ConfigError naming the file and the entry."""
    if data is None:
        return ()
    if not isinstance(data, dict) or set(data) - {"repos"}:
        raise ConfigError(f"{source}: expected one key `repos:` (a list of url/commit/paths entries)")
    entries = data.get("repos") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: `repos:` must be a list")
    repos: list[AddonRepo] = []
    for index, entry in enumerate(entries, 1):
        where = f"{source}: repos[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with url, commit and optional paths")
        unknown = set(entry) - {"url", "commit", "paths"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (url, commit, paths)")
        url, commit, paths = entry.get("url"), entry.get("commit"), entry.get("paths", ["."])
        if not isinstance(url, str) or not _URL_RE.fullmatch(url):
            raise ConfigError(f"{where}: url {url!r} is not an https://, ssh:// or user@host:path git URL "
                              "without blanks, ',' or ';' (and without credentials: private repositories "
                              "use ssh with --addons-ssh-key)")
        if url.startswith("https://") and "@" in url.split("/", 3)[2]:
            raise ConfigError(f"{where}: url {url!r} carries credentials: use ssh with --addons-ssh-key")
        if not isinstance(commit, str) or not COMMIT_RE.fullmatch(commit):
            raise ConfigError(f"{where} ({url}): commit {commit!r} must be a full 40-hex commit sha (a pin, "
                              "not a branch or tag)")
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not paths:
            raise ConfigError(f"{where} ({url}): paths must be a list of directories in the repository")
        clean: list[str] = []
        for raw in paths:
            text = str(raw).strip().strip("/") or "."
            if text != "." and (not _PATH_RE.fullmatch(text) or ".." in PurePosixPath(text).parts):
                raise ConfigError(f"{where} ({url}): path {raw!r} must be a relative directory inside the "
                                  "repository (letters, digits, . _ - and /; no ..)")
            if text not in clean:
                clean.append(text)
        repo = AddonRepo(url, commit, tuple(clean))
        if any(r.url == url for r in repos):
            raise ConfigError(f"{where}: {url} is listed twice (give one entry with several paths)")
        repos.append(repo)
    return tuple(repos)


def addon_repos_arg(repos: tuple[AddonRepo, ...]) -> str:
    """The ADDON_REPOS build argument: `URL COMMIT PATH,PATH;…` (the cache key of the stage)."""
    return ";".join(repo.arg() for repo in repos)


@dataclass(frozen=True)
class BuildInputs:
    """Everything that goes into an image build. Paths are absolute."""

    sha: str
    base_image: str | None = None
    odoo_git_url: str | None = None
    odoo_ref: str = "18.0"
    odoo_local_src: Path | None = None  # must lie inside the build context (the repo)
    addons_dir: Path | None = None
    enterprise_git_url: str | None = None
    enterprise_sha: str = ""
    enterprise_key: Path | None = None
    enterprise_known_hosts: Path | None = None
    ca_file: Path | None = None
    wkhtmltopdf: str = "debian"  # debian: Debian's wkhtmltopdf for PDF reports; none: skip
    build_time: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    addon_repos: tuple[AddonRepo, ...] = ()  # fetched in the addon-repos stage
    addons_key: Path | None = None  # ssh key for private addon repositories (a BuildKit secret)
    addons_known_hosts: Path | None = None  # their pinned host keys (a BuildKit secret)

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


def image_tag(env: str, inputs: BuildInputs) -> str:
    return f"{env}-{inputs.short_sha}"


def _in_context(path: Path, context: Path, what: str) -> str:
    try:
        rel = path.resolve().relative_to(context.resolve())
    except ValueError:
        raise ConfigError(
            f"{what} {path} is outside the build context {context}: put it under the repo "
            "(e.g. vendor/odoo, git-ignored)"
        ) from None
    return rel.as_posix() or "."


@purpose()
def build_command(stack: StackConfig, target: str, inputs: BuildInputs, docker: str) -> Command:
    if target not in TARGETS:
        raise ConfigError(f"unknown build target {target!r} (known: {', '.join(TARGETS)})")
    context = stack.repo_root
    tag = image_tag(stack.env, inputs)
    args: dict[str, str] = {
        "SOURCE_COMMIT": inputs.sha,
        "ODOO_REF": inputs.odoo_ref,
        "ENTERPRISE_SHA": inputs.enterprise_sha,
        "BUILD_TIME": inputs.build_time,
        "WKHTMLTOPDF": inputs.wkhtmltopdf,
    }
    if inputs.base_image:
        args["BASE_IMAGE"] = inputs.base_image
    if inputs.odoo_git_url:
        args["ODOO_GIT_URL"] = inputs.odoo_git_url
    if inputs.odoo_local_src:
        args["ODOO_LOCAL_SRC"] = _in_context(inputs.odoo_local_src, context, "Odoo source")
    if inputs.addons_dir:
        args["ADDONS_DIR"] = _in_context(inputs.addons_dir, context, "addons dir")
    if inputs.enterprise_git_url:
        args["ENTERPRISE_GIT_URL"] = inputs.enterprise_git_url
    if inputs.addon_repos:
        args["ADDON_REPOS"] = addon_repos_arg(inputs.addon_repos)
    argv = [
        docker, "build",
        "--file", str(context / "docker" / "Dockerfile"),
        "--target", target,
        "--tag", stack.image_ref(target, tag),
    ]
    for key, value in args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in inputs.labels.items():
        argv += ["--label", f"{key}={value}"]
    # Secrets are files mounted into one RUN step only: never args, never layers.
    for secret_id, path in (
        ("enterprise_key", inputs.enterprise_key),
        ("enterprise_known_hosts", inputs.enterprise_known_hosts),
        ("ca", inputs.ca_file),
        ("addons_key", inputs.addons_key),
        ("addons_known_hosts", inputs.addons_known_hosts),
    ):
        if path is not None:
            argv += ["--secret", f"id={secret_id},src={path}"]
    argv.append(str(context))
    return Command(argv, env={"DOCKER_BUILDKIT": "1"}, timeout=3600)


# ------------------------------------------------------------------ git reads of the build
@purpose(reads=True)
def git_head(repo_root: Path) -> Command:
    """The commit the tag names (without --sha)."""
    return Command(["git", "-C", str(repo_root), "rev-parse", "HEAD"], timeout=30)


@purpose(reads=True)
def git_commit_time(repo_root: Path, sha: str) -> Command:
    """The commit's time (unix seconds): the images' `created` label."""
    return Command(["git", "-C", str(repo_root), "show", "-s", "--format=%ct", sha], timeout=30)


@purpose(reads=True)
def git_submodules(repo_root: Path) -> Command:
    """The state of every submodule (`-` not checked out, `+` at another commit)."""
    return Command(["git", "-C", str(repo_root), "submodule", "status", "--recursive"], timeout=60)


@purpose(reads=True)
def built_image_id(docker: str, ref: str) -> Command:
    """The ID of the image a build just tagged `ref` (what push --image-id and deploy check)."""
    return Command([docker, "image", "inspect", "--format", "{{.Id}}", ref], timeout=60)


def build_commands(stack: StackConfig, inputs: BuildInputs, docker: str) -> list[Command]:
    """The `docker build` invocations of one build, in order: one per target. Docker 20.10's
    built-in BuildKit exports one image per build, so `web` goes first and `script-runner`
    reuses every stage it shares from the cache (its context upload sends only what changed)."""
    return [build_command(stack, target, inputs, docker) for target in TARGETS]
