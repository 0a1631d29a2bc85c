"""The typed settings of one stack (env), resolved from the repo and its env file.

Sources, later wins: built-in defaults < the overlay's `x-odoo-ai` block <
`docker/config/<env>.env` (git-ignored; absent = defaults) < command-line options.
Secrets come from the process environment at render time (see render.py).
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from odoo_ai.config.envfile import KEY_RE, check_carriable, read_env_file
from odoo_ai.errors import ConfigError

ENV_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
IMAGE_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
IMAGE_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")
MODULES_RE = re.compile(r"^(all|[a-z0-9_]+(,[a-z0-9_]+)*)$")
MODULE_RE = re.compile(r"^[a-z0-9_]{1,64}$")
DB_USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DB_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
LOG_MOUNT = "/volumes/logs"

DEFAULT_SECRETS = ("ODOO_DB_PASSWORD", "ODOO_MASTER_PASSWORD")
DEFAULT_PORTS = {"dev": 8069, "testing": 8070}
SECRET_HINT = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|KEY)", re.IGNORECASE)


class StackConfig(BaseModel):
    """Everything a command needs to know about one stack, already validated."""

    model_config = ConfigDict(frozen=True)

    env: str
    project: str
    repo_root: Path
    env_file: Path | None
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

    @property
    def dotenv_path(self) -> Path:
        return self.state_root / ".env"

    def image_ref(self, target: str, tag: str) -> str:
        return f"{self.image}-{target}:{tag}"

    def is_secret(self, key: str) -> bool:
        return key in self.secret_names or bool(SECRET_HINT.search(key))

    def public_view(self) -> dict[str, Any]:
        """The resolved settings as plain data, secrets masked (for `config show`)."""
        settings = {k: ("********" if self.is_secret(k) else v) for k, v in self.values.items()}
        return {
            "env": self.env,
            "project": self.project,
            "repo_root": str(self.repo_root),
            "env_file": str(self.env_file) if self.env_file else None,
            "state_root": str(self.state_root),
            "data_dir": str(self.data_dir),
            "db_dir": str(self.db_dir),
            "log_dir": str(self.log_dir),
            "logfile": self.logfile,
            "dotenv": str(self.dotenv_path),
            "compose_files": [str(p) for p in self.compose_files],
            "image": self.image,
            "image_tag": self.image_tag,
            "published_port": self.published_port,
            "bind_address": self.bind_address,
            "db_name": self.db_name,
            "update_modules": self.update_modules,
            "install_modules": self.install_modules,
            "secrets": {name: "********" for name in self.secret_names},
            "settings": settings,
        }


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
    if stack.update_modules != "all":
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


def _absolute(value: str, *, key: str, source: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise ConfigError(f"{source}: {key}={value!r} must be an absolute path")
    if any(part == ".." for part in path.parts):
        raise ConfigError(f"{source}: {key}={value!r} must not contain '..'")
    check_carriable(key, value)
    return path


def parse_number(value: str, *, key: str, source: str, low: float, high: float, integer: bool = False) -> float:
    """A setting that must be a number in [low, high]; ConfigError naming file and key."""
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{source}: {key}={value!r} is not {kind}") from None
    if not low <= number <= high:
        raise ConfigError(f"{source}: {key}={value} is out of range {low:g}..{high:g}")
    return number


def _int(value: str, *, key: str, source: str, low: int, high: int) -> int:
    return int(parse_number(value, key=key, source=source, low=low, high=high, integer=True))


def load_stack(
    env: str,
    *,
    repo_root: Path | None = None,
    config_dir: Path | None = None,
    home: Path | None = None,
    tag: str | None = None,
) -> StackConfig:
    """Resolve the settings of `env`. Raises ConfigError naming the file and key."""
    repo_root = repo_root or find_repo_root()
    validate_env_name(env, repo_root)
    overlay = repo_root / "environments" / f"{env}.yaml"
    x_settings = _overlay_settings(overlay)

    config_dir = config_dir or Path(os.environ.get("ODOO_AI_CONFIG_DIR") or repo_root / "docker" / "config")
    env_file: Path | None = config_dir / f"{env}.env"
    assert env_file is not None
    if env_file.exists():
        raw = read_env_file(env_file)
        source = str(env_file)
    else:
        raw, source, env_file = {}, f"{env} defaults", None
    for key, value in raw.items():
        check_carriable(key, value)

    project = raw.get("ODOO_PROJECT_NAME") or f"opw-{env}"
    if not PROJECT_RE.match(project):
        raise ConfigError(f"{source}: ODOO_PROJECT_NAME={project!r} is not a valid Compose project name")

    home = home or Path.home()
    state_root = (
        _absolute(raw["ODOO_STATE_ROOT"], key="ODOO_STATE_ROOT", source=source)
        if raw.get("ODOO_STATE_ROOT")
        else home / "odoo-ai" / project
    )
    dirs = {}
    for key, default in (("ODOO_DATA_DIR", "filestore"), ("ODOO_DB_DIR", "postgres"), ("ODOO_LOG_DIR", "logs")):
        dirs[key] = _absolute(raw[key], key=key, source=source) if raw.get(key) else state_root / default

    logfile = raw.get("ODOO_LOGFILE") or f"{LOG_MOUNT}/odoo.log"
    if not logfile.startswith(f"{LOG_MOUNT}/") or logfile.endswith("/") or "/../" in logfile:
        raise ConfigError(f"{source}: ODOO_LOGFILE={logfile!r} must name a file under {LOG_MOUNT}/")

    image = raw.get("ODOO_IMAGE") or "odoo-ai/odoo"
    if not IMAGE_RE.match(image):
        raise ConfigError(f"{source}: ODOO_IMAGE={image!r} is not a valid image name (no tag)")
    image_tag = tag or raw.get("ODOO_IMAGE_TAG") or None
    if image_tag:
        validate_tag(image_tag)
    for key in ("ODOO_WEB_IMAGE", "ODOO_SCRIPT_RUNNER_IMAGE", "ODOO_DB_IMAGE", "ODOO_PROXY_IMAGE", "ODOO_CACHE_IMAGE"):
        if raw.get(key) and not IMAGE_REF_RE.match(raw[key]):
            raise ConfigError(f"{source}: {key}={raw[key]!r} is not a valid image reference")

    port = _int(
        raw.get("ODOO_PUBLISHED_PORT") or str(DEFAULT_PORTS.get(env, 8069)),
        key="ODOO_PUBLISHED_PORT", source=source, low=1, high=65535,
    )
    bind_address = raw.get("ODOO_BIND_ADDRESS") or "127.0.0.1"
    try:
        ipaddress.ip_address(bind_address)
    except ValueError:
        raise ConfigError(f"{source}: ODOO_BIND_ADDRESS={bind_address!r} is not an IP address") from None
    db_user = raw.get("ODOO_DB_USER") or "odoo"
    if not DB_USER_RE.match(db_user):
        raise ConfigError(f"{source}: ODOO_DB_USER={db_user!r}: letters, digits and '_' only, not starting with a digit")
    if "ODOO_WORKERS" in raw:
        # The proxy sends /websocket to Odoo's gevent port, which only multi-process mode opens.
        _int(raw["ODOO_WORKERS"], key="ODOO_WORKERS", source=source, low=1, high=64)

    db_name = raw.get("ODOO_DB_NAME") or f"opw_{env}".replace("-", "_")
    if not DB_NAME_RE.match(db_name):
        raise ConfigError(f"{source}: ODOO_DB_NAME={db_name!r}: letters, digits, '_', '.', '-' only")

    update = raw.get("ODOO_UPDATE") or str(x_settings.get("update") or "all")
    update = update.replace(" ", "")
    if not MODULES_RE.match(update):
        where = source if raw.get("ODOO_UPDATE") else str(overlay)
        raise ConfigError(f"{where}: update modules {update!r}: 'all' or a comma list of module names")

    install_text = raw.get("ODOO_INSTALL") if "ODOO_INSTALL" in raw else x_settings.get("install")
    install_modules = parse_module_list(
        install_text, where=source if "ODOO_INSTALL" in raw else f"{overlay}: x-odoo-ai.install")

    secret_list = raw.get("ODOO_SECRETS")
    secret_names = (
        [s.strip() for s in secret_list.split(",") if s.strip()] if secret_list is not None else list(DEFAULT_SECRETS)
    )
    for name in secret_names:
        if not KEY_RE.match(name):
            raise ConfigError(f"{source}: ODOO_SECRETS lists an invalid variable name {name!r}")

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
    )
