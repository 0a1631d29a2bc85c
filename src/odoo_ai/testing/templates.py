"""Cached test databases for `test run`: template databases in the env's templates server.

    TemplateCache.open()   read the image (probe, cached per image id), decide the template
                           (plan.plan_template), start the templates server, build the
                           template when it is missing (once, under a lock), clone it into
                           the run's database and its filestore into the run's data dir.
                           Never raises for a cache problem: it says why and the run falls
                           back to a fresh database (TemplateUse.reason).
    TemplateCache.close()  drop the run's database (unless --keep-db), and stop the server
                           when no other run uses it (its volume stays).

Where things live (all per env project):
  - the server: Compose project `<project>-test-templates`, its data the named volume of the
    same name; its compose files are written into each run's own state dir;
  - the cache dir `$XDG_CACHE_HOME/odoo-ai/test-templates/<project>/` (else ~/.cache/…), 0700:
    server.json (the server's database password and identity, 0600), the locks, the
    templates' registry (templates/<key>.json, written last: a template without one is not
    finished), their filestores (filestore/tmpl_<key>/, hard-linked into each run's data
    dir: Odoo never rewrites a filestore file, it writes new ones and unlinks) and the
    probes of the images seen (probes/<image id>.json).

Locks (flock: dropped by the kernel when a holder dies): `server.lock` is held shared by every
run that uses the server and exclusively by the one that stops, creates or resets it; the
last run out stops it (`start.lock` makes their `compose up` one at a time). `templates.lock` is held shared to clone and exclusively to build or
prune, so parallel shards build a template once and clone it concurrently.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import re
import secrets as pysecrets
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odoo_ai.config.envfile import write_private_file
from odoo_ai.config.render import build_dotenv
from odoo_ai.config.stack import StackConfig
from odoo_ai.errors import OdooAiError
from odoo_ai.hosts import Host
from odoo_ai.plan import testrun as plan
from odoo_ai.runners.base import Command, CommandTimedOut, Result, StreamingRunner

DB_SECRETS = ("ODOO_DB_PASSWORD", "ODOO_MASTER_PASSWORD")
LOCK_WAIT = 1800.0  # how long a run waits for another one's build or server reset
# An Odoo log record at ERROR or CRITICAL: a template whose build logged one is not used (a
# fresh database would show it, and make the run `failed`).
ERROR_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \d+ (ERROR|CRITICAL) ")
TAIL = 20
PROBES_KEPT = 20  # answers of the image probe kept (one per image id; each new CI image adds one)


def default_cache_root(environ: Mapping[str, str]) -> Path | None:
    """`$XDG_CACHE_HOME/odoo-ai/test-templates`, else `$HOME/.cache/…`; None without either."""
    xdg = environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "odoo-ai" / "test-templates"
    home = environ.get("HOME")
    if home and os.path.isabs(home):
        return Path(home) / ".cache" / "odoo-ai" / "test-templates"
    return None


@dataclass
class TemplateUse:
    """What the run's JSON says under `run.template`."""

    used: bool = False
    created: bool = False
    key: str | None = None
    database: str | None = None
    modules: list[str] = field(default_factory=list)  # the dependencies installed in it
    reason: str | None = None  # why no template was used
    build_seconds: float | None = None
    clone_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "used": self.used, "created": self.created, "key": self.key, "database": self.database,
            "modules": self.modules, "reason": self.reason,
            "build_seconds": self.build_seconds, "clone_seconds": self.clone_seconds,
        }


class CacheUnusable(Exception):
    """Why this run does not use a template (it falls back to a fresh database)."""


class Flock:
    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self, *, exclusive: bool, timeout: float, on_wait: Callable[[], None] | None = None) -> bool:
        if self.fd is not None:
            raise RuntimeError(f"{self.path} is already held")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        operation = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, operation)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                time.sleep(0.2)
                continue
            self.fd = fd
            return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    @property
    def held(self) -> bool:
        return self.fd is not None


@dataclass
class CachePlan:
    """Decided by prepare() (nothing written): where the cache is and the server's names."""

    root: Path  # the env's cache dir
    server: plan.TemplateServer
    keep: int

    @property
    def probes(self) -> Path:
        return self.root / "probes"

    @property
    def registry(self) -> Path:
        return self.root / "templates"

    @property
    def filestores(self) -> Path:
        return self.root / "filestore"

    @property
    def server_file(self) -> Path:
        return self.root / "server.json"


class LocalFiles:
    """The template cache's files (and the run's filestore), on this machine."""

    def read_text(self, path: Path) -> str | None:
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            return None

    def write_private(self, path: Path, text: str) -> None:
        write_private_file(path, text)

    def mkdir(self, path: Path) -> None:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def rmtree(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def unlink(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def is_file(self, path: Path) -> bool:
        return path.is_file()

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def glob(self, folder: Path, pattern: str) -> list[Path]:
        return sorted(folder.glob(pattern))

    def link_tree(self, source: Path, target: Path) -> None:
        _link_tree(source, target)

    def move_tree(self, source: Path, target: Path) -> None:
        _move_tree(source, target)

    def keep_newest(self, folder: Path, count: int) -> None:
        _keep_newest(folder, count)

    def flock(self, path: Path) -> Flock:
        return Flock(path)


class DryFiles(LocalFiles):
    """A dry run's view of them: read for real (what it wrote: from memory), every change
    printed by the dry connector and none made."""

    def __init__(self, host: Host):
        self.host = host

    def read_text(self, path: Path) -> str | None:
        try:
            return self.host.read_text(path)
        except OSError:
            return None

    def write_private(self, path: Path, text: str) -> None:
        self.host.write_private(path, text)

    def mkdir(self, path: Path) -> None:
        if not path.is_dir():
            self.host.mkdir(path)

    def rmtree(self, path: Path) -> None:
        if path.exists():
            self.host.remove_tree(path)

    def unlink(self, path: Path) -> None:
        self.host.unlink(path)

    def is_file(self, path: Path) -> bool:
        written = getattr(self.host, "files", {})
        return written[path] is not None if path in written else path.is_file()

    def link_tree(self, source: Path, target: Path) -> None:
        self.host.note(f"hard-link the files of {source} into {target}")

    def move_tree(self, source: Path, target: Path) -> None:
        self.host.note(f"mv {source} {target}")

    def keep_newest(self, folder: Path, count: int) -> None:
        self.host.note(f"keep the {count} newest files of {folder}")

    def flock(self, path: Path) -> Flock:
        return DryFlock(path, self.host)


class DryFlock(Flock):
    """A lock a dry run says it would take (it takes none)."""

    def __init__(self, path: Path, host: Host):
        super().__init__(path)
        self.host = host

    def acquire(self, *, exclusive: bool, timeout: float, on_wait: Callable[[], None] | None = None) -> bool:
        if self.fd is not None:
            raise RuntimeError(f"{self.path} is already held")
        self.host.note(f"flock {'exclusive' if exclusive else 'shared'} {self.path} (waiting up to {timeout:g}s)")
        self.fd = -1
        return True

    def release(self) -> None:
        if self.fd is not None:
            self.host.note(f"unlock {self.path}")
            self.fd = None


class TemplateCache:
    """One run's use of the env's templates (see the module docstring)."""

    def __init__(self, cache: CachePlan, tp: plan.TestProject, host: Host, say: Callable[[str], None],
                 *, environ: Mapping[str, str], tested: list[str], without_demo: str,
                 test_tags: str | None):
        self.cache = cache
        self.server = cache.server
        self.tp = tp
        self.host = host
        # The cache dir is on this machine, as is the Docker host of a run that uses it; a dry
        # run reads it and prints what it would write (DryFiles).
        self.files: LocalFiles = DryFiles(host) if host.dry_run else LocalFiles()
        self.say = say
        self.environ = environ
        self.tested = tested
        self.without_demo = without_demo
        self.test_tags = test_tags
        self.use = TemplateUse()
        self.password: str | None = None
        self.cloned = False
        self.odoo_seconds = 0.0  # how long this run's template build took (part of its --timeout)
        self.server_lock = self.files.flock(cache.root / "server.lock")
        self.templates_lock = self.files.flock(cache.root / "templates.lock")

    # ------------------------------------------------------------ open

    def open(self, image_id: str | None) -> TemplateUse:
        try:
            self._open(image_id)
        except CacheUnusable as exc:
            self._fall_back(str(exc))
        except OdooAiError as exc:  # a docker command timed out, no docker binary
            self._fall_back(exc.message)
        except OSError as exc:
            self._fall_back(f"the template cache in {self.cache.root} failed: {exc}")
        return self.use

    def _fall_back(self, reason: str) -> None:
        self.templates_lock.release()
        if self.cloned:  # cloned, then its filestore could not be copied
            try:
                self._psql(plan.drop_database_sql(self.tp.database))
            except OdooAiError:
                pass
            self.files.rmtree(self.tp.stack.data_dir / "filestore" / self.tp.database)
            self.cloned = False
        self.use.used = False  # `created` stays true when a template was built but not cloned
        self.use.clone_seconds = None
        self.use.reason = reason
        self.say(f"no template: {reason}; a fresh database instead")

    def _open(self, image_id: str | None) -> None:
        self.files.mkdir(self.cache.root)
        facts = self._facts(image_id)
        template = plan.plan_template(facts, self.tested, without_demo=self.without_demo, test_tags=self.test_tags)
        self.use.key, self.use.database = template.key, template.database
        self.use.modules = list(template.modules)
        if template.reason is not None:
            raise CacheUnusable(template.reason)
        self._start_server()
        self._write_run_files()
        building = self._waiting("building or pruning test templates")
        if not self.templates_lock.acquire(exclusive=False, timeout=LOCK_WAIT, on_wait=building):
            raise CacheUnusable("another test run held the templates lock too long")
        try:
            if self._registered(template) and self._clone(template):
                return
            self.templates_lock.release()
            if not self.templates_lock.acquire(exclusive=True, timeout=LOCK_WAIT, on_wait=building):
                raise CacheUnusable("another test run held the templates lock too long")
            if self._registered(template) and self._clone(template):
                return  # built by another run meanwhile
            self._build(template)
            if not self._clone(template):
                raise CacheUnusable(f"cloning the new template {template.database} failed")
            self._prune(template)
        finally:
            self.templates_lock.release()

    def _waiting(self, what: str) -> Callable[[], None]:
        return lambda: self.say(f"waiting for another test run of {self.tp.stack.env} {what} …")

    # ------------------------------------------------------------ the image

    def _facts(self, image_id: str | None) -> plan.ImageFacts:
        cached = None
        path = None
        if image_id and re.fullmatch(r"sha256:[0-9a-f]{64}", image_id):
            path = self.cache.probes / f"{image_id.split(':', 1)[1]}.json"
            cached = self.files.read_text(path)
        if cached is not None:
            try:
                return plan.parse_probe(cached)
            except ValueError:
                pass
        result = self.host.run(plan.probe_image(self.tp.stack.docker, self.tp.image), capture=True)
        if not result.ok:
            raise CacheUnusable(f"could not read the image's modules (exit {result.returncode}): "
                                f"{_last_line(result.tail(5))}")
        try:
            facts = plan.parse_probe(result.stdout)
        except ValueError as exc:
            raise CacheUnusable(f"could not read the image's modules: {exc}") from None
        if path is not None:
            self.files.mkdir(path.parent)
            self.files.write_private(path, result.stdout)
            self.files.keep_newest(path.parent, PROBES_KEPT)
        return facts

    # ------------------------------------------------------------ the server

    def _identity(self) -> dict[str, str]:
        stack = self.server.stack
        return {"project": stack.project, "volume": self.server.volume, "db_image": stack.db_image,
                "db_user": stack.db_user}

    def _server_info(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.files.read_text(self.cache.server_file) or "")
        except ValueError:
            return None
        return data if isinstance(data, dict) and isinstance(data.get("password"), str) else None

    def _start_server(self) -> None:
        if not self.server_lock.acquire(exclusive=False, timeout=LOCK_WAIT, on_wait=self._waiting("stopping its templates server")):
            raise CacheUnusable("another test run held the templates server lock too long")
        info = self._server_info()
        if info is None or info.get("identity") != self._identity():
            # New, or made for another db image or user: (re)create it, alone.
            self.server_lock.release()
            if not self.server_lock.acquire(exclusive=True, timeout=LOCK_WAIT,
                                            on_wait=self._waiting("using its templates server")):
                raise CacheUnusable("other test runs held the templates server too long")
            info = self._server_info()
            if info is None or info.get("identity") != self._identity():
                info = self._reset_server(info)
            self.server_lock.release()
            if not self.server_lock.acquire(exclusive=False, timeout=LOCK_WAIT):
                raise CacheUnusable("another test run held the templates server lock too long")
        self.password = str(info["password"])
        self._write_server_files()
        started = time.monotonic()
        # One `compose up` of the server at a time (two at once race for its container); the
        # later one finds it running and returns at once.
        start_lock = self.files.flock(self.cache.root / "start.lock")
        if not start_lock.acquire(exclusive=True, timeout=LOCK_WAIT):
            raise CacheUnusable("another test run took too long to start the templates server")
        try:
            result = self.host.run(plan.server_up(self.server), capture=True)
        finally:
            start_lock.release()
        if not result.ok:
            raise CacheUnusable(f"the templates server {self.server.name} did not start: {_last_line(result.tail(20))}")
        self.say(f"templates server {self.server.name} ready in {time.monotonic() - started:.1f}s")

    def _reset_server(self, old: dict[str, Any] | None) -> dict[str, Any]:
        """A fresh server: its volume deleted (with every template), a new password."""
        if old is not None:
            self.say(f"templates server {self.server.name}: new database image or user, its templates are dropped")
        self.password = str((old or {}).get("password") or "x")
        self._write_server_files()
        down = self.host.run(plan.server_down(self.server, volumes=True), capture=True)
        if not down.ok:
            raise CacheUnusable(f"could not remove the old templates server: {_last_line(down.tail(5))}")
        for folder in (self.cache.registry, self.cache.filestores):
            self.files.rmtree(folder)
        info = {"identity": self._identity(), "password": pysecrets.token_urlsafe(24),
                "created": _now()}
        self.files.write_private(self.cache.server_file, json.dumps(info, indent=1, sort_keys=True) + "\n")
        return info

    def _write_server_files(self) -> None:
        """The server's compose .env (its password) and override, in this run's state dir."""
        stack = self.server.stack
        self.host.mkdir(stack.state_root)
        generated = {"ODOO_DB_PASSWORD": self.password or "", "ODOO_MASTER_PASSWORD": pysecrets.token_urlsafe(24)}
        render_env = {k: v for k, v in self.environ.items() if k not in DB_SECRETS}
        _, dotenv, app_env = build_dotenv(stack, render_env, tag=None, generated=generated)
        self.host.write_private(stack.dotenv_path, dotenv)
        self.host.write_private(stack.state_root / "odoo.env", app_env)
        self.host.write_private(self.server.override_path, plan.server_override_yaml(self.server.volume))

    def _write_run_files(self) -> None:
        """The run's own .env with the server's password, and its override joining the
        server's network."""
        stack = self.tp.stack
        generated = {"ODOO_DB_PASSWORD": self.password or "", "ODOO_MASTER_PASSWORD": pysecrets.token_urlsafe(24)}
        render_env = {k: v for k, v in self.environ.items() if k not in DB_SECRETS}
        _, dotenv, _ = build_dotenv(stack, render_env, tag=None, generated=generated)
        self.host.write_private(stack.dotenv_path, dotenv)
        self.host.write_private(self.tp.override_path, plan.cached_override_yaml(self.server.network))

    def _psql(self, sql: str, *, database: str = "postgres") -> Result:
        return self.host.run(plan.server_psql(self.server, sql, database=database), capture=True)

    # ------------------------------------------------------------ templates

    def _entry_path(self, key: str) -> Path:
        return self.cache.registry / f"{key}.json"

    def _filestore(self, database: str) -> Path:
        return self.cache.filestores / database

    def _registered(self, template: plan.TemplatePlan) -> bool:
        assert template.key and template.database
        return (self.files.is_file(self._entry_path(template.key))
                and self.files.is_dir(self._filestore(template.database)))

    def _clone(self, template: plan.TemplatePlan) -> bool:
        """The run's database and filestore from the template; False when the template is not
        (any more) in the server."""
        assert template.key and template.database
        started = time.monotonic()
        result = self._psql(plan.clone_sql(template.database, self.tp.database))
        if not result.ok:
            if "does not exist" not in (result.stderr + result.stdout):
                self.say(f"cloning {template.database} failed: {_last_line(result.tail(5))}")
            self._psql(plan.drop_database_sql(self.tp.database))
            return False
        self.cloned = True
        target = self.tp.stack.data_dir / "filestore" / self.tp.database
        self.files.link_tree(self._filestore(template.database), target)
        entry = self._entry(template.key) or {}
        entry.update({"last_used": time.time()})
        self.files.write_private(self._entry_path(template.key), json.dumps(entry, indent=1, sort_keys=True) + "\n")
        self.use.used = True
        self.use.clone_seconds = round(time.monotonic() - started, 2)
        if not self.use.created:
            self.say(f"test database {self.tp.database} cloned from template {template.database} "
                     f"({len(template.modules)} module(s) installed before: {_short(template.modules)})")
        return True

    def _entry(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.files.read_text(self._entry_path(key)) or "")
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _build(self, template: plan.TemplatePlan) -> None:
        assert template.key and template.database
        database = template.database
        self.say(f"building template {database}: -i {_short(template.modules)} (once for this module set)")
        self._psql(plan.drop_database_sql(database))  # a build that died half way
        started = time.monotonic()
        tail: list[str] = []
        errors: list[str] = []

        def on_line(line: str) -> None:
            tail.append(line)
            del tail[:-TAIL]
            if ERROR_RECORD.match(line) and len(errors) < 5:
                errors.append(line)

        try:
            code = self.host.stream(plan.build_template(self.tp, template), on_line)
        except CommandTimedOut:
            self.odoo_seconds = time.monotonic() - started
            self._quietly(Command([self.tp.stack.docker, "rm", "--force", f"{self.tp.name}-template"], timeout=120))
            self._psql(plan.drop_database_sql(database))
            raise CacheUnusable(f"building the template took longer than {self.tp.timeout:g}s (--timeout)") from None
        except BaseException:
            self._quietly(Command([self.tp.stack.docker, "rm", "--force", f"{self.tp.name}-template"], timeout=120))
            raise
        self.odoo_seconds = time.monotonic() - started
        built = self.tp.stack.data_dir / "filestore" / database
        try:
            if code != 0 or errors:
                why = f"exit {code}" if code != 0 else f"it logged {_last_line(errors[0])[:300]}"
                raise CacheUnusable(f"building the template failed ({why}); the fresh database shows why")
            installed = self._psql(plan.INSTALLED_MODULES_SQL, database=database)
            clash = sorted(set(installed.stdout.split()) & set(self.tested)) if installed.ok else []
            if not installed.ok or clash:
                raise CacheUnusable(f"the template has tested module(s) installed: {', '.join(clash)}" if clash
                                    else f"cannot read the template's modules: {_last_line(installed.tail(5))}")
            sealed = self._psql(plan.seal_template_sql(database))
            if not sealed.ok:
                raise CacheUnusable(f"cannot seal the template: {_last_line(sealed.tail(5))}")
            target = self._filestore(database)
            self.files.rmtree(target)
            self.files.mkdir(target.parent)
            if self.files.is_dir(built):
                self.files.move_tree(built, target)
            else:
                self.files.mkdir(target)
        except BaseException:
            self._psql(plan.drop_database_sql(database))
            self.files.rmtree(built)
            raise
        seconds = round(time.monotonic() - started, 2)
        entry = {"key": template.key, "database": database, "modules": list(template.modules),
                 "installed": sorted(installed.stdout.split()), "image": self.tp.image,
                 "without_demo": self.without_demo, "created": _now(), "build_seconds": seconds,
                 "last_used": time.time()}
        self.files.mkdir(self.cache.registry)
        self.files.write_private(self._entry_path(template.key), json.dumps(entry, indent=1, sort_keys=True) + "\n")
        self.use.created = True
        self.use.build_seconds = seconds
        self.say(f"template {database} built in {seconds:.1f}s ({len(entry['installed'])} modules installed)")

    def _prune(self, current: plan.TemplatePlan) -> None:
        """Keep the `keep` most recently used templates; drop the rest, and what a build that
        died left (a template database without its registry entry, or the reverse)."""
        listed = self._psql(plan.LIST_DATABASES_SQL)
        if not listed.ok:
            return
        databases = plan.parse_databases(listed.stdout)
        entries: dict[str, float] = {}
        for path in self.files.glob(self.cache.registry, "*.json"):
            entry = self._entry(path.stem) or {}
            name = entry.get("database")
            if isinstance(name, str) and name in databases and plan.TEMPLATE_DB_RE.match(name):
                entries[name] = float(entry.get("last_used") or 0)
            else:
                self.files.unlink(path)
                if isinstance(name, str) and plan.TEMPLATE_DB_RE.match(name):
                    self.files.rmtree(self._filestore(name))
        orphans = [n for n in databases if plan.TEMPLATE_DB_RE.match(n) and n not in entries]
        stale = plan.templates_to_prune(entries, keep=self.cache.keep, current=current.database)
        for name in [*orphans, *stale]:
            if self._psql(plan.drop_database_sql(name)).ok:
                self.files.rmtree(self._filestore(name))
                for path in self.files.glob(self.cache.registry, "*.json"):
                    if (self._entry(path.stem) or {}).get("database") == name:
                        self.files.unlink(path)
        if stale:
            self.say(f"pruned {len(stale)} older template(s) (keep {self.cache.keep}: ODOO_TEST_TEMPLATES_KEEP)")

    # ------------------------------------------------------------ close

    def close(self, *, keep_db: bool) -> list[str]:
        """Drop (or keep) the run's database; stop the server when this run is the last one
        using it. Returns what went wrong (the caller warns; the verdict stays)."""
        problems: list[str] = []
        self.templates_lock.release()
        if not self.server_lock.held:
            return problems
        try:
            if self.cloned:
                done = self._psql(plan.keep_database_sql(self.tp.database) if keep_db
                                  else plan.drop_database_sql(self.tp.database))
                if not done.ok:
                    problems.append(f"{'marking' if keep_db else 'dropping'} {self.tp.database} failed: "
                                    f"{_last_line(done.tail(5))}")
            if not keep_db:
                self.files.rmtree(self.tp.stack.data_dir / "filestore" / self.tp.database)
        except OdooAiError as exc:
            problems.append(exc.message)
        finally:
            self.server_lock.release()
        if self.server_lock.acquire(exclusive=True, timeout=0):
            try:
                problems += self._stop_server()
            except OdooAiError as exc:
                problems.append(exc.message)
            finally:
                self.server_lock.release()
        return problems

    def _stop_server(self) -> list[str]:
        """No other run uses the server: drop what dead runs left, and stop it unless a kept
        database is in it."""
        listed = self._psql(plan.LIST_DATABASES_SQL)
        kept: list[str] = []
        if listed.ok:
            for name, comment in plan.parse_databases(listed.stdout).items():
                if plan.TEST_DB_RE.match(name):
                    if comment == plan.KEPT_COMMENT:
                        kept.append(name)
                    else:
                        self._psql(plan.drop_database_sql(name))
        if kept:
            self.say(f"templates server {self.server.name} stays up: it holds kept database(s) {', '.join(kept)}")
            return []
        down = self.host.run(plan.server_down(self.server), capture=True)
        if not down.ok:
            return [f"stopping the templates server failed: {_last_line(down.tail(5))}"]
        return []

    def _quietly(self, command: Command) -> None:
        try:
            self.host.run(command, capture=True)
        except OdooAiError:
            pass


# ---------------------------------------------------------------- files


def _link_tree(source: Path, target: Path) -> None:
    """Copy a filestore with hard links (a copy where links cannot be made)."""
    if not source.is_dir():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, copy_function=_link_or_copy, dirs_exist_ok=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _move_tree(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError:
        shutil.copytree(source, target)
        shutil.rmtree(source, ignore_errors=True)


def _keep_newest(folder: Path, count: int) -> None:
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[count:]:
        old.unlink(missing_ok=True)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(names: tuple[str, ...] | list[str], limit: int = 6) -> str:
    names = list(names)
    return ",".join(names[:limit]) + (f",… ({len(names)})" if len(names) > limit else "")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "(no output)"


def plan_cache(stack: StackConfig, *, state_dir: Path, image: str, environ: Mapping[str, str],
               keep: int) -> CachePlan | None:
    """Where the env's templates are, or None when there is no cache dir (no HOME)."""
    root = default_cache_root(environ)
    if root is None:
        return None
    server = plan.plan_server(stack, state_dir=state_dir, image=image, secret_names=list(DB_SECRETS))
    return CachePlan(root=root / stack.project, server=server, keep=keep)


# ---------------------------------------------------------------- `test templates`


def describe(cache: CachePlan) -> dict[str, Any]:
    """What the env's template cache holds (the cache dir only: nothing is started)."""
    entries = []
    registry = cache.registry
    if registry.is_dir():
        for path in sorted(registry.glob("*.json")):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(entry, dict):
                continue
            last = entry.get("last_used")
            entries.append({
                "database": entry.get("database"), "key": entry.get("key"), "modules": entry.get("modules", []),
                "installed": len(entry.get("installed") or []), "image": entry.get("image"),
                "created": entry.get("created"), "build_seconds": entry.get("build_seconds"),
                "last_used": dt.datetime.fromtimestamp(float(last), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if isinstance(last, (int, float)) else None,
            })
    entries.sort(key=lambda e: e["last_used"] or "", reverse=True)
    server = None
    try:
        data = json.loads(cache.server_file.read_text(encoding="utf-8"))
        server = {k: v for k, v in (data.get("identity") or {}).items()} | {"created": data.get("created")}
    except (OSError, ValueError, AttributeError):
        pass
    return {"server": cache.server.name, "volume": cache.server.volume, "cache_dir": str(cache.root),
            "keep": cache.keep, "server_made_for": server, "templates": entries}


class TemplatesInUse(OdooAiError):
    pass


def remove(cache: CachePlan, runner: StreamingRunner, environ: Mapping[str, str]) -> None:
    """Delete the env's templates: the server's container and volume (with any kept clone in
    it), then the cache dir. Refused while a test run uses them."""
    lock = Flock(cache.root / "server.lock") if cache.root.is_dir() else None
    if lock is not None and not lock.acquire(exclusive=True, timeout=0):
        raise TemplatesInUse(f"a test run is using the templates of {cache.server.name}: nothing removed; "
                             "retry when it is done")
    try:
        server = cache.server
        info = None
        try:
            info = json.loads(cache.server_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        password = (info or {}).get("password") if isinstance(info, dict) else None
        stack = server.stack
        stack.state_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        generated = {"ODOO_DB_PASSWORD": str(password or pysecrets.token_urlsafe(24)),
                     "ODOO_MASTER_PASSWORD": pysecrets.token_urlsafe(24)}
        render_env = {k: v for k, v in environ.items() if k not in DB_SECRETS}
        _, dotenv, app_env = build_dotenv(stack, render_env, tag=None, generated=generated)
        write_private_file(stack.dotenv_path, dotenv)
        write_private_file(stack.state_root / "odoo.env", app_env)
        write_private_file(server.override_path, plan.server_override_yaml(server.volume))
        down = runner.run(plan.server_down(server, volumes=True), capture=True)
        if not down.ok:
            raise OdooAiError(f"removing {server.name} failed: {_last_line(down.tail(5))}")
        shutil.rmtree(cache.root, ignore_errors=True)
    finally:
        if lock is not None:
            lock.release()
