"""Reading stack env files and writing the `.env` Compose reads.

Reading uses python-dotenv's parser (the format people already write), but a
line it cannot parse is an error naming the file and line, never skipped.

Writing quotes every value so that Compose hands it to the container exactly
as given. Checked against real Compose v2 (tests/integration/test_env_roundtrip.py):
inside double quotes Compose unescapes ``\\\\`` and ``\\"`` and interpolates ``$``,
where ``$$`` stands for one ``$``. Single quotes cannot carry a value ending in
a backslash or holding ``\\'``, so double quotes it is.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from dotenv.parser import parse_stream

from odoo_ai.errors import ConfigError

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Characters Compose's .env format cannot carry through to a container.
_UNCARRIABLE = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte"}


def parse_env_lines(text: str, *, source: str) -> tuple[dict[str, str], dict[str, int]]:
    """Parse dotenv text into an ordered dict and the line of each key (the last one
    wins, as for its value); any unparsable line is a ConfigError naming source:line."""
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            snippet = binding.original.string.strip().splitlines()[0][:60] if binding.original.string.strip() else ""
            raise ConfigError(f"{source}:{line}: cannot parse line {snippet!r}")
        if binding.key is None:  # blank line or comment
            continue
        if not KEY_RE.match(binding.key):
            raise ConfigError(f"{source}:{line}: invalid variable name {binding.key!r}")
        if binding.value is None:
            raise ConfigError(f"{source}:{line}: {binding.key} has no value (write {binding.key}= for empty)")
        values[binding.key] = binding.value
        # python-dotenv counts from the binding's first line, which may be a blank or comment line
        # before the key: point at the key itself.
        lines[binding.key] = line + _leading_lines(binding.original.string)
    return values, lines


def _leading_lines(chunk: str) -> int:
    """Blank and comment lines python-dotenv keeps at the start of a binding."""
    count = 0
    for part in chunk.splitlines():
        if part.strip() and not part.lstrip().startswith("#"):
            break
        count += 1
    return count


def parse_env_text(text: str, *, source: str) -> dict[str, str]:
    """Parse dotenv text into an ordered dict; any unparsable line is a ConfigError."""
    return parse_env_lines(text, source=source)[0]


def read_env_file_lines(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The env file's values and the line of each key."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read env file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start})") from None
    return parse_env_lines(text, source=str(path))


def read_env_file(path: Path) -> dict[str, str]:
    return read_env_file_lines(path)[0]


def check_carriable(key: str, value: str) -> None:
    for char, name in _UNCARRIABLE.items():
        if char in value:
            raise ConfigError(f"{key}: value contains {name}, which a Compose .env file cannot carry")


def quote_value(value: str) -> str:
    """Quote one value for Compose's .env parser (round-trips exactly)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$") + '"'


def format_env(values: Mapping[str, str], *, header: str = "") -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for key, value in values.items():
        if not KEY_RE.match(key):
            raise ConfigError(f"invalid variable name {key!r}")
        check_carriable(key, value)
        lines.append(f"{key}={quote_value(value)}")
    return "\n".join(lines) + "\n"


def format_raw_env(values: Mapping[str, str]) -> str:
    """`KEY=value` lines for a Compose `env_file` with `format: raw` (Compose >= 2.30):
    the value is taken verbatim to the end of the line, so nothing is escaped."""
    lines = []
    for key, value in values.items():
        if not KEY_RE.match(key):
            raise ConfigError(f"invalid variable name {key!r}")
        check_carriable(key, value)
        lines.append(f"{key}={value}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_private_file(path: Path, content: str) -> None:
    """Write `content` to `path` readable by the owner only, atomically.

    The temp file is created 0600 (mkstemp, under umask 077) in the target
    directory, fsynced and renamed over the target: readers see the old file or
    the new one, never a half-written or world-readable one.
    """
    write_atomic(path, content, mode=0o600)


def write_atomic(path: Path, content: str, *, mode: int) -> None:
    """Write `content` to `path` atomically (temp file 0600 in the same directory, fsync,
    rename), with `mode` set before the rename (e.g. 0644 for a file that holds no secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o077)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    finally:
        os.umask(old_umask)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            if mode != 0o600:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_rendered_env(path: Path) -> dict[str, str]:
    """Read back a file written by format_env (undoes the `$$` escaping)."""
    return {k: v.replace("$$", "$") for k, v in read_env_file(path).items()}
