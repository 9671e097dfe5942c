"""Review 9 (worker processes): problems found in a943aec and in how the day's features hold
together, each as a test of the right behaviour. See /work/notes/review-rev9.md."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.jobs.records import COMPLETED
from bootstrap.local.servers import RedisServer
from tests.e2e.test_deploy_walk import listening, outcome
from tests.support.jobs_project import Project, add_test_queue, make_project, redis_client, wait_for


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    """The shipped config plus the test queue, applied and generated (release 1)."""
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, add_test_queue)


def test_a_worker_survives_a_job_of_another_releases_task_with_a_nan_argument(project: Project) -> None:
    """Release 2 declares task `sync-v2`; a producer other than `kiq` (a service of another language,
    a script with json.dumps) sent it {"ratio": NaN}, which Python's and pydantic's JSON readers take
    and release 2's handler would run. A release 1 worker that reads it must hand it back and go on."""
    worker = project.start_worker("test-jobs", "old")
    listening(project, "old", "test-jobs")
    client = redis_client(project)
    stream = project.queue_keys("test-jobs").stream
    client.xadd(stream, {"data": '{"task_id":"v2-nan","task_name":"sync-v2","labels":{},"args":[],'
                                 '"kwargs":{"ratio":NaN}}'})  # fmt: skip
    message = {"task_id": "after-it", "task_name": "slow-job", "labels": {}, "args": [], "kwargs": {"seconds": 0}}
    client.xadd(stream, {"data": json.dumps(message)})
    client.close()
    try:
        wait_for(lambda: outcome(project, "test-jobs", "after-it") or worker.poll() is not None, 30, "the next job")
        time.sleep(1)
        if worker.poll() is not None:
            client = redis_client(project)
            entries = [(i, json.loads(f["data"].replace("NaN", "null"))["task_id"]) for i, f in client.xrange(stream)]
            pending = client.xpending(stream, "workers")["pending"]
            client.close()
            raise AssertionError(f"worker exited {worker.returncode}; the stream holds {entries} ({pending} pending):"
                                 f"\n{project.log('old')[-600:]}")  # fmt: skip
        assert outcome(project, "test-jobs", "after-it") == COMPLETED
    finally:
        project.stop_all()
