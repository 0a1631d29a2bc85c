"""Use-case: build the stack images locally, tagged <env>-<short-sha>."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from odoo_ai.config.stack import StackConfig
from odoo_ai.errors import CommandFailed, ConfigError, OdooAiError
from odoo_ai.plan.build import (
    ADDON_REPOS_FILE,
    TARGETS,
    AddonRepo,
    BuildInputs,
    build_commands,
    built_image_id,
    git_commit_time,
    git_head,
    git_submodules,
    image_tag,
    parse_addon_repos,
)
from odoo_ai.runners.base import Command, Result

if TYPE_CHECKING:
    from odoo_ai.dryhost import DryHost
    from odoo_ai.hosts import Host

SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")
LAST_BUILD = "last-build.json"
DEFAULT_ODOO_GIT_URL = "https://github.com/odoo/odoo.git"
BUILD_LOCK_TIMEOUT = 3600.0


def build_lock_path() -> Path:
    """One `odoo-ai build` at a time per user on this machine: Docker 20.10's BuildKit
    (Debian 12's docker.io) can take dockerd down when two builds share steps
    (moby/buildkit#2303); a CI runner builds one at a time anyway."""
    folder = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(folder) / f"odoo-ai-build-{os.getuid()}.lock"


def repo_sha(host: Host, repo_root: Path) -> str:
    """HEAD of the repository (a read through the connector: real in a dry run too)."""
    try:
        result = host.run(git_head(repo_root), capture=True)
    except OdooAiError:  # git missing, or it hung
        result = Result(1)
    sha = result.stdout.strip() if result.ok else ""
    if not sha:
        raise ConfigError(f"{repo_root}: cannot read the git commit: pass --sha")
    return sha


def build_time(host: Host, repo_root: Path, sha: str) -> str:
    """The `created` label: SOURCE_DATE_EPOCH, else the commit's time, else now.

    A time taken from the source (not the clock) keeps a rebuild of the same
    commit byte-identical: same image ID, nothing new to push, no dangling image."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        when = dt.datetime.fromtimestamp(int(epoch), dt.UTC)
    else:
        try:
            result = host.run(git_commit_time(repo_root, sha), capture=True)
        except OdooAiError:
            result = Result(1)
        stamp = result.stdout.strip()
        when = dt.datetime.fromtimestamp(int(stamp), dt.UTC) if result.ok and stamp.isdigit() \
            else dt.datetime.now(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _path_setting(stack: StackConfig, key: str, cli: Path | None, setting: Path | None, *,
                  must_be_dir: bool) -> Path | None:
    """The command-line path, else the setting `key`; relative paths are relative to the repo."""
    value = cli or setting
    if value is None:
        return None
    path = value if value.is_absolute() else stack.repo_root / value
    if must_be_dir and not path.is_dir():
        raise ConfigError(f"{key}: {path} is not a directory")
    if not must_be_dir and not path.is_file():
        raise ConfigError(f"{key}: {path} is not a file")
    return path


def addon_repos(stack: StackConfig, path: Path | None) -> tuple[tuple[AddonRepo, ...], Path | None]:
    """The pinned addon repositories: `path` (--addon-repos), else addon-repos.yaml at the
    repo root when there is one; ((), None) without either."""
    import yaml

    if path is None:
        default = stack.repo_root / ADDON_REPOS_FILE
        if not default.is_file():
            return (), None
        path = default
    elif not path.is_absolute():
        path = stack.repo_root / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--addon-repos {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {exc}") from None
    return parse_addon_repos(data, str(path)), path


def check_submodules(host: Host, repo_root: Path, addons_dir: Path) -> list[str]:
    """Git submodules under the addons folder must be checked out: an uninitialised one is an
    empty directory, and its addons would silently be missing from the image. Returns notes
    (a submodule at another commit than the one recorded); raises ConfigError for a missing one."""
    try:
        out = host.run(git_submodules(repo_root), capture=True)
    except OdooAiError:  # git missing, or it hung
        return []
    if out.returncode != 0:
        return []  # not a git work tree (a copy of the sources): nothing to check
    try:
        prefix = addons_dir.resolve().relative_to(repo_root.resolve()).as_posix()
    except ValueError:
        return []
    notes, missing = [], []
    for line in out.stdout.splitlines():
        if len(line) < 43:
            continue
        state, path = line[0], line[42:].split(" (", 1)[0].strip()
        if prefix != "." and path != prefix and not path.startswith(prefix + "/"):
            continue
        if state == "-":
            missing.append(path)
        elif state == "+":
            notes.append(f"submodule {path} is checked out at another commit than the one recorded in the repository")
        elif state == "U":
            missing.append(f"{path} (merge conflict)")
    if missing:
        raise ConfigError(f"git submodule(s) {', '.join(missing)} not checked out: their addons would be missing "
                          "from the image",
                          hint="git submodule update --init --recursive (CI: the build job does it, with "
                               "ODOO_ADDONS_SSH_KEY for private ones)")
    return notes


def build_inputs(
    stack: StackConfig,
    *,
    sha: str | None,
    host: Host | None = None,
    base_image: str | None = None,
    odoo_git_url: str | None = None,
    odoo_ref: str | None = None,
    odoo_src: Path | None = None,
    addons_dir: Path | None = None,
    enterprise_git_url: str | None = None,
    enterprise_sha: str | None = None,
    enterprise_key: Path | None = None,
    enterprise_known_hosts: Path | None = None,
    ca_file: Path | None = None,
    addon_repos_file: Path | None = None,
    addons_key: Path | None = None,
    addons_known_hosts: Path | None = None,
) -> BuildInputs:
    """Build inputs: command-line options win over ODOO_BUILD_* settings of the env file.
    The git reads (HEAD without `sha`, the commit's time) go through `host` (default: this
    machine)."""
    if host is None:
        from odoo_ai.hosts import LocalHost

        host = LocalHost()
    sha = sha or repo_sha(host, stack.repo_root)
    if not SHA_RE.match(sha):
        raise ConfigError(f"invalid commit sha {sha!r}: 7 to 40 lowercase hex digits")
    b = stack.build
    git_url = odoo_git_url or b.odoo_git_url
    local = _path_setting(stack, "ODOO_BUILD_ODOO_SRC", odoo_src, b.odoo_src, must_be_dir=True)
    if git_url and local:
        raise ConfigError("give the Odoo source either as a git URL or as a local directory, not both")
    if not git_url and not local:
        git_url = DEFAULT_ODOO_GIT_URL  # the embedded default: Odoo 18.0 Community from GitHub
    ent_url = enterprise_git_url or b.enterprise_git_url
    key = _path_setting(stack, "ODOO_BUILD_ENTERPRISE_KEY_FILE", enterprise_key, b.enterprise_key_file,
                        must_be_dir=False)
    known = _path_setting(stack, "ODOO_BUILD_ENTERPRISE_KNOWN_HOSTS", enterprise_known_hosts,
                          b.enterprise_known_hosts, must_be_dir=False)
    if ent_url and not (key and known):
        raise ConfigError("an Enterprise git URL needs --enterprise-key and --enterprise-known-hosts files")
    repos, repos_file = addon_repos(stack, addon_repos_file)
    addons_key = _path_setting(stack, "--addons-ssh-key", addons_key, None, must_be_dir=False)
    addons_known = _path_setting(stack, "--addons-known-hosts", addons_known_hosts, None, must_be_dir=False)
    if addons_key and not addons_known:
        raise ConfigError("--addons-ssh-key needs --addons-known-hosts (the pinned host keys of the git hosts)")
    over_ssh = [r.url for r in repos if r.ssh]
    if over_ssh and not addons_key:
        raise ConfigError(f"{repos_file}: {over_ssh[0]} is fetched over ssh: pass --addons-ssh-key (a key that may "
                          "read it) and --addons-known-hosts, or use its https:// URL if it is public")
    return BuildInputs(
        sha=sha,
        base_image=base_image or b.base_image,
        odoo_git_url=git_url,
        odoo_ref=odoo_ref or b.odoo_ref,
        odoo_local_src=local,
        addons_dir=_path_setting(stack, "ODOO_BUILD_ADDONS_DIR", addons_dir, b.addons_dir, must_be_dir=True),
        enterprise_git_url=ent_url,
        enterprise_sha=enterprise_sha or b.enterprise_sha or "",
        enterprise_key=key,
        enterprise_known_hosts=known,
        ca_file=_path_setting(stack, "ODOO_BUILD_CA_FILE", ca_file, b.ca_file, must_be_dir=False),
        wkhtmltopdf=b.wkhtmltopdf,
        build_time=build_time(host, stack.repo_root, sha),
        addon_repos=repos,
        addons_key=addons_key,
        addons_known_hosts=addons_known,
    )


def build(stack: StackConfig, host: Host, inputs: BuildInputs,
          verify: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None) -> dict[str, Any]:
    """Build both targets through the connector `host` (this machine, or the dry connector
    of `dry_connector`); `verify(record)` (e.g. the secret scan) runs before the build is
    recorded as the last one, and its result lands in record["verify"]."""
    host = _as_connector(host)
    docker = stack.docker
    tag = image_tag(stack.env, inputs)
    addons_dir = inputs.addons_dir or stack.repo_root / "addons"
    notes = check_submodules(host, stack.repo_root, addons_dir)
    images: dict[str, dict[str, Any]] = {}
    with _build_lock(host, stack.env):
        for target, command in zip(TARGETS, build_commands(stack, inputs, docker), strict=True):
            returncode, errors = _docker_build(host, command)
            if returncode != 0:
                # The Dockerfile's own `ERROR: …` line says why (e.g. an addon repository and the
                # commit it could not fetch); docker's exit code alone does not.
                why = f": {errors[0]}" if errors else ""
                raise CommandFailed(f"docker build --target {target} failed (exit {returncode}){why}")
            ref = stack.image_ref(target, tag)
            inspect = host.run(built_image_id(docker, ref), capture=True)
            images[target] = {"ref": ref, "id": inspect.stdout.strip() or None}
    record = {"env": stack.env, "tag": tag, "sha": inputs.sha, "images": images, "built_at": inputs.build_time,
              "enterprise": bool(inputs.enterprise_git_url),
              "addon_repos": [{"url": r.url, "commit": r.commit, "paths": list(r.paths)} for r in inputs.addon_repos]}
    if notes:
        record["notes"] = notes
    if verify is not None:
        record["verify"] = verify(record)
    host.write_private(stack.state_root / LAST_BUILD, json.dumps(record, indent=2) + "\n")
    return record


@contextmanager
def _build_lock(host: Host, env: str) -> Iterator[None]:
    """build_lock_path(), waited for (saying so) up to BUILD_LOCK_TIMEOUT."""
    from odoo_ai.lock import LockHeld

    path, command = build_lock_path(), f"build {env}"
    lock = host.lock(path, command=command, timeout=0)
    try:
        lock.__enter__()
    except LockHeld:
        sys.stderr.write(f"waiting for another odoo-ai build on this machine ({path}, at most "
                         f"{BUILD_LOCK_TIMEOUT:.0f}s): Docker 20.10's BuildKit fails on concurrent builds\n")
        lock = host.lock(path, command=command, timeout=BUILD_LOCK_TIMEOUT)
        lock.__enter__()
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def dry_connector(host: Host, *, out: TextIO | None = None) -> DryHost:
    """The dry connector of a build: git reads and `docker image inspect` of what exists are
    real, each `docker build` is printed and assumed to succeed, nothing is written."""
    from odoo_ai.dryhost import DryHost

    class BuildDryHost(DryHost):
        def _answer_build_command(self, command: Command) -> Result:
            target = command.argv[command.argv.index("--target") + 1]
            self._assume(f"docker build --target {target} succeeds (no Dockerfile step runs in a dry run)")
            return Result(0)

        def _answer_built_image_id(self, command: Command) -> Result:
            self._assume(f"{command.argv[-1]}: its image ID is known once it is built")
            return Result(0, "")

    return BuildDryHost(host, out=out)


def _as_connector(host: Any) -> Host:
    """A connector as it is; a bare runner (a caller that has no connector at hand) on this
    machine: a dry runner becomes the dry connector printing where it prints."""
    if hasattr(host, "write_private"):
        return host
    from odoo_ai.hosts import LocalHost

    if getattr(host, "dry_run", False):
        return dry_connector(LocalHost(), out=getattr(host, "out", None))
    return LocalHost(host)


ERROR_LINE_RE = re.compile(r"\bERROR: (.+)$")


def _docker_build(host: Host, command: Command) -> tuple[int, list[str]]:
    """Run one `docker build`: its output goes to stderr as it comes (also with --json),
    and the `ERROR: …` lines the Dockerfile prints are kept for the failure message."""
    stream = getattr(host, "stream", None) or getattr(host.runner, "stream", None)
    if stream is None:
        return host.run(command, capture=False).returncode, []
    errors: list[str] = []

    def line(text: str) -> None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
        match = ERROR_LINE_RE.search(text)
        if match and not match.group(1).startswith(("process ", "failed to solve", "executor failed")):
            errors.append(match.group(1).strip())

    return stream(command, line), errors


def last_build(stack: StackConfig) -> dict[str, Any] | None:
    """The record the last `build` wrote (tag, sha, image refs and ids, scan), if any."""
    try:
        record = json.loads((stack.state_root / LAST_BUILD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("images"), dict) else None


def push_record(stack: StackConfig, tag: str | None) -> dict[str, Any]:
    """What `push` pushes: the last build's record when it built `tag` (or no tag is given),
    else `tag`'s two images. Refuses an Enterprise build whose images were not scanned."""
    from odoo_ai.config.stack import validate_tag

    last = last_build(stack)
    if tag is None:
        if last is None:
            raise ConfigError(f"no build recorded in {stack.state_root / LAST_BUILD}: pass --tag or build first")
        tag = str(last["tag"])
    validate_tag(tag)
    if last is not None and last.get("tag") == tag and last.get("env") == stack.env:
        record = json.loads(json.dumps(last))  # a copy: push adds digests
        if record.get("enterprise") and not (record.get("verify") or {}).get("scanned"):
            raise ConfigError(f"the images of {tag} hold Odoo Enterprise but were not scanned for the key: "
                              "push what `odoo-ai build` built (it scans), or `build --push`")
        return record
    enterprise = bool(stack.build.enterprise_git_url)
    if enterprise:
        raise ConfigError(f"{tag} is not the last build of {stack.env} (whose images were scanned for the "
                          "Enterprise key): build it again, or `build --push`")
    return {"env": stack.env, "tag": tag, "images": {t: {"ref": stack.image_ref(t, tag)} for t in TARGETS},
            "enterprise": False}


def last_built_tag(stack: StackConfig) -> str | None:
    path = stack.state_root / LAST_BUILD
    try:
        return json.loads(path.read_text())["tag"]
    except (OSError, ValueError, KeyError):
        return None
