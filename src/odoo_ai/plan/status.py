"""Pure planning of the reads `odoo-ai status` makes on the Docker host (local or over
ssh): each one fixed `sh -c` script, its values as positional arguments, one round trip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from odoo_ai.runners.base import Command

SEPARATOR = "--- odoo-ai ---"

# The containers found (`docker inspect`, running or not) and the images they run
# (`docker image inspect`: repo digests), as two JSON documents.
INSPECT_SH = (
    'd=$1; sep=$2; shift 2; "$d" inspect "$@" || exit 3; echo "$sep"; '
    '"$d" image inspect $("$d" inspect --format "{{.Image}}" "$@" | sort -u) || true'
)

# Disk use in KiB: the parts in one `du` (a file hardlinked into a snapshot is counted once,
# with the part named first), then the whole state root. Missing paths are left out.
DISK_SH = (
    'root=$1; shift; n=$#; for p in "$@"; do if [ -e "$p" ]; then set -- "$@" "$p"; fi; done; shift "$n"; '
    f'rc=0; if [ $# -gt 0 ]; then du -sk -- "$@" || rc=1; fi; echo "{SEPARATOR}"; '
    'if [ -e "$root" ]; then du -sk -- "$root" || rc=1; fi; exit $rc'
)

# /web/health and /web/login?db= through the published port, as a user's browser would
# (on the Docker host: its loopback), one JSON line per path with the latency in ms.
PROBE_PY = r"""
import json, sys, time, urllib.error, urllib.request
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
for path in sys.argv[2:]:
    start, status, error = time.monotonic(), None, None
    try:
        with opener.open(sys.argv[1] + path, timeout=5) as response:
            status = response.status
            response.read(65536)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except Exception as exc:
        error = "%s: %s" % (type(exc).__name__, exc)
    print(json.dumps({"path": path, "status": status, "ms": round((time.monotonic() - start) * 1000, 1),
                      "error": error}))
"""
PROBE_SH = (
    'if command -v python3 >/dev/null 2>&1; then exec python3 -c "$1" "$2" "$3" "$4"; fi; '
    'if command -v curl >/dev/null 2>&1; then for p in "$3" "$4"; do '
    'r=$(curl -s -o /dev/null -w "%{http_code} %{time_total}" --max-time 5 "$2$p"); c=${r% *}; t=${r#* }; '
    'if [ "$c" = 000 ]; then printf \'{"path":"%s","status":null,"ms":null,"error":"no answer"}\\n\' "$p"; '
    'else printf \'{"path":"%s","status":%s,"ms":%s,"error":null}\\n\' "$p" "$c" "$(awk "BEGIN{print $t*1000}")"; '
    'fi; done; exit 0; fi; exit 127'
)


def container_ids(docker: str, project: str) -> Command:
    """Every container of the project, running or not (full ids)."""
    return Command([docker, "ps", "--all", "--quiet", "--no-trunc", "--filter",
                    f"label=com.docker.compose.project={project}"], timeout=60, purpose="status_ids", reads=True)


def inspect_containers(docker: str, ids: list[str]) -> Command:
    return Command(["sh", "-c", INSPECT_SH, "sh", docker, SEPARATOR, *ids], timeout=60,
                   purpose="status_containers", reads=True)


def disk_usage(state_root: Path, parts: list[Path]) -> Command:
    return Command(["sh", "-c", DISK_SH, "sh", str(state_root), *map(str, parts)], timeout=120,
                   purpose="status_disk", reads=True)


def http_probe(base_url: str, paths: list[str]) -> Command:
    return Command(["sh", "-c", PROBE_SH, "sh", PROBE_PY, base_url, *paths], timeout=30,
                   purpose="status_probe", reads=True)


# ---------------------------------------------------------------- parsing the answers
def parse_containers(stdout: str) -> list[dict[str, Any]]:
    """One row per container: name, service, state, health, image (as configured), image id,
    its repo digests, one-off/update flags, started, restarts."""
    text, _, images_text = stdout.partition(SEPARATOR)
    if not text.strip():
        return []
    inspected = json.loads(text)
    images: dict[str, list[str]] = {}
    if images_text.strip():
        try:
            images = {i.get("Id"): list(i.get("RepoDigests") or []) for i in json.loads(images_text)}
        except ValueError:
            images = {}
    rows = []
    for c in inspected:
        labels = (c.get("Config") or {}).get("Labels") or {}
        state = c.get("State") or {}
        image_id = c.get("Image")
        rows.append({
            "name": (c.get("Name") or "").lstrip("/"),
            "id": (c.get("Id") or "")[:12],
            "service": labels.get("com.docker.compose.service"),
            "oneoff": labels.get("com.docker.compose.oneoff") == "True",
            "update": labels.get("org.odoo-ai.role") == "update",
            "state": state.get("Status"),
            "health": (state.get("Health") or {}).get("Status"),
            "started": state.get("StartedAt"),
            "restarts": c.get("RestartCount", 0),
            "image": (c.get("Config") or {}).get("Image"),
            "image_id": image_id,
            "repo_digests": images.get(image_id, []),
        })
    return sorted(rows, key=lambda r: (r["service"] or "", r["name"]))


def parse_disk(stdout: str) -> tuple[dict[str, int], int | None]:
    """(KiB by path of the parts, KiB of the whole state root or None)."""
    parts_text, _, root_text = stdout.partition(SEPARATOR)

    def rows(text: str) -> dict[str, int]:
        found = {}
        for line in text.splitlines():
            size, _, path = line.partition("\t")
            if size.strip().isdigit() and path:
                found[path] = int(size)
        return found

    root = rows(root_text)
    return rows(parts_text), next(iter(root.values()), None)


def parse_probe(stdout: str) -> dict[str, dict[str, Any]]:
    found = {}
    for line in stdout.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("path"), str):
            found[row["path"]] = row
    return found
