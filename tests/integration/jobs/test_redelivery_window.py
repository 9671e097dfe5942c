"""After a worker is SIGKILLed mid-stream, at most `concurrency` jobs run twice (the jobs it was
running, or had finished but not yet seen acknowledged), and none is lost: with jobs that wait on
I/O, and with jobs that never give way to the event loop (those run back to back in one coroutine,
their acknowledgements sent when no slot is left)."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, redis_client, wait_for

CONCURRENCY = 10
JOBS = 1500

QUEUE = f"""
  window:
    visibility_timeout: 2s
    concurrency: {CONCURRENCY}
    retention:
      completed: {{max_age: 1h, max_count: 10}}
      failed: {{max_age: 1h, max_count: 10}}
    tasks:
      note-run: {{handler: "handlers_for_tests:note_run"}}
      note-run-at-once: {{handler: "handlers_for_tests:note_run_at_once"}}
"""


def add_window_queue(project: Project) -> None:
    path = project.config / "queues.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\n" + QUEUE)


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, add_window_queue)


@pytest.mark.parametrize("task", ["note-run", "note-run-at-once"])
def test_a_sigkilled_worker_makes_at_most_concurrency_jobs_run_twice_and_loses_none(
    project: Project, task: str
) -> None:
    client = redis_client(project)
    client.delete("test:runs")  # shared by the tests on this Redis
    assert project.bootstrap("enqueue", "window", task, "--count", str(JOBS), "--id", "w") == 0
    first = project.start_worker("window", "first")
    wait_for(lambda: client.llen("test:runs") >= JOBS // 5, 60, "the worker to be busy", interval=0.01)
    os.killpg(first.pid, signal.SIGKILL)  # mid-stream: jobs running, others just finished
    first.wait(10)
    ran_before = client.llen("test:runs")
    assert ran_before < JOBS, "the worker finished before it was killed: nothing was tested"
    project.start_worker("window", "second")
    stream = project.queue_keys("window").stream
    wait_for(lambda: client.xlen(stream) == 0, 120, "every job to be done")
    runs = Counter(client.lrange("test:runs", 0, -1))
    client.close()
    assert len(runs) == JOBS  # none lost
    twice = [job for job, n in runs.items() if n > 1]
    assert all(runs[job] == 2 for job in twice)
    assert len(twice) <= CONCURRENCY, f"{len(twice)} jobs ran twice (at most {CONCURRENCY} may)"
