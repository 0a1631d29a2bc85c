from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import pytest

from odoo_ai.config.settings import (
    BuildConfig,
    DeployConfig,
    PruneConfig,
    RegistryConfig,
    RemoteConfig,
)
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


# ---------------------------------------------------------------- typed settings
def test_every_setting_read_is_typed_with_its_default(repo: Path, home: Path) -> None:
    stack = load_stack("dev", repo_root=repo, home=home, environ={})
    assert (stack.db_user, stack.workers, stack.max_cron_threads, stack.without_demo) == ("odoo", 2, 1, "all")
    assert (stack.run_uid, stack.run_gid, stack.web_image, stack.script_runner_image) == (None, None, None, None)
    assert (stack.db_image, stack.proxy_image, stack.cache_image) == ("postgres:16", "nginx:1.27", "redis:7")
    assert stack.docker == "docker"
    assert stack.deploy == DeployConfig()
    assert (stack.deploy.gate_timeout, stack.deploy.keep_snapshots, stack.deploy.web_during_update) == (180, 3, "keep")
    assert stack.build == BuildConfig() and stack.build.odoo_ref == "18.0" and stack.build.wkhtmltopdf == "debian"
    assert stack.registry == RegistryConfig() and stack.registry.timeout == 30
    assert stack.remote.repo_dir == PurePosixPath("/opt/odoo-ai/repos/opw-dev") and not stack.remote.state_root_set
    assert stack.prune.pinned == ()


def test_typed_settings_from_the_env_file(repo: Path, home: Path) -> None:
    digest = "sha256:" + "a" * 64
    write_env(repo, "dev", "\n".join([
        "ODOO_DB_USER=acme", "ODOO_WORKERS=4", "ODOO_MAX_CRON_THREADS=0", "ODOO_WITHOUT_DEMO=sale,crm",
        "ODOO_RUN_UID=1001", "ODOO_RUN_GID=1002", "ODOO_SCRIPT_RUNNER_IMAGE=reg/x-script-runner:t",
        "ODOO_DEPLOY_GATE_TIMEOUT=45", "ODOO_DEPLOY_GATE_INTERVAL=0.5", "ODOO_DEPLOY_DRAIN_SECONDS=0",
        "ODOO_DEPLOY_WEB_DURING_UPDATE=stop", "ODOO_DEPLOY_UPDATE_RETRIES=0", "ODOO_DEPLOY_LOCK_TIMEOUT=5",
        "ODOO_DEPLOY_KEEP_SNAPSHOTS=7", "ODOO_BUILD_ODOO_SRC=vendor/odoo", "ODOO_BUILD_ODOO_REF=saas-18.1",
        "ODOO_BUILD_ENTERPRISE_GIT_URL=git@github.com:odoo/enterprise.git", "ODOO_BUILD_ENTERPRISE_SHA=0123abc",
        "ODOO_BUILD_CA_FILE=/etc/ssl/ca.pem", "ODOO_BUILD_WKHTMLTOPDF=none",
        "ODOO_REGISTRY_URL=https://registry.example.com/", "ODOO_REGISTRY_TIMEOUT=12.5", "ODOO_GITHUB_OWNER_TYPE=org",
        "ODOO_STATE_ROOT=/srv/opw-dev", "ODOO_REMOTE_REPO_DIR=/srv/repos/opw-dev",
        f"ODOO_PRUNE_PINNED=dev-1a2b3c4, {digest},dev-1a2b3c4", "",
    ]))
    stack = load_stack("dev", repo_root=repo, home=home, environ={"ODOO_AI_DOCKER": "/opt/docker/bin/docker"})
    assert (stack.db_user, stack.workers, stack.max_cron_threads, stack.without_demo) == ("acme", 4, 0, "sale,crm")
    assert (stack.run_uid, stack.run_gid) == (1001, 1002)
    assert stack.script_runner_image == "reg/x-script-runner:t" and stack.web_image is None
    assert stack.docker == "/opt/docker/bin/docker"
    assert stack.deploy == DeployConfig(gate_timeout=45, gate_interval=0.5, drain_seconds=0, web_during_update="stop",
                                        update_retries=0, lock_timeout=5, keep_snapshots=7)
    assert stack.build.odoo_src == Path("vendor/odoo") and stack.build.odoo_ref == "saas-18.1"
    assert stack.build.enterprise_git_url == "git@github.com:odoo/enterprise.git"
    assert stack.build.enterprise_sha == "0123abc" and stack.build.ca_file == Path("/etc/ssl/ca.pem")
    assert stack.build.wkhtmltopdf == "none"
    assert stack.registry == RegistryConfig(url="https://registry.example.com", timeout=12.5, github_owner_type="org")
    assert stack.remote == RemoteConfig(repo_dir=PurePosixPath("/srv/repos/opw-dev"), state_root_set=True)
    assert stack.prune.pinned == ("dev-1a2b3c4", digest)


def test_env_file_wins_over_the_environment_for_the_shared_settings(repo: Path, home: Path) -> None:
    environ = {"ODOO_REGISTRY_TIMEOUT": "5", "ODOO_BUILD_WKHTMLTOPDF": "none", "ODOO_GITHUB_OWNER_TYPE": "user",
               "ODOO_GITHUB_API_URL": "http://127.0.0.1:9/api/"}
    stack = load_stack("dev", repo_root=repo, home=home, environ=environ)
    assert (stack.registry.timeout, stack.registry.github_owner_type, stack.build.wkhtmltopdf) == (5, "user", "none")
    assert stack.registry.github_api_url == "http://127.0.0.1:9/api"
    write_env(repo, "dev", "ODOO_REGISTRY_TIMEOUT=7\nODOO_BUILD_WKHTMLTOPDF=debian\n")
    stack = load_stack("dev", repo_root=repo, home=home, environ=environ)
    assert (stack.registry.timeout, stack.build.wkhtmltopdf) == (7, "debian")
    with pytest.raises(ConfigError, match=r"^environment: ODOO_REGISTRY_TIMEOUT='soon' is not a number of seconds"):
        load_stack("testing", repo_root=repo, home=home, environ={"ODOO_REGISTRY_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match=r"^environment: ODOO_AI_DOCKER='-H tcp://x' is not a command"):
        load_stack("testing", repo_root=repo, home=home, environ={"ODOO_AI_DOCKER": "-H tcp://x"})


# Each bad value sits on line 3 of the env file: the error names the file and that line.
@pytest.mark.parametrize(("line", "message"), [
    ("ODOO_DEPLOY_GATE_TIMEOUT=soon", "ODOO_DEPLOY_GATE_TIMEOUT='soon' is not a number"),
    ("ODOO_DEPLOY_GATE_TIMEOUT=0", "ODOO_DEPLOY_GATE_TIMEOUT=0 is out of range 1..7200"),
    ("ODOO_DEPLOY_GATE_INTERVAL=nan", "ODOO_DEPLOY_GATE_INTERVAL=nan is out of range 0.1..60"),
    ("ODOO_DEPLOY_DRAIN_SECONDS=-1", "ODOO_DEPLOY_DRAIN_SECONDS=-1 is out of range 0..600"),
    ("ODOO_DEPLOY_WEB_DURING_UPDATE=maybe", "ODOO_DEPLOY_WEB_DURING_UPDATE='maybe': 'keep' or 'stop'"),
    ("ODOO_DEPLOY_UPDATE_RETRIES=1.5", "ODOO_DEPLOY_UPDATE_RETRIES='1.5' is not a whole number"),
    ("ODOO_DEPLOY_LOCK_TIMEOUT=1e9", "ODOO_DEPLOY_LOCK_TIMEOUT=1e9 is out of range 0..86400"),
    ("ODOO_DEPLOY_KEEP_SNAPSHOTS=0", "ODOO_DEPLOY_KEEP_SNAPSHOTS=0 is out of range 1..1000"),
    ("ODOO_BUILD_ODOO_REF=-x", "ODOO_BUILD_ODOO_REF='-x' is not a git branch, tag or commit"),
    ("ODOO_BUILD_ODOO_REF=a..b", "ODOO_BUILD_ODOO_REF='a..b' is not a git branch, tag or commit"),
    ("ODOO_BUILD_ODOO_GIT_URL=--upload-pack=x", "ODOO_BUILD_ODOO_GIT_URL='--upload-pack=x' is not a git URL"),
    ("ODOO_BUILD_ENTERPRISE_GIT_URL='a b'", "ODOO_BUILD_ENTERPRISE_GIT_URL='a b' is not a git URL"),
    ("ODOO_BUILD_ENTERPRISE_SHA=abc;rm", "ODOO_BUILD_ENTERPRISE_SHA='abc;rm' is not a git branch"),
    ("ODOO_BUILD_BASE_IMAGE=bad image", "ODOO_BUILD_BASE_IMAGE='bad image' is not a valid image reference"),
    ("ODOO_BUILD_WKHTMLTOPDF=ubuntu", "ODOO_BUILD_WKHTMLTOPDF='ubuntu': 'debian' or 'none'"),
    ("ODOO_REGISTRY_URL=ftp://x", "ODOO_REGISTRY_URL='ftp://x' must be an http(s) URL"),
    ("ODOO_REGISTRY_TIMEOUT=soon", "ODOO_REGISTRY_TIMEOUT='soon' is not a number of seconds"),
    ("ODOO_REGISTRY_TIMEOUT=0", "ODOO_REGISTRY_TIMEOUT=0 is out of range (0, 600]"),
    ("ODOO_GITHUB_API_URL=api.github.com", "ODOO_GITHUB_API_URL='api.github.com' must be an http(s) URL"),
    ("ODOO_GITHUB_OWNER_TYPE=team", "ODOO_GITHUB_OWNER_TYPE='team': 'org' or 'user'"),
    ("ODOO_REMOTE_REPO_DIR=repos/x", "ODOO_REMOTE_REPO_DIR='repos/x' must be an absolute path"),
    ("ODOO_REMOTE_REPO_DIR=/opt/../etc", "ODOO_REMOTE_REPO_DIR='/opt/../etc' must not contain '..'"),
    ("ODOO_PRUNE_PINNED=dev-1,sha256:0123", "ODOO_PRUNE_PINNED lists 'sha256:0123', which is neither"),
    ("ODOO_PRUNE_PINNED=dev 1", "ODOO_PRUNE_PINNED lists 'dev 1'"),
    ("ODOO_WORKERS=many", "ODOO_WORKERS='many' is not a whole number"),
    ("ODOO_WORKERS=65", "ODOO_WORKERS=65 is out of range 1..64"),
    ("ODOO_MAX_CRON_THREADS=-1", "ODOO_MAX_CRON_THREADS=-1 is out of range 0..64"),
    ("ODOO_WITHOUT_DEMO=sale;crm", "ODOO_WITHOUT_DEMO='sale;crm': 'all', a comma list of module names, or True/False"),
    ("ODOO_RUN_UID=-1", "ODOO_RUN_UID=-1 is out of range 0..2147483647"),
    ("ODOO_RUN_GID=staff", "ODOO_RUN_GID='staff' is not a whole number"),
    ("ODOO_DB_USER=odoo;drop", "ODOO_DB_USER='odoo;drop': letters, digits and '_' only"),
    ("ODOO_DB_NAME=_db", "ODOO_DB_NAME='_db': Odoo's rule"),
    ("ODOO_DB_NAME=a", "ODOO_DB_NAME='a': Odoo's rule"),
    ("ODOO_PUBLISHED_PORT=http", "ODOO_PUBLISHED_PORT='http' is not a whole number"),
    ("ODOO_PROJECT_NAME='Bad Name'", "ODOO_PROJECT_NAME='Bad Name' is not a valid Compose project name"),
    ("ODOO_STATE_ROOT=relative", "ODOO_STATE_ROOT='relative' must be an absolute path"),
    ("ODOO_LOGFILE=/tmp/odoo.log", "ODOO_LOGFILE='/tmp/odoo.log' must name a file under /volumes/logs/"),
    ("ODOO_IMAGE=Registry/UPPER", "ODOO_IMAGE='Registry/UPPER' is not a valid image name"),
    ("ODOO_IMAGE_TAG=-x", "invalid image tag '-x'"),
    ("ODOO_WEB_IMAGE='a b'", "ODOO_WEB_IMAGE='a b' is not a valid image reference"),
    ("ODOO_BIND_ADDRESS=localhost", "ODOO_BIND_ADDRESS='localhost' is not an IP address"),
    ("ODOO_UPDATE=base;rm", "update modules 'base;rm'"),
    ("ODOO_INSTALL=sale,Bad", "'Bad' is not a module name"),
    ("ODOO_SECRETS=GOOD,bad name", "ODOO_SECRETS lists an invalid variable name 'bad name'"),
])
def test_a_bad_value_names_the_file_and_line(repo: Path, home: Path, line: str, message: str) -> None:
    path = write_env(repo, "dev", f"# dev settings\nODOO_PROJECT_NAME=opw-dev\n{line}  # the bad one\nPLAIN=1\n")
    with pytest.raises(ConfigError) as info:
        load_stack("dev", repo_root=repo, home=home, environ={})
    assert info.value.message.startswith(f"{path}:3: {message}"), info.value.message
    assert "\n" not in info.value.message


def test_the_line_is_the_keys_own_after_blank_and_comment_lines_and_the_last_one_wins(repo: Path, home: Path) -> None:
    path = write_env(repo, "dev", "A=1\n\n   \n# deploys\n\nODOO_DEPLOY_GATE_TIMEOUT=60\nODOO_DEPLOY_GATE_TIMEOUT=soon\n")
    with pytest.raises(ConfigError, match=rf"^{path}:7: ODOO_DEPLOY_GATE_TIMEOUT='soon'"):
        load_stack("dev", repo_root=repo, home=home, environ={})


def test_without_a_file_the_source_is_the_env_defaults(repo: Path, home: Path) -> None:
    stack = load_stack("dev", repo_root=repo, home=home, environ={})
    assert stack.source == "dev defaults" and stack.env_file is None


def test_config_show_has_every_typed_setting_and_masks_secrets(repo: Path, home: Path) -> None:
    write_env(repo, "dev", "ODOO_DB_PASSWORD=hunter2\nODOO_DEPLOY_GATE_TIMEOUT=45\n"
                           "ODOO_BUILD_ENTERPRISE_GIT_URL=https://bot:ghp_s3cret@github.com/acme/enterprise.git\n")
    view = load_stack("dev", repo_root=repo, home=home, environ={}).public_view()
    for key in ("db_user", "workers", "max_cron_threads", "without_demo", "run_uid", "run_gid", "web_image",
                "script_runner_image", "db_image", "proxy_image", "cache_image", "docker"):
        assert key in view
    assert view["deploy"]["gate_timeout"] == 45 and set(view["deploy"]) == set(DeployConfig.model_fields)
    for section, model in (("build", BuildConfig), ("registry", RegistryConfig), ("remote", RemoteConfig),
                           ("prune", PruneConfig)):
        assert set(view[section]) == set(model.model_fields)
    text = repr(view)
    assert "hunter2" not in text and "ghp_s3cret" not in text
    assert view["build"]["enterprise_git_url"] == "https://bot:********@github.com/acme/enterprise.git"
    assert json.loads(json.dumps(view)) == view  # plain data


@pytest.mark.parametrize("env", ["dev", "testing"])
def test_every_setting_the_loader_reads_is_documented_in_the_examples(env: str) -> None:
    root = Path(__file__).resolve().parents[2]
    config = root / "src" / "odoo_ai" / "config"
    read = set()
    for module in ("stack.py", "settings.py"):
        read |= set(re.findall(r'"(ODOO_[A-Z0-9_]+)"', (config / module).read_text()))
    read -= {"ODOO_AI_REPO", "ODOO_AI_CONFIG_DIR", "ODOO_DB_PASSWORD", "ODOO_MASTER_PASSWORD"}  # not env-file keys
    example = (root / "docker" / "config" / f"{env}.env.example").read_text()
    assert {key for key in read if key not in example} == set()
