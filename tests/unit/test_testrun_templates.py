"""Cached test databases (`test run` starting from a template of the dependencies): the
probe of an image, which modules a template holds, its key, the SQL and Compose files, and
the use-case against a fake engine that keeps a templates server's databases: a first run
builds the template, a second clones it, a changed dependency rebuilds it, --no-cache leaves
it alone, old ones are pruned. The real engine: tests/integration/test_test_run_templates.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from odoo_ai.config.stack import load_stack
from odoo_ai.hosts import LocalHost
from odoo_ai.plan import testrun as plan
from odoo_ai.runners.base import Command, Result
from odoo_ai.testing import run as run_uc
from odoo_ai.testing import templates

REPO = Path(__file__).resolve().parents[2]
PASS_LOG = REPO / "tests/fixtures/odoo18-logs/20-test-acc2-i-base-web-tags-web-TestWebController-PASS.log"
SUM = {name: f"{i:064x}" for i, name in enumerate(
    ["base", "web", "dep", "dep2", "mod", "other", "bridge", "dep_bridge", "mod_user", "sale"], start=1)}


def info(*depends: str, auto: bool | tuple[str, ...] = False, installable: bool = True) -> plan.ModuleInfo:
    return plan.ModuleInfo(depends=tuple(depends), auto_install=auto, installable=installable)


MODULES = {
    "base": info(),
    "web": info("base", auto=True),
    "sale": info("base"),  # in the image, never needed
    "dep": info("base"),
    "dep2": info("dep"),
    "mod": info("dep2"),
    "other": info("dep"),
    "mod_user": info("mod"),  # depends on a tested module
    "bridge": info("mod", "web", auto=True),  # auto-installed with the tested module
    "dep_bridge": info("dep", "web", auto=True),  # auto-installed with the dependencies
}


def facts(**sums: str) -> plan.ImageFacts:
    return plan.ImageFacts(odoo="a" * 64, modules=dict(MODULES), checksums={**SUM, **sums})


# ---------------------------------------------------------------- the probe


def run_probe(root: Path) -> plan.ImageFacts:
    """PROBE_SCRIPT as the image runs it, on a fake image tree under `root`."""
    script = plan.PROBE_SCRIPT.replace('"/opt/odoo/', f'"{root}/opt/odoo/').replace('"/odoo', f'"{root}/odoo')
    proc = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return plan.parse_probe(proc.stdout)


def image_tree(root: Path) -> None:
    addons = {
        "odoo/odoo/addons/base": "{'name': 'base'}",
        "odoo/addons/web": "{'depends': ['base'], 'auto_install': True}",
        "opt/odoo/custom-addons/mod": "{'depends': ['web'], 'auto_install': ['web'], 'installable': True}",
        "opt/odoo/custom-addons/web": "{'depends': ['base', 'x']}",  # before /odoo/addons (addons_path)
        "opt/odoo/custom-addons/base": "{'depends': ['nope']}",  # odoo/odoo/addons always comes first
        "opt/odoo/custom-addons/old": "{'installable': False}",
        "opt/odoo/custom-addons/broken": "{not a manifest",
    }
    for path, manifest in addons.items():
        (root / path).mkdir(parents=True)
        (root / path / "__manifest__.py").write_text(manifest)
    (root / "odoo/odoo/models.py").write_text("# the ORM\n")
    (root / "odoo/odoo-bin").write_text("#!/usr/bin/env python3\n")
    (root / "opt/odoo/addon-checksums.json").write_text(json.dumps({"base": "1" * 64, "mod": "2" * 64}))
    (root / "opt/odoo/addons.sha256").write_text("3" * 64 + "\n")


def test_the_probe_reads_manifests_in_odoos_order_checksums_and_the_odoo_identity(tmp_path) -> None:
    image_tree(tmp_path)
    found = run_probe(tmp_path)
    assert found.modules["web"] == plan.ModuleInfo(depends=("base", "x"))  # the custom one
    assert found.modules["base"] == plan.ModuleInfo()
    assert found.modules["mod"] == plan.ModuleInfo(depends=("web",), auto_install=("web",))
    assert found.modules["old"].installable is False and found.modules["broken"].installable is False
    assert found.checksums == {"base": "1" * 64, "mod": "2" * 64} and found.addons_hash == "3" * 64
    # The identity is the framework's: addons, .pyc and __pycache__ do not count; a file does.
    before = found.odoo
    (tmp_path / "odoo/odoo/addons/base/models.py").write_text("changed")
    (tmp_path / "odoo/odoo/__pycache__").mkdir()
    (tmp_path / "odoo/odoo/__pycache__/models.cpython-311.pyc").write_bytes(b"\0")
    assert run_probe(tmp_path).odoo == before
    (tmp_path / "odoo/odoo/models.py").write_text("# the ORM, changed\n")
    assert run_probe(tmp_path).odoo != before


def test_an_image_without_checksums_has_none(tmp_path) -> None:
    image_tree(tmp_path)
    (tmp_path / "opt/odoo/addon-checksums.json").unlink()
    found = run_probe(tmp_path)
    assert found.checksums is None
    assert plan.plan_template(found, ["mod"], without_demo="all").reason.startswith("the image carries no per-addon")


@pytest.mark.parametrize("text", ["", "{}", '{"probe": 1}', '{"probe": 1, "odoo": "x", "modules": {}}', "[1]"])
def test_a_bad_probe_answer_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        plan.parse_probe(text)


# ---------------------------------------------------------------- which modules, which key


def test_the_template_holds_the_dependencies_not_the_tested_modules_nor_their_users() -> None:
    tp = plan.plan_template(facts(), ["mod", "other"], without_demo="all")
    assert tp.reason is None
    assert tp.modules == ("base", "dep", "dep2")  # -i of the build
    # What that installs: web (auto with base) and dep_bridge (auto with dep + web), never
    # `bridge` (it needs the tested mod), mod_user, or sale.
    assert tp.installed == ("base", "dep", "dep2", "dep_bridge", "web")
    assert tp.database == f"tmpl_{tp.key[:32]}" and re.fullmatch(r"[0-9a-f]{64}", tp.key)


def test_a_tested_module_that_others_tested_depend_on_stays_out() -> None:
    # mod_user depends on mod: with both tested, mod is not a dependency to pre-install.
    tp = plan.plan_template(facts(), ["mod_user", "mod"], without_demo="all")
    assert "mod" not in tp.installed and tp.modules == ("base", "dep", "dep2")


def test_the_key_depends_on_what_the_template_holds_only() -> None:
    key = plan.plan_template(facts(), ["mod", "other"], without_demo="all").key
    same = [
        plan.plan_template(facts(mod="f" * 64), ["mod", "other"], without_demo="all"),  # a tested module changed
        plan.plan_template(facts(sale="f" * 64), ["mod", "other"], without_demo="all"),  # an unrelated one
        plan.plan_template(facts(), ["other", "mod"], without_demo="all"),  # the order
    ]
    assert {t.key for t in same} == {key}
    changed = [
        plan.plan_template(facts(dep="f" * 64), ["mod", "other"], without_demo="all"),  # a dependency
        plan.plan_template(facts(dep_bridge="f" * 64), ["mod", "other"], without_demo="all"),  # an auto-installed one
        plan.plan_template(facts(), ["mod", "other"], without_demo="False"),  # demo data
        plan.plan_template(plan.ImageFacts(odoo="b" * 64, modules=dict(MODULES), checksums=dict(SUM)),
                           ["mod", "other"], without_demo="all"),  # the Odoo source
    ]
    assert len({t.key for t in changed} | {key}) == len(changed) + 1


def test_shards_share_the_template_of_the_whole_list(tmp_path) -> None:
    # The run plans with all its modules (before sharding): every shard gets the same key.
    assert plan.plan_template(facts(), ["other"], without_demo="all").key != \
        plan.plan_template(facts(), ["mod", "other"], without_demo="all").key


@pytest.mark.parametrize(("tested", "tags", "reason"), [
    (["base"], None, "base is a tested module"),
    (["dep"], None, None),
    (["mod"], "/mod", None),
    (["mod"], "/mod:TestX.test_y,-/web", None),
    (["mod"], "/sale", None),  # not installed in the template: its tests run as they would
    (["mod"], "/dep", "--tags '/dep' may select"),
    (["mod"], "at_install", "--tags 'at_install' may select"),
    (["mod"], "-slow", "--tags '-slow' may select"),  # only exclusions: Odoo adds +standard
    (["web_missing"], None, None),  # unknown: Odoo says so in the run
])
def test_when_no_template_can_be_used(tested, tags, reason) -> None:
    tp = plan.plan_template(facts(), tested, without_demo="all", test_tags=tags)
    assert (tp.reason or "").startswith(reason or "") and (tp.reason is None) == (reason is None)


def test_a_tested_module_the_dependencies_would_auto_install_forbids_a_template() -> None:
    modules = {**MODULES, "auto_mod": info("dep", auto=True)}
    found = plan.ImageFacts(odoo="a" * 64, modules=modules, checksums={**SUM, "auto_mod": "9" * 64})
    # Testing auto_mod and other: installing dep (other's dependency) would install auto_mod.
    assert "would also install auto_mod" in plan.plan_template(found, ["auto_mod", "other"], without_demo="all").reason


def test_missing_or_broken_dependencies_and_checksums() -> None:
    modules = {**MODULES, "needs_ghost": info("ghost"), "needs_old": info("old"), "old": info(installable=False)}
    found = plan.ImageFacts(odoo="a" * 64, modules=modules, checksums=dict(SUM))
    assert plan.plan_template(found, ["needs_ghost"], without_demo="all").reason == "not in the image: ghost (a dependency)"
    assert plan.plan_template(found, ["needs_old"], without_demo="all").reason == "dependency not installable: old"
    unsummed = plan.ImageFacts(odoo="a" * 64, modules=dict(MODULES), checksums={"base": "1" * 64})
    assert plan.plan_template(unsummed, ["mod"], without_demo="all").reason.startswith("no checksum in the image for dep")


def test_auto_install_lists_and_empty_lists() -> None:
    modules = {"base": info(), "a": info("base"), "b": info("base"),
               "ab": info("a", "b", auto=("a",)),  # installed with a, pulls b in
               "always": info(auto=())}
    assert plan.installed_with({"a"}, modules) == {"base", "a", "ab", "b", "always"}


def test_prune_keeps_the_most_recently_used() -> None:
    entries = {"tmpl_a": 10.0, "tmpl_b": 30.0, "tmpl_c": 20.0, "tmpl_d": 5.0}
    assert plan.templates_to_prune(entries, keep=2) == ["tmpl_a", "tmpl_d"]
    assert plan.templates_to_prune(entries, keep=1, current="tmpl_d") == ["tmpl_a", "tmpl_b", "tmpl_c"]
    assert plan.templates_to_prune(entries, keep=10) == []


# ---------------------------------------------------------------- SQL and files


def test_sql_names_only_test_and_template_databases() -> None:
    sql = plan.clone_sql("tmpl_" + "a" * 32, "test_0badc0de")
    assert sql.startswith(f'CREATE DATABASE "test_0badc0de" TEMPLATE "tmpl_{"a" * 32}";\n\\connect test_0badc0de\n')
    assert "database.uuid" in sql and "database.secret" in sql
    assert 'DROP DATABASE IF EXISTS "test_0badc0de"' in plan.drop_database_sql("test_0badc0de")
    assert "ALLOW_CONNECTIONS false" in plan.seal_template_sql("tmpl_" + "b" * 32)
    for bad in ("postgres", "test_x; DROP", 'tmpl_"', "opw_live"):
        with pytest.raises(ValueError):
            plan.drop_database_sql(bad)
    assert plan.parse_databases(f"tmpl_{'a' * 32}|{plan.TEMPLATE_COMMENT}\ntest_0badc0de|\npostgres|\n") == {
        f"tmpl_{'a' * 32}": plan.TEMPLATE_COMMENT, "test_0badc0de": ""}


class OverrideLoader(yaml.SafeLoader):
    pass


OverrideLoader.add_constructor("!override", lambda loader, node: loader.construct_sequence(node))


def test_the_server_keeps_its_data_in_the_named_volume_and_runs_join_its_network(stack, tmp_path) -> None:
    server = plan.plan_server(stack, state_dir=tmp_path / "run", image="i:t", secret_names=list(templates.DB_SECRETS))
    assert server.name == server.volume == "opw-dev-test-templates" and server.network == "opw-dev-test-templates_default"
    assert server.state_dir == tmp_path / "run" / plan.SERVER_DIR
    assert server.stack.compose_files[-1] == server.override_path
    doc = yaml.load(plan.server_override_yaml(server.volume), Loader=OverrideLoader)  # noqa: S506 - our own text
    assert doc["services"]["db"]["volumes"] == ["templates:/var/lib/postgresql/data"]
    assert doc["volumes"]["templates"] == {"name": "opw-dev-test-templates"}
    assert doc["services"]["db"]["restart"] == "no"
    run = yaml.load(plan.cached_override_yaml(server.network), Loader=OverrideLoader)  # noqa: S506
    assert run["services"]["script-runner"]["networks"] == ["templates"]
    assert run["networks"]["templates"] == {"external": True, "name": "opw-dev-test-templates_default"}
    long = plan.templates_project_name("p" * 70)
    assert len(long) <= 63 and long.endswith("-test-templates")


# ---------------------------------------------------------------- the use-case, a fake engine


@pytest.fixture
def stack(repo: Path, home: Path):
    config = repo / "docker" / "config"
    (config / "dev.env").write_text("ODOO_IMAGE=odoo-ai-test/odoo\nODOO_DB_IMAGE=odoo-ai-test/postgres:15\n"
                                    "ODOO_TEST_TEMPLATES_KEEP=2\n")
    return load_stack("dev", repo_root=repo, config_dir=config, home=home)


class Engine:
    """Docker as `test run` sees it: images (their probe answers), the templates server and its
    databases, one-off Odoo containers (a template build installs, a test run replays a log)."""

    dry_run = False

    def __init__(self, probes: dict[str, plan.ImageFacts]):
        self.probes = probes
        self.databases: dict[str, str] = {}  # name -> comment
        self.installed: dict[str, list[str]] = {}
        self.server_running = False
        self.commands: list[tuple[str, Command]] = []
        self.build_rc = 0
        self.build_lines: list[str] = []

    @staticmethod
    def kind(command: Command) -> str:
        argv = command.argv
        project = argv[argv.index("--project-name") + 1] if "--project-name" in argv else ""
        server = project.endswith(plan.TEMPLATES_SUFFIX)
        if "inspect" in argv:
            return "inspect"
        if "--entrypoint" in argv:
            return "probe"
        if "exec" in argv:
            return "psql"
        if "up" in argv:
            return "server-up" if server else "up"
        if "down" in argv:
            return "server-down" if server else "down"
        if "run" in argv:
            return "build" if any(a.endswith("-template") for a in argv) else "run"
        return argv[1]

    def kinds(self) -> list[str]:
        return [k for k, _ in self.commands]

    def run(self, command: Command, *, capture: bool = False) -> Result:
        kind = self.kind(command)
        self.commands.append((kind, command))
        if kind == "inspect":
            return Result(0, f"sha256:{hash(command.argv[-1]) & (2**64 - 1):064x}\n")
        if kind == "probe":
            found = self.probes[command.argv[-2]]
            doc = {"probe": 1, "odoo": found.odoo, "checksums": found.checksums, "addons_hash": None,
                   "modules": {n: {"depends": list(i.depends), "installable": i.installable,
                                   "auto_install": list(i.auto_install) if isinstance(i.auto_install, tuple)
                                   else i.auto_install} for n, i in found.modules.items()}}
            return Result(0, json.dumps(doc))
        if kind == "server-up":
            self.server_running = True
        if kind == "server-down":
            self.server_running = False
            if "--volumes" in command.argv:
                self.databases.clear()
        if kind == "psql":
            return self.psql(command)
        return Result(0)

    def psql(self, command: Command) -> Result:
        assert self.server_running, "psql on a stopped server"
        sql = (command.stdin or b"").decode()
        database = command.argv[command.argv.index("-d") + 1]
        out: list[str] = []
        for statement in [s.strip() for s in sql.split(";") if s.strip()]:
            if m := re.match(r'CREATE DATABASE "(\w+)" TEMPLATE "(\w+)"', statement):
                if m.group(2) not in self.databases:
                    return Result(1, "", f'ERROR:  template database "{m.group(2)}" does not exist')
                self.databases[m.group(1)] = ""
                self.installed[m.group(1)] = list(self.installed.get(m.group(2), []))
            elif m := re.match(r'DROP DATABASE IF EXISTS "(\w+)"', statement):
                self.databases.pop(m.group(1), None)
            elif m := re.match(r"COMMENT ON DATABASE \"(\w+)\" IS '(.*)'", statement):
                self.databases[m.group(1)] = m.group(2)
            elif statement.startswith("SELECT datname"):
                out += [f"{n}|{c}" for n, c in sorted(self.databases.items())]
            elif statement.startswith("SELECT name FROM ir_module_module"):
                out += self.installed[database]
        return Result(0, "\n".join(out) + "\n")

    def stream(self, command: Command, on_line) -> int:
        kind = self.kind(command)
        self.commands.append((kind, command))
        argv = command.argv
        database = argv[argv.index("-d") + 1]
        state = Path(argv[argv.index("--env-file") + 1]).parent
        if kind == "build":
            for line in self.build_lines:
                on_line(line)
            if self.build_rc == 0:
                self.databases[database] = ""
                self.installed[database] = ["base", *argv[argv.index("-i") + 1].split(",")]
                filestore = state / "filestore" / "filestore" / database / "ab"
                filestore.mkdir(parents=True)
                (filestore / "ab12").write_text("an attachment of the template")
            return self.build_rc
        assert database in self.databases or kind == "run"
        for line in PASS_LOG.read_text(encoding="utf-8").splitlines():
            on_line(line)
        return 0

    def note(self, text: str) -> None:
        pass


def console() -> Console:
    return Console(stderr=True, highlight=False, width=200, force_terminal=False)


def test_run(stack, tmp_path: Path, engine: Engine, *, modules: str = "mod,other", home: Path | None = None,
             look=None, **kw):
    environ = {"HOME": str(home or tmp_path / "home")}
    request = run_uc.RunRequest(image="reg/app-script-runner:1", modules=modules, **kw)
    prepared = run_uc.prepare(stack, request, environ=environ, tmp_root=tmp_path)
    if look is not None:
        engine.on_test = look
    result = run_uc.execute(prepared, LocalHost(engine), console())
    return prepared, result


test_run.__test__ = False  # a helper, not a test


def cache_dir(home: Path) -> Path:
    return home / ".cache" / "odoo-ai" / "test-templates" / "opw-dev"


def test_a_first_run_builds_the_template_and_a_second_clones_it(stack, tmp_path, home) -> None:
    engine = Engine({"reg/app-script-runner:1": facts()})
    prepared, first = test_run(stack, tmp_path, engine, home=home)
    template = first.run["template"]
    assert (template["used"], template["created"]) == (True, True)
    assert template["modules"] == ["base", "dep", "dep2"] and template["reason"] is None
    key, name = template["key"], template["database"]
    # probe; server: a new one (down --volumes of any older one), up; templates: drop a half
    # built one, build, list modules, seal, clone, prune; tests; drop the clone, stop the server.
    assert engine.kinds() == ["inspect", "probe", "server-down", "server-up", "psql", "build", "psql", "psql",
                              "psql", "psql", "run", "psql", "psql", "server-down", "down"]
    assert set(engine.databases) == {name}  # the run's database dropped, the template kept
    assert engine.databases[name] == plan.TEMPLATE_COMMENT and not engine.server_running
    cache = cache_dir(home)
    assert (cache / "filestore" / name / "ab" / "ab12").is_file()
    entry = json.loads((cache / "templates" / f"{key}.json").read_text())
    assert entry["database"] == name and entry["installed"] == ["base", "base", "dep", "dep2"]
    assert not prepared.project.state_dir.exists()

    engine.commands.clear()
    seen: dict[str, bool] = {}
    original = engine.stream

    def look(command, on_line):
        if engine.kind(command) == "run":
            state = prepared2_state()
            seen["filestore"] = (state / "filestore" / "filestore").is_dir() and any(
                p.name == "ab12" for p in (state / "filestore" / "filestore").rglob("*"))
            seen["override"] = "external: true" in (state / plan.OVERRIDE_FILE).read_text()
        return original(command, on_line)

    engine.stream = look
    runs = sorted(tmp_path.glob("odoo-ai-*"))

    def prepared2_state() -> Path:
        return next(p for p in tmp_path.glob("odoo-ai-*") if p not in runs)

    _, second = test_run(stack, tmp_path, engine, home=home)
    assert second.status.value == "passed"
    assert second.run["template"]["used"] is True and second.run["template"]["created"] is False
    assert second.run["template"]["key"] == key
    assert "build" not in engine.kinds() and "probe" not in engine.kinds()  # the probe is cached per image id
    assert seen == {"filestore": True, "override": True}
    assert set(engine.databases) == {name}


def test_a_changed_dependency_builds_a_new_template_and_old_ones_are_pruned(stack, tmp_path, home) -> None:
    engine = Engine({"reg/app-script-runner:1": facts()})
    first = test_run(stack, tmp_path, engine, home=home)[1].run["template"]
    keys = [first["key"]]
    for variant in ("c" * 64, "d" * 64):  # ODOO_TEST_TEMPLATES_KEEP=2
        engine.probes["reg/app-script-runner:1"] = facts(dep=variant)
        (cache_dir(home) / "probes").exists() and [p.unlink() for p in (cache_dir(home) / "probes").iterdir()]
        template = test_run(stack, tmp_path, engine, home=home)[1].run["template"]
        assert template["created"] is True and template["key"] not in keys
        keys.append(template["key"])
    names = {plan.template_db_name(k) for k in keys[1:]}
    assert set(engine.databases) == names  # the first one pruned, with its files
    assert sorted(p.stem for p in (cache_dir(home) / "templates").iterdir()) == sorted(keys[1:])
    assert {p.name for p in (cache_dir(home) / "filestore").iterdir()} == names


def test_no_cache_runs_a_fresh_database_and_leaves_the_templates_alone(stack, tmp_path, home) -> None:
    engine = Engine({"reg/app-script-runner:1": facts()})
    test_run(stack, tmp_path, engine, home=home)
    before = (dict(engine.databases), sorted(p.relative_to(home) for p in home.rglob("*")))
    engine.commands.clear()
    _, result = test_run(stack, tmp_path, engine, home=home, no_cache=True)
    assert result.run["template"] == templates.TemplateUse(reason="--no-cache").to_dict()
    assert engine.kinds() == ["inspect", "up", "run", "down"]
    assert (dict(engine.databases), sorted(p.relative_to(home) for p in home.rglob("*"))) == before


def test_a_failing_build_falls_back_to_a_fresh_database(stack, tmp_path, home) -> None:
    engine = Engine({"reg/app-script-runner:1": facts()})
    engine.build_lines = ["2026-11-25 23:24:57,981 7 ERROR tmpl odoo.modules.loading: something broke"]
    prepared, result = test_run(stack, tmp_path, engine, home=home)
    template = result.run["template"]
    assert template["used"] is False and "building the template failed" in template["reason"]
    assert result.status.value == "passed"  # the fresh database's verdict
    kinds = engine.kinds()
    # The half-built template dropped, the server released at once, then a fresh database.
    assert kinds[kinds.index("build") + 1:] == ["psql", "psql", "server-down", "up", "run", "down"]
    assert engine.databases == {} and not (cache_dir(home) / "templates").exists()
    assert "--env-file" in engine.commands[kinds.index("up")][1].argv
    assert not prepared.project.state_dir.exists()


def test_without_a_home_or_with_dependency_tags_there_is_no_template(stack, tmp_path, home) -> None:
    engine = Engine({"reg/app-script-runner:1": facts()})
    request = run_uc.RunRequest(image="reg/app-script-runner:1", modules="mod")
    prepared = run_uc.prepare(stack, request, environ={}, tmp_root=tmp_path)
    assert prepared.cache is None and prepared.cache_reason.startswith("no cache directory")
    _, result = test_run(stack, tmp_path, engine, home=home, modules="mod", tags="at_install")
    assert result.run["template"]["reason"].startswith("--tags 'at_install' may select")
    assert "build" not in engine.kinds() and "server-up" not in engine.kinds()


def test_keep_db_keeps_the_clone_and_the_server_running(stack, tmp_path, home) -> None:
    engine = Engine({"reg/app-script-runner:1": facts()})
    prepared, result = test_run(stack, tmp_path, engine, home=home, keep_db=True)
    tp = prepared.project
    assert engine.databases[tp.database] == plan.KEPT_COMMENT and engine.server_running
    assert result.kept["server"] == "opw-dev-test-templates"
    assert result.kept["cleanup"][0].endswith(f"dropdb -U odoo --if-exists {tp.database}")
    assert "exec db psql -U odoo -d " + tp.database in result.kept["psql"]
    # The next run (not kept) leaves the server up while the kept database is there.
    engine.commands.clear()
    test_run(stack, tmp_path, engine, home=home)
    assert "server-down" not in engine.kinds() and engine.server_running
    # A database a dead run left (no comment) is dropped by the last run out.
    del engine.databases[tp.database]
    engine.databases["test_deadbeef"] = ""
    test_run(stack, tmp_path, engine, home=home)
    assert "test_deadbeef" not in engine.databases and not engine.server_running


def test_a_new_database_image_resets_the_server(stack, tmp_path, home, repo) -> None:
    engine = Engine({"reg/app-script-runner:1": facts()})
    test_run(stack, tmp_path, engine, home=home)
    assert engine.databases
    (repo / "docker/config/dev.env").write_text("ODOO_IMAGE=odoo-ai-test/odoo\nODOO_DB_IMAGE=postgres:17\n")
    other = load_stack("dev", repo_root=repo, config_dir=repo / "docker/config", home=home)
    engine.commands.clear()
    _, result = test_run(other, tmp_path, engine, home=home)
    assert engine.kinds()[:4] == ["inspect", "server-down", "server-up", "psql"]
    assert "--volumes" in engine.commands[1][1].argv
    assert result.run["template"]["created"] is True
    server = json.loads((cache_dir(home) / "server.json").read_text())
    assert server["identity"]["db_image"] == "postgres:17"


def test_dry_run_is_the_real_run_against_the_dry_connector(stack, tmp_path, home, capsys) -> None:
    """The real code path: the image is read for real (through the inner host), the probe,
    server, psql, template build and tests are assumed and said so; nothing is written."""
    import sys

    engine = Engine({"reg/app-script-runner:1": facts()})
    request = run_uc.RunRequest(image="reg/app-script-runner:1", modules="mod")
    prepared = run_uc.prepare(stack, request, environ={"HOME": str(home)}, tmp_root=tmp_path)
    _, dry = run_uc.dry_run(prepared, LocalHost(engine), console(), out=sys.stdout)
    out = capsys.readouterr().out
    assert engine.kinds() == ["inspect"]  # the only command really run: a read
    assert [c.purpose for c in dry.commands] == [
        "image_present", "probe_image", "server_down", "server_up", "server_psql",  # drop a half-built template
        "build_template", "server_psql", "server_psql", "server_psql", "server_psql",  # installed, seal, clone, prune
        "run_tests", "server_psql", "server_psql", "server_down", "down"]  # drop the clone, list, stop, down
    assert "--entrypoint python3 reg/app-script-runner:1 -" in out
    assert "#   read: reg/app-script-runner:1 is on the host" in out
    assert "#   assume: Odoo runs the tests" in out and "#   sql: CREATE DATABASE" in out
    assert f"# write {prepared.project.stack.dotenv_path} (0600" in out
    assert "# flock shared " in out and "# rm -r " in out
    assert dry.reads and len(dry.assumptions) >= 4
    assert list(home.iterdir()) == [] and list(tmp_path.glob("odoo-ai-*")) == []


def test_dry_run_uses_a_probe_cached_for_the_image(stack, tmp_path, home, capsys) -> None:
    import sys

    engine = Engine({"reg/app-script-runner:1": facts()})
    test_run(stack, tmp_path, engine, modules="mod", home=home)  # a real run caches the probe and the template
    engine.commands.clear()
    request = run_uc.RunRequest(image="reg/app-script-runner:1", modules="mod")
    prepared = run_uc.prepare(stack, request, environ={"HOME": str(home)}, tmp_root=tmp_path)
    before = sorted(p for p in home.rglob("*"))
    _, dry = run_uc.dry_run(prepared, LocalHost(engine), console(), out=sys.stdout)
    out = capsys.readouterr().out
    purposes = [c.purpose for c in dry.commands]
    assert "probe_image" not in purposes and "build_template" not in purposes  # read from the cache
    assert "#   sql: CREATE DATABASE" in out and "TEMPLATE" in out
    assert engine.kinds() == ["inspect"] and sorted(home.rglob("*")) == before


# ---------------------------------------------------------------- `test templates`


def test_templates_lists_and_removes_them_unless_a_run_uses_them(stack, tmp_path, home) -> None:
    engine = Engine({"reg/app-script-runner:1": facts()})
    first = test_run(stack, tmp_path, engine, home=home)[1].run["template"]
    cache = templates.plan_cache(stack, state_dir=tmp_path / "t", image="x:1", environ={"HOME": str(home)}, keep=2)
    doc = templates.describe(cache)
    assert doc["server"] == doc["volume"] == "opw-dev-test-templates" and doc["keep"] == 2
    assert [(t["database"], t["key"], t["modules"]) for t in doc["templates"]] == [
        (first["database"], first["key"], ["base", "dep", "dep2"])]
    assert doc["server_made_for"]["db_image"] == "odoo-ai-test/postgres:15"

    in_use = templates.Flock(cache.root / "server.lock")
    assert in_use.acquire(exclusive=False, timeout=0)
    engine.commands.clear()
    with pytest.raises(templates.TemplatesInUse):
        templates.remove(cache, engine, {})
    assert engine.commands == [] and cache.root.is_dir()
    in_use.release()

    templates.remove(cache, engine, {})
    assert engine.kinds() == ["server-down"] and "--volumes" in engine.commands[0][1].argv
    assert not cache.root.exists() and engine.databases == {}


def test_templates_command_line(repo, home) -> None:
    from typer.testing import CliRunner

    from odoo_ai.cli.testing import app

    config = repo / "docker" / "config"
    (config / "dev.env").write_text("ODOO_IMAGE=odoo-ai-test/odoo\n")
    result = CliRunner(env={"HOME": str(home), "XDG_CACHE_HOME": None}).invoke(
        app, ["templates", "dev", "--repo", str(repo), "--config-dir", str(config), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["templates"] == [] and doc["cache_dir"] == str(home / ".cache/odoo-ai/test-templates/opw-dev")
    assert list(home.iterdir()) == []  # listing writes nothing


def test_the_timeout_covers_the_template_build_and_the_tests(stack, tmp_path, home) -> None:
    import time

    engine = Engine({"reg/app-script-runner:1": facts()})
    original = engine.stream

    def slow_build(command, on_line):
        if engine.kind(command) == "build":
            time.sleep(1.5)
        return original(command, on_line)

    engine.stream = slow_build
    _, result = test_run(stack, tmp_path, engine, home=home, timeout=10)
    build = next(c for k, c in engine.commands if k == "build")
    tests = next(c for k, c in engine.commands if k == "run")
    assert build.timeout == 10 and 7.5 < tests.timeout <= 8.5
    assert result.run["timeout"] == 10


def test_the_probes_of_old_images_are_pruned(tmp_path) -> None:
    import os

    for i in range(templates.PROBES_KEPT + 5):
        path = tmp_path / f"{i:064x}.json"
        path.write_text("{}")
        os.utime(path, (1000 + i, 1000 + i))
    templates._keep_newest(tmp_path, templates.PROBES_KEPT)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i:064x}.json" for i in range(5, templates.PROBES_KEPT + 5)]
