"""Workers as real processes on the generated wiring, against a real Redis and MongoDB."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from bootstrap.local.processes import group_alive
from bootstrap.local.servers import RedisServer
from tests.conftest import BOTH_MODES, RedisTarget
from tests.support.jobs_project import Project, add_test_queue, make_project, open_project, redis_client, wait_for
from tests.support.processes import children_of


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_target: RedisTarget) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_target.url, add_test_queue, redis_target.mode)


def records(project: Project, queue: str, outcome: str) -> dict[str, dict[str, Any]]:
    client = redis_client(project)
    raw = client.hgetall(project.queue_keys(queue).record_data(outcome))
    client.close()
    return {k: json.loads(v) for k, v in raw.items()}


@BOTH_MODES
def test_enqueued_job_is_processed_by_a_worker_process_with_log_lines(project: Project) -> None:
    worker = project.start_worker("delta-sync")
    assert (
        project.bootstrap(
            "enqueue", "delta-sync", "run-delta-sync", "--kwargs", '{"mailbox": "m1"}', "--id", "job-e2e-1"
        )
        == 0
    )
    done = wait_for(lambda: records(project, "delta-sync", "completed").get("job-e2e-1"), 30, "the job to complete")
    assert done["kwargs"] == {"mailbox": "m1"} and done["task"] == "run-delta-sync"
    log = project.log("worker")
    assert "job started: queue=delta-sync task=run-delta-sync id=job-e2e-1" in log
    assert "job completed: queue=delta-sync task=run-delta-sync id=job-e2e-1" in log
    assert "connected to MongoDB" in log and "PING -> PONG" in log
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0


def test_jobs_enqueued_before_any_worker_are_delivered(project: Project) -> None:
    assert project.bootstrap("enqueue", "delta-sync", "run-delta-sync", "--count", "20", "--id", "early") == 0
    time.sleep(0.5)
    project.start_worker("delta-sync")
    wait_for(lambda: len(records(project, "delta-sync", "completed")) == 20, 30, "20 jobs")


def test_handler_receives_the_worker_mongodb_database(project: Project, mongo_uri: str) -> None:
    project.start_worker("test-jobs")
    assert project.bootstrap("enqueue", "test-jobs", "mongo-job", "--kwargs", '{"n": 7}', "--id", "m-1") == 0
    wait_for(lambda: records(project, "test-jobs", "completed").get("m-1"), 30, "the mongo job")
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    assert client.get_default_database()["jobtests"].find_one({"job": "m-1"})["kwargs"] == {"n": 7}  # type: ignore[index]
    client.close()


@BOTH_MODES
def test_failed_job_is_retried_with_exponential_delays_then_stored_as_failed(project: Project) -> None:
    project.start_worker("test-jobs")
    assert project.bootstrap("enqueue", "test-jobs", "fail-always", "--kwargs", '{"x": 1}', "--id", "f-1") == 0
    failed = wait_for(lambda: records(project, "test-jobs", "failed").get("f-1"), 60, "the failed record")
    client = redis_client(project)
    starts = [json.loads(v)["at"] for v in client.lrange("test:attempts:f-1", 0, -1)]
    client.close()
    assert len(starts) == 4
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    for gap, expected in zip(gaps, [0.3, 0.6, 1.2], strict=True):  # delay, 2 x delay, 4 x delay
        assert expected <= gap < expected + 0.4, gaps
    assert failed["attempts"] == 4 and failed["max_attempts"] == 4
    assert failed["error"] == "RuntimeError: boom on attempt 4"
    assert "Traceback" in failed["traceback"] and "always_fail" in failed["traceback"]
    assert failed["kwargs"] == {"x": 1}
    assert not records(project, "test-jobs", "completed")


@BOTH_MODES
def test_retention_keeps_at_most_max_count_records(project: Project) -> None:
    project.start_worker("test-jobs")
    assert project.bootstrap("enqueue", "test-jobs", "mongo-job", "--count", "12", "--id", "r") == 0
    wait_for(lambda: len(records(project, "test-jobs", "completed")) == 5, 30, "trimmed records")
    time.sleep(0.5)
    kept = records(project, "test-jobs", "completed")
    client = redis_client(project)
    assert client.zcard(project.queue_keys("test-jobs").records("completed")) == 5 == len(kept)
    client.close()


@BOTH_MODES
def test_killed_worker_job_is_delivered_again_and_completed(project: Project) -> None:
    first = project.start_worker("test-jobs", "first")
    assert project.bootstrap("enqueue", "test-jobs", "slow-job", "--kwargs", '{"seconds": 3}', "--id", "k-1") == 0
    client = redis_client(project)
    wait_for(lambda: client.llen("test:slow:k-1") >= 1, 30, "the job to start")
    os.killpg(first.pid, signal.SIGKILL)  # the worker process (and anything it started)
    first.wait(10)
    killed_at = time.time()
    project.start_worker("test-jobs", "second")
    done = wait_for(lambda: records(project, "test-jobs", "completed").get("k-1"), 40, "redelivery")
    events = [json.loads(v) for v in client.lrange("test:slow:k-1", 0, -1)]
    client.close()
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 2 and starts[0]["pid"] != starts[1]["pid"]
    # Redelivered within the visibility timeout (2 s) plus the reclaim interval and worker start-up.
    assert starts[1]["at"] - killed_at < 2 + 1 + 8
    assert done["id"] == "k-1"


def test_sigterm_lets_running_jobs_finish_and_exits_0(project: Project) -> None:
    worker = project.start_worker("test-jobs")
    assert project.bootstrap("enqueue", "test-jobs", "slow-job", "--kwargs", '{"seconds": 2}', "--id", "g-1") == 0
    client = redis_client(project)
    wait_for(lambda: client.llen("test:slow:g-1") >= 1, 30, "the job to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    events = [json.loads(v)["event"] for v in client.lrange("test:slow:g-1", 0, -1)]
    client.close()
    assert events == ["start", "end"]
    assert "g-1" in records(project, "test-jobs", "completed")
    assert "MongoDB connection closed" in project.log("worker")


def test_retention_removes_records_older_than_max_age(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer
) -> None:
    def short_lived_records(project: Project) -> None:
        add_test_queue(project)
        project.edit("queues.yaml", "completed: {max_age: 1h, max_count: 5}", "completed: {max_age: 2s, max_count: 50}")

    with open_project(tmp_path, mongo_uri, redis_server.uri, short_lived_records) as project:
        project.start_worker("test-jobs")
        assert project.bootstrap("enqueue", "test-jobs", "mongo-job", "--count", "3", "--id", "old") == 0
        wait_for(lambda: len(records(project, "test-jobs", "completed")) == 3, 30, "three records")
        time.sleep(2.5)
        assert project.bootstrap("enqueue", "test-jobs", "mongo-job", "--id", "new") == 0
        wait_for(lambda: set(records(project, "test-jobs", "completed")) == {"new"}, 30, "old records trimmed by age")


def start_launcher(project: Project, *queues: str) -> subprocess.Popen[str]:
    """`python -m <package>.worker QUEUE...`, the generated launcher, in a session of its own."""
    env = {**os.environ, **project.env, "PYTHONPATH": str(project.root / "generated")}
    launcher = subprocess.Popen(
        [sys.executable, "-m", f"{project.package}.worker", *queues],
        cwd=project.root / "generated",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    project.processes.append(launcher)
    return launcher


def run_a_job(project: Project, queue: str, task: str, job_id: str) -> None:
    assert project.bootstrap("enqueue", queue, task, "--id", job_id) == 0
    client = redis_client(project)
    wait_for(lambda: client.hexists(project.queue_keys(queue).record_data("completed"), job_id), 60, f"job {job_id}")
    client.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkilled_worker_launcher_takes_its_workers_with_it(project: Project) -> None:
    """SIGKILL leaves the launcher no chance to stop its children: they must go by themselves, or
    they would go on taking jobs with nobody supervising them."""
    launcher = start_launcher(project, "delta-sync", "token-refresh")
    run_a_job(project, "token-refresh", "refresh-tokens", "before-kill")
    workers = wait_for(lambda: len(children_of(launcher.pid)) == 2 and children_of(launcher.pid), 30, "two workers")
    # One process per queue: no process manager forking the worker (it cost 46 MiB per queue).
    assert all(children_of(worker) == [] for worker in workers)
    launcher.kill()
    launcher.wait(10)
    wait_for(lambda: not any(group_alive(worker) for worker in workers), 15, "the workers to stop with the launcher")
    assert project.bootstrap("enqueue", "token-refresh", "refresh-tokens", "--id", "after-kill") == 0
    time.sleep(1)
    client = redis_client(project)
    assert not client.hexists(project.queue_keys("token-refresh").record_data("completed"), "after-kill")
    client.close()


def worker_of(launcher: subprocess.Popen[str], queue: str) -> int | None:
    """The pid of the launcher's worker for `queue` (its command line names the queue's broker)."""
    for pid in children_of(launcher.pid):
        try:
            if f":{queue.replace('-', '_')}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            pass
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_launcher_restarts_a_worker_that_dies_and_stops_all_when_it_keeps_dying(project: Project) -> None:
    launcher = start_launcher(project, "delta-sync", "token-refresh")
    run_a_job(project, "token-refresh", "refresh-tokens", "w-1")
    first = wait_for(lambda: worker_of(launcher, "token-refresh"), 30, "the token-refresh worker")
    os.killpg(first, signal.SIGKILL)  # the worker crashes: the launcher starts another
    wait_for(lambda: worker_of(launcher, "token-refresh") not in (None, first), 30, "a restarted worker")
    run_a_job(project, "token-refresh", "refresh-tokens", "w-2")
    killed = {first}
    for _ in range(5):  # it keeps dying: 5 restarts a minute, then the launcher gives up on it
        pid = wait_for(lambda: (p := worker_of(launcher, "token-refresh")) not in killed and p, 30, "a new worker")
        killed.add(pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    out, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 1, out
    assert "exited with code -9; restarting it" in out
    assert "worker token-refresh exited on its own (code -9); stopping the others" in out
    assert not any(group_alive(pid) for pid in killed) and children_of(launcher.pid) == []
