"""After a worker is SIGKILLed mid-stream, at most `concurrency` jobs run twice (the jobs it was
running, or had finished but not yet seen acknowledged), and none is lost: with jobs that wait on
I/O, and with jobs that never give way to the event loop (those run back to back in one coroutine,
their acknowledgements sent when no slot is left); at concurrency 10 killed once, at concurrency 1
killed three times in a row (at most one rerun per kill)."""

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


def window_queue(name: str, concurrency: int, suffix: str) -> str:
    """A queue of jobs that note each run; `suffix` keeps its task names apart (they are global)."""
    return f"""
  {name}:
    visibility_timeout: 2s
    concurrency: {concurrency}
    retention:
      completed: {{max_age: 1h, max_count: 10}}
      failed: {{max_age: 1h, max_count: 10}}
    tasks:
      note-run{suffix}: {{handler: "handlers_for_tests:note_run"}}
      note-run-at-once{suffix}: {{handler: "handlers_for_tests:note_run_at_once"}}
"""


QUEUE = window_queue("window", CONCURRENCY, "") + window_queue("window-one", 1, "-one")


def add_window_queue(project: Project) -> None:
    path = project.config / "queues.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\n" + QUEUE)


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, add_window_queue)


@pytest.mark.parametrize(
    ("queue", "concurrency", "kills"), [("window", CONCURRENCY, 1), ("window-one", 1, 3)], ids=["c10", "c1"]
)
@pytest.mark.parametrize("task", ["note-run", "note-run-at-once"])
def test_a_sigkilled_worker_makes_at_most_concurrency_jobs_run_twice_and_loses_none(
    project: Project, task: str, queue: str, concurrency: int, kills: int
) -> None:
    client = redis_client(project)
    client.delete("test:runs")  # shared by the tests on this Redis
    task = task if concurrency == CONCURRENCY else f"{task}-one"  # task names are global
    assert project.bootstrap("enqueue", queue, task, "--count", str(JOBS), "--id", "w") == 0
    for kill in range(1, kills + 1):
        worker = project.start_worker(queue, f"worker-{kill}")
        wait_for(lambda: client.llen("test:runs") >= kill * JOBS // 5, 60, "the worker to be busy", interval=0.01)  # noqa: B023
        os.killpg(worker.pid, signal.SIGKILL)  # mid-stream: jobs running, others just finished
        worker.wait(10)
    ran_before = client.llen("test:runs")
    assert ran_before < JOBS, "the worker finished before it was killed: nothing was tested"
    project.start_worker(queue, "last")
    stream = project.queue_keys(queue).stream
    wait_for(lambda: client.xlen(stream) == 0, 120, "every job to be done")
    runs = Counter(client.lrange("test:runs", 0, -1))
    client.close()
    assert len(runs) == JOBS  # none lost
    again = sum(n - 1 for n in runs.values())
    most = kills * concurrency
    assert again <= most, f"{again} runs again after {kills} kill(s) (at most {most} may: {concurrency} per kill)"
