"""Declared queue and task names never collide with the names the generated modules use themselves
(imports, BROKERS, RUNTIME, builtins they read) nor with each other: the package imports for any
valid spec, and `spec.names.GENERATED_NAMES` lists exactly what the templates reserve."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.codegen.render import render
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec
from bootstrap.spec.names import GENERATED_NAMES, generated_name_clashes, python_identifier

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "config"
ENV = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}

# Names a template used or could plausibly use at module level: the generated modules' own globals
# (before and after this fix), their sibling modules, helpers and the builtins they read.
RISKY_NAMES = [
    "brokers",
    "register-task",
    "make-broker",
    "stream-broker",
    "runtime",
    "contract",
    "spec",
    "tasks",
    "scheduler",
    "worker",
    "dict",
    "str",
    "any",
    "sys",
    "annotations",
]


def spec_with_names(tmp_path: Path, names: list[str]) -> Spec:
    """The shipped config with one more queue per name, each with a task of the same name (task names
    are global; the shipped tasks keep theirs)."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    queues = config / "queues.yaml"
    text = queues.read_text()
    assert "\nqueues:\n" in text
    # First, so the shipped queues' brokers and tasks are bound after them in each module.
    added = "".join(f"  {name}:\n    tasks:\n      {name}: {{}}\n" for name in names)
    queues.write_text(text.replace("\nqueues:\n", f"\nqueues:\n{added}", 1))
    return load_spec(config, env=ENV)


def import_package(spec: Spec, tmp_path: Path) -> list[str]:
    """Write the rendered package under tmp_path and import it in a fresh interpreter; the probe
    prints, per queue, the broker its module attribute names and the tasks registered on it."""
    package = tmp_path / "out" / spec.codegen.package
    package.mkdir(parents=True)
    for name, text in render(spec).items():
        (package / name).write_text(text)
    probe = (
        "import sys\n"
        f"from {spec.codegen.package} import brokers, scheduler, tasks\n"
        "for queue, broker in sorted(brokers.BROKERS.items()):\n"
        "    attribute = queue.replace('-', '_')\n"
        "    assert getattr(brokers, attribute) is broker, queue\n"
        "    for name in sorted(broker.get_all_tasks()):\n"
        "        assert getattr(tasks, name.replace('-', '_')).broker is broker, name\n"
        "        print(queue, name)\n"
        "print(type(scheduler.scheduler).__name__)\n"
    )
    env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path / "out"), str(REPO)])}
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout.splitlines()


def expected_lines(spec: Spec) -> list[str]:
    pairs = sorted((queue.name, task.name) for queue in spec.queues for task in queue.tasks)
    return [f"{queue} {task}" for queue, task in pairs] + ["SlotScheduler"]


def test_the_shipped_config_generates_a_package_that_imports(tmp_path: Path) -> None:
    spec = load_spec(CONFIG, env=ENV)
    assert import_package(spec, tmp_path) == expected_lines(spec)


def test_queues_and_tasks_named_like_generated_globals_import_and_wire_correctly(tmp_path: Path) -> None:
    # One package holding every risky name, as a queue and as a task of that queue.
    spec = spec_with_names(tmp_path, RISKY_NAMES)
    assert {q.name for q in spec.queues} >= set(RISKY_NAMES)
    assert import_package(spec, tmp_path) == expected_lines(spec)


@pytest.mark.parametrize("name", ["brokers", "register-task", "make-broker"])
def test_each_name_that_used_to_crash_the_import_alone(tmp_path: Path, name: str) -> None:
    # The repro: a single task named like a tasks.py global, on a queue of its own.
    spec = spec_with_names(tmp_path, [name])
    assert import_package(spec, tmp_path) == expected_lines(spec)


# --- the reserved names are what the templates really use ---------------------------------------------


def module_names(tree: ast.Module, declared: set[str]) -> tuple[set[str], set[str]]:
    """Names the template's own code binds at module level, and names it reads at module level
    after the first declared name is bound (a declared name equal to one of those would shadow it)."""
    bound: set[str] = set()
    late_reads: set[str] = set()
    declared_seen = False
    for statement in tree.body:
        targets: set[str] = set()
        if isinstance(statement, ast.Import | ast.ImportFrom):
            targets = {(a.asname or a.name).split(".")[0] for a in statement.names}
        elif isinstance(statement, ast.Assign | ast.AnnAssign):
            nodes = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            targets = {n.id for t in nodes for n in ast.walk(t) if isinstance(n, ast.Name)}
        reads = {n.id for n in ast.walk(statement) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if declared_seen:
            late_reads |= reads - declared
        bound |= targets - declared
        declared_seen = declared_seen or bool(targets & declared)
    return bound, late_reads


def test_generated_names_list_every_name_the_templates_bind_or_read_late(tmp_path: Path) -> None:
    spec = spec_with_names(tmp_path, RISKY_NAMES)
    files = render(spec)
    declared = {python_identifier(q.name) for q in spec.queues} | {
        python_identifier(t.name) for q in spec.queues for t in q.tasks
    }
    for module, reserved in GENERATED_NAMES.items():
        bound, late_reads = module_names(ast.parse(files[module], module), declared)
        assert bound | late_reads == reserved, module


def test_no_valid_queue_or_task_name_can_reach_a_reserved_name() -> None:
    # Declared names are lowercase kebab; every reserved name is private (`_x`) or has a capital.
    # (Builtins such as `dict` are read only before any declared name is bound: not reserved.)
    for module, reserved in GENERATED_NAMES.items():
        for name in reserved:
            assert name.startswith("_") or name != name.lower(), f"{module}: {name}"


# --- the check itself, for names the schema may allow one day -------------------------------------


def test_a_reserved_name_is_a_clash() -> None:
    clashes = generated_name_clashes("brokers.py", ["alpha", "BROKERS", "_make_broker"])
    uses = "in the generated brokers.py, which uses that name itself"
    assert clashes == [
        ("BROKERS", f"'BROKERS' becomes 'BROKERS' {uses}"),
        ("_make_broker", f"'_make_broker' becomes '_make_broker' {uses}"),
    ]


def test_two_names_that_become_the_same_identifier_clash() -> None:
    clashes = generated_name_clashes("tasks.py", ["a-b", "c", "a_b"])
    assert clashes == [("a_b", "'a_b' and 'a-b' both become 'a_b' in the generated tasks.py")]


def test_distinct_names_do_not_clash() -> None:
    assert generated_name_clashes("tasks.py", ["brokers", "register-task", "a-b", "dict"]) == []
