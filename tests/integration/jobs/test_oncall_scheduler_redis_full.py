"""On call: Redis at `maxmemory` (noeviction) refuses the scheduler's fires but still answers its
reads. The README says a failing tick "is logged once per outage"; found by the on-call drill: the
scheduler logged "Redis failed (... OOM ...)" and then "Redis answers again; schedules fire" every
second for the whole incident (69 pairs in 70 s with the MSEDB schedules plus one every 5 s), the
second line false each time: a schedule that only reads clears the outage another one is in."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_queue, open_project, wait_for


def _every_second(project: Project) -> None:
    add_test_queue(project)
    path = project.config / "schedules.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\n  tick-test: {queue: test-jobs, task: slow-job, every: 1s}\n")


def test_a_full_redis_is_logged_once_by_the_scheduler(tmp_path: Path, mongo_uri: str) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        with open_project(tmp_path, mongo_uri, server.uri, _every_second) as project:
            project.start_scheduler()
            wait_for(lambda: "tick-test fired" in project.log("scheduler"), 30, "a first fire")
            client = redis.Redis.from_url(server.uri)
            try:
                client.config_set("maxmemory", 1)  # full: writes refused, reads and PING answered
                time.sleep(5)
                during = project.log("scheduler").split("tick-test fired")[-1]
                client.config_set("maxmemory", 0)
            finally:
                client.close()
    finally:
        server.stop()
    assert during.count("Redis failed") == 1, during
    assert "answers again" not in during, during
