from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odoo_ai.config.envfile import format_env, parse_env_text, read_rendered_env
from odoo_ai.config.render import render_dotenv
from odoo_ai.config.stack import load_stack
from odoo_ai.errors import ConfigError

SECRETS = {"ODOO_DB_PASSWORD": "p@ss $word", "ODOO_MASTER_PASSWORD": "m'a\"s\\t$$er"}


def stack_for(repo: Path, home: Path, text: str = ""):
    (repo / "docker" / "config" / "dev.env").write_text(text)
    return load_stack("dev", repo_root=repo, home=home)


def test_render_writes_0600_atomically(repo: Path, home: Path) -> None:
    stack = stack_for(repo, home, "SHOPIFY_URL=https://x.example/?a=1&b=2\n")
    path = render_dotenv(stack, SECRETS, tag="dev-1a2b3c4")
    assert path == stack.state_root / ".env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = read_rendered_env(path)
    assert values["ODOO_DB_PASSWORD"] == SECRETS["ODOO_DB_PASSWORD"]
    assert values["ODOO_MASTER_PASSWORD"] == SECRETS["ODOO_MASTER_PASSWORD"]
    assert values["ODOO_WEB_IMAGE"] == "odoo-ai/odoo-web:dev-1a2b3c4"
    assert values["ODOO_SCRIPT_RUNNER_IMAGE"] == "odoo-ai/odoo-script-runner:dev-1a2b3c4"
    assert values["ODOO_DATA_DIR"] == str(stack.state_root / "filestore")
    assert values["COMPOSE_PROJECT_NAME"] == "opw-dev"
    assert values["SHOPIFY_URL"] == "https://x.example/?a=1&b=2"
    assert sorted(p.name for p in path.parent.iterdir()) == [".env", ".odoo-ai-stack", "odoo.env"]  # no temp file left


def test_render_replaces_and_keeps_mode_even_under_permissive_umask(repo: Path, home: Path) -> None:
    stack = stack_for(repo, home)
    old = os.umask(0)
    try:
        render_dotenv(stack, SECRETS, tag="dev-aaaaaaa")
        path = render_dotenv(stack, SECRETS, tag="dev-bbbbbbb")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_rendered_env(path)["ODOO_IMAGE_TAG"] == "dev-bbbbbbb"


def test_missing_secret_names_it_and_writes_nothing(repo: Path, home: Path) -> None:
    stack = stack_for(repo, home)
    with pytest.raises(ConfigError, match="missing secret ODOO_MASTER_PASSWORD"):
        render_dotenv(stack, {"ODOO_DB_PASSWORD": "x"}, tag="dev-1a2b3c4")
    assert not stack.state_root.exists()


def test_newline_in_secret_is_refused_and_writes_nothing(repo: Path, home: Path) -> None:
    stack = stack_for(repo, home)
    with pytest.raises(ConfigError, match="ODOO_DB_PASSWORD: value contains a newline"):
        render_dotenv(stack, {**SECRETS, "ODOO_DB_PASSWORD": "a\nb"}, tag="dev-1a2b3c4")
    assert not stack.state_root.exists()


def test_no_tag_is_an_error(repo: Path, home: Path) -> None:
    with pytest.raises(ConfigError, match="no image for dev: pass --tag"):
        render_dotenv(stack_for(repo, home), SECRETS, tag=None)


def test_generated_secrets_are_stable(repo: Path, home: Path) -> None:
    stack = stack_for(repo, home)
    render_dotenv(stack, {}, tag="dev-1a2b3c4", allow_generate=True)
    first = read_rendered_env(stack.dotenv_path)["ODOO_DB_PASSWORD"]
    render_dotenv(stack, {}, tag="dev-1a2b3c4", allow_generate=True)
    assert read_rendered_env(stack.dotenv_path)["ODOO_DB_PASSWORD"] == first
    assert len(first) >= 24
    assert stat.S_IMODE((stack.state_root / ".secrets.env").stat().st_mode) == 0o600


def test_cli_tag_beats_pinned_refs(repo: Path, home: Path) -> None:
    stack = stack_for(repo, home, "ODOO_WEB_IMAGE=reg/x-web@sha256:" + "a" * 64 + "\n")
    render_dotenv(stack, SECRETS, tag="dev-1111111")
    assert read_rendered_env(stack.dotenv_path)["ODOO_WEB_IMAGE"].endswith("@sha256:" + "a" * 64)
    render_dotenv(stack, SECRETS, tag="dev-2222222", tag_from_cli=True)
    assert read_rendered_env(stack.dotenv_path)["ODOO_WEB_IMAGE"] == "odoo-ai/odoo-web:dev-2222222"


carriable = st.text(st.characters(blacklist_characters="\n\r\x00", blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True), carriable, max_size=6))
def test_format_then_parse_roundtrips(values: dict[str, str]) -> None:
    parsed = parse_env_text(format_env(values), source="t")
    assert {k: v.replace("$$", "$") for k, v in parsed.items()} == values


@pytest.mark.parametrize(("uid", "gid", "expected"), [(0, 0, ("1000", "1000")), (1234, 99, ("1234", "99"))])
def test_odoo_never_runs_as_root_by_default(repo: Path, home: Path, uid: int, gid: int, expected) -> None:
    """A root host user (CI runners, sudo) gets the image's `odoo` user; anyone else keeps
    their own uid so the bind-mounted files stay theirs; an explicit setting wins."""
    from odoo_ai.config.render import dotenv_mapping

    values = dotenv_mapping(stack_for(repo, home), SECRETS, tag="dev-1", uid=uid, gid=gid)
    assert (values["ODOO_RUN_UID"], values["ODOO_RUN_GID"]) == expected
    explicit = dotenv_mapping(stack_for(repo, home, "ODOO_RUN_UID=4242\nODOO_RUN_GID=4243\n"), SECRETS,
                              tag="dev-1", uid=0, gid=0)
    assert (explicit["ODOO_RUN_UID"], explicit["ODOO_RUN_GID"]) == ("4242", "4243")


def test_module_lists_from_env_file_and_overlay(repo: Path, home: Path) -> None:
    from odoo_ai.config.stack import required_modules

    stack = stack_for(repo, home, "ODOO_INSTALL= sale , my_mod,sale\nODOO_UPDATE=my_mod\n")
    assert stack.install_modules == ["sale", "my_mod"]
    assert required_modules(stack) == ["base", "sale", "my_mod"]
    overlay = repo / "environments" / "dev.yaml"
    overlay.write_text(overlay.read_text().replace('install: ""', "install: [crm, website]"))
    stack = stack_for(repo, home, "")
    assert stack.install_modules == ["crm", "website"] and required_modules(stack) == ["base", "crm", "website"]
    with pytest.raises(ConfigError, match="'all' is not a module name"):
        stack_for(repo, home, "ODOO_INSTALL=all\n")
