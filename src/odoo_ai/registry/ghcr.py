"""GHCR: versions through the GitHub REST API, manifests through the registry.

GHCR answers 405 to registry deletes. A package version is one digest with all its
tags; deleting it goes through
`DELETE /{orgs|users}/{owner}/packages/container/{package}/versions/{id}`.
An image pushed with provenance/SBOM attestations or for several platforms is an
index whose children are untagged versions: `list_versions` reads each tagged
index from the registry to name its children, so a prune can keep or delete them
together with their index.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from odoo_ai.registry import (
    ImageVersion,
    RegistryAuthError,
    RegistryError,
    RegistrySettings,
    parse_time,
)
from odoo_ai.registry.oci import INDEX_TYPES, OciRegistry, connect_reason, error_detail

API_VERSION = "2022-11-28"
PER_PAGE = 100


class GhcrRegistry:
    gc_note: str | None = None  # GitHub frees the storage itself

    def __init__(self, settings: RegistrySettings, registry: OciRegistry, *, transport: Any = None):
        self.settings = settings
        self.registry = registry
        self.label = f"registry {settings.host}"
        self._owner_type = settings.owner_type
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                   "User-Agent": "odoo-ai"}
        if settings.github_token:
            headers["Authorization"] = f"Bearer {settings.github_token}"
        self._api = httpx.Client(base_url=settings.github_api_url, timeout=settings.timeout,
                                 transport=transport, headers=headers)

    def close(self) -> None:
        self._api.close()
        self.registry.close()

    # ------------------------------------------------------------ GitHub REST
    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        api = f"GitHub API {self.settings.github_api_url}"
        source = self.settings.github_token_source or "GITHUB_TOKEN"
        if not self.settings.github_token:
            raise RegistryAuthError(f"{api}: no token", hint="set ODOO_REGISTRY_API_TOKEN (a classic personal access "
                                    "token) or GITHUB_TOKEN in the environment")
        try:
            response = self._api.request(method, url, **kwargs)
        except httpx.ConnectError as exc:
            raise RegistryError(f"{api} unreachable: {connect_reason(exc)}") from None
        except httpx.TimeoutException:
            raise RegistryError(f"{api}: no answer within {self.settings.timeout:.0f}s ({method} {url})") from None
        except httpx.HTTPError as exc:
            raise RegistryError(f"{api}: {method} {url}: {connect_reason(exc)}") from None
        if response.status_code == 401:
            raise RegistryAuthError(f"{api}: authentication failed (401): check {source}")
        if response.status_code == 403:
            raise RegistryAuthError(
                f"{api}: permission denied (403) for {method} {url} with {source}: {error_detail(response)}",
                hint="a personal access token (classic) needs read:packages to list and read:packages + "
                     "delete:packages to prune, and its user the Admin role on the package; GITHUB_TOKEN "
                     "needs the repository listed with the Admin role under the package's Manage Actions "
                     "access (docs/images.md)",
            )
        return response

    def owner_path(self) -> str:
        """`orgs/<owner>` or `users/<owner>`: ODOO_GITHUB_OWNER_TYPE, else asked once."""
        owner = quote(self.settings.owner or "", safe="")
        if self._owner_type is None:
            response = self._call("GET", f"/users/{owner}")
            if response.status_code != 200:
                raise RegistryError(f"GitHub API: owner {self.settings.owner!r}: HTTP {response.status_code} {error_detail(response)}")
            self._owner_type = "orgs" if response.json().get("type") == "Organization" else "users"
        return f"{self._owner_type}/{owner}"

    def package_name(self, repository: str) -> str:
        owner = self.settings.owner or ""
        name = repository[len(owner) + 1:] if repository.startswith(owner + "/") else repository
        return quote(name, safe="")

    def versions_url(self, repository: str) -> str:
        return f"/{self.owner_path()}/packages/container/{self.package_name(repository)}/versions"

    def _api_versions(self, repository: str) -> list[dict[str, Any]]:
        url: str | None = self.versions_url(repository)
        params: dict[str, Any] | None = {"per_page": PER_PAGE, "state": "active"}
        found: list[dict[str, Any]] = []
        while url:
            response = self._call("GET", url, params=params)
            if response.status_code == 404:
                return []  # no such package (yet)
            if response.status_code != 200:
                raise RegistryError(f"GitHub API: listing versions of {repository}: HTTP {response.status_code} {error_detail(response)}")
            page = response.json()
            if not isinstance(page, list):
                raise RegistryError(f"GitHub API: listing versions of {repository}: not a list")
            found += page
            url, params = response.links.get("next", {}).get("url"), None
        return found

    def package(self, repository: str) -> dict[str, Any] | None:
        """The package of `repository` (its `visibility`: public, private or internal;
        `repository`: the linked one), or None when there is no such package yet."""
        response = self._call("GET", f"/{self.owner_path()}/packages/container/{self.package_name(repository)}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryError(f"GitHub API: package {repository}: HTTP {response.status_code} {error_detail(response)}")
        data = response.json()
        if not isinstance(data, dict):
            raise RegistryError(f"GitHub API: package {repository}: not an object")
        return data

    def repository_visibility(self, full_name: str) -> str | None:
        """`public`, `private` or `internal` of the GitHub repository OWNER/NAME (None: unknown)."""
        owner, _, name = full_name.partition("/")
        response = self._call("GET", f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}")
        if response.status_code != 200:
            return None
        data = response.json()
        if not isinstance(data, dict):
            return None
        visibility = data.get("visibility")
        if isinstance(visibility, str):
            return visibility
        return {True: "private", False: "public"}.get(data.get("private"))  # type: ignore[arg-type]

    # ------------------------------------------------------------ Backend protocol
    def check(self) -> None:
        self.owner_path()

    def list_tags(self, repository: str) -> list[str]:
        return self.registry.list_tags(repository)

    def resolve_digest(self, repository: str, reference: str) -> str:
        return self.registry.resolve_digest(repository, reference)

    def copy_tag(self, repository: str, digest: str, tag: str) -> str:
        return self.registry.copy_tag(repository, digest, tag)

    def image_ids(self, repository: str, digest: str) -> set[str]:
        return self.registry.image_ids(repository, digest)

    def list_versions(self, repository: str) -> list[ImageVersion]:
        versions = []
        for item in self._api_versions(repository):
            digest = str(item.get("name") or "")
            tags = tuple(((item.get("metadata") or {}).get("container") or {}).get("tags") or ())
            media_type, children = None, ()
            if tags:  # only a tagged version can be the index of untagged children
                described = self.registry.describe(repository, digest, tags, created=False)
                media_type = described.media_type
                if media_type in INDEX_TYPES:
                    children = described.children
            versions.append(ImageVersion(
                digest=digest, tags=tags, created=parse_time(item.get("created_at")),
                media_type=media_type, children=children, version_id=item.get("id"),
            ))
        return versions

    def delete(self, repository: str, version: ImageVersion) -> None:
        version_id = version.version_id
        if version_id is None:
            matches = [v for v in self._api_versions(repository) if v.get("name") == version.digest]
            if not matches:
                return  # already gone
            version_id = matches[0]["id"]
        response = self._call("DELETE", f"{self.versions_url(repository)}/{int(version_id)}")
        if response.status_code in (200, 202, 204, 404):
            return
        raise RegistryError(
            f"GitHub API: deleting {repository}@{version.digest} (version {version_id}): "
            f"HTTP {response.status_code} {error_detail(response)}"
        )
