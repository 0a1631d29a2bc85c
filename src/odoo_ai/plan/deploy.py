"""Pure planning of the commands a deploy or rollback runs (argv, never shell strings).

Every value that comes from config (db name, user, modules, tags) travels as its
own argv item or as a psql variable read from stdin, never spliced into a shell
line or into SQL text.
"""

from __future__ import annotations

import math
from pathlib import Path

from odoo_ai.config.stack import StackConfig
from odoo_ai.plan.compose import compose, docker_binary
from odoo_ai.plan.compose import purpose as _purpose
from odoo_ai.runners.base import Command

PENDING_STATES = ("to upgrade", "to install", "to remove")
ADDONS_HASH_FILE = "/opt/odoo/addons.sha256"
ADDON_CHECKSUMS_FILE = "/opt/odoo/addon-checksums.json"
SNAPSHOT_DIR_DB = "/snapshots"  # in the db container
SNAPSHOT_DIR_TOOLS = "/volumes/snapshots"  # in script-runner
UPSTREAM_CONF = "upstream.conf"

# Runs inside the new web container (its own python), so the gate needs no
# published port and works the same on a remote host.
# Redirects are followed only to the same path (Odoo sets its session cookie that way): a
# redirect elsewhere — Odoo sends a database it cannot use to /web/database/selector,
# which answers 200 — is the answer itself (a 303), never a pass.
GATE_PROBE = r"""
import json, sys, time, urllib.error, urllib.parse, urllib.request
port, db = sys.argv[1], sys.argv[2]
class SamePath(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).path != urllib.parse.urlsplit(req.full_url).path:
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(),
                                     SamePath)
def get(path):
    try:
        with opener.open("http://127.0.0.1:%s%s" % (port, path), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)
def websocket():
    # Odoo's bus: /websocket on the evented port (gevent_port) with workers, else on the HTTP
    # port, as the container's config file ($ODOO_RC) says; a handshake answered 101 is alive.
    import base64, configparser, os, socket
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(os.environ.get("ODOO_RC") or "/etc/odoo/odoo.conf")
    options = conf["options"] if conf.has_section("options") else {}
    try:
        workers = int(options.get("workers") or 0)
        ws_port = int(options.get("gevent_port") or 8072) if workers else int(port)
        with socket.create_connection(("127.0.0.1", ws_port), timeout=5) as sock:
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall(("GET /websocket?version=18.0-1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                          "Origin: http://127.0.0.1:%d\r\n\r\n" % (ws_port, key, ws_port)).encode())
            head = sock.recv(4096).split(b"\r\n", 1)[0].split()
        return int(head[1]) if len(head) > 1 and head[1].isdigit() else "no HTTP answer"
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)
deadline = time.monotonic() + float(sys.argv[3] if len(sys.argv) > 3 else 0)
while True:
    health = get("/web/health")
    login = get("/web/login?db=" + urllib.request.quote(db)) if health == 200 else None
    # no answer yet (the server is still starting): ask again in 0.1 s, within the wait
    if isinstance(health, int) or time.monotonic() + 0.1 > deadline:
        break
    time.sleep(0.1)
ws = websocket() if health == 200 and login == 200 else None
print(json.dumps({"health": health, "login": login, "websocket": ws}))
sys.exit(0 if health == 200 and login == 200 and ws == 101 else 1)
"""

DB_EXISTS_SQL = "SELECT count(*) FROM pg_database WHERE datname = :'dbname';\n"
# First in every swap (this one, plan/db.py's SWAP_IN_SQL and SWAP_BACK_SQL), run while the
# web containers are paused: a session on the live database inside a query or a
# transaction is a request the web was serving when it froze; ending it would fail that
# request (Odoo answers it 500, or sends the login to the database selector). Then nothing
# is swapped or ended: `busy N` is printed for the caller to unpause, let it finish, and try
# again (odoo_ai.deploy.swap); with :force (its patience spent) the swap goes ahead.
QUIET_SQL = """
SELECT count(*) AS busy FROM pg_stat_activity WHERE datname = :'dbname' AND pid <> pg_backend_pid()
  AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)', 'fastpath function call') \\gset
SELECT :busy > 0 AND NOT :force AS wait \\gset
\\if :wait
\\echo busy :busy
\\quit
\\endif
"""
# Swap the restored copy in: a rename needs the old name free of sessions, so end them
# in the same breath. The caller pauses the web containers around it, so no request sees
# the database missing or a session ended: Odoo's pool replaces a dead connection when it
# borrows it next (its reset() fails), after the web is unpaused.
SWAP_SQL = QUIET_SQL + """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN (:'dbname', :'restored') AND pid <> pg_backend_pid();
BEGIN;
ALTER DATABASE :"dbname" RENAME TO :"failed";
ALTER DATABASE :"restored" RENAME TO :"dbname";
COMMIT;
"""
# The required modules that are not `installed`, one per line as `name<TAB>state`
# (`absent` when the module is not even in the module list).
MODULE_STATES_SQL = """
SELECT m.name || E'\t' || coalesce(i.state, 'absent')
FROM unnest(string_to_array(:'modules', ',')) AS m(name)
LEFT JOIN ir_module_module i ON i.name = m.name
WHERE coalesce(i.state, 'absent') <> 'installed' ORDER BY 1;
"""
# Does the database exist and, if so, which required modules are not `installed`: one
# psql session (`\if` needs psql >= 10), `exists<TAB>0|1` then MODULE_STATES_SQL's rows.
CHECKSUM_TABLE = "odoo_ai_module_checksum"
DB_STATE_SQL = (
    "SELECT count(*) AS db_exists FROM pg_database WHERE datname = :'dbname' \\gset\n"
    "\\echo exists\t:db_exists\n"
    "\\if :db_exists\n"
    "\\connect :\"dbname\"\n"
    "SELECT to_regclass('public.ir_module_module') IS NOT NULL AS db_initialized \\gset\n"
    "\\echo initialized\t:db_initialized\n"
    "\\if :db_initialized\n" + MODULE_STATES_SQL +
    f"SELECT to_regclass('public.{CHECKSUM_TABLE}') IS NOT NULL AS has_sums \\gset\n"
    "\\echo checksums\t:has_sums\n"
    "\\if :has_sums\n"
    "SELECT 'installed' || E'\\t' || m.name || E'\\t' || coalesce(c.checksum, '') FROM ir_module_module m "
    f"LEFT JOIN {CHECKSUM_TABLE} c ON c.name = m.name WHERE m.state = 'installed' ORDER BY m.name;\n"
    "\\else\n"
    "SELECT 'installed' || E'\\t' || name || E'\\t' FROM ir_module_module WHERE state = 'installed' ORDER BY name;\n"
    "\\endif\n"
    "\\endif\n"
    "\\endif\n"
)
# What the database records after a successful update: the checksum of each installed
# module's code (the image's per-addon checksums). `:'replace'` = t: the whole table.
RECORD_CHECKSUMS_SQL = f"""
CREATE TABLE IF NOT EXISTS {CHECKSUM_TABLE} (
    name varchar PRIMARY KEY,
    checksum varchar NOT NULL,
    recorded timestamp without time zone NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
COMMENT ON TABLE {CHECKSUM_TABLE} IS 'odoo-ai: checksum of each installed module''s code at its last successful update';
BEGIN;
DELETE FROM {CHECKSUM_TABLE} WHERE :'replace' = 't' OR name NOT IN (SELECT name FROM ir_module_module WHERE state = 'installed');
INSERT INTO {CHECKSUM_TABLE} (name, checksum)
SELECT j.key, j.value FROM json_each_text(:'sums'::json) j
JOIN ir_module_module m ON m.name = j.key AND m.state = 'installed'
ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, recorded = now() AT TIME ZONE 'UTC';
COMMIT;
"""
# The installed modules that depend on the given ones, directly or not (an update of a
# module updates them too).
DEPENDENTS_SQL = """
WITH RECURSIVE dep(name) AS (
    SELECT unnest(string_to_array(:'modules', ','))
  UNION
    SELECT m.name FROM ir_module_module_dependency d
    JOIN ir_module_module m ON m.id = d.module_id
    JOIN dep ON d.name = dep.name
    WHERE m.state = 'installed'
)
SELECT name FROM dep WHERE NOT name = ANY(string_to_array(:'modules', ',')) ORDER BY 1;
"""
# Backends of the given client addresses (the update container) waiting on a lock:
# `pid<TAB>seconds waiting<TAB>blocking pids`.
LOCK_WAITS_SQL = """
SELECT w.pid || E'\\t' || floor(extract(epoch FROM now() - w.query_start))::int || E'\\t'
       || array_to_string(pg_blocking_pids(w.pid), ',')
FROM pg_stat_activity w
WHERE w.datname = :'dbname' AND w.wait_event_type = 'Lock'
  AND host(w.client_addr) = ANY(string_to_array(:'addrs', ' '));
"""
TERMINATE_SQL = "SELECT pg_terminate_backend(p) FROM unnest(string_to_array(:'pids', ',')::int[]) AS p;\n"
# In-flight HTTP requests of a web container: its ESTABLISHED sockets on Odoo's HTTP port
# (nginx opens one per request; websockets on the gevent port are long-lived and left out).
INFLIGHT_PROBE = r"""
import sys
port = "%04X" % int(sys.argv[1])
n = 0
for name in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        with open(name) as fh:
            next(fh)
            for line in fh:
                parts = line.split()
                if parts[1].rsplit(":", 1)[1] == port and parts[3] == "01":
                    n += 1
    except OSError:
        pass
print(n)
"""
# Odoo's prefork workers (ODOO_WORKERS > 0) get the master's SIGINT on a graceful stop,
# but a worker whose select() woke from the signal's wakeup byte before the Python handler
# had cleared its `alive` flag goes back to sleep for its 4 s beat (a cron worker: 60 s,
# cut at the stop grace): `docker stop` of an idle Odoo takes 1-5 s, at times 30. Another
# SIGINT wakes such a worker with the flag already cleared: it exits (a cron worker in the
# middle of a job still finishes it: the signal only clears the flag). Threaded Odoo has
# no child process: nothing to do. Prints "gone" when it saw children and the master has
# reaped them all, "none" when there were none, "left" when some outlived the deadline.
WAKE_WORKERS = r"""
import os, signal, sys, time
deadline = time.monotonic() + float(sys.argv[1])
seen = children = False
while time.monotonic() < deadline:
    time.sleep(0.05)
    children = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/status" % name) as fh:
                    if any(line.split() == ["PPid:", "1"] for line in fh):
                        children.append(int(name))
            except OSError:
                pass
    if not children:
        break
    seen = True
    for pid in children:
        try:
            os.kill(pid, signal.SIGINT)
        except OSError:
            pass
print("left" if children else "gone" if seen else "none")
"""
# The gate's database check: modules left mid-way, then the required ones not installed.
GATE_SQL = (
    "SELECT 'pending' || E'\t' || count(*) FROM ir_module_module "
    "WHERE state IN ('to upgrade', 'to install', 'to remove');\n" + MODULE_STATES_SQL
)
# Filestore snapshot: hardlinks (Odoo never rewrites a filestore file in place), a plain
# copy where they cannot be made (another filesystem, or another bind mount: EXDEV).
FILESTORE_SNAPSHOT_SH = ('if [ -d "$1" ]; then rm -rf "$2" && '
                         '{ cp -al "$1" "$2" 2>/dev/null || { rm -rf "$2" && cp -a "$1" "$2"; }; }; fi')
# Restore in two steps: copy the snapshot beside the live filestore (slow, while the old
# web serves), then swap the two by rename (instant, while the web is paused).
# A failed `cp -al` (EXDEV: the data and the snapshots are two bind mounts in the tools
# container) leaves its target half made: removed before the plain copy, or `cp -a` would
# copy the tree *into* it, nesting one more level at each snapshot and restore.
FILESTORE_PREPARE_SH = (
    'rm -rf "$1.restored"; if [ -d "$2" ]; then cp -al "$2" "$1.restored" 2>/dev/null || '
    '{ rm -rf "$1.restored" && cp -a "$2" "$1.restored"; }; else mkdir -p "$1.restored"; fi'
)
# $3: where the replaced filestore goes: beside it under the kept database's name (so the
# kept database and its filestore open together in Odoo), or "" to delete it. `mv -T`
# never moves a folder into an existing one.
FILESTORE_SWAP_SH = (
    'set -e; out=${3:-$1.replaced}; rm -rf "$1.replaced"; if [ -d "$1" ]; then mv -T "$1" "$out"; fi; '
    'mv -T "$1.restored" "$1"; rm -rf "$1.replaced"'
)
FILESTORE_REMOVE_SH = 'rm -rf -- "$1"'
# Rows that users wrote (write_uid is not Odoo's superuser 1, which the update runs as)
# after :'since' (UTC, as Odoo stores write_date), per table: `table<TAB>count`.
USER_WRITES_SQL = """
SELECT format('SELECT %L || E''\\t'' || count(*) FROM %I WHERE write_date > %L::timestamp '
              'AND write_uid IS DISTINCT FROM 1 HAVING count(*) > 0', c.table_name, c.table_name, :'since')
FROM information_schema.columns c
JOIN information_schema.columns u
  ON u.table_schema = c.table_schema AND u.table_name = c.table_name AND u.column_name = 'write_uid'
JOIN information_schema.tables t
  ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
WHERE c.table_schema = 'public' AND c.column_name = 'write_date'
ORDER BY c.table_name \\gexec
"""
DB_NOW_SQL = "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US');\n"
UPDATE_LABEL = "org.odoo-ai.role=update"  # the one-off module update container of a deploy


@_purpose()
def pull(stack: StackConfig, env_file: Path) -> Command:
    return compose(stack, "pull", "--quiet", "web", "script-runner", env_file=env_file, timeout=1800)


@_purpose(reads=True)
def image_inspect(ref: str) -> Command:
    fmt = '{"id": {{json .Id}}, "repo_digests": {{json .RepoDigests}}, "labels": {{json .Config.Labels}}}'
    return Command([docker_binary(), "image", "inspect", "--format", fmt, ref], timeout=60)


@_purpose()
def read_addons_hash(ref: str) -> Command:
    """The image's addons hash (first line) and, after a `---` line, its per-addon
    checksums (JSON; absent in images built before they existed)."""
    return Command([docker_binary(), "run", "--rm", "--network", "none", "--entrypoint", "sh", ref, "-c",
                    f"cat {ADDONS_HASH_FILE}; echo ---; cat {ADDON_CHECKSUMS_FILE} 2>/dev/null || true"],
                   timeout=120)


def psql(stack: StackConfig, sql: str, *, database: str = "postgres", variables: dict[str, str] | None = None,
         env_file: Path | None = None, container: str | None = None) -> Command:
    """psql in the db service: through Compose, or `docker exec` in a known db container
    (no Compose start-up: what the deploy's hot path uses). SQL on stdin, values as psql
    variables."""
    args = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-U", stack.db_user, "-d", database]
    for key, value in (variables or {}).items():
        args += ["-v", f"{key}={value}"]
    if container:
        return Command([docker_binary(), "exec", "-i", container, *args, "-f", "-"], timeout=300, stdin=sql.encode())
    cmd = compose(stack, "exec", "-T", "db", *args, "-f", "-", env_file=env_file, timeout=300)
    return Command(cmd.argv, timeout=cmd.timeout, stdin=sql.encode())


@_purpose(reads=True)
def db_exists(stack: StackConfig, env_file: Path | None = None) -> Command:
    return psql(stack, DB_EXISTS_SQL, variables={"dbname": stack.db_name}, env_file=env_file)


def db_user(stack: StackConfig) -> str:
    return stack.db_user


@_purpose()
def snapshot_db(stack: StackConfig, snapshot_id: str, env_file: Path | None = None) -> Command:
    return compose(stack, "exec", "-T", "db", "pg_dump", "-U", db_user(stack), "-Fc", "--no-acl",
                   "-f", f"{SNAPSHOT_DIR_DB}/{snapshot_id}.dump", stack.db_name, env_file=env_file, timeout=3600)


@_purpose()
def restore_db_into(stack: StackConfig, snapshot_id: str, target: str, env_file: Path | None = None) -> list[Command]:
    user = db_user(stack)
    return [
        drop_db(stack, target, env_file),
        compose(stack, "exec", "-T", "db", "createdb", "-U", user, "-O", user, "-T", "template0", target,
                env_file=env_file, timeout=300),
        compose(stack, "exec", "-T", "db", "pg_restore", "-U", user, "--no-owner", "--no-acl", "-j", "2",
                "-d", target, f"{SNAPSHOT_DIR_DB}/{snapshot_id}.dump", env_file=env_file, timeout=3600),
    ]


@_purpose()
def swap_restored_db(stack: StackConfig, restored: str, failed: str, env_file: Path | None = None,
                     *, force: bool = False) -> Command:
    """QUIET_SQL, then the restored database renamed to the live name (the live one to `failed`)."""
    return psql(stack, SWAP_SQL, variables={"force": str(force).lower(), "dbname": stack.db_name,
                                            "restored": restored, "failed": failed}, env_file=env_file)


@_purpose()
def drop_db(stack: StackConfig, name: str, env_file: Path | None = None) -> Command:
    return compose(stack, "exec", "-T", "db", "dropdb", "-U", db_user(stack), "--if-exists", "--force", name,
                   env_file=env_file, timeout=300)


def _tools_sh(stack: StackConfig, script: str, *args: str, env_file: Path | None = None) -> Command:
    return compose(stack, "run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", "script-runner",
                   "-c", script, "sh", *args, env_file=env_file, timeout=1800)


@_purpose()
def snapshot_filestore(stack: StackConfig, snapshot_id: str, env_file: Path | None = None) -> Command:
    return _tools_sh(stack, FILESTORE_SNAPSHOT_SH, f"/volumes/data/filestore/{stack.db_name}",
                     f"{SNAPSHOT_DIR_TOOLS}/{snapshot_id}.filestore", env_file=env_file)


TOOLS_IDLE_SECONDS = 600  # a tools container left by a killed run exits (and is removed) by itself


@_purpose()
def tools_start(stack: StackConfig, env_file: Path | None = None) -> Command:
    """A tools container (the script-runner image, data and snapshots mounted, as `_tools_sh`)
    that only sleeps: what a restore runs in it is a `docker exec`, so the swap that holds
    the web paused is two renames, not a container start. Its ID on stdout."""
    return compose(stack, "run", "--detach", "--rm", "--no-deps", "--entrypoint", "sleep", "script-runner",
                   str(TOOLS_IDLE_SECONDS), env_file=env_file, timeout=120)


def _tools_exec(container: str, script: str, *args: str) -> Command:
    return Command([docker_binary(), "exec", container, "sh", "-c", script, "sh", *args], timeout=1800)


@_purpose()
def prepare_filestore(stack: StackConfig, snapshot_id: str, tools: str) -> Command:
    """The snapshot's filestore copied beside the live one, in the tools container `tools`."""
    return _tools_exec(tools, FILESTORE_PREPARE_SH, f"/volumes/data/filestore/{stack.db_name}",
                       f"{SNAPSHOT_DIR_TOOLS}/{snapshot_id}.filestore")


@_purpose()
def swap_filestore(stack: StackConfig, tools: str, *, keep_as: str | None = None) -> Command:
    keep = f"/volumes/data/filestore/{keep_as}" if keep_as else ""
    return _tools_exec(tools, FILESTORE_SWAP_SH, f"/volumes/data/filestore/{stack.db_name}", "", keep)


@_purpose()
def remove_filestore(stack: StackConfig, database: str, env_file: Path | None = None) -> Command:
    return _tools_sh(stack, FILESTORE_REMOVE_SH, f"/volumes/data/filestore/{database}", env_file=env_file)


@_purpose(reads=True)
def db_now(stack: StackConfig, env_file: Path | None = None) -> Command:
    return psql(stack, DB_NOW_SQL, env_file=env_file)


@_purpose(reads=True)
def user_writes(stack: StackConfig, database: str, since: str, env_file: Path | None = None) -> Command:
    return psql(stack, USER_WRITES_SQL, database=database, variables={"since": since}, env_file=env_file)


@_purpose()
def remove_snapshots(stack: StackConfig, snapshot_ids: list[str], env_file: Path | None = None) -> Command:
    """rm in a container: pg_dump wrote the dumps as root, the host user may not own them."""
    paths = [f"{SNAPSHOT_DIR_TOOLS}/{sid}.{suffix}" for sid in snapshot_ids for suffix in ("dump", "filestore")]
    return compose(stack, "run", "--rm", "--no-deps", "-T", "--entrypoint", "rm", "script-runner", "-rf", "--",
                   *paths, env_file=env_file, timeout=600)


@_purpose()
def module_update(stack: StackConfig, env_file: Path, *, install: list[str], update: str | None,
                  name: str, deploy_id: str) -> Command:
    """odoo-bin -i INSTALL -u UPDATE in a one-off script-runner of the NEW image, named and
    labelled so that a later run can find it (and stop it) if this CLI is killed."""
    argv = ["/odoo/odoo-bin", "-d", stack.db_name]
    if install:
        argv += ["-i", ",".join(install)]
    if update:
        argv += ["-u", update]
    return compose(stack, "run", "--rm", "--no-deps", "-T", "--name", name,
                   "--label", UPDATE_LABEL, "--label", f"org.odoo-ai.deploy={deploy_id}", "script-runner",
                   *argv, "--stop-after-init", "--no-http", env_file=env_file, timeout=7200)


@_purpose()
def init_database(stack: StackConfig, modules: list[str], env_file: Path | None = None) -> Command:
    """Create and load a new database in a one-off script-runner (web not started yet)."""
    return compose(stack, "run", "--rm", "--no-deps", "-T", "script-runner", "/odoo/odoo-bin",
                   "-d", stack.db_name, "-i", ",".join(modules), "--stop-after-init", "--no-http",
                   env_file=env_file, timeout=7200)


@_purpose(reads=True)
def update_containers(stack: StackConfig) -> Command:
    """Module update containers of this stack, running or not (a killed deploy's orphans)."""
    return Command([docker_binary(), "ps", "--all", "--quiet",
                    "--filter", f"label=com.docker.compose.project={stack.project}",
                    "--filter", f"label={UPDATE_LABEL}"], timeout=60)


@_purpose(reads=True)
def db_state(stack: StackConfig, modules: list[str], env_file: Path | None = None, *,
             container: str | None = None) -> Command:
    return psql(stack, DB_STATE_SQL, variables={"dbname": stack.db_name, "modules": ",".join(modules)},
                env_file=env_file, container=container)


@_purpose()
def record_checksums(stack: StackConfig, sums: dict[str, str], *, replace: bool,
                     env_file: Path | None = None) -> Command:
    """The SQL and the checksums (a psql variable set on stdin: no argv size limit) go on
    stdin; a JSON object of plain module names and hex sums (checked by the caller)."""
    import json

    text = json.dumps(sums, separators=(",", ":"), sort_keys=True)
    if "'" in text or "\\" in text:  # names and sums are [a-z0-9_] and hex: never reached
        raise ValueError("checksums with quotes")
    return psql(stack, f"\\set sums '{text}'\n" + RECORD_CHECKSUMS_SQL, database=stack.db_name,
                variables={"replace": "t" if replace else "f"}, env_file=env_file)


@_purpose(reads=True)
def dependents(stack: StackConfig, modules: list[str], env_file: Path | None = None) -> Command:
    return psql(stack, DEPENDENTS_SQL, database=stack.db_name, variables={"modules": ",".join(modules)},
                env_file=env_file)


@_purpose(reads=True)
def project_containers(stack: StackConfig) -> Command:
    """Every container of the project: id, service, state, status (with health), one-off,
    config hash, name."""
    fmt = ('{{.ID}}\t{{.Label "com.docker.compose.service"}}\t{{.State}}\t{{.Status}}'
           '\t{{.Label "com.docker.compose.oneoff"}}\t{{.Label "com.docker.compose.config-hash"}}\t{{.Names}}')
    return Command([docker_binary(), "ps", "--all", "--no-trunc", "--filter",
                    f"label=com.docker.compose.project={stack.project}", "--format", fmt], timeout=60)


def container_rows(stdout: str) -> list[dict[str, str]]:
    """project_containers' answer: one dict per container (id, service, state, status, oneoff, hash, name)."""
    keys = ("id", "service", "state", "status", "oneoff", "hash", "name")
    return [dict(zip(keys, line.split("\t"), strict=False)) for line in stdout.splitlines() if line.strip()]


# The process title of the process at {proc} (nginx's workers say "nginx: worker process",
# then, once a reload's QUIT reached them, "nginx: worker process is shutting down").
_PROC_TITLE = '"$(tr "\\0" " " < "{proc}/cmdline" 2>/dev/null)"'
# Is the process at {proc} one of nginx's workers (by its process title)? A `case` head.
_NGINX_WORKER_CASE = 'case ' + _PROC_TITLE + ' in "nginx: worker process"*)'
# `pid:uid` of each of nginx's worker processes in the proxy container.
PROXY_WORKERS_SH = ('for p in /proc/[0-9]*; do ' + _NGINX_WORKER_CASE.format(proc="$p")
                    + ' echo "${p#/proc/}:$(sed -n "s/^Uid:[[:space:]]*\\([0-9]*\\).*/\\1/p" "$p/status")";; esac; done')


def proxy_worker_rows(stdout: str) -> tuple[list[str], str | None]:
    """PROXY_WORKERS_SH's answer: the workers' pids, and their one uid (None: unknown or several)."""
    rows = [line.strip().split(":", 1) for line in stdout.splitlines() if line.strip()]
    pids = [row[0] for row in rows if row[0].isdigit()]
    uids = {row[1] for row in rows if len(row) == 2 and row[0].isdigit() and row[1].isdigit()}
    return pids, (uids.pop() if len(uids) == 1 else None)


@_purpose()
def proxy_switch(container: str) -> Command:
    """The pids of nginx's workers (those of the configuration being left), then a graceful
    `nginx -s reload`: one exec."""
    return Command([docker_binary(), "exec", container, "sh", "-c", PROXY_WORKERS_SH + "; exec nginx -s reload"],
                   timeout=60)


# Ports as docker/proxy/odoo.conf has them: nginx listens on 80 and proxies to web:8069
# (HTTP) and web:8072 (/websocket, Odoo's gevent process); hex as /proc/net/tcp writes them.
PROXY_PORTS_HEX = {"listen": f"{80:04X}", "http": f"{8069:04X}", "websocket": f"{8072:04X}"}
# `busy PID`: does the nginx worker PID still carry an HTTP request? True while it has a
# connection to Odoo's HTTP port, or more client connections than websockets (a request
# still being read, not yet passed on). A worker whose connections are all websockets is
# not busy: a browser keeps its websocket open for hours, and its bus reconnects (to the
# new release) when the old web stops; waiting for it would make every deploy wait out the
# whole ODOO_DEPLOY_DRAIN_SECONDS. Sockets by inode from /proc/PID/fd (readable by the
# workers' own user: the exec runs as it), states 01 (established) and 02 (connecting) from
# /proc/PID/net/tcp{,6}; what cannot be read is busy.
_PROXY_BUSY_SH = (
    'busy() { socks=" $(ls -l "/proc/$1/fd" 2>/dev/null | sed -n "s/.*socket:\\[\\([0-9]*\\)\\]$/\\1/p" | tr "\\n" " ")"; '
    '[ "$socks" = " " ] && return 0; seen=; '
    'http=0; clients=0; ws=0; for t in "/proc/$1/net/tcp" "/proc/$1/net/tcp6"; do [ -r "$t" ] || continue; seen=1; '
    'while read -r _ l r st _ _ _ _ _ i _; do case "$socks" in *" $i "*) ;; *) continue;; esac; '
    'case "$st" in 01|02) ;; *) continue;; esac; '
    'case "${r##*:}" in ' + PROXY_PORTS_HEX["http"] + ') http=1;; ' + PROXY_PORTS_HEX["websocket"]
    + ') ws=$((ws + 1));; esac; '
    '[ "${l##*:}" = ' + PROXY_PORTS_HEX["listen"] + ' ] && clients=$((clients + 1)); done < "$t"; done; '
    '[ -z "$seen" ] || [ "$http" = 1 ] || [ "$clients" -gt "$ws" ]; }; '
)
# Until none of the given pids is a busy nginx worker (a worker of a configuration left by
# a reload exits once what it proxied is answered; one holding only websockets is done),
# checking every 0.05 s, at most $1 times: prints "gone", or "left" when some still serve.
# A worker whose title does not say "shutting down" yet has not had the reload's QUIT: it
# may still accept a connection, so it counts as serving whatever it holds.
PROXY_WORKERS_GONE_SH = (
    _PROXY_BUSY_SH + 'n=$1; shift; while :; do left=; for p in "$@"; do case '
    + _PROC_TITLE.format(proc="/proc/$p") + ' in "nginx: worker process is shutting down"*) busy "$p" && left=1;; '
    '"nginx: worker process"*) left=1;; esac; done; '
    '[ -z "$left" ] && { echo gone; exit 0; }; n=$((n - 1)); [ "$n" -le 0 ] && { echo left; exit 0; }; '
    'sleep 0.05 2>/dev/null || sleep 1; done')


@_purpose(reads=True)
def proxy_workers_gone(container: str, pids: list[str], seconds: float, user: str | None = None) -> Command:
    """Wait, inside the proxy container (one exec, as the workers' `user` when known), for
    nginx's workers `pids` to be gone or to hold nothing but websockets: at most `seconds`."""
    checks = max(1, math.ceil(seconds / 0.05))
    as_user = ["--user", user] if user and user.isdigit() else []
    return Command([docker_binary(), "exec", *as_user, container, "sh", "-c", PROXY_WORKERS_GONE_SH, "sh", str(checks),
                    *[pid for pid in pids if pid.isdigit()]], timeout=seconds + 30)


@_purpose()
def proxy_reload_in(container: str) -> Command:
    """`nginx -s reload` in a known proxy container: graceful, and faster than through Compose."""
    return Command([docker_binary(), "exec", container, "nginx", "-s", "reload"], timeout=60)


@_purpose(reads=True)
def container_addresses(container: str) -> Command:
    return Command([docker_binary(), "inspect", "--format",
                    "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container], timeout=30)


@_purpose(reads=True)
def lock_waits(stack: StackConfig, addresses: list[str], env_file: Path | None = None) -> Command:
    return psql(stack, LOCK_WAITS_SQL, variables={"dbname": stack.db_name, "addrs": " ".join(addresses)},
                env_file=env_file)


@_purpose()
def terminate_backends(stack: StackConfig, pids: list[int], env_file: Path | None = None) -> Command:
    return psql(stack, TERMINATE_SQL, variables={"pids": ",".join(str(int(p)) for p in pids)}, env_file=env_file)


@_purpose(reads=True)
def inflight_requests(container: str, port: int = 8069) -> Command:
    return Command([docker_binary(), "exec", container, "python3", "-c", INFLIGHT_PROBE, str(port)], timeout=30)


@_purpose(reads=True)
def container_image(container: str) -> Command:
    return Command([docker_binary(), "inspect", "--format", "{{.Image}}", container], timeout=30)


@_purpose(reads=True)
def module_states(stack: StackConfig, modules: list[str], env_file: Path | None = None) -> Command:
    return psql(stack, MODULE_STATES_SQL, database=stack.db_name, variables={"modules": ",".join(modules)},
                env_file=env_file)


@_purpose(reads=True)
def gate_modules(stack: StackConfig, modules: list[str], env_file: Path | None = None, *,
                 container: str | None = None) -> Command:
    return psql(stack, GATE_SQL, database=stack.db_name, variables={"modules": ",".join(modules)},
                env_file=env_file, container=container)


@_purpose()
def pause(containers: list[str]) -> Command:
    return Command([docker_binary(), "pause", *containers], timeout=60)


@_purpose(reads=True)
def paused_containers(stack: StackConfig) -> Command:
    return Command([docker_binary(), "ps", "--quiet", "--filter", f"label=com.docker.compose.project={stack.project}",
                    "--filter", "status=paused"], timeout=60)


@_purpose()
def unpause(containers: list[str]) -> Command:
    return Command([docker_binary(), "unpause", *containers], timeout=60)


@_purpose(reads=True)
def web_container_ids(stack: StackConfig) -> Command:
    """The running (or paused) containers of the `web` service: `ID<TAB>NAME`, full IDs, by one
    `docker ps` on Compose's labels (what `compose ps web` lists, without loading the files)."""
    return Command([docker_binary(), "ps", "--no-trunc", "--format", "{{.ID}}\t{{.Names}}",
                    "--filter", f"label=com.docker.compose.project={stack.project}",
                    "--filter", "label=com.docker.compose.service=web",
                    "--filter", "label=com.docker.compose.oneoff=False"], timeout=60)


def web_containers(stdout: str) -> list[tuple[str, str]]:
    """(ID, name) of each line web_container_ids printed (the name empty where not given)."""
    rows = [line.strip().split("\t") for line in stdout.splitlines() if line.strip()]
    return [(row[0], row[1] if len(row) > 1 else "") for row in rows]


@_purpose()
def start_web_beside(stack: StackConfig, env_file: Path, count: int) -> Command:
    return compose(stack, "up", "--detach", "--no-deps", "--no-recreate", "--scale", f"web={count}", "web",
                   env_file=env_file, timeout=600)


@_purpose()
def stop_web(stack: StackConfig, env_file: Path | None = None) -> Command:
    return compose(stack, "stop", "web", env_file=env_file, timeout=120)


@_purpose(reads=True)
def container_state(container: str) -> Command:
    fmt = '{"name": {{json .Name}}, "status": {{json .State.Status}}, "restarts": {{.RestartCount}}, "exit": {{.State.ExitCode}}}'
    return Command([docker_binary(), "inspect", "--format", fmt, container], timeout=30)


@_purpose()
def gate_probe(container: str, db_name: str, port: int = 8069, wait: float = 0.0) -> Command:
    """/web/health then /web/login?db=, then a /websocket handshake (Odoo's bus, on the
    port its config says), from inside the container; while nothing listens yet it asks
    again every 0.1 s for up to `wait` seconds (one exec, not one per try)."""
    return Command([docker_binary(), "exec", container, "python3", "-c", GATE_PROBE, str(port), db_name,
                    f"{max(0.0, min(wait, 10.0)):.1f}"], timeout=30)


@_purpose(reads=True)
def container_logs(container: str, tail: int = 30) -> Command:
    return Command([docker_binary(), "logs", "--tail", str(tail), container], timeout=30)


@_purpose()
def proxy_reload(stack: StackConfig, env_file: Path | None = None) -> Command:
    return compose(stack, "exec", "-T", "proxy", "nginx", "-s", "reload", env_file=env_file, timeout=60)


@_purpose()
def signal_container(container: str, signal: str = "TERM") -> Command:
    """Send the signal to the container's main process and return (`docker stop` without its wait)."""
    return Command([docker_binary(), "kill", "--signal", signal, container], timeout=30)


@_purpose()
def wake_workers(container: str, seconds: float = 1.0) -> Command:
    """SIGINT, every 0.05 s for up to `seconds`, to the children of the container's PID 1
    while any is left: see WAKE_WORKERS."""
    return Command([docker_binary(), "exec", container, "python3", "-c", WAKE_WORKERS, f"{seconds:.1f}"],
                   timeout=30)


@_purpose(reads=True)
def wait_container(container: str, seconds: int) -> Command:
    """Until the container has exited (its exit code on stdout); timing out after `seconds`."""
    return Command([docker_binary(), "wait", container], timeout=seconds)


@_purpose()
def remove_container(container: str) -> Command:
    return Command([docker_binary(), "rm", "--force", "--volumes", container], timeout=120)


@_purpose(reads=True)
def oneoff_containers(stack: StackConfig) -> Command:
    return Command([docker_binary(), "ps", "--all", "--quiet",
                    "--filter", f"label=com.docker.compose.project={stack.project}",
                    "--filter", "label=com.docker.compose.oneoff=True"], timeout=60)


@_purpose()
def ensure_services(stack: StackConfig, env_file: Path) -> Command:
    """db and proxy running (`--no-recreate`: running ones stay untouched; converge applies changes)."""
    return compose(stack, "up", "--detach", "--no-deps", "--no-recreate", "--wait", "db", "proxy",
                   env_file=env_file, timeout=300)


@_purpose()
def restart_web(stack: StackConfig) -> Command:
    return compose(stack, "up", "--detach", "--no-deps", "web", timeout=600)


@_purpose()
def take_down(stack: StackConfig, env_file: Path) -> Command:
    """What a failed first deploy started (db, proxy), with its own .env."""
    return compose(stack, "--profile", "*", "down", "--remove-orphans", env_file=env_file, timeout=300)


@_purpose(reads=True)
def config_hashes(stack: StackConfig, env_file: Path | None = None) -> Command:
    """`service hash` per active service: what Compose would run now."""
    return compose(stack, "config", "--hash", "*", env_file=env_file, timeout=60)


@_purpose()
def converge(stack: StackConfig, env_file: Path | None = None) -> Command:
    return compose(stack, "up", "--detach", "--remove-orphans", env_file=env_file, timeout=600)


MAINTENANCE_CONF = """\
# odoo-ai: maintenance while a module update runs (ODOO_DEPLOY_WEB_DURING_UPDATE=maintenance).
default_type text/html;
add_header Retry-After 30 always;
add_header Cache-Control no-store always;
add_header X-Odoo-Ai maintenance always;
return 503 "<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>Maintenance</h1><p>An update \
is running. Please retry in a moment.</p></body></html>\\n";
"""


def upstream_conf(container: str | None) -> str:
    """nginx lines that pin the proxy to one container (None: the `web` alias)."""
    if container is None:
        return "# odoo-ai: traffic goes to the `web` service alias.\n"
    return (
        f"# odoo-ai: traffic pinned to {container} during a deploy.\n"
        f"set $odoo_http http://{container}:8069;\n"
        f"set $odoo_websocket http://{container}:8072;\n"
    )
