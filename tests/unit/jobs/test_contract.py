"""The runtime contract: typed, round-trips through its literal, rejects anything else clearly; and
the bootstrap API that generated code calls is pinned here, so a rename breaks a test, not users."""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bootstrap.codegen.pyliteral import literal
from bootstrap.codegen.render import render
from bootstrap.errors import ConfigError, ContractError
from bootstrap.jobs.contract import MongoRuntime, QueueContract, RedisRuntime, Retention, Runtime, TaskContract
from bootstrap.jobs.runtime import queue_runtime
from bootstrap.layout.schedules import definition
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import ConnectRetry, MiddlewareRef, RateLimit, RetryPolicy, Schedule, Spec, freeze

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "config"
ENV = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}

EXTRA_QUEUE = """
  with-handlers:
    concurrency: 4
    max_deliveries: 5
    tasks:
      retried:
        handler: "tests.support.handlers_for_tests:noop"
        retry: {attempts: 4, backoff: fixed, delay: 300ms, max_delay: 10s, jitter: true}
      plain: {}
"""


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Spec:
    """The shipped config plus a queue whose tasks have a handler, a retry policy and no timeout."""
    config = tmp_path_factory.mktemp("contract") / "config"
    shutil.copytree(CONFIG, config)
    queues = config / "queues.yaml"
    queues.write_text(queues.read_text() + EXTRA_QUEUE)
    return load_spec(config, env=ENV)


# --- round trip -----------------------------------------------------------------------------------


def test_from_spec_to_literal_from_literal_is_the_same_runtime(spec: Spec) -> None:
    runtime = Runtime.from_spec(spec)
    assert Runtime.from_literal(runtime.to_literal()) == runtime
    # ... also through the Python source generated spec.py holds
    assert Runtime.from_literal(ast.literal_eval(literal(runtime.to_literal()))) == runtime


def test_the_contract_holds_what_the_spec_declares(spec: Spec) -> None:
    runtime = Runtime.from_spec(spec)
    assert runtime.queue_names == tuple(q.name for q in spec.queues)
    queue = runtime.queue("with-handlers")
    assert queue.concurrency == 4 and queue.completed == Retention(3600.0, 200)
    assert queue.max_deliveries == 5 and runtime.queue("delta-sync").max_deliveries == 3  # its own; the default
    retried = queue.task("retried")
    assert retried.handler == "tests.support.handlers_for_tests:noop" and retried.timeout is None
    assert retried.retry == RetryPolicy(attempts=4, backoff="fixed", delay=0.3, max_delay=10.0, jitter=True)
    assert queue.task("plain").retry is None and queue.task("plain").handler is None
    assert runtime.redis.url == spec.redis.url_template and "${REDIS_URL" in runtime.redis.url
    assert runtime.mongodb.uri.startswith("${MONGODB_URI")  # a template: never the value here
    assert runtime.redis.connect_retry == spec.redis.connect_retry
    with pytest.raises(LookupError, match="unknown queue 'nope'"):
        runtime.queue("nope")
    with pytest.raises(LookupError, match="'nope' is not a task of queue 'with-handlers'"):
        queue.task("nope")


def test_the_contract_ignores_what_the_job_layer_does_not_use(spec: Spec, tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    before = Runtime.from_spec(load_spec(config, env=ENV))
    (config / "collections" / "users.yaml").unlink()
    # users is referenced by other collections: drop the references with it
    for path in (config / "collections").glob("*.yaml"):
        path.write_text(path.read_text().replace(", ref: users", "").replace("ref: users", "description: x"))
    assert Runtime.from_spec(load_spec(config, env=ENV)) == before


def test_the_contract_carries_the_declared_schedules_in_their_stored_form(spec: Spec, tmp_path: Path) -> None:
    """The scheduler falls back to these when Redis lost the stored ones: they must be exactly what
    apply stores (layout.schedules.definition), and follow the spec."""
    runtime = Runtime.from_spec(spec)
    assert [definition(s) for s in runtime.schedules] == [definition(s) for s in spec.schedules]
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    text = (config / "schedules.yaml").read_text()
    (config / "schedules.yaml").write_text(text.replace("every: 15m", "every: 20m"))
    changed = Runtime.from_spec(load_spec(config, env=ENV))
    delta = next(s for s in changed.schedules if s.id == "delta-sync-schedule")
    assert delta.every == 1200.0 and changed != runtime


def test_queue_runtime_resolves_the_url_from_the_environment(spec: Spec, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = Runtime.from_spec(spec)
    monkeypatch.setenv("REDIS_URL", "redis://example.invalid:1234/5")
    resolved = queue_runtime(runtime, "with-handlers")
    assert resolved.redis_url == "redis://example.invalid:1234/5"
    assert (resolved.prefix, resolved.queue, resolved.concurrency) == (spec.redis.key_prefix, "with-handlers", 4)
    assert (resolved.completed_max_count, resolved.failed_max_age) == (200, 86400.0)
    assert resolved.connect_retry == spec.redis.connect_retry
    assert resolved.max_deliveries == 5


durations = st.floats(min_value=0, max_value=1e7, allow_nan=False)
names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
policies = st.builds(
    RetryPolicy,
    attempts=st.integers(1, 100),
    backoff=st.sampled_from(["exponential", "fixed"]),
    delay=durations,
    max_delay=durations,
    jitter=st.booleans(),
)
tasks = st.builds(
    TaskContract, name=names, handler=st.none() | st.text(), timeout=st.none() | durations, retry=st.none() | policies
)
connect_policies = st.builds(
    ConnectRetry,
    retries=st.integers(0, 100),
    backoff=st.sampled_from(["exponential", "fixed"]),
    delay=durations,
    max_delay=durations,
    jitter=st.booleans(),
)
retentions = st.builds(Retention, max_age=durations, max_count=st.integers(0, 10**6))
queues = st.builds(
    QueueContract,
    name=names,
    visibility_timeout=durations,
    concurrency=st.integers(1, 1000),
    shutdown_timeout=durations,
    max_deliveries=st.integers(1, 1000),
    completed=retentions,
    failed=retentions,
    tasks=st.lists(tasks, max_size=3, unique_by=lambda t: t.name).map(tuple),
    rate_limit=st.none() | st.builds(RateLimit, max=st.integers(1, 10**5), per=durations),
    result_max_bytes=st.integers(1, 64 * 2**20),
    middlewares=st.lists(
        st.builds(
            MiddlewareRef,
            path=st.text(),
            kwargs=st.dictionaries(st.text(), st.none() | st.integers() | st.text(), max_size=2).map(freeze),
            where=st.text(),
        ),
        max_size=2,
    ).map(tuple),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
schedules = st.builds(
    Schedule,
    id=names,
    queue=names,
    task=names,
    cron=st.none() | st.text(),
    every=st.none() | durations,
    kwargs=st.dictionaries(st.text(), json_values, max_size=3).map(freeze),
    retry=policies,
    misfire=st.sampled_from(["skip", "run_once"]),
    timezone=st.text(),
    enabled=st.booleans(),
    align=st.booleans(),
    priority=st.none() | st.sampled_from(["high", "normal", "low"]),
)
runtimes = st.builds(
    Runtime,
    project=names,
    mongodb=st.builds(
        MongoRuntime,
        uri=st.text(),
        database=st.none() | st.text(),
        app_name=st.text(),
        pool_max=st.integers(0, 1000),
        pool_min=st.integers(0, 1000),
        server_selection_timeout=durations,
        socket_timeout=st.none() | durations,
        connect_timeout=durations,
        ipv4_only=st.booleans(),
        connect_retry=connect_policies,
    ),
    redis=st.builds(
        RedisRuntime,
        url=st.text(),
        key_prefix=names,
        connect_timeout=durations,
        socket_timeout=durations,
        connect_retry=connect_policies,
    ),
    queues=st.lists(queues, max_size=3, unique_by=lambda q: q.name).map(tuple),
    schedules=st.lists(schedules, max_size=3, unique_by=lambda s: s.id).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(runtimes)
def test_every_runtime_round_trips_through_its_python_literal(runtime: Runtime) -> None:
    assert Runtime.from_literal(ast.literal_eval(literal(runtime.to_literal()))) == runtime


# --- junk is refused, with the place named ------------------------------------------------------


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _drop(path: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


Q = ("queues", "with-handlers")
JUNK: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("missing key", _drop(("project",)), "runtime: missing project"),
    ("unknown key", _set(("spec_hash",), "abc"), "runtime: unknown spec_hash"),
    ("nested missing", _drop((*Q, "concurrency")), "runtime.queues.with-handlers: missing concurrency"),
    ("nested unknown", _set(("redis", "password"), "x"), "runtime.redis: unknown password"),
    ("string for int", _set((*Q, "concurrency"), "4"), "runtime.queues.with-handlers.concurrency: expected an integer"),
    ("bool for int", _set((*Q, "completed", "max_count"), True), "completed.max_count: expected an integer"),
    ("missing max_deliveries", _drop((*Q, "max_deliveries")), "runtime.queues.with-handlers: missing max_deliveries"),
    ("float deliveries", _set((*Q, "max_deliveries"), 2.5), "with-handlers.max_deliveries: expected an integer"),
    ("float for int", _set(("mongodb", "pool_max"), 1.5), "runtime.mongodb.pool_max: expected an integer"),
    ("null for text", _set(("project",), None), "runtime.project: expected a string, got null"),
    ("text for number", _set(("redis", "socket_timeout"), "5s"), "runtime.redis.socket_timeout: expected a number"),
    ("int for bool", _set(("mongodb", "ipv4_only"), 1), "runtime.mongodb.ipv4_only: expected true or false"),
    ("list for queues", _set(("queues",), []), "runtime.queues: expected a mapping of names"),
    ("list for a queue", _set(Q, []), "runtime.queues.with-handlers: expected a mapping, got list"),
    (
        "task retry missing a key",
        _drop((*Q, "tasks", "retried", "retry", "attempts")),
        "runtime.queues.with-handlers.tasks.retried.retry: missing attempts",
    ),
    (
        "task retry unknown key",
        _set((*Q, "tasks", "retried", "retry", "factor"), 2),
        "runtime.queues.with-handlers.tasks.retried.retry: unknown factor",
    ),
    (
        "connect retry missing a key",
        _drop(("mongodb", "connect_retry", "delay")),
        "runtime.mongodb.connect_retry: missing delay",
    ),
    ("connect retry not a mapping", _set(("redis", "connect_retry"), 3), "runtime.redis.connect_retry: expected a"),
    ("no schedules", _drop(("schedules",)), "runtime: missing schedules"),
    (
        "schedule kwargs not a mapping",
        _set(("schedules", "delta-sync-schedule", "kwargs"), [1]),
        "runtime.schedules.delta-sync-schedule.kwargs: expected a mapping of names",
    ),
    (
        "schedule every as text",
        _set(("schedules", "delta-sync-schedule", "every"), "15m"),
        "runtime.schedules.delta-sync-schedule.every: expected a number",
    ),
]


@pytest.mark.parametrize(("junk", "expected"), [(j[1], j[2]) for j in JUNK], ids=[j[0] for j in JUNK])
def test_from_literal_rejects_junk_naming_where(
    spec: Spec, junk: Callable[[dict[str, Any]], None], expected: str
) -> None:
    data = copy.deepcopy(Runtime.from_spec(spec).to_literal())
    junk(data)
    with pytest.raises(ContractError) as caught:
        Runtime.from_literal(data)
    message = str(caught.value)
    assert expected in message and "bootstrap generate" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", "0 is too small (expected at least 1)"), ("1001", "1001 is too large (expected at most 1000)"),
     ("three", "expected an integer, got string 'three'")],
)  # fmt: skip
def test_max_deliveries_is_validated_naming_file_line_and_field(tmp_path: Path, value: str, expected: str) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    queues = config / "queues.yaml"
    queues.write_text(queues.read_text() + EXTRA_QUEUE.replace("max_deliveries: 5", f"max_deliveries: {value}"))
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env=ENV)
    line = 1 + queues.read_text().splitlines().index(f"    max_deliveries: {value}")
    found = [f for f in caught.value.findings if f.file.endswith("queues.yaml") and f.line == line]
    assert [f.path for f in found] == ["queues.with-handlers.max_deliveries"], caught.value.findings
    assert expected in found[0].message


@pytest.mark.parametrize("data", [None, [], "runtime", 3])
def test_from_literal_rejects_a_non_mapping(data: object) -> None:
    with pytest.raises(ContractError, match="runtime: expected a mapping"):
        Runtime.from_literal(data)


# --- the API generated code calls -----------------------------------------------------------------

# Every bootstrap name the generated package uses. Changing this set (or a signature below) breaks
# packages users have generated and committed: do it deliberately, with a note in the README.
GENERATED_CODE_API = {
    "bootstrap.errors.ContractError",  # worker.py: one line for a value its environment gives that is refused
    "bootstrap.jobs.broker.StreamBroker",
    "bootstrap.jobs.contract.Runtime",
    "bootstrap.jobs.contract.Runtime.from_literal",
    "bootstrap.jobs.launcher.run_workers",
    "bootstrap.jobs.wiring.make_broker",
    "bootstrap.jobs.wiring.make_scheduler",
    "bootstrap.jobs.wiring.register_task",
    # models.py (the shipped spec's models; other kinds and options use more of bootstrap.models.kinds)
    "bootstrap.models.document",
    "bootstrap.models.document.Document",
    "bootstrap.models.document.Reference",
    "bootstrap.models.document.Subdocument",
    "bootstrap.models.document.default",
    "bootstrap.models.document.now",
    "bootstrap.models.kinds",
    "bootstrap.models.kinds.Bool",
    "bootstrap.models.kinds.Date",
    "bootstrap.models.kinds.Items",
    "bootstrap.models.kinds.Number",
    "bootstrap.models.kinds.Object",
    "bootstrap.models.kinds.ObjectId",
    "bootstrap.models.kinds.Range",
    "bootstrap.models.kinds.Ref",
    "bootstrap.models.kinds.String",
}


def _bootstrap_names(tree: ast.Module) -> tuple[set[str], dict[str, str]]:
    """Dotted bootstrap names a module imports and the attributes it reads on them, and a map from
    local name to dotted name."""
    local: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("bootstrap") for a in node.names), "use `from bootstrap... import`"
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("bootstrap"):
            for alias in node.names:
                local[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    used = set(local.values())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in local:
            used.add(f"{local[node.value.id]}.{node.attr}")
    return used, local


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            target = getattr(target, attr)
        return target
    raise ImportError(dotted)


def _call_name(func: ast.expr, local: dict[str, str]) -> str | None:
    if isinstance(func, ast.Name):
        return local.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in local:
        return f"{local[func.value.id]}.{func.attr}"
    return None


def test_generated_code_uses_exactly_the_pinned_bootstrap_api(spec: Spec) -> None:
    used: set[str] = set()
    calls = 0
    for name, text in render(spec).items():
        tree = ast.parse(text, name)
        names, local = _bootstrap_names(tree)
        used |= names
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (dotted := _call_name(node.func, local)):
                # each call as generated binds to today's signature (arity and keyword names)
                signature = inspect.signature(_resolve(dotted))
                signature.bind(*[None] * len(node.args), **{k.arg: None for k in node.keywords if k.arg})
                calls += 1
    assert used == GENERATED_CODE_API
    assert calls > len(spec.queues)  # a broker per queue and a task per task were checked
    for dotted in GENERATED_CODE_API:
        assert _resolve(dotted) is not None


def test_the_rendered_package_imports_and_wires_every_queue_and_task(spec: Spec, tmp_path: Path) -> None:
    package = tmp_path / spec.codegen.package
    package.mkdir()
    for name, text in render(spec).items():
        (package / name).write_text(text)
    probe = (
        f"from {spec.codegen.package} import brokers, scheduler, spec, tasks, worker\n"
        "print(sorted(brokers.BROKERS), sorted(t for q in spec.RUNTIME.queues for t in (x.name for x in q.tasks)))\n"
        "print(sorted(name for b in brokers.BROKERS.values() for name in b.get_all_tasks()))\n"
        "print(type(scheduler.scheduler).__name__)\n"
    )
    env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}  # REPO: test handlers
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    queues_line, registered, scheduler_type = result.stdout.splitlines()
    declared_tasks = sorted(t.name for q in spec.queues for t in q.tasks)
    assert queues_line == f"{sorted(q.name for q in spec.queues)} {declared_tasks}"
    assert registered == str(declared_tasks)
    assert scheduler_type == "SlotScheduler"
