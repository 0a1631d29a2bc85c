"""Where a stack keeps its data, whose data a folder holds, and the only recursive delete
of it.

* `path_problem`: a state root (and ODOO_DATA_DIR / DB_DIR / LOG_DIR) must be absolute,
  free of `..`, and not `/`, a top-level directory (`/etc`, `/home`, `/opt`, ...), a
  system directory, a home directory (or one that contains the user's home), nor a
  folder that contains the stack repository.
* The marker `<state_root>/.odoo-ai-stack` (JSON: project, env, created) is written by
  the first render (render.py locally, the deploy's render through the connector) and
  never replaced by another project's: two stacks must not share a state root.
* `inspect_purge` / `remove_marked_tree`: `down --purge` and the test runner's
  throw-away projects delete a directory only when it is a real directory (not a
  symlink), passes the path rules, and carries the marker of the very project deleting
  it. Every other case is a refusal (ConfigError, exit 2) before anything changes.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from odoo_ai.config.envfile import write_atomic
from odoo_ai.errors import ConfigError, OdooAiError

MARKER = ".odoo-ai-stack"
MARKER_MODE = 0o644
MARKER_MAX = 4096  # a marker is a few dozen bytes: anything larger is not one

# Below the top level, the system's own folders: a stack may live inside one (e.g.
# /var/lib/odoo-ai/opw-dev), never be one.
SYSTEM_DIRS = frozenset({
    "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libexec", "/usr/include",
    "/usr/share", "/usr/src", "/usr/local", "/usr/local/bin", "/usr/local/lib", "/usr/local/share",
    "/var/lib", "/var/log", "/var/cache", "/var/tmp", "/var/spool", "/var/mail", "/var/opt", "/var/www",
    "/var/backups", "/var/run", "/var/lock", "/var/lib/docker", "/etc/ssl", "/etc/systemd",
    "/private/etc", "/private/tmp", "/private/var", "/System/Library", "/Library/Application Support",
})
# Kernel filesystems: nothing of a stack belongs anywhere under them.
PSEUDO_ROOTS = frozenset({"proc", "sys", "dev"})
# Folders whose direct children are users' home directories.
HOMES_PARENTS = frozenset({"home", "Users"})


# ---------------------------------------------------------------- where data may live
def path_problem(path: PurePosixPath | Path, *, homes: Iterable[Path] = (),
                 repo_root: Path | None = None) -> str | None:
    """Why `path` cannot hold a stack's data, or None. `homes`: the user's home directory
    (as configured and as the process sees it)."""
    path = PurePosixPath(path)
    if not path.is_absolute():
        return "must be an absolute path"
    if ".." in path.parts:
        return "must not contain '..'"
    names = path.parts[1:]  # '//etc' has the root '//': the same single component
    if not names:
        return "is the root directory"
    if len(names) == 1:
        return "is a top-level directory"
    for home in homes:
        home = PurePosixPath(os.path.normpath(home))
        if path == home:
            return "is your home directory"
        if path in home.parents:
            return "contains your home directory"
    if names[0] in HOMES_PARENTS and len(names) == 2:
        return "is a home directory"
    if names[0] in PSEUDO_ROOTS:
        return "is on a kernel filesystem"
    if "/" + "/".join(names) in SYSTEM_DIRS:
        return "is a system directory"
    if repo_root is not None:
        repo = PurePosixPath(os.path.normpath(repo_root))
        if path == repo or path in repo.parents:
            return "contains the stack repository"
    return None


def user_homes(configured: Path | None = None) -> list[Path]:
    """The user's home as configured (load_stack's `home`) and as the process sees it."""
    homes = [configured] if configured else []
    try:
        homes.append(Path.home())
    except RuntimeError:  # no HOME and no passwd entry
        pass
    return homes


OWN_FOLDER_HINT = "a stack needs a folder of its own, e.g. /opt/odoo-ai/data/{project} or ~/odoo-ai/{project}"


# ---------------------------------------------------------------- the marker
def marker_path(root: Path) -> Path:
    return root / MARKER


def marker_text(project: str, env: str, *, created: datetime | None = None) -> str:
    created = created or datetime.now(UTC)
    return json.dumps({"project": project, "env": env,
                       "created": created.replace(microsecond=0).isoformat()}) + "\n"


def parse_marker(text: str) -> dict[str, Any] | None:
    """The marker's fields, or None when `text` is not a marker."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("project"), str) or not data["project"]:
        return None
    return data


def _claim_error(root: Path, project: str, owner: str) -> ConfigError:
    return ConfigError(
        f"{root} is the state root of the stack {owner!r} ({marker_path(root)}), not of {project!r}: "
        "two stacks must not share a state root",
        hint="give this stack its own ODOO_STATE_ROOT",
    )


def check_claim(root: Path, project: str, read_text: Callable[[Path], str | None]) -> bool:
    """True when `root` carries this project's marker, False when it carries none; a
    ConfigError when it carries another project's, or a file by that name that is not a
    marker. `read_text` reads a file of the Docker host (None: it does not exist)."""
    path = marker_path(root)
    text = read_text(path)
    if text is None:
        return False
    marker = parse_marker(text)
    if marker is None:
        raise ConfigError(f"{path} is not an odoo-ai marker (JSON naming the project): refusing to use "
                          f"{root} as the state root of {project!r}",
                          hint=f"remove it if {root} is {project}'s, else give the stack its own ODOO_STATE_ROOT")
    if marker["project"] != project:
        raise _claim_error(root, project, marker["project"])
    return True


def claim_state_root(root: Path, project: str, env: str, *, read_text: Callable[[Path], str | None],
                     write: Callable[[Path, str], None]) -> bool:
    """Mark `root` as this project's unless it already is (the first render does it):
    refuses another project's marker (check_claim). Returns True when it wrote one."""
    if check_claim(root, project, read_text):
        return False
    write(marker_path(root), marker_text(project, env))
    return True


def read_local_marker(path: Path) -> str | None:
    """A marker file on this machine, never through a symlink: None when absent, a
    ConfigError when the name is taken by something that cannot be a marker."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise ConfigError(f"{path} is {kind}, not an odoo-ai marker")
    if st.st_size > MARKER_MAX:
        return "{}"  # not a marker: parse_marker says so
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            return handle.read(MARKER_MAX).decode("utf-8", "replace")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def write_local_marker(path: Path, text: str) -> None:
    write_atomic(path, text, mode=MARKER_MODE)


def claim_local(root: Path, project: str, env: str) -> bool:
    return claim_state_root(root, project, env, read_text=read_local_marker, write=write_local_marker)


# ---------------------------------------------------------------- purge
@dataclass(frozen=True)
class Part:
    what: str  # database, filestore, snapshots, logs, the rest
    path: Path
    bytes: int
    files: int


@dataclass
class PurgeListing:
    """What a purge of `root` deletes, measured (files counted once per inode, symlinks
    never followed), and the stack's folders outside it, which it keeps."""

    root: Path
    project: str
    marker: dict[str, Any]
    parts: list[Part] = field(default_factory=list)
    kept_outside: list[tuple[str, Path]] = field(default_factory=list)
    unreadable: int = 0  # folders that could not be listed (their size is missing)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.parts)

    @property
    def files(self) -> int:
        return sum(p.files for p in self.parts)

    def lines(self, *, dry_run: bool = False) -> list[str]:
        created = f", created {self.marker['created']}" if self.marker.get("created") else ""
        verb = "would delete" if dry_run else "deletes"
        out = [f"purge {verb} {self.root} (marker: {self.project}{created}):"]
        width = max(len(p.what) for p in self.parts) if self.parts else 0
        for part in self.parts:
            out.append(f"  {part.what:<{width}}  {human_size(part.bytes):>10}  {_files(part.files):>11}  {part.path}")
        out.append(f"  {'total':<{width}}  {human_size(self.bytes):>10}  {_files(self.files):>11}")
        if self.unreadable:
            out.append(f"  ({self.unreadable} folder(s) could not be read: their size is not counted)")
        for what, path in self.kept_outside:
            out.append(f"  kept: {what} {path} (outside the state root)")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "state_root": str(self.root),
            "marker": self.marker,
            "parts": [{"what": p.what, "path": str(p.path), "bytes": p.bytes, "files": p.files} for p in self.parts],
            "bytes": self.bytes,
            "files": self.files,
            "unreadable": self.unreadable,
            "kept_outside": [{"what": w, "path": str(p)} for w, p in self.kept_outside],
        }


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _refusal(root: Path, why: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"refusing to delete {root}: {why}; nothing deleted", hint=hint)


@dataclass
class DirFacts:
    """What the purge guard needs to know about a state root, read on the disk it is on
    (this machine: local_dir_facts; a Docker host over ssh: hosts.RemoteHost.dir_facts)."""

    kind: str  # absent, link, notdir, dir, error
    detail: str = ""  # the link's target, or why it could not be inspected
    real: str | None = None  # its real path (symlinks above it resolved)
    marker_text: str | None = None  # the marker's text (None: no marker file)
    marker_problem: str | None = None  # why the marker's name holds no readable marker
    homes: list[Path] = field(default_factory=list)  # the user's home there (HOME)


def local_dir_facts(root: Path) -> DirFacts:
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return DirFacts("absent")
    except OSError as exc:
        return DirFacts("error", detail=str(exc.strerror))
    if stat.S_ISLNK(st.st_mode):
        return DirFacts("link", detail=os.readlink(root))
    if not stat.S_ISDIR(st.st_mode):
        return DirFacts("notdir")
    facts = DirFacts("dir", real=os.path.realpath(root))
    try:
        facts.marker_text = read_local_marker(marker_path(root))
    except ConfigError as exc:
        facts.marker_problem = exc.message
    return facts


def parse_dir_facts(text: str) -> DirFacts:
    """hosts.RemoteHost's facts script's answer: HOME, KIND, REAL and MARKER lines, then
    the marker's text."""
    facts = DirFacts("error", detail="no answer")
    rest = text
    while rest:
        line, _, after = rest.partition("\n")
        key, _, value = line.partition(" ")
        if key == "HOME":
            facts.homes = [Path(value)] if value.startswith("/") else []
        elif key == "KIND":
            kind, _, detail = value.partition(" ")
            facts.kind, facts.detail = kind, detail
        elif key == "REAL":
            facts.real = value
        elif key == "MARKER":
            path = "the marker"
            if value == "file":
                facts.marker_text = after
                break
            if value == "big":
                facts.marker_text = "{}"  # not a marker: parse_marker says so
            elif value != "absent":
                facts.marker_problem = {"link": f"{path} is a symbolic link, not an odoo-ai marker",
                                        "other": f"{path} is not a regular file, not an odoo-ai marker",
                                        }.get(value, f"cannot read {path}")
            break
        rest = after
    return facts


def decide_marked_dir(root: Path, project: str, facts: DirFacts, *, homes: Iterable[Path] = (),
                      repo_root: Path | None = None, env: str | None = None) -> dict[str, Any] | None:
    """The marker of `root` when `root` may be deleted as `project`'s; None when it does not
    exist; a refusal (ConfigError, exit 2) in every other case: a symlink, not a directory,
    a path no stack may use (also once symlinks above it are resolved), no marker, a
    marker of another project, or something else by the marker's name. `facts` were read
    on the disk `root` is on."""
    if facts.kind == "absent":
        return None
    if facts.kind == "error":
        raise _refusal(root, f"cannot inspect it ({facts.detail})")
    if facts.kind == "link":
        raise _refusal(root, f"it is a symbolic link (to {facts.detail}), not the stack's own directory",
                       hint="a purge deletes only the real directory: point ODOO_STATE_ROOT at it")
    if facts.kind != "dir":
        raise _refusal(root, "it is not a directory")
    homes = list(homes)
    for path in (root, Path(facts.real or root)):
        problem = path_problem(path, homes=homes, repo_root=repo_root)
        if problem:
            shown = path if path == root else f"{root} (really {path})"
            raise _refusal(root, f"{shown} {problem}")
    if facts.marker_problem:
        raise _refusal(root, facts.marker_problem.replace("the marker", str(marker_path(root)), 1)
                       if facts.marker_problem.startswith("the marker") else facts.marker_problem)
    text = facts.marker_text
    if text is None:
        how = f"`odoo-ai up {env}` or `odoo-ai env render {env}`" if env else "odoo-ai's render"
        raise _refusal(root, f"it carries no odoo-ai marker ({MARKER}): odoo-ai did not create it as {project}'s "
                             "state root", hint=f"if it is {project}'s state root from before markers existed, "
                                                f"{how} marks it; else fix ODOO_STATE_ROOT")
    marker = parse_marker(text)
    if marker is None:
        raise _refusal(root, f"{marker_path(root)} is not an odoo-ai marker")
    if marker["project"] != project:
        raise _refusal(root, f"it is the state root of the stack {marker['project']!r}, not of {project!r}")
    return marker


def verify_marked_dir(root: Path, project: str, *, homes: Iterable[Path] = (), repo_root: Path | None = None,
                      env: str | None = None) -> dict[str, Any] | None:
    """decide_marked_dir on this machine's disk."""
    return decide_marked_dir(root, project, local_dir_facts(root), homes=homes, repo_root=repo_root, env=env)


def _split_parts(root: Path, parts: Iterable[tuple[str, Path]]) -> tuple[list[tuple[str, Path]],
                                                                          list[tuple[str, Path]]]:
    inside, outside = [], []
    for what, path in parts:
        (inside if path == root or root in path.parents else outside).append((what, path))
    return inside, outside


def purge_listing_from_entries(root: Path, project: str, marker: dict[str, Any], parts: Iterable[tuple[str, Path]],
                               entries: str, *, unreadable: int = 0) -> PurgeListing:
    """inspect_purge's listing from the entries under `root` listed on another disk, one
    per line: `TYPE SIZE DEV:INODE PATH` (find -printf "%y %s %D:%i %p"); each inode counted
    once, in the first part (in `parts` order) that holds it, the rest last."""
    listing = PurgeListing(root=root, project=project, marker=marker, unreadable=unreadable)
    inside, listing.kept_outside = _split_parts(root, parts)
    rows = []
    for line in entries.splitlines():
        fields = line.split(" ", 3)
        if len(fields) != 4 or not fields[1].isdigit() or fields[0] == "d":
            continue
        rows.append((fields[0], int(fields[1]), fields[2], Path(fields[3])))
    named = [(what, path) for what, path in inside if path != root]

    def owner(path: Path) -> Path:
        holders = [p for _, p in named if p in path.parents]
        return max(holders, key=lambda p: len(p.parts)) if holders else root

    by_part: dict[Path, list[tuple[str, int, str]]] = {}
    for kind, size, inode, path in rows:
        by_part.setdefault(owner(path), []).append((kind, size, inode))
    seen: set[str] = set()

    def measure(path: Path) -> tuple[int, int]:
        size = files = 0
        for kind, bytes_, inode in by_part.get(path, []):
            files += 1
            if inode not in seen:
                seen.add(inode)
                size += bytes_ if kind == "f" else 0
        return size, files

    for what, path in inside:
        listing.parts.append(Part(what, path, *measure(path)) if path != root else Part(what, path, 0, 0))
    listing.parts.append(Part("the rest", root, *measure(root)))
    return listing


def _usage(path: Path, skip: set[Path], seen: set[tuple[int, int]]) -> tuple[int, int, int]:
    """(bytes, files, unreadable folders) under `path`, never following a symlink, each
    inode counted once (hardlinked snapshots share the filestore's), skipping `skip`."""
    size = files = unreadable = 0
    stack = [path]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        except OSError:
            unreadable += 1
            continue
        for entry in entries:
            entry_path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry_path not in skip:
                        stack.append(entry_path)
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            files += 1
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                size += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return size, files, unreadable


def inspect_purge(root: Path, project: str, *, parts: Iterable[tuple[str, Path]] = (), homes: Iterable[Path] = (),
                  repo_root: Path | None = None, env: str | None = None) -> PurgeListing | None:
    """What deleting `root` as `project`'s would delete (None: `root` does not exist), after
    verify_marked_dir's checks. `parts`: the stack's folders by name (database, filestore,
    logs, snapshots); those under `root` are measured apart, the others are kept."""
    marker = verify_marked_dir(root, project, homes=homes, repo_root=repo_root, env=env)
    if marker is None:
        return None
    listing = PurgeListing(root=root, project=project, marker=marker)
    inside: list[tuple[str, Path]] = []
    for what, path in parts:
        if path == root or root in path.parents:
            inside.append((what, path))
        else:
            listing.kept_outside.append((what, path))
    seen: set[tuple[int, int]] = set()
    skip = {path for _, path in inside if path != root}
    for what, path in inside:
        size, files, unreadable = _usage(path, skip - {path}, seen) if path != root else (0, 0, 0)
        listing.parts.append(Part(what, path, size, files))
        listing.unreadable += unreadable
    size, files, unreadable = _usage(root, skip, seen)
    listing.parts.append(Part("the rest", root, size, files))
    listing.unreadable += unreadable
    return listing


def remove_marked_tree(root: Path, project: str, *, homes: Iterable[Path] = (), repo_root: Path | None = None,
                       env: str | None = None) -> bool:
    """Delete `root` and everything in it, after verify_marked_dir's checks (run again right
    before: what was listed may have changed). False when it does not exist. Symlinks
    inside are removed, never followed (shutil.rmtree's fd-based walk)."""
    if verify_marked_dir(root, project, homes=homes, repo_root=repo_root, env=env) is None:
        return False
    try:
        # Through a descriptor of the checked directory (never a symlink swapped in since), and
        # the marker last: a delete that stops half way (e.g. the database container's files,
        # owned by its own user) leaves a folder that a second purge still recognises.
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            for entry in os.scandir(fd):
                if entry.name == MARKER:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.name, dir_fd=fd)
                else:
                    os.unlink(entry.name, dir_fd=fd)
            os.unlink(MARKER, dir_fd=fd)
        finally:
            os.close(fd)
        os.rmdir(root)
    except OSError as exc:
        raise OdooAiError(f"cannot delete all of {root}: {exc.strerror} ({exc.filename}); the rest stays, "
                          "marked: purge again once it can be deleted",
                          hint="files written by the database container may belong to its own user") from None
    return True
