"""A Redis that lost its data (restarted without persistence) under a running worker and scheduler,
as real processes: both say so loudly, the scheduler keeps firing the schedules its wiring was
generated with, nothing dies on the way ("Task exception was never retrieved"), `status` says what is
gone, and `bootstrap apply` puts everything back, marker included. Also the marker itself (planned
and written once by apply) and stored schedules that can never fire."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bootstrap.layout.keys import marker_key
from bootstrap.layout.marker import LOST_DATA
from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, open_project, redis_client, wait_for
from tests.support.redis_keys import store_definition, stored_last_slots

DELTA = "delta-sync-schedule"  # queue delta-sync, every second in these tests
STARTUP = 40.0  # seconds a process may take to start and do its first thing (2 noisy cores)


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, without persistence: a restart empties it."""
    server = RedisServer(tmp_path / "volatile-redis", appendonly=False)
    server.start()
    yield server
    server.stop()


def every_second(project: Project) -> None:
    project.edit("schedules.yaml", "every: 15m", "every: 1s")


def completed(project: Project, queue: str) -> dict[str, dict[str, Any]]:
    client = redis_client(project)
    try:
        raw: dict[str, str] = client.hgetall(project.queue_keys(queue).record_data("completed"))  # type: ignore[assignment]
    finally:
        client.close()
    return {k: json.loads(v) for k, v in raw.items()}


def status_text(project: Project, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert project.bootstrap("status") == 0
    return capsys.readouterr().out


def test_worker_and_scheduler_survive_a_redis_that_lost_its_data_and_say_so(
    tmp_path: Path, mongo_uri: str, volatile_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_project(tmp_path, mongo_uri, volatile_redis.uri, every_second) as project:
        project.start_worker("delta-sync")
        project.start_scheduler(update_interval=1)
        wait_for(lambda: len(completed(project, "delta-sync")) >= 2, STARTUP, "2 scheduled jobs done")
        assert LOST_DATA not in status_text(project, capsys)
        assert "lost its data" not in project.log("worker") + project.log("scheduler")

        volatile_redis.stop()  # a restart without persistence: everything under the prefix is gone
        # While Redis is away, the scheduler's ticks fail: it says so once, no tick raises.
        wait_for(lambda: "Redis failed" in project.log("scheduler"), 20, "a failed tick")
        volatile_redis.start()

        # The scheduler falls back to the declared schedules, and the worker runs what it fires.
        wait_for(lambda: len(completed(project, "delta-sync")) >= 3, STARTUP, "3 jobs done after the restart")
        scheduler_log, worker_log = project.log("scheduler"), project.log("worker")
        assert f"ERROR   bootstrap.jobs.scheduler: {LOST_DATA}" in scheduler_log
        assert "fires the 5 schedule(s) declared when its wiring was generated" in scheduler_log
        assert scheduler_log.count(LOST_DATA) == 1  # once, not at every reload
        assert re.search(r"ERROR .*queue delta-sync: Redis \S+ lost its data \(no marker written by apply", worker_log)
        assert "consumer groups and job records are gone; run `bootstrap apply`" in worker_log
        assert "Task exception was never retrieved" not in scheduler_log + worker_log
        assert "Traceback" not in scheduler_log
        assert scheduler_log.count("Redis failed") == 1  # once per outage, not per schedule and second
        assert "Redis answers again; schedules fire" in scheduler_log

        text = status_text(project, capsys)
        assert text.splitlines()[1] == LOST_DATA

        # apply stores the schedules and the marker again; the scheduler goes back to them.
        assert project.bootstrap("apply") == 0
        wait_for(lambda: "schedules stored by `bootstrap apply` are back" in project.log("scheduler"), 20, "reload")
        done = len(completed(project, "delta-sync"))
        wait_for(lambda: len(completed(project, "delta-sync")) >= done + 2, 20, "2 more jobs done")
        assert LOST_DATA not in status_text(project, capsys)
        assert "Traceback" not in project.log("scheduler")


def test_a_worker_started_on_a_redis_without_marker_says_what_is_gone(
    tmp_path: Path, mongo_uri: str, volatile_redis: RedisServer
) -> None:
    with open_project(tmp_path, mongo_uri, volatile_redis.uri) as project:
        client = redis_client(project)
        client.delete(marker_key(project.key_prefix))
        client.close()
        project.start_worker("delta-sync")
        wait_for(lambda: "queue delta-sync ready" in project.log("worker"), STARTUP, "the worker to start")
        assert re.search(r"ERROR .*queue delta-sync: Redis \S+ lost its data", project.log("worker"))


def test_apply_writes_the_marker_once_and_plan_shows_it(
    config_dir: Path, cli: Callable[..., Any], redis_server: RedisServer, key_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_server.uri, decode_responses=True)
    plan = cli("plan", "--config", str(config_dir))
    assert f"+ write marker {key_prefix}:marker" in plan.out
    assert cli("apply", "--config", str(config_dir)).code == 0
    marker = json.loads(client.get(marker_key(key_prefix)))  # type: ignore[arg-type]
    assert set(marker) == {"id", "at", "by"}
    again = cli("apply", "--config", str(config_dir))
    assert again.code == 0 and "match the spec" in again.out + again.err
    assert json.loads(client.get(marker_key(key_prefix))) == marker  # type: ignore[arg-type]  # not rewritten
    client.delete(marker_key(key_prefix))  # as after a FLUSHALL that kept nothing else
    plan = cli("plan", "--config", str(config_dir), "--detailed-exitcode")
    assert plan.code == 2 and "Plan: 1 to create" in plan.out
    client.close()


NEVER = {
    "id": "never-schedule",
    "queue": "delta-sync",
    "task": "run-delta-sync",
    "cron": "0 0 30 2 *",  # 30 February
    "every": None,
    "timezone": "UTC",
    "kwargs": {},
    "retry": {"attempts": 1, "backoff": "fixed", "delay": 1.0, "max_delay": 1.0, "jitter": False},
    "misfire": "skip",
    "enabled": True,
}


def test_a_stored_schedule_that_never_fires_is_shown_and_skipped_once(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Written into Redis directly (by an older version, or by hand): validate rejects it now."""
    with open_project(tmp_path, mongo_uri, redis_server.uri, every_second) as project:
        client = redis_client(project)
        prefix = project.key_prefix
        store_definition(client, prefix, "delta-sync", "never-schedule", json.dumps(NEVER))
        store_definition(client, prefix, "delta-sync", "junk-schedule", "{not json")
        elsewhere = {**NEVER, "id": "elsewhere-schedule", "queue": "other-queue", "cron": "* * * * *"}
        # Kept with delta-sync (as by hand), naming a queue this wiring does not have.
        store_definition(client, prefix, "delta-sync", "elsewhere-schedule", json.dumps(elsewhere))
        text = status_text(project, capsys)
        row = next(line for line in text.splitlines() if line.startswith("never-schedule"))
        assert "never fires" in row and "internal error" not in text
        assert "unreadable definition" in next(line for line in text.splitlines() if line.startswith("junk-schedule"))

        project.start_scheduler(update_interval=1)
        stream = project.queue_keys("delta-sync").stream
        wait_for(lambda: client.xlen(stream) >= 3, STARTUP, "3 fires of the schedule that works")
        wait_for(lambda: client.xlen(stream) >= 6, 20, "3 more fires (the bad ones were looked at again)")
        log = project.log("scheduler")
        assert log.count("schedule never-schedule never fires (cron '0 0 30 2 *' names no date that exists)") == 1
        assert log.count("schedule junk-schedule unreadable definition") == 1
        assert log.count("schedule elsewhere-schedule names queue other-queue, which this wiring does not have") == 1
        assert "Traceback" not in log and "CroniterBadDateError" not in log
        assert "never-schedule" not in stored_last_slots(client, prefix)
        client.close()
