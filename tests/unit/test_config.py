from __future__ import annotations

from pathlib import Path

import pytest

from odoo_ai.config.stack import load_stack
from odoo_ai.errors import ConfigError


def write_env(repo: Path, env: str, text: str) -> Path:
    path = repo / "docker" / "config" / f"{env}.env"
    path.write_text(text)
    return path


def test_defaults_without_env_file(repo: Path, home: Path) -> None:
    stack = load_stack("dev", repo_root=repo, home=home)
    assert stack.project == "opw-dev"
    assert stack.state_root == home / "odoo-ai" / "opw-dev"
    assert stack.data_dir == stack.state_root / "filestore"
    assert stack.db_dir == stack.state_root / "postgres"
    assert stack.log_dir == stack.state_root / "logs"
    assert stack.logfile == "/volumes/logs/odoo.log"
    assert stack.env_file is None
    assert [p.name for p in stack.compose_files] == ["docker-compose.yml", "dev.yaml"]
    assert stack.published_port == 8069
    assert load_stack("testing", repo_root=repo, home=home).published_port == 8070


def test_state_root_expands_and_explicit_values_win(repo: Path, home: Path) -> None:
    write_env(repo, "testing", "ODOO_STATE_ROOT=/opt/odoo-ai/data/opw-testing\nODOO_LOG_DIR=/var/log/opw\n")
    stack = load_stack("testing", repo_root=repo, home=home)
    assert stack.state_root == Path("/opt/odoo-ai/data/opw-testing")
    assert stack.data_dir == Path("/opt/odoo-ai/data/opw-testing/filestore")
    assert stack.db_dir == Path("/opt/odoo-ai/data/opw-testing/postgres")
    assert stack.log_dir == Path("/var/log/opw")
    assert stack.project == "opw-testing"


def test_project_name_drives_default_root(repo: Path, home: Path) -> None:
    write_env(repo, "dev", "ODOO_PROJECT_NAME=acme-dev\n")
    assert load_stack("dev", repo_root=repo, home=home).state_root == home / "odoo-ai" / "acme-dev"


@pytest.mark.parametrize(
    ("env", "text", "needle"),
    [
        ("prod", None, "unknown env 'prod'"),
        ("../x", None, "invalid env name"),
        ("", None, "invalid env name"),
        ("dev;rm -rf /", None, "invalid env name"),
        ("dev", "ODOO_STATE_ROOT=relative/path\n", "ODOO_STATE_ROOT='relative/path' must be an absolute path"),
        ("dev", "ODOO_DATA_DIR=data\n", "ODOO_DATA_DIR='data' must be an absolute path"),
        ("dev", "ODOO_STATE_ROOT=/opt/../etc\n", "must not contain '..'"),
        ("dev", "this is not dotenv\n", "dev.env:1: cannot parse line"),
        ("dev", "A=1\nB='unterminated\n", "dev.env:2: cannot parse line"),
        ("dev", "ODOO_LOGFILE=/tmp/odoo.log\n", "must name a file under /volumes/logs/"),
        ("dev", "ODOO_PUBLISHED_PORT=http\n", "ODOO_PUBLISHED_PORT='http' is not a whole number"),
        ("dev", "ODOO_PUBLISHED_PORT=70000\n", "out of range"),
        ("dev", "ODOO_PROJECT_NAME=Bad Name\n", "not a valid Compose project name"),
        ("dev", "ODOO_IMAGE=Registry/UPPER\n", "not a valid image name"),
        ("dev", "ODOO_UPDATE=base;rm\n", "update modules"),
        ("dev", "ODOO_WORKERS=0\n", "ODOO_WORKERS=0 is out of range"),
        ("dev", "ODOO_IMAGE_TAG=dev-abc;rm -rf /\n", "invalid image tag"),
        ("dev", "ODOO_SECRETS=GOOD,bad name\n", "invalid variable name"),
        ("dev", "ODOO_DB_NAME=x y\n", "ODOO_DB_NAME"),
        ("dev", "ODOO_DB_USER=odoo;drop\n", "ODOO_DB_USER='odoo;drop'"),
        ("dev", "ODOO_BIND_ADDRESS=1.2.3.4.5\n", "ODOO_BIND_ADDRESS='1.2.3.4.5' is not an IP address"),
    ],
)
def test_bad_input_is_one_clear_error(repo: Path, home: Path, env: str, text: str | None, needle: str) -> None:
    if text is not None:
        write_env(repo, env, text)
    with pytest.raises(ConfigError) as info:
        load_stack(env, repo_root=repo, home=home)
    message = info.value.message
    assert needle in message
    assert "\n" not in message
    assert not (home / "odoo-ai").exists()


def test_non_utf8_env_file(repo: Path, home: Path) -> None:
    (repo / "docker" / "config" / "dev.env").write_bytes(b"A=\xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_stack("dev", repo_root=repo, home=home)


def test_public_view_masks_secrets(repo: Path, home: Path) -> None:
    write_env(repo, "dev", "ODOO_DB_PASSWORD=hunter2\nSHOPIFY_API_TOKEN=tok\nPLAIN=1\n")
    view = load_stack("dev", repo_root=repo, home=home).public_view()
    text = repr(view)
    assert "hunter2" not in text and "tok'" not in text
    assert view["settings"]["PLAIN"] == "1"
    assert view["settings"]["SHOPIFY_API_TOKEN"] == "********"


def test_update_modules_from_overlay_and_env_file(repo: Path, home: Path) -> None:
    overlay = repo / "environments" / "dev.yaml"
    overlay.write_text(overlay.read_text().replace("update: all", "update: sale,stock"))
    assert load_stack("dev", repo_root=repo, home=home).update_modules == "sale,stock"
    write_env(repo, "dev", "ODOO_UPDATE=crm\n")
    assert load_stack("dev", repo_root=repo, home=home).update_modules == "crm"


@pytest.mark.parametrize("env", ["dev", "testing"])
def test_the_documented_examples_load_as_they_are(repo: Path, home: Path, env: str) -> None:
    example = Path(__file__).resolve().parents[2] / "docker" / "config" / f"{env}.env.example"
    write_env(repo, env, example.read_text())
    stack = load_stack(env, repo_root=repo, home=home)
    assert stack.project == f"opw-{env}" and stack.env_file is not None
