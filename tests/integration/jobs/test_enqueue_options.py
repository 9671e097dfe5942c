"""`bootstrap enqueue --delay/--at/--id/--priority` with a worker process on real Redis and MongoDB."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, redis_client, wait_for

QUEUE, TASK = "delta-sync", "run-delta-sync"


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri)


def completed(project: Project) -> dict[str, dict[str, Any]]:
    client = redis_client(project)
    raw = client.hgetall(project.queue_keys(QUEUE).record_data("completed"))
    client.close()
    return {k: json.loads(v) for k, v in raw.items()}


def test_a_delayed_job_runs_after_its_delay_and_its_id_deduplicates(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.start_worker(QUEUE)
    sent_at = time.time()
    assert project.bootstrap("enqueue", QUEUE, TASK, "--delay", "3s", "--id", "fixed-1") == 0
    assert "enqueued 1 job(s) on delta-sync, to run in 3s: fixed-1" in capsys.readouterr().out
    assert project.bootstrap("enqueue", QUEUE, TASK, "--id", "fixed-1") == 0
    said = capsys.readouterr().out
    assert "job fixed-1 is already waiting, delayed or running on delta-sync: not enqueued again" in said
    done = wait_for(lambda: completed(project).get("fixed-1"), 30, "the delayed job to complete")
    # It ran no earlier than its delay (the record's finish time is the worker's clock: same machine).
    assert done["finished_at"] >= sent_at + 3
    assert "job started: queue=delta-sync task=run-delta-sync id=fixed-1" in project.log("worker")
    assert project.log("worker").count("job started: queue=delta-sync task=run-delta-sync id=fixed-1") == 1
    # Finished: the id may be used again.
    wait_for(lambda: not redis_client(project).hexists(project.queue_keys(QUEUE).ids, "fixed-1"), 10, "the id freed")
    assert project.bootstrap("enqueue", QUEUE, TASK, "--id", "fixed-1", "--kwargs", '{"run": 2}') == 0
    wait_for(lambda: completed(project)["fixed-1"]["kwargs"] == {"run": 2}, 30, "the second run")


def test_at_takes_an_iso_time_and_bad_times_are_refused(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    client = redis_client(project)
    keys = project.queue_keys(QUEUE)
    at = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%S")  # no zone: UTC
    assert project.bootstrap("enqueue", QUEUE, TASK, "--at", at) == 0
    [(_, due)] = client.zrange(keys.delayed, 0, -1, withscores=True)
    assert abs(due - datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp()) < 1
    capsys.readouterr()
    assert project.bootstrap("enqueue", QUEUE, TASK, "--at", "tomorrow") == 1
    assert "--at: 'tomorrow' is not an ISO-8601 time" in capsys.readouterr().err
    assert project.bootstrap("enqueue", QUEUE, TASK, "--delay", "soon") == 1
    assert "--delay: 'soon' is not a duration" in capsys.readouterr().err
    assert client.zcard(keys.delayed) == 1 and client.xlen(keys.stream) == 0
    client.close()
