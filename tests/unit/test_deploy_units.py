from __future__ import annotations

from pathlib import Path

import pytest

from odoo_ai.config.stack import load_stack
from odoo_ai.deploy import DeploySettings
from odoo_ai.errors import ConfigError
from odoo_ai.runners.base import Command
from odoo_ai.runners.ssh import SshTarget, remote_line


def stack_with(repo: Path, home: Path, text: str):
    (repo / "docker" / "config" / "dev.env").write_text(text)
    return load_stack("dev", repo_root=repo, home=home)


def test_deploy_settings_defaults_and_overrides(repo: Path, home: Path) -> None:
    settings = DeploySettings.from_stack(stack_with(repo, home, "ODOO_DEPLOY_GATE_TIMEOUT=45\n"), lock_timeout=5)
    assert settings.gate_timeout == 45 and settings.lock_timeout == 5 and settings.web_during_update == "keep"
    assert settings.keep_snapshots == 3


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ODOO_DEPLOY_GATE_TIMEOUT=soon\n", "ODOO_DEPLOY_GATE_TIMEOUT='soon' is not a number"),
        ("ODOO_DEPLOY_GATE_TIMEOUT=0\n", "out of range"),
        ("ODOO_DEPLOY_WEB_DURING_UPDATE=maybe\n", "'keep' or 'stop'"),
        ("ODOO_DEPLOY_KEEP_SNAPSHOTS=0\n", "ODOO_DEPLOY_KEEP_SNAPSHOTS=0 is out of range"),
    ],
)
def test_bad_deploy_settings(repo: Path, home: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        DeploySettings.from_stack(stack_with(repo, home, text))


def test_ssh_target_parses_and_builds_a_checked_argv(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("x")
    target = SshTarget.parse("ssh://deploy@docker.shiny:2222", known_hosts=known)
    argv = target.ssh_argv("docker ps")
    assert argv[:2] == ["ssh", "-o"] and "StrictHostKeyChecking=yes" in argv
    assert f"UserKnownHostsFile={known}" in argv and argv[argv.index("-p") + 1] == "2222"
    assert argv[-3:] == ["--", "deploy@docker.shiny", "docker ps"]


@pytest.mark.parametrize("url", ["ssh://a;b", "ssh://-oProxyCommand=x", "http://h", "ssh://h/path", "ssh://u:pw@h",
                                 "ssh://h:70000", "ssh://", "ssh://Bad User@h"])
def test_ssh_target_refuses_hostile_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="--host"):
        SshTarget.parse(url)


def test_remote_line_quotes_every_argument() -> None:
    line = remote_line(Command(["sh", "-c", 'rm -rf "$1"', "sh", "/x y; id"], env={"A": "b c"}))
    assert line == "env 'A=b c' sh -c 'rm -rf \"$1\"' sh '/x y; id'"
