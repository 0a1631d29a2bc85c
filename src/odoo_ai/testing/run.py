"""Use-case `test run`: Odoo's tests in a one-off script-runner container on a throw-away
database, in a throw-away Compose project; results through the log parser.

    prepare()  resolve modules, shard, image and the project; render its .env in memory.
               Raises ConfigError (exit 2) before anything exists.
    execute()  on a Host (odoo_ai.hosts: this machine, or the Docker host over ssh): create
               the project (its state dir 0700, .env 0600 with random passwords, db), stream
               Odoo's output into LogParser (progress on the console), tear the project down
               unless --keep-db. Returns a TestRunResult; failures of the machinery become
               status `error` (exit 3), never an exception.
    dry_run()  execute() itself against the dry connector (odoo_ai.dryhost): every command
               and write printed, none run; reads real, the rest assumed and said so.

Planning is in odoo_ai.plan.testrun (pure); every side effect, files included, goes through
the host. What is local: the repo's addons (which modules to test, tracebacks mapped back to
them), the template cache (used only when the Docker host is this machine) and the reports.
"""

from __future__ import annotations

import ast
import dataclasses
import secrets as pysecrets
import tempfile
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from odoo_ai import stack as stack_uc
from odoo_ai.build import last_built_tag
from odoo_ai.config.render import APP_ENV, build_dotenv
from odoo_ai.config.stack import IMAGE_REF_RE, StackConfig, _overlay_settings, validate_tag
from odoo_ai.config.stateroot import marker_path, marker_text, parse_marker, remove_marked_tree
from odoo_ai.deploy.policy import unreachable_reason
from odoo_ai.errors import ConfigError, ExitCode, OdooAiError
from odoo_ai.hosts import Host
from odoo_ai.plan import testrun as plan
from odoo_ai.runners.base import CommandTimedOut
from odoo_ai.testing import templates
from odoo_ai.testing.logparse import LogParser
from odoo_ai.testing.report import PathMap, ProgressPrinter, safe_text
from odoo_ai.testing.results import Problem, RunResult, RunStatus, Totals

DB_SECRETS = ("ODOO_DB_PASSWORD", "ODOO_MASTER_PASSWORD")
TAIL_LINES = 20


@dataclass(frozen=True)
class RunRequest:
    """`test run` options, as given (validated by prepare())."""

    env: str = "dev"
    image: str | None = None
    tag: str | None = None
    modules: str | None = None
    tags: str | None = None
    shards: int | None = None
    shard: int | None = None
    timeout: float = plan.DEFAULT_TIMEOUT
    keep_db: bool = False
    addons_dir: Path | None = None
    demo: bool = False
    no_cache: bool = False  # --no-cache: a fresh database, the templates left alone


@dataclass(slots=True)
class TestRunResult(RunResult):
    """A RunResult plus what `test run` adds to the JSON document (schema
    odoo-ai.test-results/1 allows added keys): `run` (what ran where) and `kept`."""

    __test__ = False

    run: dict[str, Any] = field(default_factory=dict)
    kept: dict[str, Any] | None = None

    @classmethod
    def of(cls, result: RunResult, run: dict[str, Any], kept: dict[str, Any] | None = None) -> TestRunResult:
        return cls(**{f.name: getattr(result, f.name) for f in fields(RunResult)}, run=run, kept=kept)

    def to_dict(self, *, allow_empty: bool = False) -> dict[str, Any]:
        data = RunResult.to_dict(self, allow_empty=allow_empty)
        data["run"] = self.run
        data["kept"] = self.kept
        return data


@dataclass(frozen=True)
class Selection:
    modules: list[str]  # what this run tests (this shard's part)
    all_modules: list[str]  # before sharding
    source: str  # where the list came from, for humans
    shard: tuple[int, int] | None
    skipped: list[str] = field(default_factory=list)  # addon folders left out, with why


@dataclass
class Prepared:
    request: RunRequest
    selection: Selection
    image: str
    test_tags: str | None
    addons_dir: Path
    project: plan.TestProject | None = None  # None: nothing to run (empty selection)
    dotenv_text: str = field(default="", repr=False)
    app_env_text: str = field(default="", repr=False)
    omitted_secrets: list[str] = field(default_factory=list)
    cache: templates.CachePlan | None = None  # None: a fresh database (cache_reason says why)
    cache_reason: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)  # without the db secrets
    without_demo: str = "all"  # what the run's Odoo gets (a template's key includes it)

    @property
    def path_map(self) -> PathMap:
        """Tracebacks name /opt/odoo/custom-addons/...: map them back to the repo."""
        return ((plan.CUSTOM_ADDONS_IN_IMAGE, str(self.addons_dir)),)

    def run_info(self) -> dict[str, Any]:
        tp = self.project
        shard = self.selection.shard
        return {
            "env": self.request.env,
            "image": self.image,
            "project": tp.name if tp else None,
            "database": tp.database if tp else None,
            "modules": self.selection.modules,
            "modules_source": self.selection.source,
            "test_tags": self.test_tags,
            # where test_tags came from: "--tags", "modules" (/m per module of this run), or None
            "test_tags_source": "--tags" if self.request.tags is not None else ("modules" if self.test_tags else None),
            "shard": None if shard is None else {
                "index": shard[0], "count": shard[1], "modules_total": len(self.selection.all_modules),
            },
            "demo": self.request.demo,
            "timeout": self.request.timeout,
            "timed_out": False,
            # whether the run's database was cloned from a template (and which), or why not
            "template": None if tp is None else templates.TemplateUse(reason=self.cache_reason).to_dict(),
        }


class _SetupFailed(Exception):
    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.message = message
        self.details = details


# ---------------------------------------------------------------- prepare


def resolve_addons_dir(stack: StackConfig, cli: Path | None) -> Path:
    """--addons > ODOO_BUILD_ADDONS_DIR > addons/ (relative paths: to the repo root)."""
    value = cli or stack.build.addons_dir or Path("addons")
    path = value if value.is_absolute() else stack.repo_root / value
    if cli is not None and not path.is_dir():
        raise ConfigError(f"--addons {cli}: not a directory")
    return path


def discover_modules(addons_dir: Path) -> tuple[list[str], list[str]]:
    """(module names, skipped folders with why): every folder with a __manifest__.py,
    sorted; folders whose manifest says `installable: False` are left out."""
    modules: list[str] = []
    skipped: list[str] = []
    if not addons_dir.is_dir():
        return modules, skipped
    for child in sorted(addons_dir.iterdir()):
        manifest = child / "__manifest__.py"
        if not child.is_dir() or not manifest.is_file():
            continue
        if not plan.MODULE_NAME_RE.match(child.name):
            skipped.append(f"{child.name} (not a valid module name)")
            continue
        if _manifest(manifest).get("installable", True) is False:
            skipped.append(f"{child.name} (installable: False)")
            continue
        modules.append(child.name)
    return modules, skipped


def _manifest(path: Path) -> dict[str, Any]:
    try:
        data = ast.literal_eval(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
        return {}  # Odoo itself will report a broken manifest
    return data if isinstance(data, dict) else {}


def select_modules(stack: StackConfig, request: RunRequest, addons_dir: Path) -> Selection:
    shard = plan.validate_shard(request.shards, request.shard)
    skipped: list[str] = []
    if request.modules is not None:
        modules, source = plan.parse_modules(request.modules), "--modules"
    else:
        overlay = stack.repo_root / "environments" / f"{stack.env}.yaml"
        configured = str(_overlay_settings(overlay).get("test_modules") or "")
        if configured.strip():
            modules = plan.parse_modules(configured, option=f"{overlay}: x-odoo-ai.test_modules")
            source = f"x-odoo-ai.test_modules of environments/{overlay.name}"
        else:
            modules, skipped = discover_modules(addons_dir)
            source = f"addons in {addons_dir}"
    chosen = plan.shard_modules(modules, *shard) if shard else modules
    return Selection(modules=chosen, all_modules=modules, source=source, shard=shard, skipped=skipped)


def resolve_image(stack: StackConfig, request: RunRequest) -> str:
    """--image > --tag > ODOO_SCRIPT_RUNNER_IMAGE pinned in the env file > the env's tag
    (ODOO_IMAGE_TAG, the rendered .env) > the last `odoo-ai build`."""
    if request.image and request.tag:
        raise ConfigError("give the image under test as --image REF or --tag TAG, not both")
    if request.image:
        if not IMAGE_REF_RE.match(request.image):
            raise ConfigError(f"--image {request.image!r} is not a valid image reference")
        return request.image
    if request.tag:
        return stack.image_ref("script-runner", validate_tag(request.tag))
    if stack.script_runner_image:
        return stack.script_runner_image
    tag = stack_uc.resolve_tag(stack, None) or last_built_tag(stack)
    if not tag:
        raise ConfigError(
            f"no image to test for {stack.env}: pass --image REF (e.g. what CI just built) or "
            f"--tag TAG, or build one first (odoo-ai build {stack.env})"
        )
    return stack.image_ref("script-runner", tag)


def prepare(
    stack: StackConfig,
    request: RunRequest,
    *,
    environ: Mapping[str, str],
    suffix: str | None = None,
    tmp_root: Path | None = None,
    host_stack: StackConfig | None = None,
) -> Prepared:
    """Every check and decision; nothing is written or run. Raises ConfigError.

    `stack` is the env as this machine sees it (its addons pick the modules, its settings
    the image). `host_stack` is the same env as seen on a remote Docker host (--host: the
    Compose files there); `tmp_root` is where the project's state dir goes on the Docker
    host. A remote run does not use the template cache (it is on this machine)."""
    if not 0 < request.timeout <= 7 * 24 * 3600:
        raise ConfigError(f"--timeout {request.timeout:g}: seconds, more than 0 (at most a week)")
    test_tags = plan.validate_test_tags(request.tags) if request.tags is not None else None
    addons_dir = resolve_addons_dir(stack, request.addons_dir)
    selection = select_modules(stack, request, addons_dir)
    image = resolve_image(stack, request)
    if test_tags is None and selection.modules:
        # Test exactly the modules of this run (after sharding), not what -i pulls in.
        test_tags = plan.module_test_tags(selection.modules)
    prepared = Prepared(request, selection, image, test_tags, addons_dir)
    if not selection.modules:
        return prepared
    suffix = suffix or pysecrets.token_hex(4)
    names = [n for n in stack.secret_names if n not in DB_SECRETS]
    # The app's own secrets come from the environment when set; the test database gets
    # fresh random passwords, never the env's (they are never printed).
    passed = [n for n in names if environ.get(n)]
    prepared.omitted_secrets = [n for n in names if not environ.get(n)]
    name = plan.project_name_for(stack.project, suffix)
    state_dir = (tmp_root or Path(tempfile.gettempdir())) / f"odoo-ai-{name}"
    tp = plan.plan_project(
        host_stack or stack, suffix=suffix, state_dir=state_dir, image=image, modules=selection.modules,
        test_tags=test_tags, timeout=request.timeout, secret_names=[*DB_SECRETS, *passed],
        demo=request.demo,
    )
    generated = {key: pysecrets.token_urlsafe(24) for key in DB_SECRETS}
    render_env = {k: v for k, v in environ.items() if k not in DB_SECRETS}
    _, prepared.dotenv_text, prepared.app_env_text = build_dotenv(
        tp.stack, render_env, tag=None, generated=generated
    )
    prepared.project = tp
    prepared.environ = render_env
    prepared.without_demo = "False" if request.demo else stack.without_demo
    if request.no_cache:
        prepared.cache_reason = "--no-cache"
    elif host_stack is not None:
        prepared.cache_reason = ("--host: the template cache is kept on this machine, the database on the "
                                 "Docker host")
    else:
        prepared.cache = templates.plan_cache(stack, state_dir=state_dir, image=image, environ=environ,
                                              keep=templates_keep(stack))
        if prepared.cache is None:
            prepared.cache_reason = "no cache directory (neither XDG_CACHE_HOME nor HOME is set)"
    return prepared


def templates_keep(stack: StackConfig) -> int:
    """ODOO_TEST_TEMPLATES_KEEP: how many template databases an env keeps (the most recently used)."""
    return stack.test_templates_keep


# ---------------------------------------------------------------- results without Odoo


def empty_result(prepared: Prepared) -> TestRunResult:
    sel = prepared.selection
    if sel.shard and sel.all_modules:
        why = (f"shard {sel.shard[0]}/{sel.shard[1]} has no module "
               f"({len(sel.all_modules)} module(s) in all)")
    else:
        why = f"no module to test (from {sel.source})"
    result = RunResult(status=RunStatus.NO_TESTS, totals=Totals(), modules=[], tests=[],
                       problems=[Problem("note", why)])
    return TestRunResult.of(result, prepared.run_info())


def infra_result(prepared: Prepared, message: str, details: str = "") -> TestRunResult:
    result = RunResult(status=RunStatus.ERROR, totals=Totals(), modules=[], tests=[],
                       problems=[Problem("infra", message, details=details)])
    return TestRunResult.of(result, prepared.run_info())


# ---------------------------------------------------------------- dry run


class DryRunFailed(OdooAiError):
    """The dry run stopped where the real run would (what it could read says so): exit 3."""

    exit_code = ExitCode.INFRA


def dry_run(prepared: Prepared, host: Host, console: Console, *, out: Any = None) -> tuple[TestRunResult, Any]:
    """execute() against the dry connector around `host` (odoo_ai.dryhost.DryHost; `host`
    itself when it is one): every command and file write printed (to `out`), none done;
    reads real, the rest assumed and said so. Returns the run's result (its verdict is meaningless: no test ran) and the dry
    connector (its commands, assumptions and reads). Raises DryRunFailed where the real run
    would stop before running Odoo, with its message."""
    from odoo_ai.dryhost import DryHost

    dry = host if isinstance(host, DryHost) else DryHost(host, out=out)
    result, failed = _execute(prepared, dry, console)
    if failed is not None:
        raise DryRunFailed(failed)
    return result, dry


# ---------------------------------------------------------------- execute


def kept_info(tp: plan.TestProject, cache: templates.TemplateCache | None = None) -> dict[str, Any]:
    if cache is not None and cache.cloned:
        # The database is a clone in the templates server, which stays up while it is there.
        server = cache.server
        return {
            "project": tp.name,
            "database": tp.database,
            "state_dir": str(tp.state_dir),
            "cleanup": [plan.server_dropdb_hint(server, tp.database).display(), plan.down(tp).display(),
                        f"rm -rf {tp.state_dir}"],
            "psql": plan.server_psql_hint(server, tp.database).display(),
            "server": server.name,
        }
    return {
        "project": tp.name,
        "database": tp.database,
        "state_dir": str(tp.state_dir),
        "cleanup": [plan.down(tp).display(), f"rm -rf {tp.state_dir}"],
        "psql": plan.psql_hint(tp).display(),
    }


def execute(prepared: Prepared, host: Host, console: Console) -> TestRunResult:
    """Run it on `host`. A failure of Docker, Compose or Odoo is a result (status `error`),
    not an exception; only Ctrl-C propagates (after the cleanup)."""
    return _execute(prepared, host, console)[0]


def _execute(prepared: Prepared, host: Host, console: Console) -> tuple[TestRunResult, str | None]:
    """execute(), and the message when the machinery failed before Odoo could run (None otherwise)."""
    tp = prepared.project
    say = _sayer(console)
    if tp is None:
        result = empty_result(prepared)
        say(result.problems[0].message)
        return result, None
    sel = prepared.selection
    shard = f" (shard {sel.shard[0]}/{sel.shard[1]} of {len(sel.all_modules)})" if sel.shard else ""
    say(f"test project {tp.name}: {len(tp.modules)} module(s){shard} on database {tp.database}, "
        f"image {tp.image}")
    source = "--tags" if prepared.request.tags is not None else "the modules' own tests"
    say(f"--test-tags={tp.test_tags} ({source})")
    for skipped in sel.skipped:
        say(f"skipped addon {skipped}")
    for name in prepared.omitted_secrets:
        say(f"{name} is not set in the environment: the tests run without it")
    try:
        host.mkdir_private(tp.state_dir)  # fresh: the random suffix makes the name unique
    except (OSError, OdooAiError) as exc:
        return _setup_failed(prepared, console, f"cannot create {tp.state_dir}: {_why(exc)}")
    keep = prepared.request.keep_db
    try:
        _create_state(prepared, tp, host)
    except (OSError, OdooAiError) as exc:
        try:
            _remove_state_dir(tp, host)
        except OdooAiError:  # no marker yet: the folder is as mkdir left it, or is left alone
            if not host.remote and not host.dry_run:
                _quietly_rmdir(tp.state_dir)
        return _setup_failed(prepared, console, f"cannot write the test project's files: {_why(exc)}")
    session = _Session()
    try:
        result = _run_in_project(prepared, tp, host, console, say, session)
    finally:
        if session.cache is not None:
            try:
                problems = session.cache.close(keep_db=keep)
            except OSError as exc:
                problems = [str(exc)]
            for problem in problems:
                say(f"warning: template cache: {problem}")
        if not keep:
            _teardown(tp, host, say)
    if keep:
        result.kept = kept_info(tp, session.cache)
        if host.remote:
            result.kept["host"] = str(getattr(host, "target", "")) or None
    return result, session.failed


@dataclass
class _Session:
    cache: templates.TemplateCache | None = None
    failed: str | None = None  # the machinery failed before Odoo could run: why


def _run_in_project(
    prepared: Prepared, tp: plan.TestProject, host: Host, console: Console, say,
    session: _Session,
) -> TestRunResult:
    info = prepared.run_info()
    try:
        image_id = _ensure_image(tp, host, say)
        if prepared.cache is not None:
            session.cache = templates.TemplateCache(
                prepared.cache, tp, host, say, environ=prepared.environ,
                tested=prepared.selection.all_modules, without_demo=prepared.without_demo,
                test_tags=prepared.test_tags if prepared.request.tags is not None else None,
            )
            use = session.cache.open(image_id)
            info["template"] = use.to_dict()
            if not use.used:  # back to the files of a fresh database; the server is not needed
                _write_fresh_files(prepared, tp, host)
                for problem in session.cache.close(keep_db=False):
                    say(f"warning: template cache: {problem}")
        if session.cache is None or not session.cache.use.used:
            _start_db(tp, host, say)
        # --timeout is what Odoo may take in this run: a template's build and the tests together.
        spent = session.cache.odoo_seconds if session.cache is not None else 0.0
        run_tp = dataclasses.replace(tp, timeout=max(1.0, tp.timeout - spent)) if spent else tp
        result, info["timed_out"] = _run_odoo(run_tp, host, console, budget=tp.timeout)
        unreached = unreached_db(result)
        if unreached:  # nothing ran and nothing changed: Docker's DNS or the server, for a moment
            say(f"… Odoo {unreached} before any test ran: running it once more")
            info["retried"] = unreached
            _quietly(host, plan.remove_container(tp))  # its name is free for the second run
            result, info["timed_out"] = _run_odoo(run_tp, host, console, budget=tp.timeout)
    except _SetupFailed as exc:
        session.failed = exc.message
        return _setup_failed(prepared, console, exc.message, exc.details)[0]
    except OdooAiError as exc:  # a command's timeout, no docker binary, ssh refused
        session.failed = exc.message
        return _setup_failed(prepared, console, exc.message)[0]
    return TestRunResult.of(result, info)


def _setup_failed(prepared: Prepared, console: Console, message: str,
                  details: str = "") -> tuple[TestRunResult, str]:
    console.print(f"error: {safe_text(message)}", markup=False, highlight=False, soft_wrap=True)
    return infra_result(prepared, message, details), message


def _why(exc: Exception) -> str:
    return exc.message if isinstance(exc, OdooAiError) else str(exc)


def _sayer(console: Console):
    def say(text: str) -> None:
        console.print(Text(f"· {safe_text(text)}", style="dim"), soft_wrap=True)
    return say


def _create_state(prepared: Prepared, tp: plan.TestProject, host: Host) -> None:
    # First the marker: the only folder the teardown deletes is one that carries it.
    host.write_private(marker_path(tp.state_dir), marker_text(tp.name, prepared.request.env))
    for path in tp.dirs:
        host.mkdir(path)
    host.write_private(tp.state_dir / APP_ENV, prepared.app_env_text)
    host.write_private(tp.stack.dotenv_path, prepared.dotenv_text)
    host.write_private(tp.override_path, plan.OVERRIDE_YAML)


def _write_fresh_files(prepared: Prepared, tp: plan.TestProject, host: Host) -> None:
    host.write_private(tp.stack.dotenv_path, prepared.dotenv_text)
    host.write_private(tp.override_path, plan.OVERRIDE_YAML)


def _start_db(tp: plan.TestProject, host: Host, say) -> None:
    started = time.monotonic()
    result = host.run(plan.up_db(tp), capture=True)
    if not result.ok:
        raise _SetupFailed(
            f"the test database did not start (docker compose up db exited {result.returncode}): "
            f"{_last_line(result.tail(20))}",
            details=result.tail(20),
        )
    say(f"database ready in {time.monotonic() - started:.1f}s")


def _ensure_image(tp: plan.TestProject, host: Host, say) -> str | None:
    """The image's id (`sha256:…`, None when docker did not say), pulled when missing."""
    present = host.run(plan.image_present(tp), capture=True)
    if present.ok:
        return _image_id(present.stdout)
    say(f"{tp.image} is not on this host: pulling it")
    pulled = host.run(plan.pull_image(tp), capture=True)
    if not pulled.ok:
        raise _SetupFailed(
            f"image {tp.image} is not on this host and could not be pulled: {_last_line(pulled.tail(20))}",
            details=pulled.tail(20),
        )
    again = host.run(plan.image_present(tp), capture=True)
    return _image_id(again.stdout) if again.ok else None


def _image_id(text: str) -> str | None:
    words = text.split()
    return words[0] if len(words) == 1 and words[0].startswith("sha256:") else None


def _run_odoo(tp: plan.TestProject, host: Host, console: Console,
              budget: float | None = None) -> tuple[RunResult, bool]:
    parser = LogParser()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    timed_out = False
    exit_code: int | None = None
    with ProgressPrinter(console) as progress:

        def on_line(line: str) -> None:
            if line.strip():
                tail.append(line)
            for event in parser.feed(line):
                progress.handle(event)

        try:
            exit_code = host.stream(plan.run_tests(tp), on_line)
        except CommandTimedOut:
            timed_out = True  # the compose client is killed; the container may live on
            _quietly(host, plan.remove_container(tp))
        except BaseException:
            _quietly(host, plan.remove_container(tp))
            raise
    result = parser.finish(exit_code)
    if timed_out:
        # The timeout explains the missing summary; the parser's guesses would only confuse.
        result.problems[:] = [p for p in result.problems if not _is_missing_summary(p)]
        result.problems.insert(0, Problem(
            "infra",
            f"the Odoo test run timed out after {budget or tp.timeout:g}s (--timeout) and was killed",
        ))
        result.status = RunStatus.ERROR
    elif result.status is RunStatus.ERROR and result.started_at is None and tail:
        # Odoo never logged a record: the entrypoint's or Compose's last words say why.
        result.problems.append(Problem(
            "note", f"last output of the test container: {_last_line(chr(10).join(tail))}",
            details="\n".join(tail),
        ))
    return result, timed_out


def unreached_db(result: RunResult) -> str | None:
    """Why a run that ran no test never reached PostgreSQL (None: it did, or tests ran)."""
    if result.status is not RunStatus.ERROR or result.tests:
        return None
    return unreachable_reason("\n".join(f"{p.message}\n{p.details or ''}" for p in result.problems))


def _is_missing_summary(problem: Problem) -> bool:
    return problem.kind == "infra" and problem.logger is None and "test summary" in problem.message


def _teardown(tp: plan.TestProject, host: Host, say) -> None:
    problems = []
    try:
        down = host.run(plan.down(tp), capture=True)
        if not down.ok:
            problems.append(f"docker compose down exited {down.returncode}: {_last_line(down.tail(5))}")
    except OdooAiError as exc:
        problems.append(exc.message)
    try:
        _remove_state_dir(tp, host)
    except OdooAiError as exc:
        problems.append(exc.message)
    for problem in problems:  # the verdict stays the tests' own; say what is left behind
        say(f"warning: cleanup of {tp.name} incomplete: {problem}")
    if problems:
        say(f"remove it with: {plan.down(tp).display()} && rm -rf {tp.state_dir}")


def _remove_state_dir(tp: plan.TestProject, host: Host) -> None:
    """The test project's folder, which execute() created and marked: deleted only while it
    carries the marker of this very project. On this machine also only while it is a real
    directory (stateroot.verify_marked_dir); on the Docker host over ssh the marker is read
    there first."""
    if not host.remote and not host.dry_run:
        remove_marked_tree(tp.state_dir, tp.name)
        return
    text = host.read_text(marker_path(tp.state_dir))
    if text is None:
        return  # never created, or gone already
    marker = parse_marker(text)
    if marker is None or marker.get("project") != tp.name:
        raise OdooAiError(f"{tp.state_dir} was not removed: its marker is not that of {tp.name}",
                          exit_code=ExitCode.INFRA)
    host.remove_tree(tp.state_dir)


def _quietly_rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _quietly(host: Host, command) -> None:
    try:
        host.run(command, capture=True)
    except OdooAiError:
        pass


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "(no output)"
