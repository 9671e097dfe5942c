"""A MongoDB that goes away for a few seconds while handlers write: the jobs are retried on the
transient connection errors and complete, none reaches the failed store (a real MongoDB server,
stopped and started again; real worker processes)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bootstrap.local.servers import MongoServer, RedisServer
from tests.support.jobs_project import add_test_queue, open_project, redis_client, wait_for

BLIP = 6.0  # seconds MongoDB is away


def test_a_mongodb_blip_is_ridden_out_by_transient_retries(tmp_path: Path, redis_server: RedisServer) -> None:
    """mongo-job has no retry policy: one attempt. A 6 s blip used to send its jobs straight to the
    failed store; transient connection errors are retried apart from the task's policy."""
    mongo = MongoServer(tmp_path / "mongo")
    mongo.start()
    try:
        with open_project(tmp_path, mongo.uri + "blip", redis_server.uri, add_test_queue) as project:
            project.start_worker("test-jobs")
            client = redis_client(project)
            keys = project.queue_keys("test-jobs")
            assert project.bootstrap("enqueue", "test-jobs", "mongo-job", "--id", "before") == 0
            wait_for(lambda: client.hexists(keys.record_data("completed"), "before"), 60, "a first job")
            mongo.stop()  # SIGTERM: a clean stop; the same port and data when it starts again
            away = time.monotonic()
            assert project.bootstrap("enqueue", "test-jobs", "mongo-job", "--count", "3", "--id", "blip") == 0
            wait_for(lambda: "failed on a transient error" in project.log("worker"), 30, "a transient failure")
            time.sleep(max(0.0, BLIP - (time.monotonic() - away)))  # the blip itself: nothing to wait for
            mongo.start()
            done = {f"blip-{n}" for n in range(3)}
            wait_for(lambda: done <= set(client.hkeys(keys.record_data("completed"))), 90, "the jobs to complete")
            assert client.hlen(keys.record_data("failed")) == 0
            client.close()
            log = project.log("worker")
            retried = [line for line in log.splitlines() if "failed on a transient error" in line]
            assert retried and all("(transient retry " in line for line in retried)
            assert any(error in log for error in ("AutoReconnect", "ServerSelectionTimeoutError", "NetworkTimeout"))
            stored: MongoClient[dict[str, Any]] = MongoClient(mongo.uri)
            jobs = {d["job"] for d in stored["blip"]["jobtests"].find({}, {"job": 1})}
            stored.close()
            assert done | {"before"} <= jobs
            assert "job failed for good" not in log, json.dumps(retried)
    finally:
        mongo.stop()
