"""What goes into `<state_root>/.env`: settings, resolved paths, image refs, secrets."""

from __future__ import annotations

import os
import secrets as pysecrets
from collections.abc import Mapping
from pathlib import Path

from odoo_ai.config.envfile import (
    format_env,
    format_raw_env,
    read_env_file,
    read_rendered_env,
    write_private_file,
)
from odoo_ai.config.stack import StackConfig
from odoo_ai.config.stateroot import check_claim, claim_local, read_local_marker
from odoo_ai.errors import ConfigError

GENERATED_SECRETS = ".secrets.env"
APP_ENV = "odoo.env"
TOOL_PREFIXES = ("ODOO_", "COMPOSE_")


def image_refs(stack: StackConfig, tag: str | None, *, tag_from_cli: bool) -> dict[str, str]:
    """ODOO_WEB_IMAGE / ODOO_SCRIPT_RUNNER_IMAGE: an explicit --tag wins over refs
    pinned in the env file, which win over refs derived from ODOO_IMAGE_TAG."""
    refs: dict[str, str] = {}
    for key, target, pinned in (("ODOO_WEB_IMAGE", "web", stack.web_image),
                                ("ODOO_SCRIPT_RUNNER_IMAGE", "script-runner", stack.script_runner_image)):
        if tag and (tag_from_cli or not pinned):
            refs[key] = stack.image_ref(target, tag)
        elif pinned:
            refs[key] = pinned
    if tag:
        refs["ODOO_IMAGE_TAG"] = tag
    return refs


def resolve_secrets(
    stack: StackConfig,
    environ: Mapping[str, str],
    generated: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Secret values by name (process env > env file > generated) and the names missing."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in stack.secret_names:
        value = environ.get(name)
        if value is None:
            value = stack.values.get(name)
        if value is None and generated:
            value = generated.get(name)
        if value is None or value == "":
            missing.append(name)
        else:
            found[name] = value
    return found, missing


def secret_sources(stack: StackConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """For `config show`: where each secret would come from, in resolve_secrets' order
    (`environment`, `env file`, `generated`, else `not set`); never a value."""
    try:
        generated_names = set(read_env_file(stack.state_root / GENERATED_SECRETS))
    except (ConfigError, OSError):
        generated_names = set()
    sources: dict[str, str] = {}
    for name in stack.secret_names:
        if name in environ:
            sources[name] = "environment" if environ[name] else "not set (empty in the environment)"
        elif name in stack.values:
            sources[name] = "env file" if stack.values[name] else "not set (empty in the env file)"
        elif name in generated_names:
            sources[name] = "generated"
        else:
            sources[name] = "not set"
    return sources


IMAGE_UID = IMAGE_GID = 1000  # the `odoo` user of docker/Dockerfile (ARG ODOO_RUN_UID/GID)


def dotenv_mapping(
    stack: StackConfig,
    secret_values: Mapping[str, str],
    *,
    tag: str | None,
    tag_from_cli: bool = False,
    uid: int | None = None,
    gid: int | None = None,
) -> dict[str, str]:
    values = stack.values_without_secrets()
    values.update(
        {
            "COMPOSE_PROJECT_NAME": stack.project,
            "ODOO_ENV": stack.env,
            "ODOO_PROJECT_NAME": stack.project,
            "ODOO_STATE_ROOT": str(stack.state_root),
            "ODOO_DATA_DIR": str(stack.data_dir),
            "ODOO_DB_DIR": str(stack.db_dir),
            "ODOO_LOG_DIR": str(stack.log_dir),
            "ODOO_LOGFILE": stack.logfile,
            "ODOO_DB_NAME": stack.db_name,
            "ODOO_UPDATE": stack.update_modules,
            "ODOO_PUBLISHED_PORT": str(stack.published_port),
            "ODOO_BIND_ADDRESS": stack.bind_address,
        }
    )
    values.update(image_refs(stack, tag, tag_from_cli=tag_from_cli))
    # Odoo runs as the host user by default, so files in the bind mounts stay the user's own;
    # never as root: a root host user gets the image's `odoo` user (1000:1000) instead.
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    if uid == 0:
        uid, gid = IMAGE_UID, IMAGE_GID
    values["ODOO_RUN_UID"] = str(uid if stack.run_uid is None else stack.run_uid)
    values["ODOO_RUN_GID"] = str(gid if stack.run_gid is None else stack.run_gid)
    values.update(secret_values)
    return values


def app_env_mapping(stack: StackConfig, secret_values: Mapping[str, str]) -> dict[str, str]:
    """What web and script-runner get as plain environment (odoo.env): the app's own
    settings (names not starting with ODOO_/COMPOSE_, e.g. SHOPIFY_API_TOKEN) and the secrets."""
    values = {k: v for k, v in stack.values.items() if not k.startswith(TOOL_PREFIXES)}
    values.update(secret_values)
    return values


def load_generated(stack: StackConfig) -> dict[str, str]:
    path = stack.state_root / GENERATED_SECRETS
    return read_rendered_env(path) if path.exists() else {}


def generate_missing(stack: StackConfig, missing: list[str]) -> dict[str, str]:
    """Random values for missing secrets, kept in <state_root>/.secrets.env (0600)
    so the next render gives the database the same password. Local stacks only."""
    generated = load_generated(stack)
    for name in missing:
        generated[name] = pysecrets.token_urlsafe(24)
    write_private_file(
        stack.state_root / GENERATED_SECRETS,
        format_env(generated, header="Secrets generated by odoo-ai for a local stack. Do not commit."),
    )
    return generated


def build_dotenv(
    stack: StackConfig,
    environ: Mapping[str, str],
    *,
    tag: str | None,
    tag_from_cli: bool = False,
    generated: Mapping[str, str] | None = None,
    uid: int | None = None,
    gid: int | None = None,
) -> tuple[dict[str, str], str, str]:
    """(the .env mapping, the .env text, the odoo.env text), all checks done, nothing written."""
    secret_values, missing = resolve_secrets(stack, environ, generated)
    if missing:
        raise ConfigError(
            f"missing secret{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
            "export it in the environment (listed in ODOO_SECRETS)"
        )
    mapping = dotenv_mapping(stack, secret_values, tag=tag, tag_from_cli=tag_from_cli, uid=uid, gid=gid)
    if "ODOO_WEB_IMAGE" not in mapping or "ODOO_SCRIPT_RUNNER_IMAGE" not in mapping:
        raise ConfigError(
            f"no image for {stack.env}: pass --tag TAG (e.g. {stack.env}-<short-sha>) or set ODOO_IMAGE_TAG"
        )
    header = f"Rendered by odoo-ai for {stack.env} ({stack.project}). Contains secrets: mode 0600."
    return mapping, format_env(mapping, header=header), format_raw_env(app_env_mapping(stack, secret_values))


def check_state_root(stack: StackConfig) -> bool:
    """Refuse (ConfigError) a state root that carries another project's marker, or a file
    by the marker's name that is not one; True when it carries this project's. Writes nothing."""
    return check_claim(stack.state_root, stack.project, read_local_marker)


def render_dotenv(
    stack: StackConfig,
    environ: Mapping[str, str],
    *,
    tag: str | None,
    tag_from_cli: bool = False,
    allow_generate: bool = False,
    target: Path | None = None,
) -> Path:
    """Write <state_root>/.env (or `target`) and odoo.env, 0600 and atomic; the first
    render marks the state root as this project's (stateroot.MARKER, 0644).
    Every check runs before anything is written."""
    target = target or stack.dotenv_path
    check_state_root(stack)
    generated = load_generated(stack)
    _, missing = resolve_secrets(stack, environ, generated)
    generate = bool(missing and allow_generate)
    # Validate everything first: a bad setting must not leave a marker or a secrets file behind.
    _, dotenv_text, app_env_text = build_dotenv(
        stack, environ, tag=tag, tag_from_cli=tag_from_cli,
        generated={**generated, **dict.fromkeys(missing, "x")} if generate else generated)
    claim_local(stack.state_root, stack.project, stack.env)
    if generate:
        generated = generate_missing(stack, missing)
        _, dotenv_text, app_env_text = build_dotenv(stack, environ, tag=tag, tag_from_cli=tag_from_cli,
                                                    generated=generated)
    write_private_file(stack.state_root / APP_ENV, app_env_text)
    write_private_file(target, dotenv_text)
    return target


def rendered_value(stack: StackConfig, key: str) -> str | None:
    if not stack.dotenv_path.exists():
        return None
    return read_rendered_env(stack.dotenv_path).get(key)
