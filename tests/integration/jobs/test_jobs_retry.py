"""`bootstrap jobs retry` gives a failed job a fresh start: its attempts and its RetryAfter requests
count from zero again (a real worker process on a real Redis)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, redis_client, wait_for

QUEUE = "delta-sync"


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    def edit(project: Project) -> None:
        task = 'asks-then-fails: {handler: "handlers_for_tests:retry_after_then_fail"}'
        project.edit("queues.yaml", "run-delta-sync: {timeout: 10m}", f"run-delta-sync: {{timeout: 10m}}\n      {task}")

    yield from make_project(tmp_path, mongo_uri, redis_server.uri, edit)


def runs(project: Project, job_id: str) -> list[dict[str, object]]:
    client = redis_client(project)
    try:
        return [json.loads(r) for r in client.lrange(f"test:counters:{job_id}", 0, -1)]
    finally:
        client.close()


def failed(project: Project, job_id: str) -> bool:
    client = redis_client(project)
    try:
        return bool(client.hexists(project.queue_keys(QUEUE).record_data("failed"), job_id))
    finally:
        client.close()


def test_a_retried_job_starts_with_fresh_attempts_and_retry_afters(project: Project) -> None:
    project.start_worker(QUEUE)
    assert project.bootstrap("enqueue", QUEUE, "asks-then-fails", "--id", "again") == 0
    # Run 1 asks to run later (retry_afters becomes 1), run 2 fails for good (one attempt).
    wait_for(lambda: failed(project, "again"), 60, "the job to fail")
    assert runs(project, "again") == [{"attempt": 1, "retry_afters": None}, {"attempt": 1, "retry_afters": 1}]
    assert project.bootstrap("jobs", "retry", QUEUE, "again") == 0
    # A fresh count: it may ask again (run 3 has no retry_afters), then fails again on run 4.
    assert not failed(project, "again")  # out of the failed store until it fails again
    wait_for(lambda: failed(project, "again"), 60, "the retried job to fail")
    assert runs(project, "again")[2:] == [{"attempt": 1, "retry_afters": None}, {"attempt": 1, "retry_afters": 1}]
