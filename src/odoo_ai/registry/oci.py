"""The OCI distribution API (Docker registry v2, Harbor, GHCR's registry side).

Auth follows the registry's challenge: HTTP Basic, or a Bearer token from the
realm the 401 names (scoped per repository and action). Manifests are always
requested with every manifest media type accepted, so digests are the real ones
(a registry would otherwise down-convert and answer another digest).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import httpx

from odoo_ai.registry import (
    DIGEST_RE,
    ImageVersion,
    NotFound,
    RegistryAuthError,
    RegistryError,
    RegistrySettings,
    parse_time,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
GC_NOTE = (
    "deleted manifests free no space until the registry's garbage collection runs "
    "(distribution: `registry garbage-collect --delete-untagged CONFIG`, registry stopped or read-only)"
)

_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')


def connect_reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "name resolution" in lowered:
        return "unknown host"
    if "unreachable" in lowered:
        return "network unreachable"
    return re.sub(r"^\[Errno -?\d+\]\s*", "", text).strip()


def error_detail(response: httpx.Response) -> str:
    """The registry's own one-line reason (distribution error JSON), else the status."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
        if isinstance(data.get("message"), str):
            return data["message"]
    return response.reason_phrase or f"HTTP {response.status_code}"


class OciRegistry:
    """One registry host, spoken to through the distribution API."""

    gc_note: str | None = GC_NOTE

    def __init__(self, settings: RegistrySettings, *, transport: Any = None):
        self.settings = settings
        self.label = f"registry {settings.host}"
        self._client = httpx.Client(
            base_url=settings.base_url, timeout=settings.timeout, transport=transport,
            follow_redirects=True, headers={"User-Agent": "odoo-ai"},
        )
        self._scheme: str | None = None  # "basic" or "bearer", learnt from the first 401
        self._challenge: dict[str, str] = {}
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------ transport + auth
    def _who(self) -> str:
        creds = self.settings.credentials
        return f"for user {creds.user}" if creds else "without credentials"

    def _auth_failed(self, status: int) -> RegistryAuthError:
        if self.settings.credentials is None:
            return RegistryAuthError(
                f"{self.label}: authentication required ({status})",
                hint="set ODOO_REGISTRY_USER and ODOO_REGISTRY_PASSWORD in the environment",
            )
        return RegistryAuthError(f"{self.label}: authentication failed ({status}) {self._who()}")

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, url, **kwargs)
        except httpx.ConnectError as exc:
            raise RegistryError(f"{self.label} unreachable: {connect_reason(exc)}") from None
        except httpx.TimeoutException:
            raise RegistryError(
                f"{self.label}: no answer within {self.settings.timeout:.0f}s ({method} {url})"
            ) from None
        except httpx.HTTPError as exc:
            raise RegistryError(f"{self.label}: {method} {url}: {connect_reason(exc)}") from None

    def _authorization(self, scope: str) -> dict[str, str]:
        creds = self.settings.credentials
        if self._scheme == "basic" and creds:
            raw = f"{creds.user}:{creds.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if self._scheme == "bearer" and scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        return {}

    def _learn(self, challenge: str, scope: str) -> None:
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            if self.settings.credentials is None:
                raise self._auth_failed(401)
            self._scheme = "basic"
            return
        if scheme != "bearer":
            raise self._auth_failed(401)
        params = dict(_CHALLENGE_RE.findall(challenge))
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self.label}: 401 with a Bearer challenge that names no realm")
        self._scheme = "bearer"
        self._challenge = params
        query = {"service": params["service"]} if params.get("service") else {}
        if scope:
            query["scope"] = scope
        elif params.get("scope"):
            query["scope"] = params["scope"]
        creds = self.settings.credentials
        auth = (creds.user, creds.password) if creds else None
        response = self._send("GET", realm, params=query, auth=auth)
        if response.status_code in (401, 403):
            raise self._auth_failed(response.status_code)
        if response.status_code != 200:
            raise RegistryError(f"{self.label}: token endpoint {realm}: HTTP {response.status_code}")
        try:
            data = response.json()
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError(f"{self.label}: token endpoint {realm} answered no token")
        self._tokens[scope] = token

    def request(self, method: str, path: str, *, scope: str = "", **kwargs: Any) -> httpx.Response:
        """One API call with the credentials the registry asks for (at most one retry)."""
        headers = dict(kwargs.pop("headers", None) or {})
        response = self._send(method, path, headers={**headers, **self._authorization(scope)}, **kwargs)
        if response.status_code == 401:
            had_auth = bool(self._authorization(scope))
            if had_auth and self._scheme == "basic":
                raise self._auth_failed(401)
            self._learn(response.headers.get("www-authenticate", ""), scope)
            response = self._send(method, path, headers={**headers, **self._authorization(scope)}, **kwargs)
            if response.status_code == 401:
                raise self._auth_failed(401)
        if response.status_code == 403:
            raise RegistryAuthError(
                f"{self.label}: permission denied (403) {self._who()}: {method} {path}: {error_detail(response)}"
            )
        return response

    def _fail(self, response: httpx.Response, what: str) -> RegistryError:
        return RegistryError(f"{self.label}: {what}: HTTP {response.status_code} {error_detail(response)}")

    # ------------------------------------------------------------ API
    def check(self) -> None:
        response = self.request("GET", "/v2/")
        if response.status_code != 200:
            raise self._fail(response, "GET /v2/")

    def list_tags(self, repository: str) -> list[str]:
        tags: list[str] = []
        url: str | None = f"/v2/{repository}/tags/list"
        params: dict[str, Any] | None = {"n": 1000}
        scope = f"repository:{repository}:pull"
        while url:
            response = self.request("GET", url, scope=scope, params=params)
            if response.status_code == 404:
                return []  # the repository does not exist yet
            if response.status_code != 200:
                raise self._fail(response, f"listing tags of {repository}")
            tags += response.json().get("tags") or []
            url, params = response.links.get("next", {}).get("url"), None
        return tags

    def _manifest_response(self, method: str, repository: str, reference: str) -> httpx.Response:
        """GET or HEAD a manifest by tag or digest; NotFound or a registry error otherwise."""
        response = self.request(
            method, f"/v2/{repository}/manifests/{reference}", scope=f"repository:{repository}:pull",
            headers={"Accept": ACCEPT},
        )
        if response.status_code == 404:
            raise NotFound(f"{self.label}: {repository}{'@' if DIGEST_RE.match(reference) else ':'}{reference} not found")
        if response.status_code != 200:
            raise self._fail(response, f"{method} manifest {repository}:{reference}")
        return response

    def manifest(self, repository: str, reference: str) -> tuple[str, str, bytes]:
        """(digest, media type, exact bytes) of a manifest by tag or digest."""
        response = self._manifest_response("GET", repository, reference)
        body = response.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if DIGEST_RE.match(reference) and digest != reference:
            raise RegistryError(f"{self.label}: {repository}@{reference}: the registry sent a manifest with digest {digest}")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        try:
            media_type = json.loads(body).get("mediaType") or media_type
        except (ValueError, AttributeError):
            pass
        return digest, media_type, body

    def resolve_digest(self, repository: str, reference: str) -> str:
        response = self._manifest_response("HEAD", repository, reference)
        digest = response.headers.get("docker-content-digest", "")
        if DIGEST_RE.match(digest):
            return digest
        return self.manifest(repository, reference)[0]

    def _created(self, repository: str, manifest: dict[str, Any]) -> Any:
        config = manifest.get("config") or {}
        if not DIGEST_RE.match(str(config.get("digest", ""))):
            return None
        response = self.request(
            "GET", f"/v2/{repository}/blobs/{config['digest']}", scope=f"repository:{repository}:pull"
        )
        if response.status_code != 200:
            return None
        try:
            return parse_time(response.json().get("created"))
        except (ValueError, AttributeError):
            return None

    def describe(self, repository: str, digest: str, tags: tuple[str, ...] = (), *,
                 created: bool = True) -> ImageVersion:
        """An ImageVersion with media type, index children and (unless created=False)
        the creation time from the image config."""
        _, media_type, body = self.manifest(repository, digest)
        data = json.loads(body)
        children: tuple[str, ...] = ()
        when = None
        if media_type in INDEX_TYPES:
            entries = [m for m in data.get("manifests") or [] if isinstance(m, dict)]
            children = tuple(str(m.get("digest")) for m in entries if DIGEST_RE.match(str(m.get("digest", ""))))
            platforms = [m for m in entries if (m.get("platform") or {}).get("os") not in (None, "unknown")]
            for entry in platforms[:1] if created else []:
                _, _, child = self.manifest(repository, entry["digest"])
                when = self._created(repository, json.loads(child))
        elif created:
            when = self._created(repository, data)
        return ImageVersion(digest=digest, tags=tags, created=when, media_type=media_type, children=children)

    def image_ids(self, repository: str, digest: str) -> set[str]:
        """What a local engine may call the image of manifest `digest`: its config digest
        (Docker's image ID), the manifest digest itself (containerd image store), and for
        an index those of every platform manifest."""
        _, media_type, body = self.manifest(repository, digest)
        data = json.loads(body)
        ids = {digest}
        if media_type in INDEX_TYPES:
            for entry in data.get("manifests") or []:
                child = str((entry or {}).get("digest", "")) if isinstance(entry, dict) else ""
                if DIGEST_RE.match(child):
                    ids |= self.image_ids(repository, child)
            return ids
        config = str((data.get("config") or {}).get("digest", ""))
        if DIGEST_RE.match(config):
            ids.add(config)
        return ids

    def list_versions(self, repository: str) -> list[ImageVersion]:
        by_digest: dict[str, list[str]] = {}
        for tag in sorted(self.list_tags(repository)):
            by_digest.setdefault(self.resolve_digest(repository, tag), []).append(tag)
        return [self.describe(repository, digest, tuple(tags)) for digest, tags in by_digest.items()]

    def copy_tag(self, repository: str, digest: str, tag: str) -> str:
        _, media_type, body = self.manifest(repository, digest)
        response = self.request(
            "PUT", f"/v2/{repository}/manifests/{tag}", scope=f"repository:{repository}:pull,push",
            headers={"Content-Type": media_type}, content=body,
        )
        if response.status_code not in (200, 201):
            raise self._fail(response, f"tagging {repository}@{digest} as {tag}")
        answered = response.headers.get("docker-content-digest") or digest
        if answered != digest:
            raise RegistryError(f"{self.label}: {repository}:{tag} got digest {answered}, expected {digest}")
        return digest

    def delete(self, repository: str, version: ImageVersion) -> None:
        response = self.request(
            "DELETE", f"/v2/{repository}/manifests/{version.digest}", scope=f"repository:{repository}:delete",
        )
        if response.status_code in (200, 202, 404):  # 404: already gone
            return
        if response.status_code == 405:
            raise RegistryError(
                f"{self.label}: deletes are disabled (405 on DELETE {repository}@{version.digest})",
                hint="enable storage.delete.enabled in the registry's configuration",
            )
        raise self._fail(response, f"deleting {repository}@{version.digest}")
