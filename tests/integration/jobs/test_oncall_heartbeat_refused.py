"""On call: an idle worker whose heartbeats Redis refuses (here: Redis at `maxmemory`, noeviction)
says nothing in its log, while `status` and `health` soon call it dead ("no live worker ... fix:
start the workers"). Found by the on-call drill: the workers' logs were silent for the whole
incident; only the scheduler's and a busy worker's acknowledgements named the OOM error. A
heartbeat that fails while Redis answers should be logged (once per outage), naming the error."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import open_project, wait_for


def test_a_worker_says_when_redis_refuses_its_heartbeat(tmp_path: Path, mongo_uri: str) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        with open_project(tmp_path, mongo_uri, server.uri) as project:
            project.start_worker("delta-sync")
            wait_for(lambda: "listening" in project.log("worker"), 30, "the worker to listen")
            client = redis.Redis.from_url(server.uri)
            try:
                client.config_set("maxmemory", 1)  # full: every write refused, PING still answers
                time.sleep(12)  # two heartbeats, and status already calls the worker dead
                client.config_set("maxmemory", 0)
            finally:
                client.close()
            log = project.log("worker").split("listening", 1)[1]  # what it said after it started
    finally:
        server.stop()
    assert "used memory" in log or "heartbeat" in log.lower(), log[-2000:]
