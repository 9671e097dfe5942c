"""Metrics without a server: which port a process serves on, the declared setting, and the queue
depths read on scrape (cached; a failed read said, never raised)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from bootstrap.errors import ConfigError
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.metrics import Depth, QueueDepths
from bootstrap.jobs.metrics_port import PORT_ENV, base_port, worker_port
from bootstrap.spec.load import load_spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"
ENV = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}


def test_the_environment_overrides_the_declared_base_port() -> None:
    assert base_port(9100, {}) == 9100
    assert base_port(9100, {PORT_ENV: "9200"}) == 9200
    assert base_port(9100, {PORT_ENV: "0"}) == 0
    assert base_port(9100, {PORT_ENV: " "}) == 9100


@pytest.mark.parametrize("raw", ["abc", "70000", "-1", "9100.5"])
def test_an_unusable_override_falls_back_to_the_declared_port(raw: str, caplog: pytest.LogCaptureFixture) -> None:
    assert base_port(9100, {PORT_ENV: raw}) == 9100
    assert f"{PORT_ENV}=" in caplog.text and "not a port number" in caplog.text


def test_workers_follow_the_scheduler_port_in_queue_order_and_0_is_off() -> None:
    assert [worker_port(9100, i) for i in range(3)] == [9101, 9102, 9103]
    assert worker_port(0, 2) == 0


def test_the_shipped_config_declares_9100_and_the_contract_carries_it() -> None:
    spec = load_spec(SHIPPED, env=ENV)
    assert spec.metrics.port == 9100
    runtime = Runtime.from_spec(spec)
    assert runtime.metrics_port == 9100
    assert Runtime.from_literal(runtime.to_literal()) == runtime


def test_metrics_are_off_when_not_declared(tmp_path: Path) -> None:
    config = shutil.copytree(SHIPPED, tmp_path / "config")
    settings = config / "bootstrap.yaml"
    settings.write_text(settings.read_text().replace("metrics: {port: 9100}\n", ""))
    assert load_spec(config, env=ENV).metrics.port == 0


def test_a_port_out_of_range_is_an_error_naming_file_line_and_field(tmp_path: Path) -> None:
    config = shutil.copytree(SHIPPED, tmp_path / "config")
    settings = config / "bootstrap.yaml"
    text = settings.read_text()
    line = text.splitlines().index("metrics: {port: 9100}") + 1
    settings.write_text(text.replace("metrics: {port: 9100}", "metrics: {port: 70000}"))
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env=ENV)
    [finding] = caught.value.findings
    assert finding.file.endswith("bootstrap.yaml") and finding.line == line
    assert "metrics.port: 70000 is too large (expected at most 65535)" in str(finding)


class Reads:
    def __init__(self, *results: list[Depth] | Exception) -> None:
        self.results = list(results)
        self.calls = 0

    def __call__(self) -> Iterator[Depth]:
        self.calls += 1
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return iter(result)


def exposition(collector: QueueDepths) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def test_depths_are_read_once_per_cache_period_however_often_scraped() -> None:
    reads = Reads([Depth("q", {"waiting": 3, "failed": 1})])
    depths = QueueDepths(reads, cache_seconds=60)
    first, second = exposition(depths), exposition(depths)
    assert reads.calls == 1 and first == second
    assert 'bootstrap_queue_jobs{queue="q",state="waiting"} 3.0' in first
    assert 'bootstrap_queue_jobs{queue="q",state="failed"} 1.0' in first
    assert "bootstrap_queue_read_ok 1.0" in first


def test_a_failed_read_is_reported_in_the_scrape_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    reads = Reads(ConnectionError("gone"), ConnectionError("gone"), [Depth("q", {"waiting": 0})])
    depths = QueueDepths(reads, cache_seconds=0)
    text = exposition(depths)
    assert "bootstrap_queue_read_ok 0.0" in text and 'state="waiting"' not in text
    exposition(depths)
    assert caplog.text.count("cannot read queue depths") == 1
    text = exposition(depths)
    assert "bootstrap_queue_read_ok 1.0" in text and 'bootstrap_queue_jobs{queue="q",state="waiting"} 0.0' in text


@pytest.mark.parametrize(
    ("label", "value", "retried"),
    [
        ("attempt", 2, True),  # the task's retry policy
        ("transient_retries", 1, True),  # a transient connection error
        ("retry_afters", 1, True),  # the handler raised RetryAfter: again later, no attempt spent
        (None, None, False),  # nothing changed: failed for good
    ],
)
def test_a_failure_counts_as_retried_when_the_jobs_middleware_changed_a_retry_label(
    label: str | None, value: int | None, retried: bool
) -> None:
    from taskiq import TaskiqMessage

    from bootstrap.jobs.broker import StreamBroker
    from bootstrap.jobs.metrics_middleware import MetricsMiddleware
    from bootstrap.jobs.runtime import QueueRuntime

    runtime = QueueRuntime("bench", "bench", "redis://127.0.0.1:1/0", 300.0, 10, 3600.0, 200, 86400.0, 1000)
    metrics = MetricsMiddleware(StreamBroker(runtime), port=1)  # never started: counting only
    message = TaskiqMessage(task_id="j1", task_name="t", labels={}, args=[], kwargs={})
    metrics.started(message)
    if label is not None:
        message.labels[label] = value  # what JobsMiddleware.failed does before metrics sees it
    metrics.failed(message, 0.01)
    series = metrics._series("t")
    assert (series.retried, series.failed) == ((1, 0) if retried else (0, 1))
