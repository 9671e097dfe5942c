"""Workers exit within their shutdown timeout after SIGTERM, every time (real processes)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_queue, make_project, redis_client, wait_for

SHUTDOWN_TIMEOUT = 3.0
# What a stop may take beyond the shutdown timeout: taskiq's process manager looks for the signal
# once a second, the current blocking read ends within a second, then Redis and MongoDB are closed.
MARGIN = 4.0


def short_shutdown(project: Project) -> None:
    add_test_queue(project)
    project.edit("queues.yaml", "shutdown_timeout: 10s", f"shutdown_timeout: {SHUTDOWN_TIMEOUT:g}s")


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, short_shutdown)


def test_sigterm_stops_every_worker_within_its_shutdown_timeout(project: Project) -> None:
    """One worker in 16 used to hang in shutdown until taskiq's own timeout (the acknowledging loop
    lost its cancellation). Eight workers in a row, stopped while finishing short jobs and while
    running a job longer than the timeout: each exits 0 in time."""
    client = redis_client(project)
    took = []
    for n in range(8):
        name = f"w{n}"
        worker = project.start_worker("test-jobs", name)
        wait_for(lambda log=name: "listening" in project.log(log), 60, f"worker {n} to listen")
        # Jobs that end while the worker stops (their acknowledgements are then in flight), and in
        # every fourth round a job far longer than the timeout.
        seconds = "60" if n % 4 == 3 else "1"
        assert project.bootstrap("enqueue", "test-jobs", "slow-job", "--kwargs", f'{{"seconds": {seconds}}}',
                                 "--count", str(1 + n % 3), "--id", name) == 0  # fmt: skip
        wait_for(lambda job=f"{name}-0" if n % 3 else name: client.llen(f"test:slow:{job}"), 30, "a job to start")
        time.sleep(0.1 * (n % 4))  # stop at different moments of the acknowledging cycle
        stopped = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(SHUTDOWN_TIMEOUT + 60)
        finally:
            took.append(round(time.monotonic() - stopped, 2))
        assert code == 0, project.log(name)
    client.close()
    assert max(took) < SHUTDOWN_TIMEOUT + MARGIN, took
