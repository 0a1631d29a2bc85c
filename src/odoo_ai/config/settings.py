"""The typed sections of a stack's settings, and how one env file's values are checked.

Every setting the code reads is a field here (or of StackConfig), validated once by
`load_stack`; an invalid value is a ConfigError naming the file and the line
(`docker/config/dev.env:12: ODOO_DEPLOY_GATE_TIMEOUT='soon' is not a number`), or
`<env> defaults` when there is no file, or `environment` for the few settings that
may also come from the process environment.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from odoo_ai.errors import ConfigError

# Odoo's own rule for database names (odoo.service.db.DBNAME_PATTERN), which the image's
# entrypoint applies too (docker/entrypoint.sh), plus PostgreSQL's identifier length.
DB_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
DB_NAME_MAX = 63
GIT_REF_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
TRUE_FALSE = ("True", "true", "False", "false", "1", "0")

DEFAULT_DB_USER = "odoo"
DEFAULT_WORKERS = 2  # docker-compose.yml's default for web
DEFAULT_MAX_CRON_THREADS = 1
DEFAULT_DOCKER = "docker"
DEFAULT_ODOO_REF = "18.0"
DEFAULT_REGISTRY_TIMEOUT = 30.0
DEFAULT_GITHUB_API = "https://api.github.com"
ENVIRONMENT = "environment"

# Every key an env file may set: what load_stack and the sections below read (the secrets
# named in ODOO_SECRETS come on top). Any other ODOO_* key is a mistake, refused with the
# closest of these (keys not starting with ODOO_ are the app's own, passed to odoo.env).
# A new setting goes here and into docker/config/<env>.env.example (tests/unit/test_config.py
# checks both against what the loader reads).
ENV_FILE_KEYS = frozenset({
    "ODOO_PROJECT_NAME", "ODOO_STATE_ROOT", "ODOO_DATA_DIR", "ODOO_DB_DIR", "ODOO_LOG_DIR", "ODOO_LOGFILE",
    "ODOO_IMAGE", "ODOO_IMAGE_TAG", "ODOO_WEB_IMAGE", "ODOO_SCRIPT_RUNNER_IMAGE", "ODOO_DB_IMAGE",
    "ODOO_PROXY_IMAGE", "ODOO_CACHE_IMAGE", "ODOO_PUBLISHED_PORT", "ODOO_BIND_ADDRESS", "ODOO_DB_NAME",
    "ODOO_DB_USER", "ODOO_WORKERS", "ODOO_MAX_CRON_THREADS", "ODOO_WITHOUT_DEMO", "ODOO_RUN_UID", "ODOO_RUN_GID",
    "ODOO_UPDATE", "ODOO_INSTALL", "ODOO_SECRETS",
    "ODOO_BUILD_ODOO_SRC", "ODOO_BUILD_ODOO_GIT_URL", "ODOO_BUILD_ODOO_REF", "ODOO_BUILD_ADDONS_DIR",
    "ODOO_BUILD_BASE_IMAGE", "ODOO_BUILD_ENTERPRISE_GIT_URL", "ODOO_BUILD_ENTERPRISE_SHA",
    "ODOO_BUILD_ENTERPRISE_KEY_FILE", "ODOO_BUILD_ENTERPRISE_KNOWN_HOSTS", "ODOO_BUILD_CA_FILE",
    "ODOO_BUILD_WKHTMLTOPDF",
    "ODOO_REGISTRY_URL", "ODOO_REGISTRY_TIMEOUT", "ODOO_GITHUB_API_URL", "ODOO_GITHUB_OWNER_TYPE",
    "ODOO_PRUNE_PINNED",
    "ODOO_DEPLOY_GATE_TIMEOUT", "ODOO_DEPLOY_GATE_INTERVAL", "ODOO_DEPLOY_DRAIN_SECONDS",
    "ODOO_DEPLOY_WEB_DURING_UPDATE", "ODOO_DEPLOY_UPDATE_RETRIES", "ODOO_DEPLOY_LOCK_TIMEOUT",
    "ODOO_DEPLOY_KEEP_SNAPSHOTS", "ODOO_DEPLOY_LOCK_WAIT", "ODOO_REMOTE_REPO_DIR",
    "ODOO_BACKUP_FORMAT", "ODOO_BACKUP_KEEP_DAILY", "ODOO_BACKUP_KEEP_WEEKLY", "ODOO_BACKUP_KEEP_MONTHLY",
    "ODOO_BACKUP_COPY_COMMAND", "ODOO_DB_PROTECTED", "ODOO_MAIL_CATCHER_IMAGE", "ODOO_MAIL_CATCHER_PORT",
    "ODOO_TEST_TEMPLATES_KEEP",
    "ODOO_POST_RELEASE_HOOK", "ODOO_POST_RELEASE_HOOK_TIMEOUT",
    "ODOO_ENGINE", "ODOO_SWARM_WEB_REPLICAS", "ODOO_SWARM_FILESTORE_DRIVER", "ODOO_SWARM_FILESTORE_OPTIONS",
    "ODOO_SWARM_DB_NODE_LABEL", "ODOO_SWARM_EXTERNAL_DB", "ODOO_SWARM_PUBLISH_MODE",
})
# Read from the process environment only (an env file's value would be ignored): the tool's
# own ODOO_AI_* variables and the registry credentials.
ENVIRONMENT_ONLY = frozenset({"ODOO_REGISTRY_USER", "ODOO_REGISTRY_PASSWORD"})
ENVIRONMENT_ONLY_PREFIX = "ODOO_AI_"
SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|KEY")


def valid_db_name(name: str) -> bool:
    """Odoo's database name rule, as docker/entrypoint.sh applies it."""
    return len(name) <= DB_NAME_MAX and DB_NAME_RE.fullmatch(name) is not None


def parse_number(value: str, *, key: str, source: str, low: float, high: float, integer: bool = False) -> float:
    """A setting that must be a number in [low, high]; ConfigError naming file and key."""
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{source}: {key}={value!r} is not {kind}") from None
    if not low <= number <= high:  # also refuses NaN
        lo, hi = (f"{int(low)}", f"{int(high)}") if integer else (f"{low:g}", f"{high:g}")
        raise ConfigError(f"{source}: {key}={value} is out of range {lo}..{hi}")
    return number


class Settings:
    """One env file's values and the line each came from; `source` names the file,
    or `<env> defaults` when there is none. `environ` serves the settings documented
    as "env file or environment" (the env file wins)."""

    def __init__(self, values: Mapping[str, str], lines: Mapping[str, int], source: str,
                 environ: Mapping[str, str] | None = None):
        self.values = values
        self.lines = lines
        self.source = source
        self.environ = environ or {}

    def where(self, key: str) -> str:
        line = self.lines.get(key)
        return f"{self.source}:{line}" if line else self.source

    def get(self, key: str) -> str | None:
        """The value as written, None when unset or empty."""
        return self.values.get(key) or None

    def get_or_environ(self, key: str) -> tuple[str | None, str]:
        """(value, where): the env file's, else the process environment's."""
        if self.values.get(key):
            return self.values[key], self.where(key)
        return self.environ.get(key) or None, ENVIRONMENT

    def error(self, key: str, value: str, why: str, *, where: str | None = None) -> ConfigError:
        """`<file>:<line>: KEY='value' why` (a `why` starting with ':' follows the value)."""
        return ConfigError(f"{where or self.where(key)}: {key}={value!r}{'' if why.startswith(':') else ' '}{why}")

    def number(self, key: str, default: float, low: float, high: float, *, integer: bool = False,
               value: str | None = None, where: str | None = None) -> float:
        raw = value if value is not None else self.get(key)
        if not raw:
            return default
        return parse_number(raw, key=key, source=where or self.where(key), low=low, high=high, integer=integer)

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        return int(self.number(key, default, low, high, integer=True))

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.get(key) or default
        if value not in choices:
            raise self.error(key, value, ": " + " or ".join(repr(c) for c in choices))
        return value

    def url(self, key: str, default: str | None = None, *, environ: bool = False) -> str | None:
        value, where = self.get_or_environ(key) if environ else (self.get(key), self.where(key))
        if not value:
            return default
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.error(key, value, "must be an http(s) URL", where=where)
        return value.rstrip("/")

    def relative_or_absolute(self, key: str) -> Path | None:
        """A path setting, absolute or relative to the repo root (checked where used)."""
        value = self.get(key)
        return Path(value) if value else None

    def git_url(self, key: str) -> str | None:
        value = self.get(key)
        if value and (value.startswith("-") or any(c.isspace() for c in value)):
            raise self.error(key, value, "is not a git URL (no blanks, not starting with '-')")
        return value

    def git_ref(self, key: str, default: str | None = None) -> str | None:
        value = self.get(key)
        if not value:
            return default
        if not GIT_REF_RE.fullmatch(value) or ".." in value:
            raise self.error(key, value, "is not a git branch, tag or commit")
        return value


def check_keys(s: Settings, secret_names: Iterable[str], *, example: str) -> None:
    """Refuse the first key of the env file that no one reads: an unknown ODOO_* key (with
    the closest known one), an ODOO_* name in the wrong case, or a variable that is read
    from the process environment only. Secrets named in ODOO_SECRETS are known."""
    known = ENV_FILE_KEYS | set(secret_names)
    for key in s.values:
        if key in known:
            continue
        where = s.where(key)
        if key.startswith(ENVIRONMENT_ONLY_PREFIX) or key in ENVIRONMENT_ONLY:
            raise ConfigError(f"{where}: {key} is read from the process environment only, never from an env file")
        if not key.startswith("ODOO_"):
            if key.upper() in known:
                raise ConfigError(f"{where}: unknown setting {key}: did you mean {key.upper()}? (names are case-sensitive)")
            continue  # the app's own setting (odoo.env)
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        if SECRET_WORDS.search(key) and not close:
            raise ConfigError(f"{where}: unknown setting {key}: a secret must be named in ODOO_SECRETS "
                              "(and its value is better given in the process environment)")
        if close:
            raise ConfigError(f"{where}: unknown setting {key}: did you mean {close[0]}?")
        raise ConfigError(f"{where}: unknown setting {key}: odoo-ai reads no such key (the known ones are in {example}; "
                          "the app's own settings must not start with ODOO_)")


# ---------------------------------------------------------------- the sections
class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeployConfig(_Section):
    """ODOO_DEPLOY_*: the same names as deploy.DeploySettings (which adds options)."""

    gate_timeout: float = 180.0  # ODOO_DEPLOY_GATE_TIMEOUT
    gate_interval: float = 1.0  # ODOO_DEPLOY_GATE_INTERVAL
    drain_seconds: float = 2.0  # ODOO_DEPLOY_DRAIN_SECONDS
    web_during_update: Literal["keep", "stop", "maintenance"] = "keep"  # ODOO_DEPLOY_WEB_DURING_UPDATE
    update_retries: int = 1  # ODOO_DEPLOY_UPDATE_RETRIES
    lock_timeout: float = 30.0  # ODOO_DEPLOY_LOCK_TIMEOUT
    keep_snapshots: int = 3  # ODOO_DEPLOY_KEEP_SNAPSHOTS
    lock_wait: float = 60.0  # ODOO_DEPLOY_LOCK_WAIT


class BuildConfig(_Section):
    """ODOO_BUILD_*: image build inputs (command-line options win). Paths as written:
    relative ones are relative to the repo root, checked by `build` when used."""

    odoo_src: Path | None = None  # ODOO_BUILD_ODOO_SRC
    odoo_git_url: str | None = None  # ODOO_BUILD_ODOO_GIT_URL (none + no src: Odoo on GitHub)
    odoo_ref: str = DEFAULT_ODOO_REF  # ODOO_BUILD_ODOO_REF
    addons_dir: Path | None = None  # ODOO_BUILD_ADDONS_DIR (None: addons/)
    base_image: str | None = None  # ODOO_BUILD_BASE_IMAGE (None: the Dockerfile's)
    enterprise_git_url: str | None = None  # ODOO_BUILD_ENTERPRISE_GIT_URL
    enterprise_sha: str | None = None  # ODOO_BUILD_ENTERPRISE_SHA
    enterprise_key_file: Path | None = None  # ODOO_BUILD_ENTERPRISE_KEY_FILE
    enterprise_known_hosts: Path | None = None  # ODOO_BUILD_ENTERPRISE_KNOWN_HOSTS
    ca_file: Path | None = None  # ODOO_BUILD_CA_FILE
    wkhtmltopdf: Literal["debian", "none"] = "debian"  # ODOO_BUILD_WKHTMLTOPDF (or environment)


class RegistryConfig(_Section):
    """The registry settings that are not credentials (those stay in the process
    environment). Each: the env file, else the process environment."""

    url: str | None = None  # ODOO_REGISTRY_URL (None: https://HOST of ODOO_IMAGE, http for loopback)
    timeout: float = DEFAULT_REGISTRY_TIMEOUT  # ODOO_REGISTRY_TIMEOUT, seconds per API call
    github_api_url: str = DEFAULT_GITHUB_API  # ODOO_GITHUB_API_URL
    github_owner_type: Literal["org", "user"] | None = None  # ODOO_GITHUB_OWNER_TYPE (None: asked)


class RemoteConfig(_Section):
    """What `--host` needs: where the Compose files go on the Docker host, and whether
    the env file sets ODOO_STATE_ROOT (a remote stack must)."""

    repo_dir: PurePosixPath  # ODOO_REMOTE_REPO_DIR (default /opt/odoo-ai/repos/<project>)
    state_root_set: bool = False  # ODOO_STATE_ROOT given in the env file


class PruneConfig(_Section):
    pinned: tuple[str, ...] = ()  # ODOO_PRUNE_PINNED: tags or digests prune never deletes


class HooksConfig(_Section):
    """Commands of the operator's that odoo-ai runs on the machine running the CLI (each
    setting: the env file, else the process environment)."""

    # ODOO_POST_RELEASE_HOOK: after every deploy and rollback (success or failure), the release
    # record as JSON on stdin; split like a shell would (shlex), never run by a shell.
    post_release: tuple[str, ...] = ()
    post_release_timeout: float = 30.0  # ODOO_POST_RELEASE_HOOK_TIMEOUT, seconds; then it is killed


# Env names that are production by their name: never the target of `db copy`, never neutralized.
PRODUCTION_ENV_RE = re.compile(r"^(prod|production|live)([-_].*)?$")
DEFAULT_MAIL_CATCHER_IMAGE = "axllent/mailpit"
DEFAULT_MAIL_CATCHER_PORT = 8025
MAIL_CATCHER_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}:[0-9]{1,5}$")


class BackupConfig(_Section):
    """ODOO_BACKUP_*: `odoo-ai db backup`, `db prune-backups` (docs/databases.md)."""

    format: Literal["zip", "dump"] = "zip"  # ODOO_BACKUP_FORMAT: zip = Odoo's own; dump = pg_dump -Fc + filestore tar
    keep_daily: int = 7  # ODOO_BACKUP_KEEP_DAILY: the newest backup of each of the last N days with one
    keep_weekly: int = 4  # ODOO_BACKUP_KEEP_WEEKLY: ... of each of the last N ISO weeks
    keep_monthly: int = 3  # ODOO_BACKUP_KEEP_MONTHLY: ... of each of the last N months
    copy_command: tuple[str, ...] = ()  # ODOO_BACKUP_COPY_COMMAND: off-host copy, argv ({file}: the backup file)
    protected: bool = False  # ODOO_DB_PROTECTED (or a production env name): never a copy target, never neutralized


class MailConfig(_Section):
    """The mail catcher of an overlay that runs one (environments/testing.yaml)."""

    catcher_image: str = DEFAULT_MAIL_CATCHER_IMAGE  # ODOO_MAIL_CATCHER_IMAGE (Compose reads it from .env)
    catcher_port: int = DEFAULT_MAIL_CATCHER_PORT  # ODOO_MAIL_CATCHER_PORT: its web UI, published by the proxy
    smtp: str | None = None  # overlay x-odoo-ai.mail_catcher: HOST:PORT Odoo sends to (None: no catcher)


NODE_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}=[A-Za-z0-9_.-]{1,63}$")
HOST_PORT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}:[0-9]{1,5}$")
VOLUME_DRIVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,127}$")
VOLUME_OPTION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}=\S*$")


class SwarmConfig(_Section):
    """ODOO_ENGINE and ODOO_SWARM_*: which engine runs the env (docs/multi-host.md).
    With `swarm`, deploys render the Compose files into a stack file (odoo_ai.swarm)."""

    engine: Literal["compose", "swarm"] = "compose"  # ODOO_ENGINE
    web_replicas: int = 2  # ODOO_SWARM_WEB_REPLICAS: web tasks (max_cron_threads=0; a `cron` service runs crons)
    filestore_driver: str = "local"  # ODOO_SWARM_FILESTORE_DRIVER: the volume driver of the filestore
    # ODOO_SWARM_FILESTORE_OPTIONS: driver options (k=v k=v); empty with `local`: a bind of ODOO_DATA_DIR
    filestore_options: tuple[tuple[str, str], ...] = ()
    db_node_label: str | None = None  # ODOO_SWARM_DB_NODE_LABEL: KEY=VALUE a node must carry to run db
    external_db: str | None = None  # ODOO_SWARM_EXTERNAL_DB: HOST:PORT of a PostgreSQL outside the stack
    publish_mode: Literal["host", "ingress"] = "host"  # ODOO_SWARM_PUBLISH_MODE: the proxy's port


def load_swarm(s: Settings) -> SwarmConfig:
    label = s.get("ODOO_SWARM_DB_NODE_LABEL")
    if label and not NODE_LABEL_RE.match(label):
        raise s.error("ODOO_SWARM_DB_NODE_LABEL", label, "must be KEY=VALUE (a node label, e.g. odoo-db=true)")
    external = s.get("ODOO_SWARM_EXTERNAL_DB")
    if external and not HOST_PORT_RE.match(external):
        raise s.error("ODOO_SWARM_EXTERNAL_DB", external, "must be HOST:PORT of a PostgreSQL server")
    if external and not 0 < int(external.rsplit(":", 1)[1]) < 65536:
        raise s.error("ODOO_SWARM_EXTERNAL_DB", external, "has a port out of range 1..65535")
    driver = s.get("ODOO_SWARM_FILESTORE_DRIVER") or "local"
    if not VOLUME_DRIVER_RE.match(driver):
        raise s.error("ODOO_SWARM_FILESTORE_DRIVER", driver, "is not a volume driver name")
    options: list[tuple[str, str]] = []
    raw_options = s.get("ODOO_SWARM_FILESTORE_OPTIONS") or ""
    for item in raw_options.split():
        if not VOLUME_OPTION_RE.match(item):
            raise s.error("ODOO_SWARM_FILESTORE_OPTIONS", raw_options,
                          f"lists {item!r}: options are KEY=VALUE separated by blanks "
                          "(e.g. 'type=nfs o=addr=10.0.0.5,rw,nfsvers=4 device=:/export/filestore')")
        key, _, value = item.partition("=")
        options.append((key, value))
    return SwarmConfig(
        engine=s.choice("ODOO_ENGINE", "compose", ("compose", "swarm")),  # type: ignore[arg-type]
        web_replicas=s.integer("ODOO_SWARM_WEB_REPLICAS", 2, 1, 64),
        filestore_driver=driver, filestore_options=tuple(options), db_node_label=label, external_db=external,
        publish_mode=s.choice("ODOO_SWARM_PUBLISH_MODE", "host", ("host", "ingress")),  # type: ignore[arg-type]
    )


def load_deploy(s: Settings) -> DeployConfig:
    return DeployConfig(
        gate_timeout=s.number("ODOO_DEPLOY_GATE_TIMEOUT", 180.0, 1, 7200),
        gate_interval=s.number("ODOO_DEPLOY_GATE_INTERVAL", 1.0, 0.1, 60),
        drain_seconds=s.number("ODOO_DEPLOY_DRAIN_SECONDS", 2.0, 0, 600),
        web_during_update=s.choice("ODOO_DEPLOY_WEB_DURING_UPDATE", "keep", ("keep", "stop", "maintenance")),  # type: ignore[arg-type]
        update_retries=s.integer("ODOO_DEPLOY_UPDATE_RETRIES", 1, 0, 5),
        lock_timeout=s.number("ODOO_DEPLOY_LOCK_TIMEOUT", 30.0, 0, 86400),
        keep_snapshots=s.integer("ODOO_DEPLOY_KEEP_SNAPSHOTS", 3, 1, 1000),
        lock_wait=s.number("ODOO_DEPLOY_LOCK_WAIT", 60.0, 1, 3600),
    )


def load_build(s: Settings, *, image_ref_re: re.Pattern[str]) -> BuildConfig:
    base_image = s.get("ODOO_BUILD_BASE_IMAGE")
    if base_image and not image_ref_re.match(base_image):
        raise s.error("ODOO_BUILD_BASE_IMAGE", base_image, "is not a valid image reference")
    wkhtmltopdf, where = s.get_or_environ("ODOO_BUILD_WKHTMLTOPDF")
    if wkhtmltopdf not in (None, "debian", "none"):
        raise s.error("ODOO_BUILD_WKHTMLTOPDF", wkhtmltopdf, ": 'debian' or 'none'", where=where)
    return BuildConfig(
        odoo_src=s.relative_or_absolute("ODOO_BUILD_ODOO_SRC"),
        odoo_git_url=s.git_url("ODOO_BUILD_ODOO_GIT_URL"),
        odoo_ref=s.git_ref("ODOO_BUILD_ODOO_REF", DEFAULT_ODOO_REF) or DEFAULT_ODOO_REF,
        addons_dir=s.relative_or_absolute("ODOO_BUILD_ADDONS_DIR"),
        base_image=base_image,
        enterprise_git_url=s.git_url("ODOO_BUILD_ENTERPRISE_GIT_URL"),
        enterprise_sha=s.git_ref("ODOO_BUILD_ENTERPRISE_SHA"),
        enterprise_key_file=s.relative_or_absolute("ODOO_BUILD_ENTERPRISE_KEY_FILE"),
        enterprise_known_hosts=s.relative_or_absolute("ODOO_BUILD_ENTERPRISE_KNOWN_HOSTS"),
        ca_file=s.relative_or_absolute("ODOO_BUILD_CA_FILE"),
        wkhtmltopdf=wkhtmltopdf or "debian",  # type: ignore[arg-type]
    )


def load_registry(s: Settings) -> RegistryConfig:
    timeout_raw, where = s.get_or_environ("ODOO_REGISTRY_TIMEOUT")
    timeout = DEFAULT_REGISTRY_TIMEOUT
    if timeout_raw:
        try:
            timeout = float(timeout_raw)
        except ValueError:
            raise s.error("ODOO_REGISTRY_TIMEOUT", timeout_raw, "is not a number of seconds", where=where) from None
        if not 0 < timeout <= 600:  # also refuses NaN
            raise ConfigError(f"{where}: ODOO_REGISTRY_TIMEOUT={timeout_raw} is out of range (0, 600]")
    owner_type, where = s.get_or_environ("ODOO_GITHUB_OWNER_TYPE")
    if owner_type not in (None, "org", "user"):
        raise s.error("ODOO_GITHUB_OWNER_TYPE", owner_type, ": 'org' or 'user'", where=where)
    return RegistryConfig(
        url=s.url("ODOO_REGISTRY_URL", environ=True),
        timeout=timeout,
        github_api_url=s.url("ODOO_GITHUB_API_URL", DEFAULT_GITHUB_API, environ=True) or DEFAULT_GITHUB_API,
        github_owner_type=owner_type,  # type: ignore[arg-type]
    )


def load_remote(s: Settings, *, project: str) -> RemoteConfig:
    key = "ODOO_REMOTE_REPO_DIR"
    value = s.get(key)
    if value is None:
        return RemoteConfig(repo_dir=PurePosixPath(f"/opt/odoo-ai/repos/{project}"),
                            state_root_set=bool(s.get("ODOO_STATE_ROOT")))
    path = PurePosixPath(value)
    if not path.is_absolute():
        raise s.error(key, value, "must be an absolute path (on the Docker host)")
    if ".." in path.parts:
        raise s.error(key, value, "must not contain '..'")
    return RemoteConfig(repo_dir=path, state_root_set=bool(s.get("ODOO_STATE_ROOT")))


def load_prune(s: Settings, *, tag_re: re.Pattern[str]) -> PruneConfig:
    key = "ODOO_PRUNE_PINNED"
    pinned: list[str] = []
    for item in (s.get(key) or "").split(","):
        ref = item.strip()
        if not ref:
            continue
        if not (DIGEST_RE.fullmatch(ref) if ref.startswith("sha256:") else tag_re.match(ref)):
            raise ConfigError(f"{s.where(key)}: {key} lists {ref!r}, which is neither an image tag "
                              "nor a digest (sha256: and 64 hex digits)")
        if ref not in pinned:
            pinned.append(ref)
    return PruneConfig(pinned=tuple(pinned))


def load_hooks(s: Settings) -> HooksConfig:
    import shlex

    key = "ODOO_POST_RELEASE_HOOK"
    raw, where = s.get_or_environ(key)
    argv: tuple[str, ...] = ()
    if raw:
        try:
            argv = tuple(shlex.split(raw))
        except ValueError as exc:
            raise s.error(key, raw, f"cannot be split into words: {exc}", where=where) from None
        if not argv or argv[0].startswith("-"):
            raise s.error(key, raw, "must start with a program, e.g. scripts/post-to-chat.sh", where=where)
    timeout_raw, timeout_where = s.get_or_environ("ODOO_POST_RELEASE_HOOK_TIMEOUT")
    timeout = s.number("ODOO_POST_RELEASE_HOOK_TIMEOUT", 30.0, 1, 3600, value=timeout_raw, where=timeout_where)
    return HooksConfig(post_release=argv, post_release_timeout=timeout)


def load_backup(s: Settings, *, env: str) -> BackupConfig:
    import shlex

    command: tuple[str, ...] = ()
    raw = s.get("ODOO_BACKUP_COPY_COMMAND")
    if raw:
        try:
            command = tuple(shlex.split(raw))
        except ValueError as exc:
            raise s.error("ODOO_BACKUP_COPY_COMMAND", raw, f"cannot be split into words: {exc}") from None
        if not command or command[0].startswith("-"):
            raise s.error("ODOO_BACKUP_COPY_COMMAND", raw, "must start with a program, e.g. rclone copy {file} remote:path")
    protected_raw = s.get("ODOO_DB_PROTECTED")
    if protected_raw is not None and protected_raw not in TRUE_FALSE:
        raise s.error("ODOO_DB_PROTECTED", protected_raw, ": True or False")
    protected = protected_raw in ("True", "true", "1") or bool(PRODUCTION_ENV_RE.match(env))
    return BackupConfig(
        format=s.choice("ODOO_BACKUP_FORMAT", "zip", ("zip", "dump")),  # type: ignore[arg-type]
        keep_daily=s.integer("ODOO_BACKUP_KEEP_DAILY", 7, 0, 3660),
        keep_weekly=s.integer("ODOO_BACKUP_KEEP_WEEKLY", 4, 0, 520),
        keep_monthly=s.integer("ODOO_BACKUP_KEEP_MONTHLY", 3, 0, 1200),
        copy_command=command,
        protected=protected,
    )


def load_mail(s: Settings, *, overlay_catcher: object, overlay: str, image_ref_re: re.Pattern[str]) -> MailConfig:
    image = s.get("ODOO_MAIL_CATCHER_IMAGE") or DEFAULT_MAIL_CATCHER_IMAGE
    if not image_ref_re.match(image):
        raise s.error("ODOO_MAIL_CATCHER_IMAGE", image, "is not a valid image reference")
    smtp = str(overlay_catcher).strip() if overlay_catcher else None
    if smtp and not MAIL_CATCHER_RE.match(smtp):
        raise ConfigError(f"{overlay}: x-odoo-ai.mail_catcher {smtp!r}: HOST:PORT of the catcher's SMTP "
                          "(a Compose service name, e.g. mailcatcher:1025)")
    return MailConfig(catcher_image=image,  # port 0: Docker picks one (docker compose port proxy 8025)
                      catcher_port=s.integer("ODOO_MAIL_CATCHER_PORT", DEFAULT_MAIL_CATCHER_PORT, 0, 65535),
                      smtp=smtp)


# The GitHub packages API token (registry/__init__.py, github_api_token): like the registry
# credentials, read from the process environment only; in an env file it is refused.
ENVIRONMENT_ONLY = ENVIRONMENT_ONLY | {"ODOO_REGISTRY_API_TOKEN"}
