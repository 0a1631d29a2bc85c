"""Pure planning for the Docker host's housekeeping (odoo-ai housekeeping): the argv of the
builder-cache prune and of the log rotation and snapshot removal (one-off script-runner
containers: the files belong to the containers' users), and which snapshots go."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from odoo_ai import releases
from odoo_ai.config.stack import LOG_MOUNT, StackConfig
from odoo_ai.plan.compose import compose
from odoo_ai.runners.base import Command

SNAPSHOT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SNAPSHOT_SUFFIXES = (".dump", ".filestore")
# Rotate LOG when it is MAX bytes or more: LOG -> LOG.1 (plain: Odoo may still write the
# last lines there until its WatchedFileHandler notices and reopens LOG), the former LOG.1
# compressed to LOG.2.gz, LOG.N.gz -> LOG.N+1.gz, at most KEEP rotated files. Runs as root
# in a one-off container, where the logs directory is /volumes/logs.
ROTATE_SH = r"""set -eu
f=$1; keep=$2; max=$3
if [ ! -f "$f" ]; then echo "absent"; exit 0; fi
size=$(stat -c %s "$f")
if [ "$size" -lt "$max" ]; then echo "kept $size"; exit 0; fi
for old in "$f".*.gz; do  # the oldest, and any beyond a keep count that was lowered
    n=${old#"$f".}; n=${n%.gz}
    case "$n" in ''|*[!0-9]*) continue ;; esac
    if [ "$n" -ge "$keep" ]; then rm -f "$old"; fi
done
i=$keep
while [ "$i" -gt 2 ]; do
    p=$((i - 1))
    if [ -f "$f.$p.gz" ]; then mv -f "$f.$p.gz" "$f.$i.gz"; fi
    i=$p
done
if [ -f "$f.1" ]; then
    if [ "$keep" -ge 2 ]; then gzip -c "$f.1" > "$f.2.gz.tmp" && mv -f "$f.2.gz.tmp" "$f.2.gz"; fi
    rm -f "$f.1"
fi
mv -f "$f" "$f.1"
echo "rotated $size"
"""


def builder_prune(docker: str, older_than_hours: float) -> Command:
    """Every build cache record not used in the last `older_than_hours` (BuildKit's `until`
    is the last use: what recent builds use stays, cache mounts included)."""
    return Command([docker, "builder", "prune", "--all", "--force", "--filter", f"until={older_than_hours:g}h"],
                   timeout=1800)


def reclaimed(output: str) -> str | None:
    """`Total reclaimed space: 1.2GB` (or BuildKit's `Total: 1.2GB`) -> "1.2GB"."""
    match = re.search(r"^Total(?: reclaimed space)?:\s*(\S+)", output, re.M)
    return match.group(1) if match else None


def odoo_log(stack: StackConfig) -> tuple[Path, str]:
    """(Odoo's log file on the host, the same file in a container that mounts the logs)."""
    relative = PurePosixPath(stack.logfile).relative_to(LOG_MOUNT)
    return stack.log_dir / relative, f"{LOG_MOUNT}/{relative}"


def rotate_log(stack: StackConfig, *, keep: int, max_bytes: int) -> Command:
    _, inside = odoo_log(stack)
    return compose(stack, "run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", "script-runner",
                   "-c", ROTATE_SH, "sh", inside, str(keep), str(max_bytes), timeout=600)


def snapshot_ids(names: Iterable[str]) -> list[str]:
    """The snapshot ids of the names in a snapshots/ folder (`<id>.dump`, `<id>.filestore`)."""
    ids = set()
    for name in names:
        for suffix in SNAPSHOT_SUFFIXES:
            if name.endswith(suffix) and SNAPSHOT_ID_RE.match(name[:-len(suffix)]) and ".." not in name:
                ids.add(name[:-len(suffix)])
    return sorted(ids)


def stale_snapshots(on_disk: Iterable[str], history: list[dict[str, Any]], keep: int) -> list[str]:
    """The snapshots on disk that no rollback can use: all but those of the last `keep`
    successful releases (the deploy's own rule, applied to what is really on disk, so that
    leftovers of failed or interrupted deploys go too)."""
    taken = [r.get("snapshot") for r in releases.successful(history) if r.get("snapshot")]
    kept = set(taken[-keep:]) if keep > 0 else set()
    return [sid for sid in sorted(set(on_disk)) if sid not in kept]
