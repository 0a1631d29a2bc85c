"""Find a secret (the Enterprise SSH key) in saved images: every layer, config, history.

Pure: works on files and bytes that `docker save` / `docker history` produced (see
images.scan_images for the side-effecting part). The needles are the key's bytes,
each line of its PEM body (a fragment copied or re-wrapped into a file still
matches), a window of the decoded key bytes, and the key's host path.
"""

from __future__ import annotations

import base64
import binascii
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CHUNK = 1 << 20
MIN_NEEDLE = 16  # shorter fragments would match innocent bytes
MIN_PATH = 8


@dataclass(frozen=True)
class Needle:
    label: str  # says what matched, never the secret itself
    data: bytes


@dataclass(frozen=True)
class Finding:
    images: tuple[str, ...]  # image refs the place belongs to
    where: str  # "layer 3/9 sha256:…", "config sha256:…", "history"
    member: str | None  # the file inside the layer, if any
    needle: str  # Needle.label

    def describe(self) -> str:
        inside = f" file {self.member}" if self.member else ""
        return f"{', '.join(self.images) or '?'}: {self.where}{inside}: {self.needle}"


def _pem_blocks(text: str) -> Iterator[tuple[str, list[str]]]:
    kind, body = None, []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("-----BEGIN ") and line.endswith("-----"):
            kind, body = line[len("-----BEGIN "):-5], []
        elif line.startswith("-----END ") and kind is not None:
            yield kind, body
            kind = None
        elif kind is not None and line and ":" not in line:  # skip RFC 1421 headers
            body.append(line)


def key_needles(key: bytes, path: str | Path | None = None) -> list[Needle]:
    """What to look for: the key file, each PEM body line, decoded bytes, the path."""
    needles: list[Needle] = []
    whole = key.strip()
    if len(whole) >= MIN_NEEDLE:
        needles.append(Needle("the key file's content", whole))
    for kind, body in _pem_blocks(key.decode("ascii", "replace")):
        # The first line of an OpenSSH key encodes only the format header and key type:
        # it is the same for every unencrypted key of that type, so it proves nothing.
        start = 1 if kind == "OPENSSH PRIVATE KEY" else 0
        for number, line in enumerate(body[start:], start=start + 1):
            if len(line) >= MIN_NEEDLE:
                needles.append(Needle(f"line {number} of the key's {kind} body", line.encode()))
        try:
            decoded = base64.b64decode("".join(body), validate=False)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) >= 64:
            middle = len(decoded) // 2
            needles.append(Needle("the key's decoded bytes", decoded[middle:middle + 32]))
    if path is not None:
        for variant in {str(path), str(Path(path).resolve())}:
            if len(variant) >= MIN_PATH:
                needles.append(Needle(f"the key's host path {variant}", variant.encode()))
    # identical data under two labels: keep the first
    seen: set[bytes] = set()
    unique = []
    for needle in needles:
        if needle.data not in seen:
            seen.add(needle.data)
            unique.append(needle)
    return unique


def scan_bytes(data: bytes, needles: Iterable[Needle]) -> list[str]:
    """Labels of the needles found in `data`."""
    return [n.label for n in needles if n.data in data]


def scan_stream(stream: IO[bytes], needles: list[Needle], chunk: int = CHUNK) -> list[str]:
    """Labels of the needles found in a stream, read in chunks (a match may span two)."""
    if not needles:
        return []
    overlap = max(len(n.data) for n in needles) - 1
    found: list[str] = []
    pending = list(needles)
    tail = b""
    while pending:
        block = stream.read(chunk)
        if not block:
            break
        window = tail + block
        for needle in list(pending):
            if needle.data in window:
                found.append(needle.label)
                pending.remove(needle)
        tail = window[-overlap:] if overlap > 0 else b""
    return found


def scan_layer(stream: IO[bytes], needles: list[Needle]) -> list[tuple[str | None, str]]:
    """(file, needle label) pairs found in one layer tar: names, link targets, PAX
    headers and file contents. A stream that is not a tar is scanned as raw bytes."""
    hits: list[tuple[str | None, str]] = []
    try:
        archive = tarfile.open(fileobj=stream, mode="r|*")  # noqa: SIM115 - closed below
    except tarfile.TarError:
        return hits
    with archive:
        for member in archive:
            meta = "\n".join([member.name, member.linkname, *map(str, member.pax_headers.values())])
            for label in scan_bytes(meta.encode("utf-8", "surrogateescape"), needles):
                hits.append((member.name, label))
            if member.isfile():
                handle = archive.extractfile(member)
                if handle is not None:
                    for label in scan_stream(handle, needles):
                        hits.append((member.name, label))
    return hits


def _is_tar(stream: IO[bytes]) -> bool:
    head = stream.read(512)
    return head[:2] == b"\x1f\x8b" or (len(head) == 512 and head[257:262] == b"ustar")


def scan_saved(archive_path: Path, needles: list[Needle], stats: dict[str, int] | None = None) -> list[Finding]:
    """Scan a `docker save` archive (legacy or OCI layout): every layer, config and JSON.
    `stats`, if given, receives counts: layers, other files, bytes."""
    findings: list[Finding] = []
    counts = stats if stats is not None else {}
    for key in ("layers", "files", "bytes"):
        counts.setdefault(key, 0)
    with tarfile.open(archive_path, mode="r:*") as outer:
        layers: dict[str, tuple[tuple[str, ...], str]] = {}  # member -> (images, description)
        configs: dict[str, tuple[str, ...]] = {}
        try:
            manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        except (KeyError, ValueError, TypeError):
            manifest = []
        for entry in manifest:
            tags = tuple(entry.get("RepoTags") or ())
            config_name = entry.get("Config", "")
            configs[config_name] = tuple(sorted({*configs.get(config_name, ()), *tags}))
            diff_ids: list[str] = []
            try:
                config = json.load(outer.extractfile(config_name))  # type: ignore[arg-type]
                diff_ids = list(config.get("rootfs", {}).get("diff_ids") or [])
            except (KeyError, ValueError, TypeError):
                pass
            names = list(entry.get("Layers") or [])
            for index, name in enumerate(names, start=1):
                diff = diff_ids[index - 1] if index - 1 < len(diff_ids) else name
                seen_in, where = layers.get(name, ((), f"layer {index}/{len(names)} {diff}"))
                layers[name] = (tuple(sorted({*seen_in, *tags})), where)
        for member in outer:
            if not member.isfile():
                continue
            handle = outer.extractfile(member)
            if handle is None:
                continue
            counts["bytes"] += member.size
            counts["layers" if member.name in layers else "files"] += 1
            if member.name in layers:
                images, where = layers[member.name]
                if _is_tar(handle):
                    handle.seek(0)
                    for inner, label in scan_layer(handle, needles):
                        findings.append(Finding(images, where, inner, label))
                    continue
                handle.seek(0)
            else:
                images = configs.get(member.name, ())
                where = "config " + member.name if member.name in configs else member.name
            for label in scan_stream(handle, needles):
                findings.append(Finding(images, where, None, label))
    return findings
