"""Per-addon checksums, as the image builds them (python3, standard library only).

    addon_checksums.py scan OUT.json DIR...     the addons directly under each DIR
    addon_checksums.py merge OUT.json SUMS.json...   one map, the first file winning per
                                                  addon (Odoo's own search order)

An addon's checksum covers what Odoo loads from it: every file under its directory
(Python, XML, CSV, the manifest, static/, i18n/ …) by relative path and content, except
`__pycache__/`, `*.pyc`/`*.pyo`, `tests/`, hidden files and editor leftovers. Same tree →
same sum, whatever the file order or mtimes. Each source (Odoo, Enterprise, custom) is
scanned in its own build stage, so a change to one custom addon re-hashes only the custom
addons.
"""

import hashlib
import json
import os
import sys

SKIP_DIRS = {"__pycache__", "tests", "node_modules"}
SKIP_SUFFIXES = (".pyc", ".pyo", "~", ".swp", ".orig", ".rej")


def addon_checksum(path):
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or name.endswith(SKIP_SUFFIXES):
                continue
            full = os.path.join(root, name)
            if not os.path.isfile(full):
                continue
            file_digest = hashlib.sha256()
            with open(full, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    file_digest.update(chunk)
            digest.update(os.path.relpath(full, path).encode("utf-8", "surrogateescape") + b"\0")
            digest.update(file_digest.digest())
    return digest.hexdigest()


def scan(directories):
    sums = {}
    for directory in directories:
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if name not in sums and os.path.isfile(os.path.join(path, "__manifest__.py")):
                sums[name] = addon_checksum(path)
    return sums


def write(path, data):
    with open(path + ".tmp", "w") as handle:
        json.dump(data, handle, sort_keys=True, indent=0)
        handle.write("\n")
    os.replace(path + ".tmp", path)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("scan", "merge"):
        sys.stderr.write(__doc__)
        return 2
    if argv[1] == "scan":
        write(argv[2], scan(argv[3:]))
    else:
        merged = {}
        for path in argv[3:]:
            with open(path) as handle:
                for name, value in json.load(handle).items():
                    merged.setdefault(name, value)
        write(argv[2], merged)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
