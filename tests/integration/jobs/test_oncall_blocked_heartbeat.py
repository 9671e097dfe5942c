"""On call: a handler blocks its worker's event loop (time.sleep(40) in an async def). The worker
lives and keeps its job (leases are renewed from a thread), but its heartbeat is sent from the event
loop, so after 30 s `health` says "queue oncall: no live worker ... fix: start the workers" and
`status` lists no worker for the queue: the on-call is sent to start a worker that runs, while the
worker's log (the watchdog's "event loop has been blocked ... by job ...") names the real cause.
Found by the on-call drill. The heartbeat should go on while the process lives, as the leases do
(or status/health should tell a blocked worker from a missing one)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.layout.keys import workers_key
from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_queue, make_project, redis_client, wait_for


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, add_test_queue)


def _started(project: Project, job_id: str) -> bool:
    client = redis_client(project)
    try:
        return bool(client.llen(f"test:blocker:{job_id}"))
    finally:
        client.close()


def _heartbeat_age(project: Project, queue: str) -> float:
    """Seconds since the newest heartbeat of a worker of `queue`."""
    client = redis_client(project)
    try:
        beats = [json.loads(raw) for raw in client.hvals(workers_key(project.key_prefix))]
    finally:
        client.close()
    return time.time() - max(float(b["seen"]) for b in beats if b["queue"] == queue)


def test_a_worker_whose_loop_is_blocked_still_beats(project: Project) -> None:
    project.start_worker("test-jobs")
    wait_for(lambda: "listening" in project.log("worker"), 60, "the worker")
    assert project.bootstrap("enqueue", "test-jobs", "block-loop", "--kwargs", '{"seconds": 14}', "--id", "b-1") == 0
    wait_for(lambda: _started(project, "b-1"), 30, "the job to start")
    time.sleep(12)  # the loop is blocked; the process lives and renews its lease
    # HEARTBEAT_EVERY is 5 s: a live worker's newest heartbeat is never much older than that.
    assert _heartbeat_age(project, "test-jobs") < 8
    # ... and says what blocks it, which status and health show instead of "no live worker"
    client = redis_client(project)
    try:
        [beat] = [json.loads(raw) for raw in client.hvals(workers_key(project.key_prefix))]
    finally:
        client.close()
    assert "by job b-1 (task block-loop)" in beat["blocked"], beat
