"""The typed settings of one stack (env), resolved from the repo and its env file.

Sources, later wins: built-in defaults < the overlay's `x-odoo-ai` block <
`docker/config/<env>.env` (git-ignored; absent: the documented `<env>.env.example`
beside it, whose values are the defaults) < command-line options. An unknown ODOO_*
key is an error naming the closest known one (settings.check_keys); the state root and
data folders must be paths a stack may own (stateroot.path_problem).
Secrets come from the process environment at render time (see render.py).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict

from odoo_ai.config.envfile import KEY_RE, check_carriable, read_env_file_lines
from odoo_ai.config.settings import (
    DB_NAME_MAX,
    DB_NAME_RE,
    DEFAULT_DB_USER,
    DEFAULT_DOCKER,
    DEFAULT_MAX_CRON_THREADS,
    DEFAULT_WORKERS,
    TRUE_FALSE,
    BackupConfig,
    BuildConfig,
    DeployConfig,
    HooksConfig,
    MailConfig,
    PruneConfig,
    RegistryConfig,
    RemoteConfig,
    Settings,
    SwarmConfig,
    check_keys,
    load_backup,
    load_build,
    load_deploy,
    load_hooks,
    load_mail,
    load_prune,
    load_registry,
    load_remote,
    load_swarm,
    parse_number,
    valid_db_name,
)
from odoo_ai.config.stateroot import OWN_FOLDER_HINT, path_problem, user_homes
from odoo_ai.errors import ConfigError

__all__ = [
    "DB_NAME_MAX", "DB_NAME_RE", "BuildConfig", "DeployConfig", "PruneConfig", "RegistryConfig", "RemoteConfig",
    "StackConfig", "load_stack", "parse_number", "valid_db_name",
]

ENV_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
IMAGE_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
IMAGE_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")
MODULES_RE = re.compile(r"^(all|[a-z0-9_]+(,[a-z0-9_]+)*)$")
MODULE_RE = re.compile(r"^[a-z0-9_]{1,64}$")
DB_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
LOG_MOUNT = "/volumes/logs"

DEFAULT_SECRETS = ("ODOO_DB_PASSWORD", "ODOO_MASTER_PASSWORD")
DEFAULT_PORTS = {"dev": 8069, "testing": 8070}
# Third-party images, as docker-compose.yml defaults them.
DEFAULT_IMAGES = {"ODOO_DB_IMAGE": "postgres:16", "ODOO_PROXY_IMAGE": "nginx:1.27", "ODOO_CACHE_IMAGE": "redis:7"}
MAX_ID = 2**31 - 1  # a uid or gid
MASK = "********"
SECRET_HINT = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|KEY)", re.IGNORECASE)


class StackConfig(BaseModel):
    """Everything a command needs to know about one stack, already validated.

    Every setting the code reads is a typed field (or of a section: `deploy`, `build`,
    `registry`, `remote`, `prune`); `values` is the env file as written, which only
    config/ reads (render.py passes it through to the containers)."""

    model_config = ConfigDict(frozen=True)

    env: str
    project: str
    repo_root: Path
    env_file: Path | None  # the file the settings came from: <env>.env, else <env>.env.example beside it
    state_root: Path
    data_dir: Path
    db_dir: Path
    log_dir: Path
    logfile: str
    compose_files: list[Path]
    image: str
    image_tag: str | None
    published_port: int
    bind_address: str
    db_name: str
    update_modules: str
    install_modules: list[str]  # what the env must have installed (ODOO_INSTALL / x-odoo-ai.install)
    secret_names: list[str]
    values: dict[str, str]  # non-secret settings from the env file, as written
    # -- the Odoo server and its database (docker-compose.yml passes them to the entrypoint)
    db_user: str = DEFAULT_DB_USER  # ODOO_DB_USER
    workers: int = DEFAULT_WORKERS  # ODOO_WORKERS
    max_cron_threads: int = DEFAULT_MAX_CRON_THREADS  # ODOO_MAX_CRON_THREADS
    without_demo: str = "all"  # ODOO_WITHOUT_DEMO: all, a module list, or True/False
    run_uid: int | None = None  # ODOO_RUN_UID (None: the host user, see render.py)
    run_gid: int | None = None  # ODOO_RUN_GID
    # -- images pinned by reference (ODOO_WEB_IMAGE, ODOO_SCRIPT_RUNNER_IMAGE) and third-party ones
    web_image: str | None = None
    script_runner_image: str | None = None
    db_image: str = DEFAULT_IMAGES["ODOO_DB_IMAGE"]
    proxy_image: str = DEFAULT_IMAGES["ODOO_PROXY_IMAGE"]
    cache_image: str = DEFAULT_IMAGES["ODOO_CACHE_IMAGE"]
    # -- the tools
    docker: str = DEFAULT_DOCKER  # the docker CLI: ODOO_AI_DOCKER (process environment), else docker
    deploy: DeployConfig = DeployConfig()
    build: BuildConfig = BuildConfig()
    registry: RegistryConfig = RegistryConfig()
    remote: RemoteConfig
    prune: PruneConfig = PruneConfig()
    hooks: HooksConfig = HooksConfig()
    backup: BackupConfig = BackupConfig()
    mail: MailConfig = MailConfig()
    env_file_example: bool = False  # env_file is the documented example (no <env>.env)
    test_templates_keep: int = 3  # ODOO_TEST_TEMPLATES_KEEP: template databases `test run` keeps
    swarm: SwarmConfig = SwarmConfig()  # ODOO_ENGINE, ODOO_SWARM_*

    @property
    def engine(self) -> str:
        """`compose` (one host, blue/green) or `swarm` (a stack on a Docker Swarm: odoo_ai.swarm)."""
        return self.swarm.engine

    @property
    def dotenv_path(self) -> Path:
        return self.state_root / ".env"

    @property
    def source(self) -> str:
        """What errors about this stack's settings name: the env file, or `<env> defaults`."""
        return str(self.env_file) if self.env_file else f"{self.env} defaults"

    def image_ref(self, target: str, tag: str) -> str:
        return f"{self.image}-{target}:{tag}"

    def is_secret(self, key: str) -> bool:
        return key in self.secret_names or bool(SECRET_HINT.search(key))

    def values_without_secrets(self) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if k not in self.secret_names}

    def for_test_project(self, *, image: str, secret_names: list[str], **update: Any) -> StackConfig:
        """This stack re-pointed at a throw-away project testing `image` (plan/testrun.py):
        both image refs pinned to it, no default tag, no secret value of the env file."""
        values = self.values_without_secrets()
        # The compose file needs both refs: web is never started, the image under test is used.
        values.update({"ODOO_WEB_IMAGE": image, "ODOO_SCRIPT_RUNNER_IMAGE": image})
        values.pop("ODOO_IMAGE_TAG", None)
        return self.model_copy(update={
            **update, "image_tag": None, "web_image": image, "script_runner_image": image,
            "secret_names": list(secret_names), "values": values,
        })

    def secret_sources(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Where each secret of ODOO_SECRETS would come from at render time, never its value:
        `environment`, `env file`, `generated` (a local stack's <state_root>/.secrets.env)
        or `not set` (the order of render.resolve_secrets)."""
        from odoo_ai.config.render import secret_sources

        return secret_sources(self, os.environ if environ is None else environ)

    def public_view(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The resolved settings as plain data, secrets masked (for `config show`): values of
        secret names, and the password of a URL (`https://user:********@host/...`); for each
        secret, where it would come from (`environ`: default the process environment)."""
        settings = {k: (MASK if self.is_secret(k) else _mask_url(v)) for k, v in self.values.items()}

        def section(model: BaseModel) -> dict[str, Any]:
            return {k: _mask_url(v) if isinstance(v, str) else v for k, v in model.model_dump(mode="json").items()}

        return {
            "env": self.env,
            "project": self.project,
            "repo_root": str(self.repo_root),
            "settings_file": str(self.env_file) if self.env_file else None,
            "example": self.env_file_example,
            "state_root": str(self.state_root),
            "data_dir": str(self.data_dir),
            "db_dir": str(self.db_dir),
            "log_dir": str(self.log_dir),
            "logfile": self.logfile,
            "dotenv": str(self.dotenv_path),
            "compose_files": [str(p) for p in self.compose_files],
            "image": self.image,
            "image_tag": self.image_tag,
            "web_image": self.web_image,
            "script_runner_image": self.script_runner_image,
            "db_image": self.db_image,
            "proxy_image": self.proxy_image,
            "cache_image": self.cache_image,
            "published_port": self.published_port,
            "bind_address": self.bind_address,
            "db_name": self.db_name,
            "db_user": self.db_user,
            "workers": self.workers,
            "max_cron_threads": self.max_cron_threads,
            "without_demo": self.without_demo,
            "run_uid": self.run_uid,
            "run_gid": self.run_gid,
            "update_modules": self.update_modules,
            "install_modules": self.install_modules,
            "docker": self.docker,
            "deploy": section(self.deploy),
            "build": section(self.build),
            "registry": section(self.registry),
            "remote": section(self.remote),
            "prune": section(self.prune),
            "hooks": section(self.hooks),
            "backup": section(self.backup),
            "mail": section(self.mail),
            "engine": self.engine,
            "swarm": section(self.swarm),
            "secrets": self.secret_sources(environ),
            "settings": settings,
        }


def _mask_url(value: str) -> str:
    """`scheme://user:********@host...` for a URL that carries a password; other values as they are."""
    if "://" not in value or "@" not in value:
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    if not password:
        return value
    netloc = f"{parts.username}:{MASK}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def find_repo_root(start: Path | None = None) -> Path:
    """The stack repository: ODOO_AI_REPO, else the nearest folder up from cwd with
    docker-compose.yml and environments/."""
    explicit = os.environ.get("ODOO_AI_REPO")
    if explicit:
        root = Path(explicit).expanduser().resolve()
        if not (root / "docker-compose.yml").is_file():
            raise ConfigError(f"ODOO_AI_REPO={explicit}: no docker-compose.yml there")
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "docker-compose.yml").is_file() and (candidate / "environments").is_dir():
            return candidate
    raise ConfigError(
        f"no stack repository found from {here}: run inside it or set ODOO_AI_REPO",
    )


def known_envs(repo_root: Path) -> list[str]:
    return sorted(p.stem for p in (repo_root / "environments").glob("*.yaml"))


def validate_env_name(env: str, repo_root: Path) -> None:
    if not ENV_NAME_RE.match(env):
        raise ConfigError(f"invalid env name {env!r}: use lowercase letters, digits, '-' or '_'")
    if not (repo_root / "environments" / f"{env}.yaml").is_file():
        known = ", ".join(known_envs(repo_root)) or "none"
        raise ConfigError(f"unknown env {env!r}: no environments/{env}.yaml (known: {known})")


def validate_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise ConfigError(f"invalid image tag {tag!r}: letters, digits, '_', '.', '-' (max 128, not starting with '.' or '-')")
    return tag


def parse_module_list(value: Any, *, where: str) -> list[str]:
    """A module list as an env file (`a,b`) or an overlay (`a,b` or a YAML list) writes it:
    de-duplicated, in order; None or empty = no module."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    names: list[str] = []
    for item in items:
        name = str(item).strip()
        if not name:
            continue
        if not MODULE_RE.match(name) or name == "all":
            raise ConfigError(f"{where}: {name!r} is not a module name (lowercase letters, digits, '_')")
        if name not in names:
            names.append(name)
    return names


def required_modules(stack: StackConfig) -> list[str]:
    """The modules the env must have installed: `base`, the install list, and the
    update list when it names modules (updating a module presumes it is there)."""
    names = ["base", *stack.install_modules]
    if stack.update_modules not in ("all", "auto"):
        names += stack.update_modules.split(",")
    return list(dict.fromkeys(names))


def _overlay_settings(overlay: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(overlay.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{overlay}: invalid YAML: {str(exc).splitlines()[0]}") from None
    block = data.get("x-odoo-ai") or {} if isinstance(data, dict) else {}
    if not isinstance(block, dict):
        raise ConfigError(f"{overlay}: x-odoo-ai must be a mapping")
    return block


# What path_problem says that only a folder of the stack's own cures.
_NOT_OWN = ("is the root directory", "is a top-level directory", "is your home directory",
            "contains your home directory", "is a home directory", "is on a kernel filesystem",
            "is a system directory", "contains the stack repository")


def _data_path(s: Settings, key: str, *, home: Path, repo_root: Path, project: str) -> Path:
    """ODOO_STATE_ROOT, ODOO_DATA_DIR, ODOO_DB_DIR, ODOO_LOG_DIR: `~` is the home, and the
    path must be one a stack may own (stateroot.path_problem)."""
    value = s.values[key]
    if value == "~" or value.startswith("~/"):
        path = home / value[2:] if value != "~" else home
    else:
        path = Path(value).expanduser()
    problem = path_problem(path, homes=user_homes(home), repo_root=repo_root)
    if problem:
        tail = f": {OWN_FOLDER_HINT.format(project=project)}" if problem in _NOT_OWN else ""
        raise ConfigError(f"{s.where(key)}: {key}={value!r} {problem}{tail}")
    return Path(os.path.normpath(path))


def _without_demo(s: Settings) -> str:
    key = "ODOO_WITHOUT_DEMO"
    value = s.get(key) or "all"
    if value not in TRUE_FALSE and not MODULES_RE.match(value):
        raise s.error(key, value, ": 'all', a comma list of module names, or True/False")
    return value


def _uid(s: Settings, key: str) -> int | None:
    return s.integer(key, -1, 0, MAX_ID) if s.get(key) else None


def load_stack(
    env: str,
    *,
    repo_root: Path | None = None,
    config_dir: Path | None = None,
    home: Path | None = None,
    tag: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> StackConfig:
    """Resolve and validate the settings of `env`. Raises ConfigError naming the file and
    line (`<env> defaults` without a file). `environ` (default: the process environment)
    gives ODOO_AI_DOCKER and the settings documented as "env file or environment"."""
    environ = os.environ if environ is None else environ
    repo_root = repo_root or find_repo_root()
    validate_env_name(env, repo_root)
    overlay = repo_root / "environments" / f"{env}.yaml"
    x_settings = _overlay_settings(overlay)

    config_dir = config_dir or Path(os.environ.get("ODOO_AI_CONFIG_DIR") or repo_root / "docker" / "config")
    # <env>.env, else the documented example beside it (its values are the defaults).
    env_file: Path | None = None
    example = False
    for candidate in (config_dir / f"{env}.env", config_dir / f"{env}.env.example"):
        if candidate.exists():
            env_file, example = candidate, candidate.name.endswith(".example")
            break
    if env_file is not None:
        raw, lines = read_env_file_lines(env_file)
        source = str(env_file)
    else:
        raw, lines, source = {}, {}, f"{env} defaults"
    s = Settings(raw, lines, source, environ)
    for key, value in raw.items():
        try:
            check_carriable(key, value)
        except ConfigError as exc:
            raise ConfigError(f"{s.where(key)}: {exc.message}") from None

    secret_list = raw.get("ODOO_SECRETS")
    secret_names = (
        [n.strip() for n in secret_list.split(",") if n.strip()] if secret_list is not None else list(DEFAULT_SECRETS)
    )
    for name in secret_names:
        if not KEY_RE.match(name):
            raise ConfigError(f"{s.where('ODOO_SECRETS')}: ODOO_SECRETS lists an invalid variable name {name!r}")
    check_keys(s, secret_names, example=f"docker/config/{env}.env.example")

    project = raw.get("ODOO_PROJECT_NAME") or f"opw-{env}"
    if not PROJECT_RE.match(project):
        raise s.error("ODOO_PROJECT_NAME", project, "is not a valid Compose project name")

    home = home or Path.home()
    where_data = {"home": home, "repo_root": repo_root, "project": project}
    state_root = (
        _data_path(s, "ODOO_STATE_ROOT", **where_data) if raw.get("ODOO_STATE_ROOT") else home / "odoo-ai" / project
    )
    dirs = {}
    for key, default in (("ODOO_DATA_DIR", "filestore"), ("ODOO_DB_DIR", "postgres"), ("ODOO_LOG_DIR", "logs")):
        dirs[key] = _data_path(s, key, **where_data) if raw.get(key) else state_root / default

    logfile = raw.get("ODOO_LOGFILE") or f"{LOG_MOUNT}/odoo.log"
    if not logfile.startswith(f"{LOG_MOUNT}/") or logfile.endswith("/") or "/../" in logfile:
        raise s.error("ODOO_LOGFILE", logfile, f"must name a file under {LOG_MOUNT}/")

    image = raw.get("ODOO_IMAGE") or "odoo-ai/odoo"
    if not IMAGE_RE.match(image):
        raise s.error("ODOO_IMAGE", image, "is not a valid image name (no tag)")
    image_tag = tag or raw.get("ODOO_IMAGE_TAG") or None
    if image_tag:
        try:
            validate_tag(image_tag)
        except ConfigError as exc:
            raise ConfigError(exc.message if tag else f"{s.where('ODOO_IMAGE_TAG')}: {exc.message}") from None
    refs: dict[str, str | None] = {}
    for key in ("ODOO_WEB_IMAGE", "ODOO_SCRIPT_RUNNER_IMAGE", "ODOO_DB_IMAGE", "ODOO_PROXY_IMAGE", "ODOO_CACHE_IMAGE"):
        refs[key] = raw.get(key) or DEFAULT_IMAGES.get(key)
        if raw.get(key) and not IMAGE_REF_RE.match(raw[key]):
            raise s.error(key, raw[key], "is not a valid image reference")

    port = s.integer("ODOO_PUBLISHED_PORT", DEFAULT_PORTS.get(env, 8069), 1, 65535)
    bind_address = raw.get("ODOO_BIND_ADDRESS") or "127.0.0.1"
    try:
        ipaddress.ip_address(bind_address)
    except ValueError:
        raise s.error("ODOO_BIND_ADDRESS", bind_address, "is not an IP address") from None
    db_user = raw.get("ODOO_DB_USER") or DEFAULT_DB_USER
    if not DB_USER_RE.match(db_user):
        raise s.error("ODOO_DB_USER", db_user, ": letters, digits and '_' only, not starting with a digit")
    # The proxy sends /websocket to Odoo's gevent port, which only multi-process mode opens.
    workers = s.integer("ODOO_WORKERS", DEFAULT_WORKERS, 1, 64)
    max_cron_threads = s.integer("ODOO_MAX_CRON_THREADS", DEFAULT_MAX_CRON_THREADS, 0, 64)

    db_name = raw.get("ODOO_DB_NAME") or f"opw_{env}".replace("-", "_")
    if not valid_db_name(db_name):
        raise s.error("ODOO_DB_NAME", db_name, f": Odoo's rule: a letter or digit, then letters, digits, "
                      f"'_', '.', '-' ({DB_NAME_RE.pattern}, at most {DB_NAME_MAX} characters)")

    update = raw.get("ODOO_UPDATE") or str(x_settings.get("update") or "auto")
    update = update.replace(" ", "")
    if update != "auto" and not MODULES_RE.match(update):
        where = s.where("ODOO_UPDATE") if raw.get("ODOO_UPDATE") else str(overlay)
        raise ConfigError(f"{where}: update modules {update!r}: 'auto', 'all' or a comma list of module names")

    install_text = raw.get("ODOO_INSTALL") if "ODOO_INSTALL" in raw else x_settings.get("install")
    install_modules = parse_module_list(
        install_text, where=s.where("ODOO_INSTALL") if "ODOO_INSTALL" in raw else f"{overlay}: x-odoo-ai.install")

    docker = environ.get("ODOO_AI_DOCKER") or DEFAULT_DOCKER
    if docker.startswith("-") or "\0" in docker or "\n" in docker:
        raise ConfigError(f"environment: ODOO_AI_DOCKER={docker!r} is not a command (a name or path)")

    return StackConfig(
        env=env,
        project=project,
        repo_root=repo_root,
        env_file=env_file,
        state_root=state_root,
        data_dir=dirs["ODOO_DATA_DIR"],
        db_dir=dirs["ODOO_DB_DIR"],
        log_dir=dirs["ODOO_LOG_DIR"],
        logfile=logfile,
        compose_files=[repo_root / "docker-compose.yml", overlay],
        image=image,
        image_tag=image_tag,
        published_port=port,
        bind_address=bind_address,
        db_name=db_name,
        update_modules=update,
        install_modules=install_modules,
        secret_names=secret_names,
        values=raw,
        db_user=db_user,
        workers=workers,
        max_cron_threads=max_cron_threads,
        without_demo=_without_demo(s),
        run_uid=_uid(s, "ODOO_RUN_UID"),
        run_gid=_uid(s, "ODOO_RUN_GID"),
        web_image=refs["ODOO_WEB_IMAGE"],
        script_runner_image=refs["ODOO_SCRIPT_RUNNER_IMAGE"],
        db_image=refs["ODOO_DB_IMAGE"],
        proxy_image=refs["ODOO_PROXY_IMAGE"],
        cache_image=refs["ODOO_CACHE_IMAGE"],
        docker=docker,
        deploy=load_deploy(s),
        build=load_build(s, image_ref_re=IMAGE_REF_RE),
        registry=load_registry(s),
        remote=load_remote(s, project=project),
        prune=load_prune(s, tag_re=TAG_RE),
        hooks=load_hooks(s),
        backup=load_backup(s, env=env),
        mail=load_mail(s, overlay_catcher=x_settings.get("mail_catcher"), overlay=str(overlay),
                       image_ref_re=IMAGE_REF_RE),
        env_file_example=example,
        test_templates_keep=s.integer("ODOO_TEST_TEMPLATES_KEEP", 3, 1, 100),
        swarm=load_swarm(s),
    )
