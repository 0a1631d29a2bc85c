"""In-memory fakes of the HTTP APIs the registry backends speak, shaped like the
documented ones: the OCI distribution API (Basic or Bearer-token auth, Link
pagination, manifests by tag/digest, DELETE by digest) and GHCR's GitHub REST
package-versions API (per_page/page, Link rel="next", Bearer token, versions
with metadata.container.tags). Served through httpx.MockTransport or a real
HTTP server on 127.0.0.1; every request is recorded."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    headers: dict[str, str]


@dataclass
class Repo:
    tags: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


class FakeRegistry:
    """The registry side. auth: 'basic', 'bearer' or None."""

    def __init__(self, *, auth: str | None = "basic", user: str = "ci", password: str = "s3cret",
                 base_url: str = "http://registry.test", tags_page: int = 1000, deletes: bool = True):
        self.auth, self.user, self.password = auth, user, password
        self.base_url = base_url
        self.tags_page = tags_page
        self.deletes = deletes
        self.repos: dict[str, Repo] = {}
        self.requests: list[Recorded] = []
        self.tokens: dict[str, str] = {}  # token -> scope

    # ---- content
    def repo(self, name: str) -> Repo:
        return self.repos.setdefault(name, Repo())

    def add_image(self, name: str, tags: list[str], *, created: str = "2026-01-01T00:00:00Z",
                  salt: str = "", media_type: str = DOCKER_MANIFEST, config: bytes | None = None) -> str:
        """A manifest (and its config blob: `config`, else one made of `created` and `salt`;
        its digest is what Docker calls the image ID)."""
        repo = self.repo(name)
        config = config or json.dumps({"created": created, "salt": salt, "rootfs": {"diff_ids": []}}).encode()
        repo.blobs[digest_of(config)] = config
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": media_type,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": digest_of(config), "size": len(config)},
            "layers": [],
        }, indent=3).encode()
        digest = digest_of(manifest)
        repo.manifests[digest] = (media_type, manifest)
        for tag in tags:
            repo.tags[tag] = digest
        return digest

    def add_index(self, name: str, tags: list[str], children: list[str]) -> str:
        repo = self.repo(name)
        entries = []
        for i, child in enumerate(children):
            media_type, body = repo.manifests[child]
            platform = {"architecture": "amd64", "os": "linux"} if i == 0 else {"architecture": "unknown", "os": "unknown"}
            entries.append({"mediaType": media_type, "digest": child, "size": len(body), "platform": platform})
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
        digest = digest_of(index)
        repo.manifests[digest] = (OCI_INDEX, index)
        for tag in tags:
            repo.tags[tag] = digest
        return digest

    # ---- auth
    def _authorized(self, request: Recorded, scope_repo: str | None, action: str) -> Reply | None:
        header = request.authorization or ""
        if self.auth is None:
            return None
        if self.auth == "basic":
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            if header == expected:
                return None
            return _json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                         {"WWW-Authenticate": 'Basic realm="fake"'})
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        scope = self.tokens.get(token or "")
        if scope is not None and (scope_repo is None or scope.startswith(f"repository:{scope_repo}:")
                                  and action in scope.rsplit(":", 1)[1].split(",")):
            return None
        challenge = f'Bearer realm="{self.base_url}/token",service="fake"'
        if scope_repo:
            challenge += f',scope="repository:{scope_repo}:{action}"'
        return _json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "token required"}]},
                     {"WWW-Authenticate": challenge})

    def _token(self, request: Recorded) -> Reply:
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if request.authorization != expected:
            return _json(401, {"errors": [{"code": "DENIED", "message": "bad credentials"}]})
        scope = (request.query.get("scope") or [""])[0]
        token = f"tok{len(self.tokens)}"
        self.tokens[token] = scope
        return _json(200, {"token": token})

    # ---- dispatch
    def handle(self, request: Recorded, body: bytes) -> Reply:
        self.requests.append(request)
        path = request.path
        if path == "/token":
            return self._token(request)
        if path == "/v2/":
            return self._authorized(request, None, "pull") or _json(200, {})
        match = re.fullmatch(r"/v2/(.+)/(tags/list|manifests/[^/]+|blobs/[^/]+)", path)
        if not match:
            return _json(404, {"errors": [{"code": "NOT_FOUND"}]})
        name, what = match.group(1), match.group(2)
        action = {"GET": "pull", "HEAD": "pull", "PUT": "push", "DELETE": "delete"}[request.method]
        denied = self._authorized(request, name, action)
        if denied:
            return denied
        if name not in self.repos:
            return _json(404, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]})
        repo = self.repos[name]
        if what == "tags/list":
            tags = sorted(repo.tags)
            last = (request.query.get("last") or [""])[0]
            size = min(int((request.query.get("n") or ["1000"])[0]), self.tags_page)
            rest = [t for t in tags if t > last] if last else tags
            page, more = rest[:size], len(rest) > size
            headers = {"Link": f'</v2/{name}/tags/list?{urlencode({"n": size, "last": page[-1]})}>; rel="next"'} if more else {}
            return _json(200, {"name": name, "tags": page}, headers)
        kind, ref = what.split("/", 1)
        if kind == "blobs":
            data = repo.blobs.get(ref)
            return Reply(200, data) if data is not None else _json(404, {"errors": [{"code": "BLOB_UNKNOWN"}]})
        if request.method == "PUT":
            media_type = request.headers.get("content-type", "")
            digest = digest_of(body)
            repo.manifests[digest] = (media_type, body)
            repo.tags[ref] = digest
            return Reply(201, b"", {"Docker-Content-Digest": digest})
        digest = ref if ref.startswith("sha256:") else repo.tags.get(ref)
        if digest is None or digest not in repo.manifests:
            return _json(404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        if request.method == "DELETE":
            if not self.deletes:
                return _json(405, {"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]})
            del repo.manifests[digest]
            for tag in [t for t, d in repo.tags.items() if d == digest]:
                del repo.tags[tag]
            return Reply(202)
        media_type, data = repo.manifests[digest]
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest}
        return Reply(200, b"" if request.method == "HEAD" else data, headers)


class FakeGitHub(FakeRegistry):
    """GHCR: the GitHub REST API for package versions plus the registry side."""

    def __init__(self, *, token: str = "ghs_test", owner: str = "acme", owner_type: str = "Organization",
                 api_token: str | None = None, **kw):
        super().__init__(auth="bearer", user="x-access-token", password=token, **kw)
        self.token, self.owner, self.owner_type = token, owner, owner_type
        self.api_token = api_token or token  # what the REST API accepts (a PAT may differ from the registry's)
        self.visibility: dict[str, str] = {}  # package -> public | private | internal (default private)
        self.repositories: dict[str, str] = {}  # OWNER/REPO -> its visibility
        self.version_ids: dict[tuple[str, str], int] = {}
        self.created: dict[tuple[str, str], str] = {}
        self.next_id = 1000

    def _token(self, request: Recorded) -> Reply:
        # ghcr.io takes any user name with a token as the password
        header = request.authorization or ""
        try:
            _, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            password = ""
        if not header.startswith("Basic ") or password != self.token:
            return _json(401, {"errors": [{"code": "DENIED", "message": "bad credentials"}]})
        scope = (request.query.get("scope") or [""])[0]
        token = f"tok{len(self.tokens)}"
        self.tokens[token] = scope
        return _json(200, {"token": token})

    def version_id(self, package: str, digest: str) -> int:
        key = (package, digest)
        if key not in self.version_ids:
            self.next_id += 1
            self.version_ids[key] = self.next_id
        return self.version_ids[key]

    def versions(self, package: str) -> list[dict[str, Any]]:
        repo = self.repos.get(f"{self.owner}/{package}")
        if repo is None:
            return []
        items = []
        for digest in sorted(repo.manifests, key=lambda d: self.version_id(package, d), reverse=True):
            tags = sorted(t for t, d in repo.tags.items() if d == digest)
            vid = self.version_id(package, digest)
            items.append({
                "id": vid, "name": digest,
                "url": f"{self.base_url}/orgs/{self.owner}/packages/container/{package}/versions/{vid}",
                "package_html_url": f"https://github.com/orgs/{self.owner}/packages/container/package/{package}",
                "created_at": self.created.get((package, digest), "2026-01-01T00:00:00Z"),
                "updated_at": self.created.get((package, digest), "2026-01-01T00:00:00Z"),
                "metadata": {"package_type": "container", "container": {"tags": tags}},
            })
        return items

    def handle(self, request: Recorded, body: bytes) -> Reply:
        path = request.path
        if path.startswith("/v2/") or path == "/token":
            return super().handle(request, body)
        self.requests.append(request)
        if request.authorization != f"Bearer {self.api_token}":
            return _json(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        if request.headers.get("accept") != "application/vnd.github+json":
            return _json(415, {"message": "wrong Accept"})
        if path == f"/users/{self.owner}":
            return _json(200, {"login": self.owner, "type": self.owner_type})
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)", path)
        if match and request.method == "GET":
            name = f"{match.group(1)}/{match.group(2)}"
            if name not in self.repositories:
                return _json(404, {"message": "Not Found"})
            return _json(200, {"full_name": name, "visibility": self.repositories[name],
                               "private": self.repositories[name] != "public"})
        kind = "orgs" if self.owner_type == "Organization" else "users"
        match = re.fullmatch(rf"/{kind}/{self.owner}/packages/container/([^/]+)", path)
        if match and request.method == "GET":
            package = unquote(match.group(1))
            if f"{self.owner}/{package}" not in self.repos and package not in self.visibility:
                return _json(404, {"message": "Package not found."})
            return _json(200, {"name": package, "package_type": "container",
                               "visibility": self.visibility.get(package, "private")})
        match = re.fullmatch(rf"/{kind}/{self.owner}/packages/container/([^/]+)/versions(?:/(\d+))?", path)
        if not match:
            return _json(404, {"message": "Not Found"})
        package = unquote(match.group(1))
        if match.group(2) is None and request.method == "GET":
            items = self.versions(package)
            if not items:
                return _json(404, {"message": "Package not found."})
            per_page = min(int((request.query.get("per_page") or ["30"])[0]), 100)
            page = int((request.query.get("page") or ["1"])[0])
            chunk = items[(page - 1) * per_page: page * per_page]
            headers = {}
            if page * per_page < len(items):
                url = f"{self.base_url}{path}?{urlencode({'per_page': per_page, 'page': page + 1})}"
                headers["Link"] = f'<{url}>; rel="next"'
            return _json(200, chunk, headers)
        if match.group(2) and request.method == "DELETE":
            vid = int(match.group(2))
            repo = self.repos.get(f"{self.owner}/{package}")
            for (pkg, digest), known in list(self.version_ids.items()):
                if pkg == package and known == vid and repo and digest in repo.manifests:
                    del repo.manifests[digest]
                    for tag in [t for t, d in repo.tags.items() if d == digest]:
                        del repo.tags[tag]
                    return Reply(204)
            return _json(404, {"message": "Not Found"})
        return _json(405, {"message": "Method not allowed"})


def _recorded(method: str, url: str, headers: dict[str, str]) -> Recorded:
    parts = urlsplit(url)
    lowered = {k.lower(): v for k, v in headers.items()}
    return Recorded(method, unquote(parts.path) if "%2F" not in parts.path else parts.path,
                    parse_qs(parts.query), lowered.get("authorization"), lowered)


def transport(fake: FakeRegistry) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        reply = fake.handle(_recorded(request.method, str(request.url), dict(request.headers)), request.content)
        return httpx.Response(reply.status, content=reply.body, headers=reply.headers)

    return httpx.MockTransport(handler)


class Served:
    """The fake behind a real HTTP server on 127.0.0.1 (a thread)."""

    def __init__(self, fake: FakeRegistry):
        self.fake = fake
        handler = self._handler_class()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        fake.base_url = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _handler_class(self):
        fake = self.fake

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = fake.handle(_recorded(self.command, self.path, dict(self.headers.items())), body)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_HEAD = do_PUT = do_DELETE = do_POST = _do

        return Handler

    def __enter__(self) -> Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
