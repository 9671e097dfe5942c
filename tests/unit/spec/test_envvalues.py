"""Values of the job layer written as `${VAR}`: the generated package holds their templates, the same
bytes in every environment, and each process resolves them in its own environment, checked as
`bootstrap validate` checks them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bootstrap.codegen.artifacts import contract_literal
from bootstrap.codegen.render import render, wiring_hash
from bootstrap.errors import ContractError
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.runtime import queue_runtime
from bootstrap.spec.load import load_spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"

# (file, text written in the shipped config, what replaces it)
EDITS = (
    ("queues.yaml", "  concurrency: 10\n", "  concurrency: ${WORKER_CONCURRENCY:-10}\n"),
    ("queues.yaml", "  visibility_timeout: 5m ", '  visibility_timeout: "${VISIBILITY:-5m}" '),
    ("queues.yaml", "      refresh-tokens: {timeout: 5m}", "      refresh-tokens: {timeout: '${TOKEN_TIMEOUT:-5m}'}"),
    ("bootstrap.yaml", "pool: {max_size: 50, min_size: 5}", "pool:\n    max_size: ${MONGO_POOL:-50}\n    min_size: 5"),
    ("bootstrap.yaml", "  key_prefix: msedb\n", "  key_prefix: ${KEY_PREFIX:-msedb}\n"),
    ("bootstrap.yaml", "metrics: {port: 9100}", "metrics:\n  port: ${METRICS_PORT:-9100}"),
    ("schedules.yaml", "delay: 5s, max_delay: 5m}", "delay: '${RETRY_DELAY:-5s}', max_delay: 5m}"),
    ("schedules.yaml", "    every: 15m\n", "    every: ${DELTA_EVERY:-15m}\n"),
)
STAGING: dict[str, str] = {}  # every default
PRODUCTION = {
    "WORKER_CONCURRENCY": "40", "VISIBILITY": "90s", "TOKEN_TIMEOUT": "2m", "MONGO_POOL": "200",
    "KEY_PREFIX": "msedb-prod", "METRICS_PORT": "9200", "RETRY_DELAY": "10s", "DELTA_EVERY": "5m",
}  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> Path:
    config = tmp_path / "project" / "config"
    shutil.copytree(SHIPPED, config)
    for name, old, new in EDITS:
        path = config / name
        assert old in path.read_text(), (name, old)
        path.write_text(path.read_text().replace(old, new, 1))
    return config


def test_the_generated_package_is_the_same_in_every_environment(config: Path) -> None:
    staging, production = load_spec(config, STAGING), load_spec(config, PRODUCTION)
    assert production.queues[0].concurrency == 40  # the spec itself has this environment's values
    assert render(staging) == render(production)
    assert wiring_hash(staging) == wiring_hash(production)
    assert wiring_hash(staging, workers=True) == wiring_hash(production, workers=True)
    text = render(staging)["spec.py"] + render(staging)["schedules.py"]
    for name in PRODUCTION:
        assert "${" + name in text, name


def _runtime(config: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """The runtime a process started with `env` reads from the generated literal."""
    literal = contract_literal(load_spec(config, STAGING))  # generated where none of them is set
    for name in PRODUCTION:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Runtime.from_literal(literal)


def test_each_process_resolves_them_in_its_own_environment(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What loading the spec with the production environment gives, less the project folder.
    expected = Runtime.from_spec(load_spec(config, PRODUCTION))
    runtime = _runtime(config, PRODUCTION, monkeypatch)
    assert runtime == expected
    queue = runtime.queue("token-refresh")
    assert (queue.concurrency, queue.visibility_timeout, queue.task("refresh-tokens").timeout) == (40, 90.0, 120.0)
    assert (runtime.mongodb.pool_max, runtime.redis.key_prefix, runtime.metrics_port) == (200, "msedb-prod", 9200)
    delta = next(s for s in runtime.schedules if s.id == "delta-sync-schedule")
    assert (delta.every, delta.retry.delay) == (300.0, 10.0)
    assert type(queue.concurrency) is int and type(queue.visibility_timeout) is float
    assert queue_runtime(runtime, "token-refresh").concurrency == 40  # what the worker's broker gets


def test_unset_variables_take_their_defaults(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _runtime(config, {}, monkeypatch) == Runtime.from_spec(load_spec(config, STAGING))


BAD = {
    "not a number": ({"WORKER_CONCURRENCY": "forty"}, "queues.yaml defaults.concurrency: "
                     "${WORKER_CONCURRENCY:-10} is 'forty' here: expected an integer, got string 'forty'"),
    "out of range": ({"WORKER_CONCURRENCY": "0"}, "is 0 here: 0 is too small (expected at least 1)"),
    "a YAML boolean": ({"WORKER_CONCURRENCY": "yes"}, "is True here: expected an integer, got boolean True"),
    "not a duration": ({"VISIBILITY": "a while"}, "queues.yaml defaults.visibility_timeout: ${VISIBILITY:-5m} "
                       "is 'a while' here: 'a while' is not valid (expected a duration"),
    "a number in a quoted duration": ({"TOKEN_TIMEOUT": "-1"}, "queues.yaml queues.token-refresh.tasks."
                                      "refresh-tokens.timeout: ${TOKEN_TIMEOUT:-5m} is '-1'"),
    "a prefix that is no name": ({"KEY_PREFIX": "Not A Name"}, "bootstrap.yaml redis.key_prefix: "
                                 "${KEY_PREFIX:-msedb} is 'Not A Name' here"),
    "a port out of range": ({"METRICS_PORT": "70000"}, "bootstrap.yaml metrics.port: ${METRICS_PORT:-9100} is 70000"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_a_value_the_field_does_not_accept_names_file_field_and_variable(
    config: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    env, message = BAD[case]
    with pytest.raises(ContractError) as caught:
        _runtime(config, env, monkeypatch)
    assert message in str(caught.value)
    assert "bootstrap generate" not in str(caught.value)  # the package is fine: the environment is not


def test_a_required_variable_that_is_not_set_where_the_process_runs(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queues = config / "queues.yaml"
    queues.write_text(queues.read_text().replace("${WORKER_CONCURRENCY:-10}", "${WORKER_CONCURRENCY}"))
    literal = contract_literal(load_spec(config, {"WORKER_CONCURRENCY": "4"}))
    monkeypatch.delenv("WORKER_CONCURRENCY", raising=False)
    with pytest.raises(ContractError) as caught:
        Runtime.from_literal(literal)
    assert str(caught.value).startswith(
        "queues.yaml defaults.concurrency: ${WORKER_CONCURRENCY}: environment variable WORKER_CONCURRENCY is not set"
    )


def test_a_quoted_template_stays_text(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unquoted, YAML types the value (`no` is false), as when the file is loaded; quoted, it is text."""
    with pytest.raises(ContractError, match="is False here: expected a string"):
        _runtime(config, {"KEY_PREFIX": "no"}, monkeypatch)
    settings = config / "bootstrap.yaml"
    settings.write_text(settings.read_text().replace("${KEY_PREFIX:-msedb}", "'${KEY_PREFIX:-msedb}'"))
    assert _runtime(config, {"KEY_PREFIX": "no"}, monkeypatch).redis.key_prefix == "no"


def test_values_written_as_they_are_have_no_marker(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    literal = json.dumps(contract_literal(load_spec(config, {})))
    assert '"$env"' not in literal and "${MONGODB_URI" in literal  # the URLs are templates of their own
