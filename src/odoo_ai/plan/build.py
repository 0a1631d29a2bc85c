"""Pure planning of `docker build` for the stack images (targets web, script-runner)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from odoo_ai.config.stack import StackConfig
from odoo_ai.errors import ConfigError
from odoo_ai.runners.base import Command

TARGETS = ("web", "script-runner")


@dataclass(frozen=True)
class BuildInputs:
    """Everything that goes into an image build. Paths are absolute."""

    sha: str
    base_image: str | None = None
    odoo_git_url: str | None = None
    odoo_ref: str = "18.0"
    odoo_local_src: Path | None = None  # must lie inside the build context (the repo)
    addons_dir: Path | None = None
    enterprise_git_url: str | None = None
    enterprise_sha: str = ""
    enterprise_key: Path | None = None
    enterprise_known_hosts: Path | None = None
    ca_file: Path | None = None
    wkhtmltopdf: str = "debian"  # debian: Debian's wkhtmltopdf for PDF reports; none: skip
    build_time: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def short_sha(self) -> str:
        return self.sha[:7]


def image_tag(env: str, inputs: BuildInputs) -> str:
    return f"{env}-{inputs.short_sha}"


def _in_context(path: Path, context: Path, what: str) -> str:
    try:
        rel = path.resolve().relative_to(context.resolve())
    except ValueError:
        raise ConfigError(
            f"{what} {path} is outside the build context {context}: put it under the repo "
            "(e.g. vendor/odoo, git-ignored)"
        ) from None
    return rel.as_posix() or "."


def build_command(stack: StackConfig, target: str, inputs: BuildInputs, docker: str) -> Command:
    if target not in TARGETS:
        raise ConfigError(f"unknown build target {target!r} (known: {', '.join(TARGETS)})")
    context = stack.repo_root
    tag = image_tag(stack.env, inputs)
    args: dict[str, str] = {
        "SOURCE_COMMIT": inputs.sha,
        "ODOO_REF": inputs.odoo_ref,
        "ENTERPRISE_SHA": inputs.enterprise_sha,
        "BUILD_TIME": inputs.build_time,
        "WKHTMLTOPDF": inputs.wkhtmltopdf,
    }
    if inputs.base_image:
        args["BASE_IMAGE"] = inputs.base_image
    if inputs.odoo_git_url:
        args["ODOO_GIT_URL"] = inputs.odoo_git_url
    if inputs.odoo_local_src:
        args["ODOO_LOCAL_SRC"] = _in_context(inputs.odoo_local_src, context, "Odoo source")
    if inputs.addons_dir:
        args["ADDONS_DIR"] = _in_context(inputs.addons_dir, context, "addons dir")
    if inputs.enterprise_git_url:
        args["ENTERPRISE_GIT_URL"] = inputs.enterprise_git_url
    argv = [
        docker, "build",
        "--file", str(context / "docker" / "Dockerfile"),
        "--target", target,
        "--tag", stack.image_ref(target, tag),
    ]
    for key, value in args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in inputs.labels.items():
        argv += ["--label", f"{key}={value}"]
    # Secrets are files mounted into one RUN step only: never args, never layers.
    for secret_id, path in (
        ("enterprise_key", inputs.enterprise_key),
        ("enterprise_known_hosts", inputs.enterprise_known_hosts),
        ("ca", inputs.ca_file),
    ):
        if path is not None:
            argv += ["--secret", f"id={secret_id},src={path}"]
    argv.append(str(context))
    return Command(argv, env={"DOCKER_BUILDKIT": "1"}, timeout=3600)
