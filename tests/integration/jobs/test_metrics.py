"""Prometheus metrics scraped from real worker and scheduler processes after real jobs and fires."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bootstrap.jobs.metrics_port import worker_port
from bootstrap.local.servers import RedisServer, free_port
from tests.support.jobs_project import Project, add_test_queue, make_project, redis_client, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]



def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scraped(port: int) -> Samples | None:
    try:
        return scrape(port)
    except OSError:  # not listening yet
        return None


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    def edit(project: Project) -> None:
        add_test_queue(project)
        sync = '      sync-sleep: {handler: "handlers_for_tests:sync_sleep", timeout: 3s}\n'
        probe = '      probe-metrics: {handler: "handlers_for_tests:metrics_served"}\n'
        project.edit("queues.yaml", sync, sync + probe)
        project.edit("schedules.yaml", "every: 15m", "every: 1s")  # delta-sync-schedule
        project.edit("schedules.yaml", "misfire: run_once", "misfire: skip")  # missed slots: counted, not run

    yield from make_project(tmp_path, mongo_uri, redis_server.uri, edit)


def test_a_worker_serves_job_counts_durations_and_queue_depths(project: Project) -> None:
    index = project.spec().queues.index(project.spec().queue("test-jobs"))
    port = free_port()
    project.env["BOOTSTRAP_METRICS_PORT"] = str(port - 1 - index)  # the test-jobs worker gets `port`
    assert worker_port(port - 1 - index, index) == port
    worker = project.start_worker("test-jobs")
    assert project.bootstrap("enqueue", "test-jobs", "slow-job", "--kwargs", '{"seconds": 0.01}', "--count", "3") == 0
    assert project.bootstrap("enqueue", "test-jobs", "fail-always", "--id", "metrics-f-1") == 0  # 4 attempts, ~2 s

    def settled() -> Samples | None:
        samples = scraped(port)
        done = samples and value(samples, "bootstrap_jobs_failed_total", queue="test-jobs", task="fail-always") == 1
        return samples if done and value(samples, "bootstrap_queue_jobs", queue="test-jobs", state="failed") else None

    samples = wait_for(settled, 60, "the metrics of 3 completed and 1 failed job")
    jobs = {"queue": "test-jobs"}
    assert value(samples, "bootstrap_jobs_started_total", **jobs, task="slow-job") == 3
    assert value(samples, "bootstrap_jobs_completed_total", **jobs, task="slow-job") == 3
    assert value(samples, "bootstrap_jobs_started_total", **jobs, task="fail-always") == 4
    assert value(samples, "bootstrap_jobs_retried_total", **jobs, task="fail-always") == 3
    assert value(samples, "bootstrap_jobs_failed_total", **jobs, task="fail-always") == 1
    assert value(samples, "bootstrap_jobs_failed_total", **jobs, task="slow-job") == 0
    took = {**jobs, "task": "slow-job", "outcome": "completed"}
    assert value(samples, "bootstrap_job_duration_seconds_count", **took) == 3
    assert 0.03 <= value(samples, "bootstrap_job_duration_seconds_sum", **took) < 3
    assert value(samples, "bootstrap_job_duration_seconds_bucket", **took, le="0.005") == 0
    assert value(samples, "bootstrap_job_duration_seconds_count", **jobs, task="fail-always", outcome="retried") == 3
    # Depths come from Redis on scrape: the records kept, nothing waiting or delayed any more.
    assert value(samples, "bootstrap_queue_read_ok") == 1
    assert value(samples, "bootstrap_queue_jobs", **jobs, state="completed") == 3
    assert value(samples, "bootstrap_queue_jobs", **jobs, state="failed") == 1
    for state in ("waiting", "running", "delayed"):
        assert (("bootstrap_queue_jobs", frozenset({**jobs, "state": state}.items()))) in samples
        assert value(samples, "bootstrap_queue_jobs", **jobs, state=state) == 0
    assert value(samples, "process_resident_memory_bytes") > 0
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0


def test_a_worker_serves_metrics_before_it_takes_its_first_job(project: Project) -> None:
    """The metrics server starts in the broker's start-up, before the first read: its cost (loading
    prometheus_client, the HTTP thread) is not in the first jobs' path. Jobs wait before the worker
    starts, so its first read returns at once."""
    index = project.spec().queues.index(project.spec().queue("test-jobs"))
    port = free_port()
    project.env["BOOTSTRAP_METRICS_PORT"] = str(port - 1 - index)
    sent = ("enqueue", "test-jobs", "probe-metrics", "--id", "probe", "--count", "3", "--kwargs", f'{{"port": {port}}}')
    assert project.bootstrap(*sent) == 0
    project.start_worker("test-jobs")
    client = redis_client(project)
    try:
        notes = wait_for(lambda: len(client.lrange("test:metrics-served:probe-0", 0, -1)), 60, "the first job")
        assert notes == 1
        assert json.loads(client.lrange("test:metrics-served:probe-0", 0, -1)[0])["served"] is True
    finally:
        client.close()
    log = project.log("worker")
    served, listening = log.index(f"metrics on http://0.0.0.0:{port}/metrics"), log.index("listening, concurrency")
    assert served < listening < log.index("job started: queue=test-jobs task=probe-metrics"), log


def test_a_worker_whose_port_is_taken_runs_its_jobs_without_metrics(project: Project) -> None:
    index = project.spec().queues.index(project.spec().queue("test-jobs"))
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        project.env["BOOTSTRAP_METRICS_PORT"] = str(port - 1 - index)
        project.start_worker("test-jobs")
        job = "metrics-s-1"  # handlers note by job id in keys all tests share: ids of its own
        assert project.bootstrap("enqueue", "test-jobs", "slow-job", "--kwargs", '{"seconds": 0}', "--id", job) == 0
        client = redis_client(project)
        try:
            completed = project.queue_keys("test-jobs").record_data("completed")
            wait_for(lambda: client.hexists(completed, job), 30, "the job to complete")
        finally:
            client.close()
    assert f"cannot serve metrics on port {port}" in project.log("worker")


def test_the_scheduler_serves_fires_misses_and_lateness(project: Project) -> None:
    port = free_port()
    project.env["BOOTSTRAP_METRICS_PORT"] = str(port)
    schedule = "delta-sync-schedule"
    client = redis_client(project)
    try:  # as if no scheduler had run for 20 s: the slots since then are missed (misfire: skip)
        client.hset(project.schedule_keys().of("delta-sync").last_slot, schedule, repr(float(int(time.time()) - 20)))
    finally:
        client.close()
    scheduler = project.start_scheduler()

    def fired_twice() -> Samples | None:
        samples = scraped(port)
        return samples if samples and value(samples, "bootstrap_schedule_fires_total", schedule=schedule) >= 2 else None

    samples = wait_for(fired_twice, 30, "two fires in the scheduler's metrics")
    assert value(samples, "bootstrap_schedule_misses_total", schedule=schedule) >= 14  # 20 s of 1 s slots, 5 s grace
    fires = value(samples, "bootstrap_schedule_fires_total", schedule=schedule)
    assert value(samples, "bootstrap_schedule_lateness_seconds_count", schedule=schedule) == fires
    assert value(samples, "bootstrap_schedule_lateness_seconds_bucket", schedule=schedule, le="5.0") == fires
    # A schedule that has not fired yet is shown at 0 (a daily cron; an unaligned `every` fires at once).
    assert (("bootstrap_schedule_fires_total", frozenset({"schedule": "pattern-analysis-schedule"}.items()))) in samples
    assert value(samples, "bootstrap_schedule_fires_total", schedule="pattern-analysis-schedule") == 0
    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(30) == 0
