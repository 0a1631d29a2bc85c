"""Container registries: the small backend protocol that push/promote/prune need.

Two backends (side-effecting, HTTP via httpx, every call with a timeout):
- `oci.OciRegistry`: the OCI distribution API (Docker's registry, Harbor, ...):
  list tags, resolve digests, copy a manifest to a new tag, delete by digest
  (the registry then needs garbage collection to free space).
- `ghcr.GhcrRegistry`: GHCR refuses registry deletes (405); versions are listed and
  deleted through the GitHub REST API, manifests still go through the registry.

Settings (see `registry_settings`): the registry host comes from ODOO_IMAGE, the
other settings from `stack.registry` (validated by load_stack); credentials come
from the process environment only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from odoo_ai.config.settings import DEFAULT_GITHUB_API, DEFAULT_REGISTRY_TIMEOUT
from odoo_ai.errors import ConfigError, ExitCode, OdooAiError

GHCR_HOST = "ghcr.io"
GITHUB_API = DEFAULT_GITHUB_API
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
DEFAULT_TIMEOUT = DEFAULT_REGISTRY_TIMEOUT
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class RegistryError(OdooAiError):
    """The registry (or the GitHub API) failed or could not be reached."""

    exit_code = ExitCode.INFRA


class NotFound(RegistryError):
    """The tag or digest asked for is not in the repository."""

    exit_code = ExitCode.USAGE


class RegistryAuthError(RegistryError):
    """Wrong or missing credentials: fix the configuration, retrying will not help."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)  # never printed, never in argv


@dataclass(frozen=True)
class ImageVersion:
    """One manifest in a repository: a digest with all its tags (GHCR: a package version)."""

    digest: str
    tags: tuple[str, ...] = ()
    created: dt.datetime | None = None
    media_type: str | None = None
    children: tuple[str, ...] = ()  # manifests an index points to (platforms, attestations)
    version_id: int | None = None  # GHCR package version id

    def as_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "tags": list(self.tags),
            "created": self.created.strftime("%Y-%m-%dT%H:%M:%SZ") if self.created else None,
            "media_type": self.media_type,
            "children": list(self.children),
            **({"version_id": self.version_id} if self.version_id is not None else {}),
        }


class Backend(Protocol):
    label: str  # "registry 127.0.0.1:5000", for one-line messages
    gc_note: str | None  # what to do after deletes (garbage collection), if anything

    def check(self) -> None:
        """Prove the registry answers and the credentials work (raises RegistryError)."""
        ...

    def list_tags(self, repository: str) -> list[str]: ...

    def resolve_digest(self, repository: str, reference: str) -> str:
        """The manifest digest a tag (or digest) names; RegistryError if unknown."""
        ...

    def list_versions(self, repository: str) -> list[ImageVersion]: ...

    def image_ids(self, repository: str, digest: str) -> set[str]:
        """The ids a local engine may give the image of manifest `digest` (config digest,
        manifest digest, an index's platform manifests)."""
        ...

    def copy_tag(self, repository: str, digest: str, tag: str) -> str:
        """Point `tag` at the manifest `digest` (no rebuild, same bytes); returns the digest."""
        ...

    def delete(self, repository: str, version: ImageVersion) -> None:
        """Delete one manifest (and with it every tag on it)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RegistrySettings:
    host: str  # as in the image reference: ghcr.io, 127.0.0.1:5000
    base_url: str  # the registry API root, e.g. http://127.0.0.1:5000
    kind: str  # "oci" or "ghcr"
    namespace: str  # the image path without the host, e.g. acme/odoo
    credentials: Credentials | None
    timeout: float = DEFAULT_TIMEOUT
    github_api_url: str = GITHUB_API
    github_token: str | None = field(default=None, repr=False)
    github_token_source: str | None = None  # the variable the API token came from (never its value)
    owner: str | None = None  # GHCR: the user or organisation owning the packages
    owner_type: str | None = None  # GHCR: "orgs" or "users"; None = ask the API
    github_repository: str | None = None  # GHCR: OWNER/REPO of the workflow (GITHUB_REPOSITORY), if any

    def repository(self, target: str) -> str:
        """The repository path of a build target (see StackConfig.image_ref)."""
        return f"{self.namespace}-{target}"

    def reference(self, target: str, ref: str) -> str:
        sep = "@" if ref.startswith("sha256:") else ":"
        return f"{self.host}/{self.repository(target)}{sep}{ref}"


def split_image(image: str) -> tuple[str | None, str]:
    """("host[:port]" or None for Docker Hub, "path") of an image name without tag."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, image


# The GitHub packages API (GHCR listing, deletion, visibility): a token supplied for it wins
# over the job's GITHUB_TOKEN, whose package role may be too small (deleting needs Admin).
API_TOKEN_VARIABLES = ("ODOO_REGISTRY_API_TOKEN", "ODOO_REGISTRY_PASSWORD", "GITHUB_TOKEN", "GH_TOKEN")


def github_api_token(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(token, the variable it came from) for the GitHub packages API, first set of
    API_TOKEN_VARIABLES: ODOO_REGISTRY_API_TOKEN (a personal access token meant for the
    API), else ODOO_REGISTRY_PASSWORD (a PAT given for the registry), else the job's
    GITHUB_TOKEN / GH_TOKEN."""
    for name in API_TOKEN_VARIABLES:
        if environ.get(name):
            return environ[name], name
    return None, None


def registry_settings(stack: Any, environ: Mapping[str, str]) -> RegistrySettings:
    """The registry of a stack's images, with the credentials of `environ` (the process
    environment). Raises ConfigError naming the key."""
    config = stack.registry
    host, namespace = split_image(stack.image)
    if host is None:
        raise ConfigError(
            f"{stack.source}: ODOO_IMAGE={stack.image!r} names no registry host: "
            "use e.g. ghcr.io/OWNER/odoo or 127.0.0.1:5000/odoo-ai/odoo"
        )
    timeout = config.timeout
    if config.url:
        base_url = config.url
    else:
        hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        scheme = "http" if hostname in LOOPBACK_HOSTS else "https"
        base_url = f"{scheme}://{host}"

    user = environ.get("ODOO_REGISTRY_USER") or None
    password = environ.get("ODOO_REGISTRY_PASSWORD") or None
    if host == GHCR_HOST:
        owner = namespace.split("/", 1)[0]
        job_token = environ.get("GITHUB_TOKEN") or environ.get("GH_TOKEN")
        token, token_source = github_api_token(environ)
        password = password or job_token
        user = user or environ.get("GITHUB_ACTOR") or owner
        return RegistrySettings(
            host=host, base_url=base_url, kind="ghcr", namespace=namespace,
            credentials=Credentials(user, password) if password else None, timeout=timeout,
            github_api_url=config.github_api_url, github_token=token, github_token_source=token_source,
            owner=owner, owner_type={"org": "orgs", "user": "users"}.get(config.github_owner_type or ""),
            github_repository=environ.get("GITHUB_REPOSITORY") or None,
        )
    if bool(user) != bool(password):
        raise ConfigError("set both ODOO_REGISTRY_USER and ODOO_REGISTRY_PASSWORD (process environment), or neither")
    return RegistrySettings(
        host=host, base_url=base_url, kind="oci", namespace=namespace,
        credentials=Credentials(user, password) if user and password else None, timeout=timeout,
    )


def open_backend(settings: RegistrySettings, *, transport: Any = None) -> Backend:
    """The backend for `settings`; `transport` (an httpx transport) is for tests."""
    from odoo_ai.registry.oci import OciRegistry

    registry = OciRegistry(settings, transport=transport)
    if settings.kind == "ghcr":
        from odoo_ai.registry.ghcr import GhcrRegistry

        return GhcrRegistry(settings, registry, transport=transport)
    return registry


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 time (registry configs, GitHub API) as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # Go writes nanoseconds; Python accepts at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
