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
    assert load_stack("dev", repo_root=repo, home=home).update_modules == "auto"  # per-module checksums
    overlay.write_text(overlay.read_text().replace("update: auto", "update: sale,stock"))
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


# ---------------------------------------------------------------- where a stack's data may live
OWN = "a stack needs a folder of its own, e.g. /opt/odoo-ai/data/opw-dev or ~/odoo-ai/opw-dev"


@pytest.mark.parametrize(("line", "message"), [
    ("ODOO_STATE_ROOT=/", f"ODOO_STATE_ROOT='/' is the root directory: {OWN}"),
    ("ODOO_STATE_ROOT=//", f"ODOO_STATE_ROOT='//' is the root directory: {OWN}"),
    ("ODOO_STATE_ROOT=/etc", f"ODOO_STATE_ROOT='/etc' is a top-level directory: {OWN}"),
    ("ODOO_STATE_ROOT=/etc/", f"ODOO_STATE_ROOT='/etc/' is a top-level directory: {OWN}"),
    ("ODOO_STATE_ROOT=//usr", f"ODOO_STATE_ROOT='//usr' is a top-level directory: {OWN}"),
    ("ODOO_STATE_ROOT=/opt/.", f"ODOO_STATE_ROOT='/opt/.' is a top-level directory: {OWN}"),
    *[(f"ODOO_STATE_ROOT=/{name}", f"ODOO_STATE_ROOT='/{name}' is a top-level directory: {OWN}")
      for name in ("var", "home", "root", "opt", "bin", "boot", "dev", "lib", "lib64", "proc", "run", "sbin",
                   "srv", "sys", "tmp", "mnt", "media", "usr", "data")],
    ("ODOO_STATE_ROOT=/var/lib", f"ODOO_STATE_ROOT='/var/lib' is a system directory: {OWN}"),
    ("ODOO_STATE_ROOT=/usr/local/", f"ODOO_STATE_ROOT='/usr/local/' is a system directory: {OWN}"),
    ("ODOO_STATE_ROOT=/home/alice", f"ODOO_STATE_ROOT='/home/alice' is a home directory: {OWN}"),
    ("ODOO_STATE_ROOT=/proc/self/cwd", f"ODOO_STATE_ROOT='/proc/self/cwd' is on a kernel filesystem: {OWN}"),
    ("ODOO_STATE_ROOT=~", f"ODOO_STATE_ROOT='~' is your home directory: {OWN}"),
    ("ODOO_STATE_ROOT={home}", f"ODOO_STATE_ROOT='{{home}}' is your home directory: {OWN}"),
    ("ODOO_STATE_ROOT={home}/", f"ODOO_STATE_ROOT='{{home}}/' is your home directory: {OWN}"),
    ("ODOO_STATE_ROOT={tmp}", f"ODOO_STATE_ROOT='{{tmp}}' contains your home directory: {OWN}"),
    ("ODOO_STATE_ROOT={repo}", f"ODOO_STATE_ROOT='{{repo}}' contains the stack repository: {OWN}"),
    ("ODOO_STATE_ROOT=~/..", "ODOO_STATE_ROOT='~/..' must not contain '..'"),
    ("ODOO_STATE_ROOT=/opt/odoo-ai/../../etc", "ODOO_STATE_ROOT='/opt/odoo-ai/../../etc' must not contain '..'"),
    ("ODOO_STATE_ROOT=odoo-ai/x", "ODOO_STATE_ROOT='odoo-ai/x' must be an absolute path"),
    ("ODOO_STATE_ROOT='${{HOME}}/odoo-ai'", "ODOO_STATE_ROOT='${{HOME}}/odoo-ai' must be an absolute path"),
    ("ODOO_DATA_DIR=/", f"ODOO_DATA_DIR='/' is the root directory: {OWN}"),
    ("ODOO_DB_DIR=/var", f"ODOO_DB_DIR='/var' is a top-level directory: {OWN}"),
    ("ODOO_LOG_DIR=/var/log", f"ODOO_LOG_DIR='/var/log' is a system directory: {OWN}"),
    ("ODOO_LOG_DIR={home}", f"ODOO_LOG_DIR='{{home}}' is your home directory: {OWN}"),
])
def test_a_state_root_no_stack_may_own_is_refused_naming_file_line_and_key(repo, home, tmp_path, line,
                                                                            message) -> None:
    fill = {"home": home, "tmp": tmp_path, "repo": repo}
    path = write_env(repo, "dev", f"# dev\nODOO_PROJECT_NAME=opw-dev\n{line.format(**fill)}\nPLAIN=1\n")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ConfigError) as info:
        load_stack("dev", repo_root=repo, home=home, environ={})
    assert info.value.message == f"{path}:3: {message.format(**fill)}"
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(("value", "expected"), [
    ("/opt/odoo-ai/data/opw-dev", "/opt/odoo-ai/data/opw-dev"),
    ("~/odoo-ai/opw-dev", "{home}/odoo-ai/opw-dev"),
    ("/srv/odoo/opw-dev/", "/srv/odoo/opw-dev"),
    ("/var/lib/odoo-ai/opw-dev", "/var/lib/odoo-ai/opw-dev"),
    ("/home/alice/odoo-ai/opw-dev", "/home/alice/odoo-ai/opw-dev"),
    ("{home}/odoo-ai", "{home}/odoo-ai"),
])
def test_a_folder_of_its_own_is_a_valid_state_root(repo, home, value, expected) -> None:
    write_env(repo, "dev", f"ODOO_STATE_ROOT={value.format(home=home)}\n")
    stack = load_stack("dev", repo_root=repo, home=home, environ={})
    assert stack.state_root == Path(expected.format(home=home))
    assert stack.db_dir == stack.state_root / "postgres"


# ---------------------------------------------------------------- unknown keys
EXAMPLE = "docker/config/dev.env.example"


@pytest.mark.parametrize(("line", "message"), [
    ("ODOO_PUBLISHD_PORT=8080", "unknown setting ODOO_PUBLISHD_PORT: did you mean ODOO_PUBLISHED_PORT?"),
    ("ODOO_STATEROOT=/opt/x/y", "unknown setting ODOO_STATEROOT: did you mean ODOO_STATE_ROOT?"),
    ("ODOO_WORKER=4", "unknown setting ODOO_WORKER: did you mean ODOO_WORKERS?"),
    ("ODOO_DEPLOY_GATE_TIMOUT=60", "unknown setting ODOO_DEPLOY_GATE_TIMOUT: did you mean ODOO_DEPLOY_GATE_TIMEOUT?"
     .replace("ODOO_DEPLOY_GATE_TIMEOUT:", "ODOO_DEPLOY_GATE_TIMOUT:")),
    ("ODOO_DBNAME=x", "unknown setting ODOO_DBNAME: did you mean ODOO_DB_NAME?"),
    ("ODOO_IMAGE_TAGS=dev-1", "unknown setting ODOO_IMAGE_TAGS: did you mean ODOO_IMAGE_TAG?"),
    ("ODOO_DB_PASS=x", "unknown setting ODOO_DB_PASS: did you mean ODOO_DB_PASSWORD?"),  # a secret name: known
    ("odoo_workers=3", "unknown setting odoo_workers: did you mean ODOO_WORKERS? (names are case-sensitive)"),
    ("Odoo_Db_Name=x", "unknown setting Odoo_Db_Name: did you mean ODOO_DB_NAME? (names are case-sensitive)"),
    ("ODOO_CONF_LIMIT_TIME_REAL=600", "unknown setting ODOO_CONF_LIMIT_TIME_REAL: odoo-ai reads no such key (the "
                                      f"known ones are in {EXAMPLE}; the app's own settings must not start with "
                                      "ODOO_)"),
    ("ODOO_ENV=dev", f"unknown setting ODOO_ENV: odoo-ai reads no such key (the known ones are in {EXAMPLE}; the "
                     "app's own settings must not start with ODOO_)"),
    ("ODOO_SHOPIFY_TOKEN=x", "unknown setting ODOO_SHOPIFY_TOKEN: a secret must be named in ODOO_SECRETS (and its "
                             "value is better given in the process environment)"),
    ("ODOO_AI_DOCKER=/usr/bin/docker", "ODOO_AI_DOCKER is read from the process environment only, never from an "
                                       "env file"),
    ("ODOO_AI_REPO=/srv/repo", "ODOO_AI_REPO is read from the process environment only, never from an env file"),
    ("ODOO_REGISTRY_PASSWORD=x", "ODOO_REGISTRY_PASSWORD is read from the process environment only, never from "
                                 "an env file"),
])
def test_an_unknown_odoo_key_names_file_line_and_the_closest_known_key(repo, home, line, message) -> None:
    path = write_env(repo, "dev", f"# dev\nODOO_WORKERS=2\n{line}\nSHOPIFY_URL=https://x\n")
    with pytest.raises(ConfigError) as info:
        load_stack("dev", repo_root=repo, home=home, environ={})
    assert info.value.message == f"{path}:3: {message}"


def test_other_keys_and_named_secrets_are_allowed(repo, home) -> None:
    write_env(repo, "dev", "ODOO_SECRETS=ODOO_DB_PASSWORD,ODOO_MASTER_PASSWORD,ODOO_SHOPIFY_TOKEN\n"
                           "ODOO_SHOPIFY_TOKEN=tok\nSHOPIFY_URL=https://x\nodoo_app_mode=fast\nMY_ODOO_X=1\n")
    stack = load_stack("dev", repo_root=repo, home=home, environ={})
    assert stack.values["SHOPIFY_URL"] == "https://x" and stack.values["odoo_app_mode"] == "fast"


class _Recording(dict):
    """The env file's values, recording every key the loader asks for."""

    asked: set[str] = set()

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.asked.add(key)
        return super().__contains__(key)


def test_the_known_keys_are_exactly_what_the_loader_reads(repo, home, monkeypatch) -> None:
    """ENV_FILE_KEYS (what check_keys accepts) = every env-file key load_stack reads."""
    from odoo_ai.config import stack as stack_module
    from odoo_ai.config.settings import ENV_FILE_KEYS

    real = stack_module.read_env_file_lines
    _Recording.asked = set()

    def recording(path):
        values, lines = real(path)
        return _Recording(values), lines

    monkeypatch.setattr(stack_module, "read_env_file_lines", recording)
    write_env(repo, "dev", "PLAIN=1\n")
    for tag in (None, "dev-1a2b3c4"):
        load_stack("dev", repo_root=repo, home=home, environ={}, tag=tag)
    read = {key for key in _Recording.asked if key.startswith("ODOO_")} - {"ODOO_DB_PASSWORD", "ODOO_MASTER_PASSWORD"}
    assert read - ENV_FILE_KEYS == set()  # read but refused as unknown
    assert ENV_FILE_KEYS - read == set()  # accepted but never read


@pytest.mark.parametrize("env", ["dev", "testing"])
def test_the_examples_document_exactly_the_known_keys(env: str) -> None:
    from odoo_ai.config.settings import ENV_FILE_KEYS

    example = (Path(__file__).resolve().parents[2] / "docker" / "config" / f"{env}.env.example").read_text()
    documented = set(re.findall(r"^#?(ODOO_[A-Z0-9_]+)=", example, re.MULTILINE))
    assert documented == set(ENV_FILE_KEYS)


# ---------------------------------------------------------------- the example as the settings file
@pytest.mark.parametrize("env", ["dev", "testing"])
def test_without_an_env_file_the_example_beside_it_is_loaded_and_changes_no_default(repo, home, env) -> None:
    defaults = load_stack(env, repo_root=repo, home=home, environ={}).public_view(environ={})
    example = repo / "docker" / "config" / f"{env}.env.example"
    example.write_text((Path(__file__).resolve().parents[2] / "docker" / "config" / f"{env}.env.example").read_text())
    stack = load_stack(env, repo_root=repo, home=home, environ={})
    assert (stack.env_file, stack.env_file_example, stack.source) == (example, True, str(example))
    view = stack.public_view(environ={})
    assert (view["settings_file"], view["example"]) == (str(example), True)
    assert (defaults["settings_file"], defaults["example"]) == (None, False)
    # Its values are the defaults the tests (unit and integration) expect without an env file.
    for key in set(view) - {"settings_file", "example", "settings"}:
        assert view[key] == defaults[key], key
    write_env(repo, env, "ODOO_WORKERS=3\n")
    stack = load_stack(env, repo_root=repo, home=home, environ={})
    assert (stack.env_file_example, stack.workers, stack.public_view(environ={})["example"]) == (False, 3, False)


def test_an_error_in_the_example_names_the_example(repo, home) -> None:
    example = repo / "docker" / "config" / "dev.env.example"
    example.write_text("ODOO_PROJECT_NAME=opw-dev\nODOO_PUBLISHD_PORT=1\n")
    with pytest.raises(ConfigError, match=rf"^{example}:2: unknown setting ODOO_PUBLISHD_PORT"):
        load_stack("dev", repo_root=repo, home=home, environ={})


# ---------------------------------------------------------------- config show: secrets, never their values
@pytest.mark.parametrize(("environ", "env_text", "generated", "expected"), [
    ({}, "", None, {"ODOO_DB_PASSWORD": "not set", "ODOO_MASTER_PASSWORD": "not set"}),
    ({"ODOO_DB_PASSWORD": "s3cret"}, "", None, {"ODOO_DB_PASSWORD": "environment", "ODOO_MASTER_PASSWORD": "not set"}),
    ({}, "ODOO_DB_PASSWORD=s3cret\n", 'ODOO_MASTER_PASSWORD="s3cret"\n',
     {"ODOO_DB_PASSWORD": "env file", "ODOO_MASTER_PASSWORD": "generated"}),
    ({"ODOO_DB_PASSWORD": ""}, "", 'ODOO_DB_PASSWORD="s3cret"\n',
     {"ODOO_DB_PASSWORD": "not set (empty in the environment)", "ODOO_MASTER_PASSWORD": "not set"}),
    ({"SHOP_TOKEN": "s3cret"}, "ODOO_SECRETS=SHOP_TOKEN,API_KEY\nAPI_KEY=\n", None,
     {"SHOP_TOKEN": "environment", "API_KEY": "not set (empty in the env file)"}),
])
def test_config_show_says_where_each_secret_comes_from(repo, home, environ, env_text, generated, expected) -> None:
    if env_text:
        write_env(repo, "dev", env_text)
    if generated:
        (home / "odoo-ai" / "opw-dev").mkdir(parents=True)
        (home / "odoo-ai" / "opw-dev" / ".secrets.env").write_text(generated)
    view = load_stack("dev", repo_root=repo, home=home, environ={}).public_view(environ=environ)
    assert view["secrets"] == expected
    assert "s3cret" not in json.dumps(view)
