"""The backup packer and unpacker that `odoo-ai db` runs INSIDE a one-off script-runner
container of the stack (`python3 - COMMAND ARGS...`, this file on stdin, as root), where the
filestore (/volumes/data) and the state root (/volumes/state) are mounted: the backup
never travels through the CLI's memory, nor over ssh for a remote host.

Standard library only (the image's Python 3.11, no Odoo import). Every output file is
written to a `.NAME.partial` beside it and renamed when complete, then given to the owner
of its folder (the files of the Docker host's user, not root's). Each command prints one
JSON document on stdout; on a refusal (a corrupt or unsafe backup) it prints
{"error": ...} and exits 65 (EX_DATAERR), on a failure of its own it exits 1.

Commands:
  version                                  the image's Odoo: {version, version_info, major_version}
  pack FORMAT DUMP FILESTORE OUTDIR BASE INFO
                                           FORMAT zip: OUTDIR/BASE.zip as Odoo 18's database manager
                                           writes it (dump.sql = DUMP, filestore/, manifest.json);
                                           FORMAT dump: OUTDIR/BASE.dump (DUMP, pg_dump -Fc, moved),
                                           BASE.filestore.tar, BASE.manifest.json; then BASE.sha256.
                                           INFO: {"db_name", "pg_version", "modules"}. DUMP is removed.
  verify SOURCE                            checksums (BASE.sha256 or SOURCE.sha256 when present), every
                                           member's CRC (zip) or the archive's structure (tar, -Fc
                                           header), member names; the manifest; the image's Odoo
  stage SOURCE DUMP_OUT FILESTORE_OUT      dump.sql (zip) or the -Fc dump to DUMP_OUT (a hard link
                                           when it can), the filestore into FILESTORE_OUT (created,
                                           emptied first, given to the owner of its parent)
  remove PATH...                           rm -r of paths under /volumes/state or /volumes/data
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
import zlib

CHUNK = 1 << 20
EX_DATAERR = 65
ODOO_RELEASE = "/odoo/odoo/release.py"
ODOO_BIN = "/odoo/odoo-bin"
REMOVABLE = ("/volumes/state/", "/volumes/data/")
PGDMP = b"PGDMP"


class Refused(Exception):
    """The backup is corrupt, incomplete or unsafe: nothing was changed."""


# ---------------------------------------------------------------- Odoo's release
def odoo_release(release_file: str = ODOO_RELEASE, odoo_bin: str = ODOO_BIN) -> dict:
    """The image's Odoo as odoo.release says it (read without importing odoo), else as
    `odoo-bin --version` prints it (`Odoo Server 18.0...`)."""
    if os.path.isfile(release_file):
        namespace: dict = {}
        with open(release_file, encoding="utf-8") as fh:
            exec(compile(fh.read(), release_file, "exec"), namespace)  # noqa: S102 - Odoo's own constants file
        return {"version": namespace["version"], "version_info": list(namespace["version_info"]),
                "major_version": namespace["major_version"]}
    try:
        out = subprocess.run([sys.executable, odoo_bin, "--version"], capture_output=True, text=True,  # noqa: S603
                             timeout=120, check=False).stdout
    except OSError:
        out = ""
    match = re.search(r"Odoo Server (\S+)", out)
    version = match.group(1) if match else ""
    return {"version": version, "version_info": version_info_of(version), "major_version": major_of(version)}


def major_of(version: str) -> str:
    match = re.match(r"((?:saas~)?\d+\.\d+)", version or "")
    return match.group(1) if match else ""


def version_info_of(version: str) -> list:
    match = re.match(r"(?:saas~)?(\d+)\.(\d+)", version or "")
    if not match:
        return []
    major = int(match.group(1)) if not version.startswith("saas~") else "saas~" + match.group(1)
    return [major, int(match.group(2)), 0, "final", 0, ""]


# ---------------------------------------------------------------- writing
class HashingWriter:
    """A write-only file that hashes what goes through it. No tell/seek: ZipFile and
    TarFile then write a stream (a zip with data descriptors), in one pass."""

    def __init__(self, fh):
        self.fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.fh.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.fh.flush()


def partial(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.partial")


def owner_of(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_uid, st.st_gid


def give(path: str, owner: tuple[int, int]) -> None:
    try:
        os.chown(path, *owner)
    except OSError:
        pass


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def filestore_files(root: str) -> list[tuple[str, str]]:
    """(path, name relative to root with '/') of every regular file, sorted; symlinks skipped."""
    found = []
    if not os.path.isdir(root):
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            found.append((path, os.path.relpath(path, root).replace(os.sep, "/")))
    return found


def manifest_of(info: dict, release: dict) -> dict:
    """Odoo 18's manifest.json (odoo.service.db.dump_db_manifest), key for key."""
    return {
        "odoo_dump": "1",
        "db_name": info["db_name"],
        "version": release["version"],
        "version_info": release["version_info"],
        "major_version": release["major_version"],
        "pg_version": info["pg_version"],
        "modules": info.get("modules") or {},
    }


def _publish(tmp: str, final: str, owner: tuple[int, int]) -> None:
    give(tmp, owner)
    os.chmod(tmp, 0o640)
    os.replace(tmp, final)


def pack(fmt: str, dump: str, filestore: str, outdir: str, base: str, info: dict) -> dict:
    release = odoo_release()
    manifest = manifest_of(info, release)
    owner = owner_of(outdir)
    files = filestore_files(filestore)
    written: list[dict] = []
    temps: list[str] = []
    try:
        if fmt == "zip":
            final = os.path.join(outdir, f"{base}.zip")
            tmp = partial(final)
            temps.append(tmp)
            with open(tmp, "wb") as raw:
                out = HashingWriter(raw)
                with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                    with open(dump, "rb") as src, zf.open("dump.sql", "w", force_zip64=True) as dst:
                        shutil.copyfileobj(src, dst, CHUNK)
                    zf.writestr("manifest.json", json.dumps(manifest, indent=4))
                    for path, name in files:
                        zf.write(path, f"filestore/{name}")
            _publish(tmp, final, owner)
            written.append({"name": os.path.basename(final), "size": out.size, "sha256": out.sha256.hexdigest()})
        elif fmt == "dump":
            with open(dump, "rb") as fh:
                if fh.read(5) != PGDMP:
                    raise RuntimeError(f"{dump} is not a pg_dump custom-format archive")
            final = os.path.join(outdir, f"{base}.dump")
            tmp = partial(final)
            temps.append(tmp)
            try:
                os.replace(dump, tmp)  # same mount (/volumes/state): a rename
            except OSError:
                shutil.copyfile(dump, tmp)
            digest = sha256_of(tmp)
            size = os.path.getsize(tmp)
            _publish(tmp, final, owner)
            written.append({"name": os.path.basename(final), "size": size, "sha256": digest})
            final = os.path.join(outdir, f"{base}.filestore.tar")
            tmp = partial(final)
            temps.append(tmp)
            with open(tmp, "wb") as raw:
                out = HashingWriter(raw)
                with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    for path, name in files:
                        member = tar.gettarinfo(path, arcname=f"filestore/{name}")
                        member.uid = member.gid = 0
                        member.uname = member.gname = ""
                        with open(path, "rb") as src:
                            tar.addfile(member, src)
            _publish(tmp, final, owner)
            written.append({"name": os.path.basename(final), "size": out.size, "sha256": out.sha256.hexdigest()})
            final = os.path.join(outdir, f"{base}.manifest.json")
            tmp = partial(final)
            temps.append(tmp)
            data = json.dumps(manifest, indent=4).encode()
            with open(tmp, "wb") as fh:
                fh.write(data)
            _publish(tmp, final, owner)
            written.append({"name": os.path.basename(final), "size": len(data),
                            "sha256": hashlib.sha256(data).hexdigest()})
        else:
            raise RuntimeError(f"unknown format {fmt!r}")
        final = os.path.join(outdir, f"{base}.sha256")
        tmp = partial(final)
        temps.append(tmp)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(f"{f['sha256']}  {f['name']}\n" for f in written)
        _publish(tmp, final, owner)
        written.append({"name": os.path.basename(final), "size": os.path.getsize(final), "sha256": sha256_of(final)})
    except BaseException:
        for f in written:
            _unlink(os.path.join(outdir, f["name"]))
        raise
    finally:
        for tmp in temps:
            _unlink(tmp)
        _unlink(dump)
    return {"files": written, "filestore_files": len(files), "manifest": {**manifest, "modules": len(manifest["modules"])}}


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------- reading
def safe_member(name: str) -> str | None:
    """The path under filestore/ of a member name, None for other members; Refused for a
    name that would leave the filestore (absolute, `..`, backslashes, NUL)."""
    if not name.startswith("filestore/"):
        return None
    rel = name[len("filestore/"):]
    if rel in ("", "/") or rel.endswith("/"):
        return ""
    parts = rel.split("/")
    if name.startswith("/") or "\\" in name or "\0" in name or any(p in ("", ".", "..") for p in parts):
        raise Refused(f"unsafe member name in the backup: {name!r}")
    return rel


def sidecars(source: str) -> dict[str, str]:
    """The files of a backup set beside SOURCE: `.sha256`, and for a `.dump` its
    `.filestore.tar` and `.manifest.json` (names as `odoo-ai db backup` writes them)."""
    base = source
    for suffix in (".zip", ".dump"):
        if source.endswith(suffix):
            base = source[: -len(suffix)]
    found = {}
    for key, path in (("sha256", base + ".sha256"), ("sha256", source + ".sha256"),
                      ("filestore", base + ".filestore.tar"), ("manifest", base + ".manifest.json")):
        if key not in found and os.path.isfile(path):
            found[key] = path
    return found


def check_sums(sumfile: str) -> list[str]:
    """Verify every line `HEX  NAME` of a sha256sum file (names beside it); the names."""
    folder = os.path.dirname(sumfile)
    names = []
    with open(sumfile, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            match = re.match(r"^([0-9a-f]{64}) [ *](.+)$", line.rstrip("\n"))
            if not match or "/" in match.group(2):
                raise Refused(f"{os.path.basename(sumfile)}: not a sha256sum line: {line.strip()[:80]!r}")
            path = os.path.join(folder, match.group(2))
            if not os.path.isfile(path):
                raise Refused(f"{match.group(2)} (listed in {os.path.basename(sumfile)}) is missing")
            if sha256_of(path) != match.group(1):
                raise Refused(f"{match.group(2)}: checksum mismatch (the file is corrupt or incomplete)")
            names.append(match.group(2))
    return names


def kind_of(source: str) -> str:
    with open(source, "rb") as fh:
        head = fh.read(5)
    if head == PGDMP:
        return "dump"
    if zipfile.is_zipfile(source):
        return "zip"
    if head.startswith(b"PK"):
        raise Refused("a damaged zip archive (its central directory cannot be read)")
    raise Refused("neither a zip backup (dump.sql, filestore/, manifest.json) nor a pg_dump custom-format dump")


def _manifest(data: bytes, what: str) -> dict:
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise Refused(f"{what}: not JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise Refused(f"{what}: not a JSON object")
    return manifest


def verify(source: str) -> dict:
    if not os.path.isfile(source):
        raise Refused(f"no such backup file: {source}")
    extra = sidecars(source)
    checked = check_sums(extra["sha256"]) if "sha256" in extra else []
    kind = kind_of(source)
    manifest = None
    filestore = 0
    if kind == "zip":
        try:
            with zipfile.ZipFile(source) as zf:
                names = zf.namelist()
                if "dump.sql" not in names:
                    raise Refused("the zip has no dump.sql: not an Odoo backup")
                for name in names:
                    if safe_member(name):
                        filestore += 1
                bad = zf.testzip()
                if bad is not None:
                    raise Refused(f"member {bad!r} is corrupt (CRC mismatch)")
                if "manifest.json" in names:
                    manifest = _manifest(zf.read("manifest.json"), "manifest.json")
        except Refused:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
                NotImplementedError) as exc:
            raise Refused(f"a damaged zip archive: {exc}") from None
    else:
        if "filestore" in extra:
            filestore = _check_tar(extra["filestore"])
        if "manifest" in extra:
            with open(extra["manifest"], "rb") as fh:
                manifest = _manifest(fh.read(), os.path.basename(extra["manifest"]))
    return {"format": kind, "manifest": manifest, "filestore_files": filestore,
            "checksums": checked, "files": [os.path.basename(source), *(os.path.basename(p) for p in extra.values())],
            "image": odoo_release()}


def _check_tar(path: str) -> int:
    count = 0
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                rel = safe_member(member.name)
                if rel is None:
                    continue
                if not (member.isfile() or member.isdir()):
                    raise Refused(f"unsafe member in {os.path.basename(path)}: {member.name!r} is not a file")
                if member.isfile():
                    count += 1
                    fh = tar.extractfile(member)
                    while fh is not None and fh.read(CHUNK):
                        pass
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise Refused(f"{os.path.basename(path)} is damaged: {exc}") from None
    return count


def _reset_dir(path: str) -> None:
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    os.makedirs(path)


def _copy_member(src, dest: str) -> None:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "wb") as out:
        shutil.copyfileobj(src, out, CHUNK)


def _chown_tree(root: str, owner: tuple[int, int]) -> None:
    give(root, owner)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                give(path, owner)


def stage(source: str, dump_out: str, filestore_out: str) -> dict:
    kind = kind_of(source)
    parent = os.path.dirname(filestore_out.rstrip("/"))
    # Odoo's user owns the data dir (the entrypoint sees to it) and what Odoo made in it
    owner = owner_of(parent if os.path.isdir(parent) else os.path.dirname(parent))
    if not os.path.isdir(parent):
        os.makedirs(parent)
        give(parent, owner)
    _reset_dir(filestore_out)
    count = 0
    try:
        if kind == "zip":
            with zipfile.ZipFile(source) as zf:
                with zf.open("dump.sql") as src, open(dump_out, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                for info in zf.infolist():
                    rel = safe_member(info.filename)
                    if not rel or info.is_dir():
                        continue
                    with zf.open(info) as src:
                        _copy_member(src, os.path.join(filestore_out, rel))
                    count += 1
        else:
            _unlink(dump_out)
            try:
                os.link(source, dump_out)
            except OSError:
                shutil.copyfile(source, dump_out)
            tar_path = sidecars(source).get("filestore")
            if tar_path:
                with tarfile.open(tar_path, mode="r:") as tar:
                    for member in tar:
                        rel = safe_member(member.name)
                        if not rel or not member.isfile():
                            continue
                        fh = tar.extractfile(member)
                        if fh is not None:
                            _copy_member(fh, os.path.join(filestore_out, rel))
                            count += 1
        _chown_tree(filestore_out, owner)
    except BaseException:
        _unlink(dump_out)
        shutil.rmtree(filestore_out, ignore_errors=True)
        raise
    return {"format": kind, "filestore_files": count, "dump_bytes": os.path.getsize(dump_out)}


def remove(paths: list[str]) -> dict:
    removed = []
    for path in paths:
        norm = os.path.normpath(path)
        if not norm.startswith(REMOVABLE) or "/.." in path:
            raise RuntimeError(f"refusing to remove {path!r}: only paths under {', '.join(REMOVABLE)}")
        if os.path.isdir(norm) and not os.path.islink(norm):
            shutil.rmtree(norm)
        elif os.path.lexists(norm):
            os.unlink(norm)
        else:
            continue
        removed.append(norm)
    return {"removed": removed}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    try:
        if command == "version":
            result = odoo_release()
        elif command == "pack" and len(args) == 6:
            result = pack(*args[:5], info=json.loads(args[5]))
        elif command == "verify" and len(args) == 1:
            result = verify(args[0])
        elif command == "stage" and len(args) == 3:
            result = stage(*args)
        elif command == "remove":
            result = remove(args)
        else:
            print(f"dbtool: bad command line: {argv!r}", file=sys.stderr)
            return 2
    except Refused as exc:
        print(json.dumps({"error": str(exc)}))
        return EX_DATAERR
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
