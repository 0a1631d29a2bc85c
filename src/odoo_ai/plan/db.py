"""Pure planning of what `odoo-ai db` runs (argv, SQL, names) and its pure decisions.

Values from config or the command line (database names, paths) travel as argv items or
psql variables, never spliced into a shell line or SQL text. The backup itself is packed
and unpacked inside a one-off script-runner container by odoo_ai/dbtool.py (its source
goes on the container's stdin: `python3 - COMMAND ARGS`), so the data stays on the
Docker host: pg_dump writes into the state root's snapshots folder (the db container's
/snapshots), the packer reads it there and the filestore from /volumes/data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from odoo_ai.config.stack import StackConfig
from odoo_ai.errors import ConfigError
from odoo_ai.plan.compose import compose, docker_binary
from odoo_ai.plan.compose import purpose as _purpose
from odoo_ai.plan.deploy import QUIET_SQL, psql
from odoo_ai.runners.base import Command

STATE_MOUNT = "/volumes/state"  # the state root, in the dbtool container
IN_MOUNT = "/volumes/in"  # the folder of a backup outside the state root (read-only)
DATA_MOUNT = "/volumes/data"  # ODOO_DATA_DIR: the filestore is DATA_MOUNT/filestore/<db>
SNAPSHOTS_DB = "/snapshots"  # the state root's snapshots folder, in the db container
BACKUPS = "backups"  # <state_root>/backups: the env's backups on the Docker host
STAGING = ".staging"  # <state_root>/backups/.staging/<id>: a db copy's transfer set
INCOMING = ".incoming"  # <state_root>/backups/.incoming/<id>: a backup uploaded for a restore
DB_LABEL = "org.odoo-ai.role=db"  # the one-off containers of `odoo-ai db`
DRILL_LABEL = "org.odoo-ai.role=db-drill"
JOURNAL = "db-journal.json"  # <state_root>/db-journal.json: a restore in progress
EX_DATAERR = 65  # dbtool: the backup is corrupt, incomplete or unsafe
DBTOOL_SOURCE = (Path(__file__).resolve().parent.parent / "dbtool.py").read_bytes()
FORMATS = ("zip", "dump")
STAMP = "%Y-%m-%d_%H-%M-%S"  # Odoo's database manager names its downloads <db>_<UTC stamp>.zip
SUFFIXES = ("zip", "dump", "filestore.tar", "manifest.json", "sha256")




# ---------------------------------------------------------------- SQL
# What manifest.json needs from the database (odoo.service.db.dump_db_manifest): one JSON line.
MANIFEST_SQL = """
SELECT json_build_object(
  'db_name', current_database(),
  'server_version_num', current_setting('server_version_num')::int,
  'modules', coalesce((SELECT json_object_agg(name, latest_version ORDER BY name)
                       FROM ir_module_module WHERE state = 'installed'), '{}'::json));
"""
# Swap the restored database in under the live name (the live one, if any, becomes :kept).
# The web is paused around it; ending the sessions of both names first lets the renames run.
SWAP_IN_SQL = QUIET_SQL + """
SELECT count(*) > 0 AS live_exists FROM pg_database WHERE datname = :'dbname' \\gset
SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
  WHERE datname IN (:'dbname', :'restored') AND pid <> pg_backend_pid()) AS ended \\gset
BEGIN;
\\if :live_exists
ALTER DATABASE :"dbname" RENAME TO :"kept";
\\endif
ALTER DATABASE :"restored" RENAME TO :"dbname";
COMMIT;
\\echo swapped\t:live_exists
"""
# Undo of SWAP_IN_SQL (the restored database failed the gate): it becomes :failed, :kept
# gets the live name back.
SWAP_BACK_SQL = QUIET_SQL + """
SELECT count(*) > 0 AS kept_exists FROM pg_database WHERE datname = :'kept' \\gset
SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
  WHERE datname IN (:'dbname', :'kept') AND pid <> pg_backend_pid()) AS ended \\gset
BEGIN;
ALTER DATABASE :"dbname" RENAME TO :"failed";
\\if :kept_exists
ALTER DATABASE :"kept" RENAME TO :"dbname";
\\endif
COMMIT;
"""
# Odoo's web reloads a database's registry when the `base_registry_signaling` sequence
# differs from the value it loaded: the restored database gets one above both its own and
# the live database's, so every worker reloads it after the swap (no restart).
SIGNAL_SQL = """
\\connect :"live"
SELECT to_regclass('public.base_registry_signaling') IS NOT NULL AS has_seq \\gset
\\if :has_seq
SELECT last_value AS live_seq FROM base_registry_signaling \\gset
\\else
\\set live_seq 0
\\endif
\\connect :"restored"
SELECT to_regclass('public.base_registry_signaling') IS NOT NULL AS has_seq \\gset
\\if :has_seq
SELECT setval('base_registry_signaling', greatest(last_value, :live_seq) + 1) FROM base_registry_signaling;
\\endif
"""
SIGNAL_FRESH_SQL = """
SELECT to_regclass('public.base_registry_signaling') IS NOT NULL AS has_seq \\gset
\\if :has_seq
SELECT setval('base_registry_signaling', last_value + 1) FROM base_registry_signaling;
\\endif
"""
# After `odoo-bin neutralize`: the mail server neutralize inserts (smtp_host 'invalid') is
# pointed at the env's mail catcher, so the neutralized copy's mail lands there.
MAIL_CATCHER_SQL = """
SELECT to_regclass('public.ir_mail_server') IS NOT NULL AS has_mail \\gset
\\if :has_mail
UPDATE ir_mail_server SET smtp_host = :'smtp_host', smtp_port = :'smtp_port'::int,
    name = 'odoo-ai: mail catcher ' || :'smtp_host' || ':' || :'smtp_port'
WHERE active AND smtp_host = 'invalid';
\\endif
"""
# A copy is another database: a new database.uuid (as Odoo's restore "copy" does) and a new
# database.secret (sessions and signed tokens of the source stop working in the copy).
NEW_IDENTITY_SQL = """
SELECT to_regclass('public.ir_config_parameter') IS NOT NULL AS has_params \\gset
\\if :has_params
UPDATE ir_config_parameter SET value = md5(random()::text || clock_timestamp()::text)
WHERE key = 'database.secret';
UPDATE ir_config_parameter SET value = (
  SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || substr(h, 17, 4) || '-'
         || substr(h, 21, 12) FROM (SELECT md5(random()::text || clock_timestamp()::text) AS h) AS r)
WHERE key = 'database.uuid';
\\endif
"""
# What the restored database says about itself: neutralized, checksums recorded, modules,
# modules left mid-way (one `key<TAB>value` per line).
FACTS_SQL = """
SELECT to_regclass('public.ir_config_parameter') IS NOT NULL AS has_params \\gset
\\if :has_params
SELECT 'neutralized' || E'\\t' || coalesce((SELECT value FROM ir_config_parameter
                                             WHERE key = 'database.is_neutralized'), '');
\\endif
SELECT 'checksums' || E'\\t' || (to_regclass('public.odoo_ai_module_checksum') IS NOT NULL);
SELECT to_regclass('public.ir_module_module') IS NOT NULL AS has_modules \\gset
\\if :has_modules
SELECT 'installed' || E'\\t' || count(*) FROM ir_module_module WHERE state = 'installed';
SELECT 'pending' || E'\\t' || count(*) FROM ir_module_module WHERE state IN ('to upgrade', 'to install', 'to remove');
\\else
SELECT 'installed' || E'\\t' || '-1';
\\endif
"""
# Rows per table and the table count: what a round trip must keep equal (`db rows`).
ROW_COUNTS_SQL = """
SELECT format('SELECT %L || E''\\t'' || count(*) FROM %I.%I', c.relname, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY c.relname \\gexec
"""
# Filestore moves ("$1" the live filestore, "$2" where the replaced one is kept, "$3" where a
# failed one goes): the restored one (staged as "$1.restored") swapped in, and the undo of
# whatever part of that ran (without a kept one, a restored one moved in where there was none goes).
FILESTORE_IN_SH = ('set -e; live=$1; kept=$2; if [ -d "$live.restored" ]; then '
                   'if [ -d "$live" ] && [ ! -d "$kept" ]; then mv "$live" "$kept"; fi; mv "$live.restored" "$live"; fi')
FILESTORE_BACK_SH = ('set -e; live=$1; kept=$2; failed=$3; rm -rf "$failed"; '
                     'if [ -d "$kept" ]; then if [ -d "$live" ]; then mv "$live" "$failed"; fi; mv "$kept" "$live"; '
                     'elif [ ! -d "$live.restored" ] && [ -d "$live" ]; then mv "$live" "$failed"; fi; '
                     'rm -rf "$failed" "$live.restored"')
DATABASES_SQL = "SELECT datname FROM pg_database WHERE datname = ANY(string_to_array(:'names', '/'));\n"
DATABASES_LIKE_SQL = "SELECT datname FROM pg_database WHERE starts_with(datname, :'prefix') ORDER BY 1;\n"


# ---------------------------------------------------------------- names and checks
def db_name_with(db_name: str, suffix: str) -> str:
    """`<db><suffix>`, the db name cut from the right so the whole fits PostgreSQL's 63."""
    return db_name[: 63 - len(suffix)] + suffix


def stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime(STAMP)


def backup_base(db_name: str, when: dt.datetime) -> str:
    """`<db>_<UTC YYYY-mm-dd_HH-MM-SS>`, the name Odoo's database manager gives a download."""
    return f"{db_name}_{stamp(when)}"


def backup_name_re(db_name: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(db_name)}_(\d{{4}}-\d\d-\d\d_\d\d-\d\d-\d\d)\."
                      rf"({'|'.join(re.escape(s) for s in SUFFIXES)})$")


@dataclasses.dataclass(frozen=True)
class BackupSet:
    """One backup in an env's backup folder: its base name, UTC time and files."""

    base: str
    when: dt.datetime
    files: tuple[str, ...]
    size: int

    @property
    def format(self) -> str:
        return "zip" if f"{self.base}.zip" in self.files else "dump" if f"{self.base}.dump" in self.files else "?"

    @property
    def main(self) -> str | None:
        """The file a restore takes: the zip, or the -Fc dump (its sidecars are found beside it)."""
        for suffix in ("zip", "dump"):
            if f"{self.base}.{suffix}" in self.files:
                return f"{self.base}.{suffix}"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.main or self.base, "base": self.base, "time": self.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "format": self.format, "files": list(self.files), "size": self.size}


def backup_sets(listing: Iterable[tuple[str, int]], db_name: str) -> list[BackupSet]:
    """The backups of `db_name` among (file name, size) pairs, newest first. Only names of
    exactly this form count: anything else in the folder is never touched."""
    pattern = backup_name_re(db_name)
    groups: dict[str, list[tuple[str, int]]] = {}
    for name, size in listing:
        match = pattern.match(name)
        if match:
            groups.setdefault(f"{db_name}_{match.group(1)}", []).append((name, size))
    sets = []
    for base, files in groups.items():
        when = dt.datetime.strptime(base[len(db_name) + 1:], STAMP).replace(tzinfo=dt.UTC)
        sets.append(BackupSet(base, when, tuple(sorted(n for n, _ in files)), sum(s for _, s in files)))
    return sorted(sets, key=lambda s: s.when, reverse=True)


def parse_listing(stdout: str) -> list[tuple[str, int]]:
    """list_backups' answer: `SIZE<TAB>NAME` lines."""
    found = []
    for line in stdout.splitlines():
        size, _, name = line.partition("\t")
        if name and size.strip().isdigit() and "/" not in name:
            found.append((name, int(size)))
    return found


def plan_prune(sets: list[BackupSet], *, daily: int, weekly: int, monthly: int) -> tuple[dict[str, list[str]], list[BackupSet]]:
    """Pure: which backups stay and why, and which go. The newest backup of each of the
    last `daily` days that have one, of each of the last `weekly` ISO weeks, and of each of
    the last `monthly` months stay (restic's --keep-daily/-weekly/-monthly); the newest
    backup always stays. Everything else goes."""
    newest_first = sorted(sets, key=lambda s: s.when, reverse=True)
    keep: dict[str, list[str]] = {}
    rules: list[tuple[str, int, Callable[[dt.datetime], str]]] = [
        ("daily", daily, lambda w: w.strftime("%Y-%m-%d")),
        ("weekly", weekly, lambda w: "{}-W{:02d}".format(*w.isocalendar()[:2])),
        ("monthly", monthly, lambda w: w.strftime("%Y-%m")),
    ]
    for label, count, key in rules:
        seen: list[str] = []
        for backup in newest_first:
            if len(seen) >= count:
                break
            bucket = key(backup.when)
            if bucket in seen:
                continue
            seen.append(bucket)
            keep.setdefault(backup.base, []).append(f"{label} {bucket}")
    if newest_first and newest_first[0].base not in keep:
        keep[newest_first[0].base] = ["the newest"]
    return keep, [s for s in newest_first if s.base not in keep]


def pg_version_text(server_version_num: int) -> str:
    """manifest.json's pg_version, computed the way Odoo 18 does (`"%d.%d" % divmod(v / 100, 100)`)."""
    major, minor = divmod(server_version_num / 100, 100)
    return f"{int(major)}.{int(minor)}"


def version_problem(manifest: dict[str, Any] | None, image: dict[str, Any]) -> str | None:
    """Why a backup with this manifest must not be restored on this image's Odoo (None: it may).
    The series must match (18.0 and 18.0+e-20250101 are both 18.0; saas~18.1 is not)."""
    have = str(image.get("major_version") or "")
    if manifest is None:
        return "the backup has no manifest.json, so its Odoo version cannot be checked"
    want = str(manifest.get("major_version") or "")
    if not want:
        version = str(manifest.get("version") or "")
        match = re.match(r"((?:saas~)?\d+\.\d+)", version)
        want = match.group(1) if match else ""
    if not want:
        return "the backup's manifest.json names no Odoo version"
    if not have:
        return "the image's Odoo version cannot be read"
    if want != have:
        return f"the backup is from Odoo {manifest.get('version') or want} (series {want}), the image runs Odoo " \
               f"{image.get('version') or have} (series {have})"
    return None


# Errors a restore of a dump from another PostgreSQL or another server can show and that
# change nothing in the data (Odoo's own restore ignores every error: these alone are let pass).
HARMLESS_RESTORE_ERRORS = re.compile(
    r"unrecognized configuration parameter"  # a newer pg_dump's SET lines (transaction_timeout, ...)
    r"|role \"[^\"]*\" does not exist"  # GRANT/REVOKE/OWNER TO a role of the source server
    r"|must be owner of (extension|schema)"  # COMMENT ON EXTENSION plpgsql, schema public
    r"|(extension|schema) \"[^\"]*\" already exists"
    r"|invalid command \\(un)?restrict"  # a newer pg_dump's \\restrict KEY lines, read by an older psql
    r"|errors ignored on restore: \d+",
    re.IGNORECASE,
)


def fatal_restore_errors(output: str) -> list[str]:
    """The error lines of psql/pg_restore output that are not known to be harmless."""
    fatal = []
    for line in output.splitlines():
        if ("ERROR:" in line or "error:" in line or "FATAL:" in line) and not HARMLESS_RESTORE_ERRORS.search(line):
            fatal.append(line.strip())
    return fatal


def parse_facts(stdout: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in stdout.splitlines() if "\t" in line)


def parse_row_counts(stdout: str) -> dict[str, int]:
    counts = {}
    for line in stdout.splitlines():
        table, _, n = line.partition("\t")
        if n.strip().isdigit():
            counts[table] = int(n)
    return counts


def check_mount_path(path: PurePosixPath | Path, what: str) -> str:
    """A host path for `docker compose run --volume HOST:CONTAINER`: absolute, no ':' or ','."""
    text = str(path)
    if not text.startswith("/") or ":" in text or "," in text or "\n" in text:
        raise ConfigError(f"{what} {text!r}: a folder mounted into a container must be an absolute path "
                          "without ':' or ','")
    return text


def copy_hook_argv(command: Iterable[str], path: str) -> list[str]:
    """ODOO_BACKUP_COPY_COMMAND for one file: each `{file}` replaced by its path (no shell);
    without `{file}` the path comes last."""
    argv = list(command)
    if any("{file}" in arg for arg in argv):
        return [arg.replace("{file}", path) for arg in argv]
    return [*argv, path]


def dry_manifest(stack: StackConfig) -> str:
    return json.dumps({"db_name": stack.db_name, "server_version_num": 160000, "modules": {"base": "18.0.1.3"}})


# ---------------------------------------------------------------- commands
# Time limits: a database and filestore of a dev/testing stack pass each step in minutes;
# these bound what a stuck step may take (the workflows' job timeouts cover their sum).
DUMP_TIMEOUT = 2 * 3600  # pg_dump, the packer, verify, unpack, a load (psql / pg_restore)
HOOK_TIMEOUT = 3600  # the off-host copy command, per file
TOOLS_LIFETIME = 12 * 3600  # seconds a restore's tools container lives at most


def _dbtool(stack: StackConfig, *args: str, mounts: Iterable[tuple[str, str, bool]] = (), name: str | None = None,
            env_file: Path | None = None, timeout: float = DUMP_TIMEOUT) -> Command:
    """`python3 - ARGS` in a one-off script-runner as root, dbtool's source on stdin; the
    state root at /volumes/state (and the overlay's /volumes/data)."""
    argv = ["run", "--rm", "--no-deps", "-T", "--entrypoint", "python3", "--label", DB_LABEL]
    if name:
        argv += ["--name", name]
    state = check_mount_path(stack.state_root, "the state root")
    argv += ["--volume", f"{state}:{STATE_MOUNT}"]
    for host_path, container, read_only in mounts:
        argv += ["--volume", f"{host_path}:{container}{':ro' if read_only else ''}"]
    cmd = compose(stack, *argv, "script-runner", "-", *args, env_file=env_file, timeout=timeout)
    return Command(cmd.argv, timeout=cmd.timeout, stdin=DBTOOL_SOURCE)


def state_path(stack: StackConfig, host_path: Path) -> str:
    """Where a path under the state root is in the dbtool container."""
    rel = PurePosixPath(host_path).relative_to(PurePosixPath(stack.state_root))
    return f"{STATE_MOUNT}/{rel}" if str(rel) != "." else STATE_MOUNT


@_purpose(reads=True)
def manifest_info(stack: StackConfig) -> Command:
    return psql(stack, MANIFEST_SQL, database=stack.db_name)


@_purpose()
def dump_database(stack: StackConfig, database: str, tmp_name: str, *, custom: bool) -> Command:
    """pg_dump in the db container (its own version) into the state root's snapshots folder;
    plain SQL with --no-owner as Odoo's backup, or the custom format (-Fc)."""
    argv = ["exec", "-T", "db", "pg_dump", "-U", stack.db_user, "--no-owner"]
    if custom:
        argv.append("-Fc")
    return compose(stack, *argv, "-f", f"{SNAPSHOTS_DB}/{tmp_name}", database, timeout=DUMP_TIMEOUT)


@_purpose()
def pack(stack: StackConfig, fmt: str, tmp_name: str, outdir: Path, base: str, info: dict[str, Any],
         name: str) -> Command:
    return _dbtool(stack, "pack", fmt, f"{STATE_MOUNT}/snapshots/{tmp_name}", f"{DATA_MOUNT}/filestore/{stack.db_name}",
                   state_path(stack, outdir), base, json.dumps(info, separators=(",", ":")), name=name)


def _tool(stack: StackConfig, *args: str, tools: str | None = None, mounts: Iterable[tuple[str, str, bool]] = (),
          timeout: float = DUMP_TIMEOUT) -> Command:
    """dbtool in the operation's tools container (`docker exec -i`), else in a one-off one."""
    if tools:
        return Command([docker_binary(), "exec", "-i", tools, "python3", "-", *args], timeout=timeout,
                       stdin=DBTOOL_SOURCE)
    return _dbtool(stack, *args, mounts=mounts, timeout=timeout)


@_purpose()
def start_tools(stack: StackConfig, name: str, mounts: Iterable[tuple[str, str, bool]] = ()) -> Command:
    """One script-runner container for a restore's file work (verify, unpack, filestore moves),
    as root with the state root and the backup's folder mounted: each step is a `docker exec`,
    not a container start (the filestore swap runs while the web is paused)."""
    argv = ["run", "--detach", "--rm", "--no-deps", "--name", name, "--label", DB_LABEL, "--entrypoint", "sleep",
            "--volume", f"{check_mount_path(stack.state_root, 'the state root')}:{STATE_MOUNT}"]
    for host_path, container, read_only in mounts:
        argv += ["--volume", f"{host_path}:{container}{':ro' if read_only else ''}"]
    # removed when the operation ends; one a killed run left removes itself once the longest
    # operation is surely over
    return compose(stack, *argv, "script-runner", str(TOOLS_LIFETIME), timeout=600)


@_purpose(reads=True)
def verify(stack: StackConfig, source: str, mounts: Iterable[tuple[str, str, bool]] = (), *,
           tools: str | None = None) -> Command:
    return _tool(stack, "verify", source, tools=tools, mounts=mounts)


@_purpose(reads=True)
def image_version(stack: StackConfig) -> Command:
    return _dbtool(stack, "version", timeout=300)


@_purpose()
def stage(stack: StackConfig, source: str, tmp_name: str, filestore: str,
          mounts: Iterable[tuple[str, str, bool]] = (), *, tools: str | None = None) -> Command:
    return _tool(stack, "stage", source, f"{STATE_MOUNT}/snapshots/{tmp_name}", f"{DATA_MOUNT}/filestore/{filestore}",
                 tools=tools, mounts=mounts)


@_purpose()
def remove_paths(stack: StackConfig, paths: list[str], *, tools: str | None = None) -> Command:
    return _tool(stack, "remove", *paths, tools=tools, timeout=1800)


@_purpose()
def create_database(stack: StackConfig, name: str) -> Command:
    """An empty database as Odoo creates one (UTF8, LC_COLLATE C, from template0)."""
    return compose(stack, "exec", "-T", "db", "createdb", "-U", stack.db_user, "-O", stack.db_user, "-E", "UTF8",
                   "--lc-collate=C", "-T", "template0", name, timeout=300)


@_purpose()
def load_sql(stack: StackConfig, database: str, tmp_name: str) -> Command:
    """dump.sql into `database` with psql, as Odoo's restore does (errors are judged after:
    fatal_restore_errors)."""
    return compose(stack, "exec", "-T", "db", "psql", "-X", "-q", "-U", stack.db_user, "-d", database,
                   "-v", "ON_ERROR_STOP=0", "-f", f"{SNAPSHOTS_DB}/{tmp_name}", timeout=DUMP_TIMEOUT)


@_purpose()
def restore_dump(stack: StackConfig, database: str, tmp_name: str) -> Command:
    return compose(stack, "exec", "-T", "db", "pg_restore", "-U", stack.db_user, "--no-owner", "--no-acl", "-j", "2",
                   "-d", database, f"{SNAPSHOTS_DB}/{tmp_name}", timeout=DUMP_TIMEOUT)


@_purpose()
def drop_database(stack: StackConfig, name: str) -> Command:
    return compose(stack, "exec", "-T", "db", "dropdb", "-U", stack.db_user, "--if-exists", "--force", name,
                   timeout=300)


@_purpose()
def neutralize(stack: StackConfig, database: str) -> Command:
    """`odoo-bin neutralize -d DB` (each installed module's data/neutralize.sql) in a one-off
    script-runner of the env's image."""
    return compose(stack, "run", "--rm", "--no-deps", "-T", "--label", DB_LABEL, "script-runner",
                   "/odoo/odoo-bin", "neutralize", "-d", database, timeout=3600)


@_purpose()
def point_mail_at_catcher(stack: StackConfig, database: str, smtp: str) -> Command:
    host, _, port = smtp.rpartition(":")
    return psql(stack, MAIL_CATCHER_SQL, database=database, variables={"smtp_host": host, "smtp_port": port})


@_purpose()
def new_identity(stack: StackConfig, database: str) -> Command:
    return psql(stack, NEW_IDENTITY_SQL, database=database)


@_purpose(reads=True)
def facts(stack: StackConfig, database: str) -> Command:
    return psql(stack, FACTS_SQL, database=database)


@_purpose(reads=True)
def row_counts(stack: StackConfig, database: str) -> Command:
    return psql(stack, ROW_COUNTS_SQL, database=database)


@_purpose()
def signal_reload(stack: StackConfig, restored: str, live_exists: bool = True) -> Command:
    if not live_exists:
        return psql(stack, SIGNAL_FRESH_SQL, database=restored)
    return psql(stack, SIGNAL_SQL, variables={"live": stack.db_name, "restored": restored})


@_purpose()
def swap_in(stack: StackConfig, restored: str, kept: str, *, force: bool = False) -> Command:
    return psql(stack, SWAP_IN_SQL, variables={"force": str(force).lower(), "dbname": stack.db_name,
                                               "restored": restored, "kept": kept})


@_purpose()
def swap_back(stack: StackConfig, kept: str, failed: str, *, force: bool = False) -> Command:
    return psql(stack, SWAP_BACK_SQL, variables={"force": str(force).lower(), "dbname": stack.db_name,
                                                 "kept": kept, "failed": failed})


def _tools_sh(stack: StackConfig, script: str, *args: str) -> Command:
    return compose(stack, "run", "--rm", "--no-deps", "-T", "--label", DB_LABEL, "--entrypoint", "sh",
                   "script-runner", "-c", script, "sh", *args, timeout=1800)


def _sh(stack: StackConfig, script: str, *args: str, tools: str | None = None) -> Command:
    if tools:
        return Command([docker_binary(), "exec", tools, "sh", "-c", script, "sh", *args], timeout=1800)
    return _tools_sh(stack, script, *args)


@_purpose()
def filestore_in(stack: StackConfig, kept: str, *, tools: str | None = None) -> Command:
    root = f"{DATA_MOUNT}/filestore"
    return _sh(stack, FILESTORE_IN_SH, f"{root}/{stack.db_name}", f"{root}/{kept}", tools=tools)


@_purpose()
def filestore_back(stack: StackConfig, kept: str, failed: str, *, tools: str | None = None) -> Command:
    root = f"{DATA_MOUNT}/filestore"
    return _sh(stack, FILESTORE_BACK_SH, f"{root}/{stack.db_name}", f"{root}/{kept}", f"{root}/{failed}", tools=tools)


@_purpose()
def remove_filestore(stack: StackConfig, name: str, *, tools: str | None = None) -> Command:
    return _sh(stack, 'rm -rf -- "$1"', f"{DATA_MOUNT}/filestore/{name}", tools=tools)


@_purpose(reads=True)
def databases_named(stack: StackConfig, names: list[str]) -> Command:
    """Which of these databases exist (names are Odoo's: never a '/')."""
    return psql(stack, DATABASES_SQL, variables={"names": "/".join(names)})


@_purpose()
def start_gate_web(stack: StackConfig, name: str, database: str) -> Command:
    """A throw-away web container of the env's image serving only `database`, no cron, its
    log on its output: what a restore drill (or a restore into a stopped env) gates."""
    return compose(stack, "run", "--detach", "--no-deps", "--name", name, "--label", DRILL_LABEL,
                   "-e", f"ODOO_DB_NAME={database}", "-e", "ODOO_WORKERS=0", "-e", "ODOO_MAX_CRON_THREADS=0",
                   "-e", "ODOO_LOGFILE=", "web", timeout=600)


@_purpose(reads=True)
def list_backups(folder: PurePosixPath | Path) -> Command:
    """`SIZE<TAB>NAME` of each regular file of the folder (nothing when it does not exist)."""
    script = ('if [ -d "$1" ]; then cd "$1" || exit 1; for f in * .[!.]*; do '
              'if [ -f "$f" ] && [ ! -L "$f" ]; then printf "%s\\t%s\\n" "$(wc -c < "$f" | tr -d " ")" "$f"; fi; '
              'done; fi')
    return Command(["sh", "-c", script, "sh", str(folder)], timeout=120)


@_purpose()
def delete_files(folder: PurePosixPath | Path, names: list[str]) -> Command:
    for name in names:
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"not a file name: {name!r}")
    return Command(["sh", "-c", 'cd "$1" && shift && rm -f -- "$@"', "sh", str(folder), *names], timeout=600)


@_purpose(reads=True)
def databases_like(stack: StackConfig, prefix: str) -> Command:
    return psql(stack, DATABASES_LIKE_SQL, variables={"prefix": prefix})


@_purpose(reads=True)
def drill_containers(stack: StackConfig) -> Command:
    """The throw-away web containers of restore drills (a killed drill's leftovers)."""
    return Command([docker_binary(), "ps", "--all", "--quiet",
                    "--filter", f"label=com.docker.compose.project={stack.project}",
                    "--filter", f"label={DRILL_LABEL}"], timeout=60)
