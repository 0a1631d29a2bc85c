"""The secret scanner on synthetic `docker save` archives (legacy and OCI layout)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from odoo_ai import secretscan
from odoo_ai.images import SecretLeak, scan_images
from odoo_ai.runners.base import Command, Result

# The header every unencrypted OpenSSH ed25519 key starts with (not secret).
OPENSSH_HEADER = b"openssh-key-v1\0" + b"\0\0\0\x04none" * 2 + b"\0\0\0\0" + b"\0\0\0\x01" + b"\0\0\0\x33\0\0\0\x0bssh-ed25519"


def fake_openssh_key(seed: bytes = b"") -> bytes:
    body = OPENSSH_HEADER + hashlib.sha512(seed or os.urandom(16)).digest() * 3
    text = base64.b64encode(body).decode()
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return ("-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END OPENSSH PRIVATE KEY-----\n").encode()


KEY = fake_openssh_key(b"the enterprise deploy key")
KEY_PATH = "/home/ci/.ssh/odoo_enterprise_key"
BODY_LINES = KEY.decode().splitlines()[1:-1]


def tar_bytes(files: dict[str, bytes], *, gz: bool = False) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue()) if gz else raw.getvalue()


def saved_archive(path: Path, images: dict[str, list[dict[str, bytes]]], *, oci: bool = False,
                  gz: bool = False, history: str = "") -> Path:
    """A `docker save` archive: per image, a list of layers (name -> file content)."""
    members: dict[str, bytes] = {}
    manifest = []
    for ref, layers in images.items():
        names, diff_ids = [], []
        for files in layers:
            blob = tar_bytes(files, gz=gz)
            digest = hashlib.sha256(blob).hexdigest()
            name = f"blobs/sha256/{digest}" if oci else f"{digest[:12]}/layer.tar"
            members[name] = blob
            names.append(name)
            diff_ids.append(f"sha256:{digest}")
        config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids},
                             "history": [{"created_by": history}]}).encode()
        config_name = ("blobs/sha256/" if oci else "") + hashlib.sha256(config).hexdigest() + ("" if oci else ".json")
        members[config_name] = config
        manifest.append({"Config": config_name, "RepoTags": [ref], "Layers": names})
    members["manifest.json"] = json.dumps(manifest).encode()
    if oci:
        members["index.json"] = b'{"schemaVersion": 2, "manifests": []}'
    path.write_bytes(tar_bytes(members))
    return path


def needles() -> list[secretscan.Needle]:
    return secretscan.key_needles(KEY, KEY_PATH)


CLEAN_LAYERS = [{"etc/os-release": b"Debian 12\n", "usr/bin/tool": os.urandom(4096)},
                {"opt/odoo/enterprise/web_studio/__manifest__.py": b"{'name': 'Studio'}\n"}]


def test_needles_skip_the_generic_openssh_header_line_and_never_label_with_the_secret() -> None:
    found = needles()
    datas = [n.data for n in found]
    assert BODY_LINES[0].encode() not in datas  # same for every ed25519 key: proves nothing
    assert all(line.encode() in datas for line in BODY_LINES[1:] if len(line) >= secretscan.MIN_NEEDLE)
    assert KEY.strip() in datas and KEY_PATH.encode() in datas
    for needle in found:
        assert not any(line in needle.label for line in BODY_LINES)


def test_clean_images_have_no_findings(tmp_path: Path) -> None:
    archive = saved_archive(tmp_path / "s.tar", {"r/odoo-web:dev-1": CLEAN_LAYERS, "r/odoo-script-runner:dev-1": CLEAN_LAYERS})
    stats: dict[str, int] = {}
    assert secretscan.scan_saved(archive, needles(), stats) == []
    assert stats["layers"] == 2  # shared layers are saved (and scanned) once


def test_another_keys_generic_first_line_is_not_a_finding(tmp_path: Path) -> None:
    other = fake_openssh_key(b"some library's test key")
    layers = [*CLEAN_LAYERS, {"usr/lib/python3/dist-packages/paramiko/tests/key": other}]
    archive = saved_archive(tmp_path / "s.tar", {"r/odoo-web:dev-1": layers})
    assert other.splitlines()[1] == KEY.splitlines()[1]
    assert secretscan.scan_saved(archive, needles()) == []


@pytest.mark.parametrize("oci", [False, True], ids=["legacy", "oci-layout"])
@pytest.mark.parametrize("gz", [False, True], ids=["tar", "gzip"])
def test_the_whole_key_in_a_layer_names_image_layer_and_file(tmp_path: Path, oci: bool, gz: bool) -> None:
    leaky = [*CLEAN_LAYERS, {"root/.ssh/id_ed25519": KEY}]
    archive = saved_archive(tmp_path / "s.tar", {"r/odoo-web:dev-1": leaky}, oci=oci, gz=gz)
    findings = secretscan.scan_saved(archive, needles())
    assert findings, "the key was not found"
    first = findings[0]
    assert first.images == ("r/odoo-web:dev-1",)
    assert first.where.startswith("layer 3/3 sha256:")
    assert first.member == "root/.ssh/id_ed25519"
    assert "key" in first.describe() and BODY_LINES[1] not in first.describe()


def test_one_re_wrapped_pem_line_is_found(tmp_path: Path) -> None:
    fragment = b'{"deploy_key": "' + BODY_LINES[2].encode() + b'"}'
    archive = saved_archive(tmp_path / "s.tar", {"r/odoo-web:dev-1": [*CLEAN_LAYERS, {"srv/cfg.json": fragment}]})
    findings = secretscan.scan_saved(archive, needles())
    assert [f.needle for f in findings] == ["line 3 of the key's OPENSSH PRIVATE KEY body"]


def test_the_key_path_in_a_file_name_and_in_the_history_are_found(tmp_path: Path) -> None:
    layers = [*CLEAN_LAYERS, {f"tmp{KEY_PATH}": b"x"}]
    archive = saved_archive(tmp_path / "s.tar", {"r/odoo-web:dev-1": layers},
                            history=f"RUN cp {KEY_PATH} /root/.ssh/ # buildkit")
    findings = secretscan.scan_saved(archive, needles())
    wheres = {(f.where.split()[0], f.needle) for f in findings}
    assert ("layer", f"the key's host path {KEY_PATH}") in wheres
    assert ("config", f"the key's host path {KEY_PATH}") in wheres


def test_a_match_across_read_chunks_is_found() -> None:
    data = os.urandom(5000) + KEY + os.urandom(5000)
    for chunk in (7, 64, 1000, 4096):
        assert "the key's decoded bytes" not in secretscan.scan_stream(io.BytesIO(os.urandom(9000)), needles(), chunk)
        assert "the key file's content" in secretscan.scan_stream(io.BytesIO(data), needles(), chunk)


class SaveRunner:
    """Stands in for docker: `image save` writes the prepared archive, `history` prints."""

    dry_run = False

    def __init__(self, archive: Path, history: str = ""):
        self.archive, self.history, self.commands = archive, history, []

    def run(self, command: Command, *, capture: bool = False) -> Result:
        self.commands.append(command.argv)
        if command.argv[1:3] == ["image", "save"]:
            Path(command.argv[command.argv.index("--output") + 1]).write_bytes(self.archive.read_bytes())
            return Result(0)
        return Result(0, self.history)

    def note(self, text: str) -> None:
        pass


def test_scan_images_fails_with_one_line_naming_the_place(tmp_path: Path) -> None:
    key_file = tmp_path / "enterprise_key"
    key_file.write_bytes(KEY)
    leaky = [*CLEAN_LAYERS, {"opt/odoo/enterprise/.ssh/key": KEY}]
    archive = saved_archive(tmp_path / "s.tar", {"r/odoo-web:dev-1": leaky})
    with pytest.raises(SecretLeak) as caught:
        scan_images(SaveRunner(archive), ["r/odoo-web:dev-1"], key_file)
    message = caught.value.message
    assert "\n" not in message and "r/odoo-web:dev-1" in message and "layer 3/3" in message
    assert "opt/odoo/enterprise/.ssh/key" in message and BODY_LINES[1] not in message
    assert caught.value.exit_code == 1


def test_scan_images_passes_clean_images_and_checks_history(tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    key_file.write_bytes(KEY)
    archive = saved_archive(tmp_path / "s.tar", {"r/odoo-web:dev-1": CLEAN_LAYERS})
    runner = SaveRunner(archive, history="RUN --mount=type=secret,id=enterprise_key git clone")
    report = scan_images(runner, ["r/odoo-web:dev-1"], key_file)
    assert report["scanned"] and report["findings"] == 0 and report["layers"] == 2
    assert ["docker", "image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", "r/odoo-web:dev-1"] in [
        ["docker", *argv[1:]] for argv in runner.commands]
    leaky_history = SaveRunner(archive, history=f"COPY {key_file} /root/key")
    with pytest.raises(SecretLeak, match="history"):
        scan_images(leaky_history, ["r/odoo-web:dev-1"], key_file)
