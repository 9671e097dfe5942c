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
from tests.conftest import BOTH_MODES, RedisTarget
from tests.support.jobs_project import Project, make_project, redis_client, wait_for

QUEUE, TASK = "delta-sync", "run-delta-sync"


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_target: RedisTarget) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_target.url, redis_mode=redis_target.mode)


def completed(project: Project) -> dict[str, dict[str, Any]]:
    client = redis_client(project)
    raw = client.hgetall(project.queue_keys(QUEUE).record_data("completed"))
    client.close()
    return {k: json.loads(v) for k, v in raw.items()}


@BOTH_MODES  # the id index, the delayed set and the stream are one queue's keys: one slot
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


@pytest.fixture
def one_at_a_time(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    """delta-sync running one job at a time, its task declared low priority."""

    def edit(project: Project) -> None:
        project.edit("queues.yaml", "run-delta-sync: {timeout: 10m}", "run-delta-sync: {timeout: 10m, priority: low}")
        project.edit("queues.yaml", "  concurrency: 10", "  concurrency: 1")

    yield from make_project(tmp_path, mongo_uri, redis_server.uri, edit)


def started_order(project: Project) -> list[str]:
    """Job ids in the order the worker started them (its log)."""
    marker = "job started: queue=delta-sync task=run-delta-sync id="
    return [line.split(marker)[1].split()[0] for line in project.log("worker").splitlines() if marker in line]


def test_higher_priorities_are_served_first_and_lower_ones_are_not_starved(one_at_a_time: Project) -> None:
    project = one_at_a_time
    keys = project.queue_keys(QUEUE)
    # The task's declared priority (low) unless the enqueue says otherwise.
    assert project.bootstrap("enqueue", QUEUE, TASK, "--count", "30", "--id", "low") == 0
    assert project.bootstrap("enqueue", QUEUE, TASK, "--count", "30", "--id", "normal", "--priority", "normal") == 0
    assert project.bootstrap("enqueue", QUEUE, TASK, "--count", "30", "--id", "high", "--priority", "high") == 0
    client = redis_client(project)
    assert [client.xlen(keys.stream_at(level)) for level in ("high", "normal", "low")] == [30, 30, 30]
    client.close()
    project.start_worker(QUEUE)
    wait_for(lambda: len(completed(project)) == 90, 60, "all 90 jobs")
    levels = [job_id.split("-")[0] for job_id in started_order(project)]
    assert len(levels) == 90
    assert levels[:10] == ["high"] * 10  # the first read fills the worker's room from the top level
    mean = {level: sum(i for i, x in enumerate(levels) if x == level) / 30 for level in ("high", "normal", "low")}
    assert mean["high"] < mean["normal"] < mean["low"], mean
    # Lower levels get their turns while higher ones still wait (4 reads in 7 lead with high, 2 normal,
    # 1 low): low is not starved by 30 high jobs.
    assert levels.index("low") < max(i for i, level in enumerate(levels) if level == "high"), levels
