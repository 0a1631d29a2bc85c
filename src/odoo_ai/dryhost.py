"""The dry-run connector: the real use-case code runs against it, and it prints each
command and each file it would write, running none of them.

What a command would have answered is either READ for real — `docker image inspect`,
`docker ps` listings and files (the release log, the journal, .env) are only read — or
ASSUMED and printed as such ("assume: database opw_dev exists"). Files the run writes
are kept in memory, so that what it reads back later (its journal, its .env.next) is
what it wrote. Nothing is ever written to disk or to the engine.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from odoo_ai.config.envfile import parse_env_text
from odoo_ai.hosts import Host
from odoo_ai.plan.deploy import image_inspect
from odoo_ai.runners.base import Command, Result

# Commands a dry run may really run: they only read the engine's state.
REAL_READS = frozenset({"image_inspect", "update_containers", "paused_containers", "oneoff_containers",
                        # prune-images --local / housekeeping: the images, and which containers use them
                        "list_image_ids", "inspect_images", "container_ids", "container_images"})
REAL_READS = REAL_READS | {"git_head", "git_commit_time", "git_submodules"}  # build: git HEAD, its time, submodules
_ABSENT = object()


class DryHost:
    """A dry connector around a real one (local or ssh), used for its reads only."""

    dry_run = True

    def __init__(self, inner: Host, *, out: TextIO | None = None,
                 image_lookup: Callable[[str], bool | None] | None = None):
        self.inner = inner
        self.runner = self  # never the inner one: whatever runs a command here prints it
        self.remote = inner.remote
        if hasattr(inner, "target"):
            self.target = inner.target
        self.out = out or sys.stdout
        # ref -> True (in the registry), False (not there), None (cannot tell)
        self.image_lookup = image_lookup
        self.files: dict[Path, Any] = {}
        self.assumptions: list[str] = []
        self.reads: list[str] = []
        self.commands: list[Command] = []
        self._webs = ["<web-1>"]
        self._new = 0

    # ------------------------------------------------------------ output
    def _print(self, text: str) -> None:
        print(text, file=self.out)

    def note(self, text: str) -> None:
        self._print(f"# {text}")

    def _assume(self, text: str) -> None:
        self.assumptions.append(text)
        self._print(f"#   assume: {text}")

    def _read(self, text: str) -> None:
        self.reads.append(text)
        self._print(f"#   read: {text}")

    # ------------------------------------------------------------ commands
    def run(self, command: Command, *, capture: bool = True) -> Result:
        self.commands.append(command)
        self._print(command.display() + ("  # stdin: <redacted>" if command.stdin is not None else ""))
        if command.purpose in REAL_READS:
            result = self.inner.run(command, capture=True)
            if result.ok:
                self._read(f"{command.purpose} ({len(result.stdout.split())} word(s))")
                return result
            if command.purpose != "image_inspect":
                self._assume(f"{command.purpose}: none (the read failed: {result.tail(1)})")
                return Result(0)
        answer = getattr(self, f"_answer_{command.purpose}", None)
        return answer(command) if answer else Result(0)

    def stream(self, command: Command, on_line: Callable[[str], None]) -> int:
        return self.run(command).returncode

    def together(self, *calls: Callable[[], Any]) -> list[Any]:
        return [call() for call in calls]  # printed in order

    def sleep(self, seconds: float, why: str = "") -> None:
        self._print(f"# wait {seconds:g}s{f' ({why})' if why else ''}")

    def run_attached(self, command: Command) -> int:
        return self.run(command, capture=False).returncode

    def probe_http(self, base_url: str, paths: list[str]) -> dict[str, dict]:
        self._print(f"# GET {', '.join(base_url + p for p in paths)}")
        self._assume(f"the probe answers 200 ({', '.join(paths)})")
        return {p: {"path": p, "status": 200, "ms": None, "error": None} for p in paths}

    def registry(self, settings: Any, transport: Any = None) -> DryRegistry:
        """The registry's client: its reads are real, its writes printed."""
        return DryRegistry(self.inner.registry(settings, transport), settings, self)

    def _answer_up(self, command: Command) -> Result:
        services = [a for a in command.argv[command.argv.index("up") + 1:] if not a.startswith("-")]
        self._assume(f"{', '.join(services) if services else 'every service'} start(s)"
                     + (" and turn healthy" if "--wait" in command.argv else ""))
        return Result(0)

    # Assumed answers, by Command.purpose (the planning function's name).
    def _answer_pull(self, command: Command) -> Result:
        env_file = Path(command.argv[command.argv.index("--env-file") + 1])
        values = parse_env_text(self.read_text(env_file) or "", source=str(env_file))
        missing = []
        for key in ("ODOO_WEB_IMAGE", "ODOO_SCRIPT_RUNNER_IMAGE"):
            ref = values.get(key)
            if not ref:
                continue
            if self.inner.run(image_inspect(ref), capture=True).ok:
                self._read(f"{ref} is on the host")
                continue
            found = self.image_lookup(ref) if self.image_lookup else None
            if found is False:
                missing.append(ref)
            elif found:
                self._read(f"the registry has {ref}")
            else:
                self._assume(f"{ref} can be pulled (the registry was not asked)")
        if missing:
            return Result(1, "", f"manifest for {missing[0]} not found")
        return Result(0)

    def _answer_image_inspect(self, command: Command) -> Result:
        ref = command.argv[-1]
        if "@sha256:" in ref:  # pulled by digest: that is its digest
            self._assume(f"{ref} as pulled")
            return Result(0, json.dumps({"id": f"<id of {ref}>", "repo_digests": [ref], "labels": {}}))
        self._assume(f"{ref} as pulled (its digest is known after the pull)")
        return Result(0, json.dumps({"id": f"<digest of {ref}>", "repo_digests": [], "labels": {}}))

    def _answer_read_addons_hash(self, command: Command) -> Result:
        self._assume("the addons hash differs from the current release's (an update runs unless --update never)")
        return Result(0, "")

    def _answer_db_exists(self, command: Command) -> Result:
        self._assume("the database exists")
        return Result(0, "1\n")

    def _answer_project_containers(self, command: Command) -> Result:
        self._assume("db (healthy), proxy and one web container are running")
        return Result(0, "".join(f"{cid}\t{svc}\trunning\tUp (healthy)\tFalse\n"
                                 for cid, svc in (("<db>", "db"), ("<proxy>", "proxy"), *((w, "web") for w in self._webs))))

    def _answer_db_state(self, command: Command) -> Result:
        self._assume("the database exists and every required module is installed (no module checksums recorded)")
        return Result(0, "exists 1\ninitialized t\nchecksums f\n")

    def _answer_module_states(self, command: Command) -> Result:
        self._assume("every required module is installed")
        return Result(0, "")

    def _answer_web_container_ids(self, command: Command) -> Result:
        return Result(0, "\n".join(self._webs) + "\n")

    def _answer_tools_start(self, command: Command) -> Result:
        self._assume("the tools container starts")
        return Result(0, "<tools>\n")

    def _answer_start_web_beside(self, command: Command) -> Result:
        self._new += 1
        self._webs.append(f"<new-web-{self._new}>")
        self._assume("the new web container starts")
        return Result(0)

    def _answer_remove_container(self, command: Command) -> Result:
        if command.argv[-1] in self._webs:
            self._webs.remove(command.argv[-1])
        return Result(0)

    def _answer_container_state(self, command: Command) -> Result:
        return Result(0, json.dumps({"name": f"/{command.argv[-1]}", "status": "running", "restarts": 0, "exit": 0}))

    def _answer_gate_probe(self, command: Command) -> Result:
        self._assume("the new web answers 200 on /web/health and /web/login?db=, 101 on /websocket")
        return Result(0, '{"health": 200, "login": 200, "websocket": 101}\n')

    def _answer_gate_modules(self, command: Command) -> Result:
        self._assume("no module is pending and every required module is installed")
        return Result(0, "pending\t0\n")

    # ------------------------------------------------------------ files
    def read_text(self, path: Path) -> str | None:
        if path in self.files:
            return self.files[path]
        text = self.inner.read_text(path)
        self._read(f"{path}" + (" (absent)" if text is None else ""))
        return text

    def size(self, path: Path) -> int:
        return self.inner.size(path)

    def read_from(self, path: Path, offset: int, limit: int = 1 << 20) -> str:
        return self.inner.read_from(path, offset, limit)

    def write_private(self, path: Path, text: str) -> None:
        if self.files.get(path, _ABSENT) != text:
            self._print(f"# write {path} (0600, {len(text.encode())} bytes)")
        self.files[path] = text

    def append_record(self, path: Path, record: dict) -> None:
        self._print(f"# append a {record.get('status')} {record.get('kind')} record to {path}")

    def replace(self, src: Path, dst: Path) -> None:
        self._print(f"# rename {src} -> {dst}")
        self.files[dst] = self.read_text(src)
        self.files[src] = None

    def copy(self, src: Path, dst: Path) -> None:
        self._print(f"# copy {src} -> {dst}")
        self.files[dst] = self.read_text(src)

    def unlink(self, path: Path) -> None:
        if self.read_text(path) is not None:
            self._print(f"# rm {path}")
        self.files[path] = None

    def mkdir(self, path: Path) -> None:
        self._print(f"# mkdir -p {path}")

    @contextmanager
    def lock(self, path: Path, *, command: str, timeout: float):
        self._print(f"# lock {path} (flock, waiting up to {timeout:g}s)")

        class _Held:
            recovered = None

        yield _Held()
        self._print(f"# unlock {path}")

    def make_private_dir(self) -> Path:
        path = Path("/tmp/odoo-ai-<dry-run>")
        self._print(f"# mkdir (0700) {path}")
        return path

    def remove_tree(self, path: Path) -> None:
        self._print(f"# rm -r {path}")

    def read_marker(self, path: Path) -> str | None:
        if path in self.files:
            return self.files[path]
        text = self.inner.read_marker(path)
        self._read(f"{path}" + (" (absent)" if text is None else ""))
        return text

    def write_marker(self, path: Path, text: str) -> None:
        self._print(f"# write {path} (the state root's marker: {text.strip()})")
        self.files[path] = text

    # ------------------------------------------------------------ the purge guard
    def purge_listing(self, root: Path, project: str, **scope: Any) -> Any:
        listing = self.inner.purge_listing(root, project, **scope)
        self._read(f"{root}: checked (a real directory with the marker of {project}) and measured"
                   if listing is not None else f"{root} (absent)")
        return listing

    def remove_marked_tree(self, root: Path, project: str, **scope: Any) -> bool:
        self._print(f"# rm -r {root} (its marker of {project} checked again first; the marker goes last)")
        return False  # nothing was deleted


    # ------------------------------------------------------------ test run (odoo_ai.testing.run)
    def mkdir_private(self, path: Path) -> None:
        self._print(f"# mkdir (0700) {path}")

    def _answer_image_present(self, command: Command) -> Result:
        ref = command.argv[-1]
        result = self.inner.run(command, capture=True)
        if result.ok:
            self._read(f"{ref} is on the host")
            return result
        if getattr(self, "_test_image_pulled", False):
            self._assume(f"{ref} as pulled")
            return Result(0, "")
        self._read(f"{ref} is not on the host")
        return result

    def _answer_pull_image(self, command: Command) -> Result:
        self._test_image_pulled = True
        self._assume("the image under test can be pulled (the registry was not asked)")
        return Result(0)

    def _answer_probe_image(self, command: Command) -> Result:
        self._assume("the image's modules as the probe would read them: base only, with a stand-in checksum "
                     "(the probe runs a container: not in a dry run; a probe cached for this image is used instead)")
        return Result(0, json.dumps({"probe": 1, "odoo": "0" * 64, "modules": {"base": {}},
                                     "checksums": {"base": "<assumed>"}}))

    def _answer_server_psql(self, command: Command) -> Result:
        sql = (command.stdin or b"").decode("utf-8", "replace").strip()
        self._print(f"#   sql: {' '.join(sql.split())[:300]}")
        if sql.startswith("SELECT name FROM ir_module_module"):
            self._assume("the template holds none of the tested modules")
        return Result(0, "")

    def _answer_build_template(self, command: Command) -> Result:
        self._assume("the template builds without an error")
        return Result(0)

    def _answer_run_tests(self, command: Command) -> Result:
        self._assume("Odoo runs the tests (their outcome is known from a real run only)")
        return Result(0)


class DryRegistry:
    """A registry client for the dry run: tags, digests and listings are read from the
    registry for real; a manifest put or a delete is printed, not done (a tag it would
    move then reads as moved)."""

    def __init__(self, inner: Any, settings: Any, host: DryHost):
        self.inner, self.settings, self.host = inner, settings, host
        self.label = inner.label
        self.moved: dict[tuple[str, str], str] = {}

    @property
    def gc_note(self) -> str | None:
        return self.inner.gc_note

    def check(self) -> None:
        self.inner.check()

    def list_tags(self, repository: str) -> list[str]:
        tags = self.inner.list_tags(repository)
        self.host._read(f"{self.label}: the tags of {repository}")
        return tags

    def resolve_digest(self, repository: str, reference: str) -> str:
        if (repository, reference) in self.moved:
            return self.moved[(repository, reference)]
        try:
            return self.inner.resolve_digest(repository, reference)
        finally:
            self.host._read(f"{self.label}: {repository}:{reference}")

    def list_versions(self, repository: str) -> list[Any]:
        versions = self.inner.list_versions(repository)
        self.host._read(f"{self.label}: the images of {repository} ({len(versions)})")
        return versions

    def image_ids(self, repository: str, digest: str) -> set[str]:
        return self.inner.image_ids(repository, digest)

    def copy_tag(self, repository: str, digest: str, tag: str) -> str:
        self.host._print(f"PUT {self.settings.base_url}/v2/{repository}/manifests/{tag}  "
                         f"# the manifest {digest}, unchanged")
        self.moved[(repository, tag)] = digest
        return digest

    def delete(self, repository: str, version: Any) -> None:
        self.host._print(f"DELETE {self.settings.host}/{repository}@{version.digest}  "
                         f"# {', '.join(version.tags) or 'untagged'}")

    def close(self) -> None:
        self.inner.close()
