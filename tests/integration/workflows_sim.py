"""A local stand-in for the GitHub Actions runner, for tests/integration/test_workflows.py.

It runs a workflow file the way GitHub would run it on one self-hosted runner, as far
as our workflows use GitHub: jobs in `needs` order with their `if:` (status functions
included), `env:` at workflow, job and step level with every `${{ … }}` evaluated
against simulated contexts (github, inputs, vars, secrets, needs, steps, env, runner),
each `run:` script executed by bash exactly as GitHub does (`shell: bash` is
`bash --noprofile --norc -eo pipefail {0}`, no shell is `bash -e {0}`), the files behind
$GITHUB_OUTPUT / $GITHUB_ENV / $GITHUB_STEP_SUMMARY / $GITHUB_PATH, a fresh $RUNNER_TEMP
per job, step and job outputs, and `uses:` steps simulated by a handler per action.

Like GitHub it also refuses a job whose environment's deployment-branch rule does not
admit the ref (before its first step, without its secrets), runs the self-hosted runner's
job-started hook (ACTIONS_RUNNER_HOOK_JOB_STARTED; a failing hook fails the job before
its steps), and cancels a job the way the runner does (SIGINT to the step's processes,
SIGTERM 7.5 s later, SIGKILL 2.5 s after that; then only the steps whose `if:` holds
always() or cancelled() run).

Anything it does not understand (an unknown action, an expression function or operator
it does not implement, `${{` inside a `run:` script) is an error, so the workflows
cannot silently drift out of what this proves. No Docker, SSH or registry here: the
test supplies those through the variables and secrets.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SHELLS = {
    None: ["bash", "-e", "{0}"],
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"],
    "sh": ["sh", "-e", "{0}"],
}
STATUS_FUNCTIONS = ("success(", "failure(", "always(", "cancelled(")


class SimulationError(Exception):
    """The workflow uses something this simulator does not model (or models as an error)."""


# ---------------------------------------------------------------- expressions
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^']|'')*')
  | (?P<num>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?))
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\].,*])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise SimulationError(f"cannot parse expression {text!r} at {text[pos:pos + 10]!r}")
        pos = match.end()
        if match.lastgroup != "ws":
            out.append((match.lastgroup, match.group()))
    return out


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if text == "":
            return 0.0
        try:
            return float(int(text, 16)) if text.lower().startswith("0x") else float(text)
        except ValueError:
            return math.nan
    return math.nan


def truthy(value: Any) -> bool:
    if value is None or value is False or value == "":
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    return True


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()  # GitHub compares strings ignoring case
    if type(a) is type(b) or (a is None and b is None):
        return a == b
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return a is b
    x, y = _number(a), _number(b)
    return not (math.isnan(x) or math.isnan(y)) and x == y


def to_string(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2)
    return str(value)


def _lookup(obj: Any, key: Any) -> Any:
    if isinstance(obj, Mapping):
        if key in obj:
            return obj[key]
        lowered = str(key).lower()
        for name, value in obj.items():
            if str(name).lower() == lowered:
                return value
        return None
    if isinstance(obj, list) and isinstance(key, int | float) and not isinstance(key, bool):
        index = int(key)
        return obj[index] if 0 <= index < len(obj) else None
    return None


class _Parser:
    def __init__(self, text: str, contexts: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]):
        self.text, self.tokens, self.pos = text, _tokens(text), 0
        self.contexts, self.functions = contexts, functions

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise SimulationError(f"expression {self.text!r}: expected {value or 'more'} at token {self.pos}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise SimulationError(f"expression {self.text!r}: unexpected {self.peek()[1]!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            value = value if truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.eq()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.eq()
            value = right if truthy(value) else value
        return value

    def eq(self) -> Any:
        value = self.cmp()
        while self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            right = self.cmp()
            value = _equal(value, right) if op == "==" else not _equal(value, right)
        return value

    def cmp(self) -> Any:
        value = self.unary()
        while self.peek() in (("op", "<"), ("op", "<="), ("op", ">"), ("op", ">=")):
            op = self.take()[1]
            right = self.unary()
            if isinstance(value, str) and isinstance(right, str):
                a, b = value.lower(), right.lower()
            else:
                a, b = _number(value), _number(right)
            value = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        return value

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not truthy(self.unary())
        return self.postfix()

    def postfix(self) -> Any:
        value = self.primary()
        while True:
            token = self.peek()
            if token == ("op", "."):
                self.take()
                kind, name = self.take()
                if kind != "ident":
                    raise SimulationError(f"expression {self.text!r}: property name expected, got {name!r}")
                value = _lookup(value, name)
            elif token == ("op", "["):
                self.take()
                key = self.or_()
                self.take("]")
                value = _lookup(value, key)
            elif token == ("op", "*"):
                raise SimulationError(f"expression {self.text!r}: object filters (*) are not simulated")
            else:
                return value

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return _number(text)
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind != "ident":
            raise SimulationError(f"expression {self.text!r}: unexpected {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self.peek() == ("op", "("):
            self.take()
            args = []
            while self.peek() != ("op", ")"):
                args.append(self.or_())
                if self.peek() == ("op", ","):
                    self.take()
            self.take(")")
            function = self.functions.get(text.lower())
            if function is None:
                raise SimulationError(f"expression {self.text!r}: function {text}() is not simulated")
            return function(*args)
        if text.lower() not in self.contexts:
            raise SimulationError(f"expression {self.text!r}: unknown context {text!r}")
        return self.contexts[text.lower()]


def _format(template: str, *args: Any) -> str:
    return re.sub(r"\{(\d+)\}", lambda m: to_string(args[int(m.group(1))]), str(template)).replace(
        "{{", "{").replace("}}", "}")


BASE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "contains": lambda hay, needle: (any(_equal(x, needle) for x in hay) if isinstance(hay, list)
                                     else to_string(needle).lower() in to_string(hay).lower()),
    "startswith": lambda s, p: to_string(s).lower().startswith(to_string(p).lower()),
    "endswith": lambda s, p: to_string(s).lower().endswith(to_string(p).lower()),
    "format": _format,
    "join": lambda items, sep=",": to_string(sep).join(to_string(i) for i in items) if isinstance(items, list)
    else to_string(items),
    "tojson": lambda value: json.dumps(value, indent=2),
    "fromjson": lambda text: json.loads(text),
}


def evaluate(expression: str, contexts: Mapping[str, Any], status: Mapping[str, bool] | None = None) -> Any:
    """One expression (without `${{ }}`) against `contexts`; `status` gives the
    status functions (success, failure, always, cancelled)."""
    functions = dict(BASE_FUNCTIONS)
    for name, value in (status or {"success": True, "failure": False, "always": True, "cancelled": False}).items():
        functions[name] = (lambda v=value: v)
    return _Parser(expression, {k.lower(): v for k, v in contexts.items()}, functions).parse()


def _split_template(text: str) -> list[tuple[bool, str]]:
    """`a ${{ x }} b` -> [(False, 'a '), (True, ' x '), (False, ' b')], quotes respected."""
    parts, pos = [], 0
    while True:
        start = text.find("${{", pos)
        if start < 0:
            parts.append((False, text[pos:]))
            return parts
        parts.append((False, text[pos:start]))
        i, quoted = start + 3, False
        while i < len(text):
            if text[i] == "'":
                quoted = not quoted
            elif not quoted and text.startswith("}}", i):
                break
            i += 1
        else:
            raise SimulationError(f"unterminated ${{{{ in {text!r}")
        parts.append((True, text[start + 3:i]))
        pos = i + 2


def interpolate(value: Any, contexts: Mapping[str, Any], status: Mapping[str, bool] | None = None) -> Any:
    """A workflow value with `${{ }}` in it: the expression's own value when the value
    is exactly one expression, else the string with each expression replaced."""
    if not isinstance(value, str):
        return value
    parts = _split_template(value)
    if len(parts) == 3 and parts[1][0] and parts[0][1] == "" and parts[2][1] == "":
        return evaluate(parts[1][1], contexts, status)
    return "".join(to_string(evaluate(text, contexts, status)) if is_expr else text for is_expr, text in parts)


def condition(raw: Any, contexts: Mapping[str, Any], status: Mapping[str, bool]) -> bool:
    """An `if:`: without a status function it is `success() && (…)`, as on GitHub."""
    if raw is None:
        return status["success"]
    text = str(raw).strip() if not isinstance(raw, bool) else ("true" if raw else "false")
    parts = _split_template(text)
    if len(parts) == 3 and parts[1][0] and not parts[0][1].strip() and not parts[2][1].strip():
        text = parts[1][1]
    elif any(is_expr for is_expr, _ in parts):
        raise SimulationError(f"if: {raw!r} mixes text and ${{{{ }}}}")
    if not any(fn in text.replace(" ", "") for fn in STATUS_FUNCTIONS):
        text = f"success() && ({text})"
    return truthy(evaluate(text, contexts, status))


# ---------------------------------------------------------------- files GitHub provides
def parse_command_file(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT / $GITHUB_ENV syntax: `name=value` or `name<<DELIM` … `DELIM`."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise SimulationError(f"{path}: {name}<<{delimiter} is not closed")
            i += 1
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        else:
            raise SimulationError(f"{path}: invalid line {line!r}")
    return values


# ---------------------------------------------------------------- results
@dataclass
class StepResult:
    name: str
    id: str | None
    kind: str  # run | uses
    outcome: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    log: str = ""
    seconds: float = 0.0
    env: dict[str, str] = field(default_factory=dict)  # the step's own env: (evaluated)


@dataclass
class JobResult:
    id: str
    result: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)
    summary: str = ""
    runner_temp: Path | None = None
    environment: dict[str, Any] | None = None
    concurrency: dict[str, Any] | None = None
    seconds: float = 0.0

    def step(self, name_or_id: str) -> StepResult:
        for step in self.steps:
            if name_or_id in (step.id, step.name):
                return step
        raise KeyError(f"job {self.id}: no step {name_or_id!r} ({[s.name for s in self.steps]})")

    def log(self) -> str:
        return "\n".join(f"--- {s.name} [{s.outcome}, {s.seconds:.1f}s]\n{s.log}" for s in self.steps)


@dataclass
class RunResult:
    workflow: str
    jobs: dict[str, JobResult]

    def job(self, job_id: str) -> JobResult:
        return self.jobs[job_id]

    def ran(self) -> list[str]:
        return [job_id for job_id, job in self.jobs.items() if job.result != "skipped"]

    def log(self) -> str:
        return "\n".join(f"===== job {j.id}: {j.result}\n{j.log()}" for j in self.jobs.values())


# ---------------------------------------------------------------- the runner
ActionHandler = Callable[[dict[str, Any], "StepContext"], dict[str, str] | None]


@dataclass
class StepContext:
    workspace: Path
    runner_temp: Path
    env: dict[str, str]


def _checkout(with_: dict[str, Any], ctx: StepContext) -> None:
    if to_string(with_.get("persist-credentials")) != "false":
        raise SimulationError("actions/checkout without persist-credentials: false")


def _noop(with_: dict[str, Any], ctx: StepContext) -> None:
    return None


@dataclass
class Artifacts:
    root: Path
    uploaded: dict[str, Path] = field(default_factory=dict)

    def upload(self, with_: dict[str, Any], ctx: StepContext) -> None:
        name = to_string(with_.get("name") or "artifact")
        if name in self.uploaded:
            raise SimulationError(f"artifact {name!r} uploaded twice in one run (GitHub refuses that)")
        target = self.root / name
        paths = [p.strip() for p in to_string(with_.get("path")).splitlines() if p.strip()]
        if not paths:
            raise SimulationError("upload-artifact without a path")
        found = False
        for raw in paths:
            source = Path(raw) if os.path.isabs(raw) else ctx.workspace / raw
            if source.is_dir() and any(source.iterdir()):
                shutil.copytree(source, target / source.name, dirs_exist_ok=True)
                found = True
            elif source.is_file():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / source.name)
                found = True
        if not found and to_string(with_.get("if-no-files-found") or "warn") == "error":
            raise SimulationError(f"upload-artifact {name}: nothing at {paths}")
        if found:
            self.uploaded[name] = target


class _Output:
    """A step's output (stdout and stderr), read by a thread as it comes, so that a cancel
    can wait for a line to appear while the step runs."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):
            with self._lock:
                self._chunks.append(chunk)

    def text(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", "replace")

    def wait(self, seconds: float, until: str | None = None) -> bool:
        """Wait up to `seconds` for the step to end (its process exited and its output
        closed): True if it did. With `until`, also stop waiting (False) once the output
        holds that text."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if until is None:
                try:
                    self.proc.wait(timeout=max(left, 0))
                except subprocess.TimeoutExpired:
                    return False
                self._thread.join(timeout=max(end - time.monotonic(), 0))
                return not self._thread.is_alive()
            if self.proc.poll() is not None:
                self._thread.join(timeout=max(left, 0))
                return not self._thread.is_alive()
            if until in self.text() or left <= 0:
                return False
            time.sleep(min(0.1, left))


class Simulator:
    """Runs workflow files against one workspace, like a single self-hosted runner."""

    def __init__(self, *, workspace: Path, temp_root: Path, base_env: Mapping[str, str],
                 vars: Mapping[str, str] | None = None, secrets: Mapping[str, str] | None = None,
                 environments: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
                 repository: str = "acme/odoo-ai", actor: str = "octo-sim"):
        self.workspace = workspace
        self.temp_root = temp_root
        self.base_env = dict(base_env)
        self.vars = dict(vars or {})
        self.secrets = dict(secrets or {})
        # environment name -> {"vars": {...}, "secrets": {...}, "branches": [...] or None (any)}
        self.environments = {k: {"vars": dict(v.get("vars", {})), "secrets": dict(v.get("secrets", {})),
                                 "branches": list(v["branches"]) if v.get("branches") is not None else None}
                             for k, v in (environments or {}).items()}
        self.job_started_hook: Path | None = None  # the self-hosted runner's ACTIONS_RUNNER_HOOK_JOB_STARTED
        self.runner_env: dict[str, str] = {}  # the runner's own .env (what the hook reads)
        self.repository, self.actor = repository, actor
        self.artifacts = Artifacts(temp_root / "artifacts")
        self.actions: dict[str, ActionHandler] = {
            "actions/checkout": _checkout,
            "astral-sh/setup-uv": _noop,
            "actions/upload-artifact": lambda with_, ctx: self.artifacts.upload(with_, ctx),
        }
        self.runs = 0

    # -- public
    def run(self, workflow: Path, *, event: str, ref: str, sha: str,
            inputs: Mapping[str, Any] | None = None, jobs: list[str] | None = None,
            cancel: Mapping[str, tuple[str, float] | tuple[str, float, str]] | None = None,
            before_step: Callable[[str, str], None] | None = None) -> RunResult:
        """One run of `workflow` for `event` on `ref` at `sha`. `jobs` limits the run to
        those jobs (the others count as skipped); `cancel` {job: (step name, seconds)}
        cancels that job that long after that step started, {job: (step name, seconds, text)}
        as soon as that text appears in the step's output (at the latest after the seconds);
        `before_step(job, step name)` is called before each step runs (to change the world
        between two steps)."""
        self._cancel = dict(cancel or {})
        self._before_step = before_step
        self._workflow_file = workflow.name
        self.runs += 1
        self.artifacts = Artifacts(self.temp_root / f"run{self.runs}-artifacts")  # artifacts belong to one run
        doc = yaml.safe_load(workflow.read_text(encoding="utf-8"))
        triggers = doc.get("on", doc.get(True))
        triggers = {triggers: None} if isinstance(triggers, str) else triggers
        if event not in triggers:
            raise SimulationError(f"{workflow.name} has no trigger {event}")
        run_inputs = self._inputs(triggers, event, inputs or {})
        github = {
            "event_name": event, "ref": ref, "ref_name": ref.rsplit("/", 1)[-1], "sha": sha,
            "actor": self.actor, "triggering_actor": self.actor, "repository": self.repository,
            "repository_owner": self.repository.split("/")[0], "run_id": str(1000 + self.runs),
            "run_number": str(self.runs), "run_attempt": "1", "server_url": "https://github.com",
            "workflow": doc.get("name") or workflow.name, "workspace": str(self.workspace),
            "event": {"inputs": run_inputs} if event == "workflow_dispatch" else {},
            "ref_type": "branch",
        }
        defaults = doc.get("defaults") or {}
        base_ctx = {"github": github, "inputs": run_inputs, "vars": self.vars,
                    "secrets": {**self.secrets}}
        workflow_env = {k: to_string(interpolate(v, base_ctx)) for k, v in (doc.get("env") or {}).items()}
        results: dict[str, JobResult] = {}
        pending = dict(doc.get("jobs") or {})
        while pending:
            for job_id in pending:
                needs = pending[job_id].get("needs") or []
                needs = [needs] if isinstance(needs, str) else list(needs)
                if all(n in results for n in needs):
                    break
            else:
                raise SimulationError(f"{workflow.name}: jobs {list(pending)} wait for each other")
            job = pending.pop(job_id)
            if jobs is not None and job_id not in jobs:
                results[job_id] = JobResult(job_id, "skipped")
                continue
            results[job_id] = self._job(job_id, job, needs, results, github, run_inputs, workflow_env, defaults)
        return RunResult(workflow.name, results)

    # -- internals
    @staticmethod
    def _inputs(triggers: Mapping[str, Any], event: str, given: Mapping[str, Any]) -> dict[str, Any]:
        if event != "workflow_dispatch":
            return {}
        declared = ((triggers.get("workflow_dispatch") or {}).get("inputs")) or {}
        unknown = set(given) - set(declared)
        if unknown:
            raise SimulationError(f"unknown workflow_dispatch inputs {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            value = given.get(name, spec.get("default"))
            kind = spec.get("type", "string")
            if kind == "boolean":
                value = value if isinstance(value, bool) else to_string(value).lower() == "true"
            elif kind == "choice":
                value = to_string(value)
                if value not in spec.get("options", []):
                    raise SimulationError(f"input {name}={value!r} is not one of {spec.get('options')}")
            else:
                value = to_string(value)
            if spec.get("required") and value in ("", None):
                raise SimulationError(f"input {name} is required")
            values[name] = value
        return values

    def _job(self, job_id: str, job: dict[str, Any], needs: list[str], results: dict[str, JobResult],
             github: dict[str, Any], inputs: dict[str, Any], workflow_env: dict[str, str],
             defaults: dict[str, Any]) -> JobResult:
        started = time.monotonic()
        needs_ctx = {n: {"result": results[n].result, "outputs": results[n].outputs} for n in needs}
        status = {"success": all(results[n].result == "success" for n in needs),
                  "failure": any(results[n].result == "failure" for n in needs),
                  "always": True, "cancelled": False}
        pre_ctx = {"github": github, "inputs": inputs, "vars": self.vars, "needs": needs_ctx}
        if not condition(job.get("if"), pre_ctx, status):
            return JobResult(job_id, "skipped")
        if "uses" in job:
            raise SimulationError(f"job {job_id}: reusable workflows are not simulated")
        if "strategy" in job or "services" in job or "container" in job:
            raise SimulationError(f"job {job_id}: strategy/services/container are not simulated")
        environment = job.get("environment")
        env_name = None
        if environment is not None:
            env_name = to_string(interpolate(environment["name"] if isinstance(environment, dict) else environment,
                                             pre_ctx))
        scoped = self.environments.get(env_name or "", {"vars": {}, "secrets": {}, "branches": None})
        if env_name and scoped["branches"] is not None and github["ref_name"] not in scoped["branches"]:
            # GitHub's deployment-branch rule: the job fails before it starts, no secret reaches it
            return JobResult(job_id, "failure", environment={"name": env_name, "url": ""},
                             steps=[StepResult("environment protection rules", None, "run", "failure",
                                               log=f"Branch \"{github['ref_name']}\" is not allowed to deploy to "
                                                   f"{env_name} due to environment protection rules.")])
        vars_ctx = {**self.vars, **scoped["vars"]}
        secrets_ctx = {**self.secrets, **scoped["secrets"]}
        runner_temp = self.temp_root / f"run{self.runs}-{job_id}" / "_temp"
        runner_temp.mkdir(parents=True, exist_ok=True)
        if self.job_started_hook and "self-hosted" in json.dumps(job.get("runs-on")):
            hook_env = {**self.base_env, **self.runner_env, **self._github_env(github, runner_temp, job_id)}
            hook = subprocess.run(["bash", "-e", str(self.job_started_hook)], env=hook_env, capture_output=True,
                                  text=True, timeout=60, cwd=self.workspace)
            if hook.returncode != 0:
                return JobResult(job_id, "failure", runner_temp=runner_temp, steps=[
                    StepResult("Set up runner (job-started hook)", None, "run", "failure",
                               log=hook.stdout + hook.stderr)])
        runner = {"temp": str(runner_temp), "os": "Linux", "arch": "X64", "name": "sim-docker-shiny",
                  "environment": "self-hosted"}
        ctx: dict[str, Any] = {"github": github, "inputs": inputs, "vars": vars_ctx, "needs": needs_ctx,
                               "secrets": secrets_ctx, "runner": runner, "env": dict(workflow_env),
                               "job": {"status": "success"}, "matrix": {}, "strategy": {}, "steps": {}}
        result = JobResult(job_id, "success", runner_temp=runner_temp)
        if isinstance(environment, dict):
            result.environment = {"name": env_name, "url": to_string(interpolate(environment.get("url"), ctx))}
        elif env_name:
            result.environment = {"name": env_name, "url": ""}
        if job.get("concurrency") is not None:
            conc = job["concurrency"]
            conc = {"group": conc} if isinstance(conc, str) else dict(conc)
            conc["group"] = to_string(interpolate(conc.get("group"), ctx))
            result.concurrency = conc
        job_env = dict(workflow_env)
        for key, value in (job.get("env") or {}).items():
            job_env[key] = to_string(interpolate(value, {**ctx, "env": dict(job_env)}))
        ctx["env"] = dict(job_env)
        shell = ((job.get("defaults") or {}).get("run") or {}).get("shell") or \
            ((defaults.get("run") or {}).get("shell"))
        deadline = started + 60 * float(job.get("timeout-minutes", 360))
        extra_env: dict[str, str] = {}
        extra_path: list[str] = []
        failed = False
        cancelled = False
        for index, step in enumerate(job.get("steps") or []):
            name = step.get("name") or (f"Run {step['uses']}" if "uses" in step else step["run"].splitlines()[0])
            step_status = {"success": not failed and not cancelled, "failure": failed, "always": True,
                           "cancelled": cancelled}
            if not condition(step.get("if"), ctx, step_status):
                result.steps.append(StepResult(name, step.get("id"), "uses" if "uses" in step else "run", "skipped"))
                if step.get("id"):
                    ctx["steps"][step["id"]] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
                continue
            step_env = {}
            for key, value in (step.get("env") or {}).items():
                step_env[key] = to_string(interpolate(value, {**ctx, "env": {**job_env, **extra_env, **step_env}}))
            env = {**self.base_env, **self._github_env(github, runner_temp, job_id), **job_env, **extra_env,
                   **step_env}
            if extra_path:
                env["PATH"] = os.pathsep.join([*reversed(extra_path), env.get("PATH", "")])
            files = {k: runner_temp.parent / f"_step{index}_{k.lower()}" for k in
                     ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY", "GITHUB_PATH")}
            for key, path in files.items():
                path.write_text("")
                env[key] = str(path)
            begin = time.monotonic()
            if self._before_step:
                self._before_step(job_id, name)
            cancel_after, cancel_on = None, None
            if not cancelled and job_id in self._cancel and self._cancel[job_id][0] == name:
                cancel_after, cancel_on = (*self._cancel[job_id][1:], None)[:2]
            if "uses" in step:
                outcome, log, outputs = self._uses(step, ctx, env)
            else:
                outcome, log = self._run(step, shell, env, deadline, job, cancel_after=cancel_after,
                                         cancel_on=cancel_on)
                outputs = parse_command_file(files["GITHUB_OUTPUT"])
            if outcome == "cancelled":
                cancelled = True
                ctx["job"] = {"status": "cancelled"}
            extra_env.update(parse_command_file(files["GITHUB_ENV"]))
            extra_path += [p for p in files["GITHUB_PATH"].read_text().splitlines() if p]
            result.summary += files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8")
            record = StepResult(name, step.get("id"), "uses" if "uses" in step else "run", outcome, outputs, log,
                                time.monotonic() - begin, step_env)
            result.steps.append(record)
            if step.get("id"):
                ctx["steps"][step["id"]] = {"outputs": outputs, "outcome": outcome, "conclusion": outcome}
            if outcome == "failure" and not truthy(interpolate(step.get("continue-on-error", False), ctx)):
                failed = True
                ctx["job"] = {"status": "failure"}
        result.result = "cancelled" if cancelled else "failure" if failed else "success"
        if not failed and not cancelled:
            ctx["env"] = job_env
            result.outputs = {k: to_string(interpolate(v, ctx)) for k, v in (job.get("outputs") or {}).items()}
        result.seconds = time.monotonic() - started
        return result

    def _github_env(self, github: dict[str, Any], runner_temp: Path, job_id: str) -> dict[str, str]:
        return {
            "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_SHA": github["sha"], "GITHUB_REF": github["ref"], "GITHUB_REF_NAME": github["ref_name"],
            "GITHUB_REF_TYPE": "branch", "GITHUB_EVENT_NAME": github["event_name"], "GITHUB_ACTOR": self.actor,
            "GITHUB_REPOSITORY": self.repository, "GITHUB_RUN_ID": github["run_id"],
            "GITHUB_RUN_NUMBER": github["run_number"], "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_SERVER_URL": github["server_url"], "GITHUB_JOB": job_id, "GITHUB_WORKFLOW": github["workflow"],
            "GITHUB_WORKFLOW_REF": f"{self.repository}/.github/workflows/{self._workflow_file}@{github['ref']}",
            "RUNNER_TEMP": str(runner_temp), "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64",
        }

    def _uses(self, step: dict[str, Any], ctx: dict[str, Any], env: dict[str, str]) -> tuple[str, str, dict]:
        action, _, ref = step["uses"].partition("@")
        if not re.fullmatch(r"[0-9a-f]{40}", ref):
            raise SimulationError(f"{step['uses']}: not pinned to a full commit SHA")
        handler = self.actions.get(action)
        if handler is None:
            raise SimulationError(f"action {action} is not simulated")
        with_ = {k: interpolate(v, {**ctx, "env": env}) for k, v in (step.get("with") or {}).items()}
        outputs = handler(with_, StepContext(self.workspace, Path(env["RUNNER_TEMP"]), env)) or {}
        return "success", f"(simulated {action} with {with_})", outputs

    def _run(self, step: dict[str, Any], shell: str | None, env: dict[str, str], deadline: float,
             job: dict[str, Any], cancel_after: float | None = None, cancel_on: str | None = None) -> tuple[str, str]:
        script = step["run"]
        if "${{" in script:
            raise SimulationError(f"step {step.get('name')!r}: ${{{{ }}}} inside run: (pass it through env:)")
        shell = step.get("shell") or shell
        if shell not in SHELLS:
            raise SimulationError(f"shell {shell!r} is not simulated")
        script_file = Path(env["RUNNER_TEMP"]).parent / f"_script_{abs(hash(script))}.sh"
        script_file.write_text(script)
        argv = [part.replace("{0}", str(script_file)) for part in SHELLS[shell]]
        cwd = self.workspace / step.get("working-directory", "")
        limit = deadline - time.monotonic()
        if step.get("timeout-minutes"):
            limit = min(limit, 60 * float(step["timeout-minutes"]))
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        output = _Output(proc)
        try:
            if cancel_after is not None and cancel_after < limit:
                # the job is cancelled `cancel_after` s into this step or, with `cancel_on`, as
                # soon as that text appears in its output (whichever comes first)
                if not output.wait(max(cancel_after, 0.1), until=cancel_on):
                    return "cancelled", self._cancel_step(proc, output)
            elif not output.wait(max(limit, 1)):
                os.killpg(proc.pid, signal.SIGKILL)
                output.wait(30)
                return "failure", output.text() + f"\n(simulator: timed out after {limit:.0f}s)"
        finally:
            script_file.unlink(missing_ok=True)
        log = output.text()
        return ("success" if proc.returncode == 0 else "failure"), log + (
            f"\n(exit {proc.returncode})" if proc.returncode else "")

    @staticmethod
    def _cancel_step(proc: subprocess.Popen, output: _Output) -> str:
        """What the runner does to a running step when its job is cancelled (or times out):
        SIGINT to the step's process group, SIGTERM after 7.5 s, SIGKILL after 2.5 s more."""
        for sig, grace in ((signal.SIGINT, 7.5), (signal.SIGTERM, 2.5), (signal.SIGKILL, 30.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            if output.wait(grace):
                break
        return output.text() + f"\n(simulator: cancelled, exit {proc.returncode})"
