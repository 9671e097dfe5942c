"""Handlers that block: a job is never handed to a second worker while its worker process lives, a
plain function runs in a thread (its timeout applies), and a blocked event loop is reported with the
job that blocks it (real worker processes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_queue, make_project, redis_client, wait_for


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, add_test_queue)


def record(project: Project, outcome: str, job_id: str) -> dict[str, Any] | None:
    client = redis_client(project)
    raw = client.hget(project.queue_keys("test-jobs").record_data(outcome), job_id)
    client.close()
    return json.loads(raw) if raw else None


def events(project: Project, key: str) -> list[dict[str, Any]]:
    client = redis_client(project)
    found = [json.loads(v) for v in client.lrange(key, 0, -1)]
    client.close()
    return found


def test_a_job_blocking_the_event_loop_is_not_handed_to_a_second_worker(project: Project) -> None:
    """time.sleep(8) in an async handler, visibility timeout 2 s, two workers: its lease used to
    lapse, a second worker took it while it still ran, and one job ran four times, two at once."""
    first = project.start_worker("test-jobs", "first")
    wait_for(lambda: "listening" in project.log("first"), 60, "the first worker")
    assert project.bootstrap("enqueue", "test-jobs", "block-loop", "--kwargs", '{"seconds": 8}', "--id", "b-1") == 0
    wait_for(lambda: events(project, "test:blocker:b-1"), 30, "the job to start")
    project.start_worker("test-jobs", "second")  # idle, and looking for jobs whose worker stopped answering
    wait_for(lambda: record(project, "completed", "b-1"), 60, "the job to complete")
    wait_for(lambda: "listening" in project.log("second"), 60, "the second worker")
    runs = events(project, "test:blocker:b-1")
    assert [e["event"] for e in runs] == ["start", "end"] and runs[0]["pid"] == runs[1]["pid"], runs
    log = project.log("first")
    # Said while it happens, with the job and where it blocks; and said again when it is over.
    assert "the event loop has been blocked for" in log and "by job b-1 (task block-loop" in log
    assert "handlers_for_tests.py" in log and "in block_loop" in log
    assert "the event loop was blocked for" in log
    # An async handler cannot be interrupted while it blocks: its timeout could not apply, and that is said.
    assert "job b-1 finished after" in log and "past its timeout of 3s" in log
    assert "took over" not in project.log("second")
    assert first.poll() is None


def test_a_plain_function_handler_runs_in_a_thread_and_its_timeout_applies(project: Project) -> None:
    project.start_worker("test-jobs")
    assert project.bootstrap("enqueue", "test-jobs", "sync-sleep", "--kwargs", '{"seconds": 6}', "--id", "s-1") == 0
    wait_for(lambda: events(project, "test:sync:s-1"), 30, "the plain function to start")
    # The event loop stays free meanwhile: another job runs and completes at once.
    assert project.bootstrap("enqueue", "test-jobs", "mongo-job", "--id", "meanwhile") == 0
    wait_for(lambda: record(project, "completed", "meanwhile"), 30, "a job while the thread sleeps")
    assert len(events(project, "test:sync:s-1")) == 1  # still sleeping
    failed = wait_for(lambda: record(project, "failed", "s-1"), 30, "the timeout")
    assert failed["error"] == "JobTimedOut: the job ran longer than its timeout of 3s"
    assert failed["duration"] < 5  # failed at the timeout, not when the function returned
    assert project.bootstrap("enqueue", "test-jobs", "sync-sleep", "--kwargs", '{"seconds": 0.2}', "--id", "s-2") == 0
    assert wait_for(lambda: record(project, "completed", "s-2"), 30, "a quick plain function")["task"] == "sync-sleep"
