"""Pausing and resuming a queue, rate limits and RetryAfter, on real worker processes and a real
Redis."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_queue, make_project, redis_client, wait_for

CONTROL_QUEUE = """
  control:
    visibility_timeout: 30s
    concurrency: 4
    shutdown_timeout: 10s
    middlewares:
      - {path: "handlers_for_tests:NoteMiddleware", kwargs: {label: "from-yaml"}}
    tasks:
      note-start: {handler: "handlers_for_tests:note_start"}
      slow-control: {handler: "handlers_for_tests:slow"}
      fail-control: {handler: "handlers_for_tests:always_fail"}
      retry-after-once:
        handler: "handlers_for_tests:retry_after_once"
        retry: {attempts: 1, backoff: fixed, delay: 1s, max_delay: 1s}
  limited:
    concurrency: 4
    rate_limit: {max: 5, per: 1s}
    tasks:
      note-limited: {handler: "handlers_for_tests:note_start"}
"""


def with_control_queues(project: Project) -> None:
    add_test_queue(project)
    path = project.config / "queues.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\n" + CONTROL_QUEUE)


@pytest.fixture
def project(tmp_path: Path, mongo_uri: str, redis_server: RedisServer) -> Iterator[Project]:
    yield from make_project(tmp_path, mongo_uri, redis_server.uri, with_control_queues)


def notes(project: Project, key: str) -> list[dict[str, Any]]:
    client = redis_client(project)
    try:
        return [json.loads(v) for v in client.lrange(key, 0, -1)]
    finally:
        client.close()


def completed(project: Project, queue: str) -> dict[str, dict[str, Any]]:
    client = redis_client(project)
    try:
        return {k: json.loads(v) for k, v in client.hgetall(project.queue_keys(queue).record_data("completed")).items()}
    finally:
        client.close()


def enqueue(project: Project, queue: str, task: str, job_id: str, **kwargs: Any) -> None:
    assert project.bootstrap("enqueue", queue, task, "--kwargs", json.dumps(kwargs), "--id", job_id) == 0


@pytest.fixture
def cli_env(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's MongoDB and Redis for commands run through `cli`."""
    for name, value in project.env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("cli_env")
def test_a_paused_queue_finishes_running_jobs_takes_no_new_ones_and_resumes(project: Project, cli: Any) -> None:
    tag = project.key_prefix
    project.start_worker("control")
    enqueue(project, "control", "note-start", "running", tag=tag, seconds=2.0)
    wait_for(lambda: notes(project, f"test:starts:{tag}"), 30, "the first job to start")
    assert project.bootstrap("jobs", "pause", "control") == 0
    wait_for(lambda: "control: paused" in project.log("worker"), 5, "the worker to see the pause")
    for n in range(3):
        enqueue(project, "control", "note-start", f"later-{n}", tag=tag)
    # The running job finishes; nothing else starts, and the worker holds none of the new jobs.
    wait_for(lambda: "running" in completed(project, "control"), 30, "the running job to finish")
    client = redis_client(project)
    keys = project.queue_keys("control")
    wait_for(lambda: client.xpending(keys.stream, "workers")["pending"] == 0, 5, "no job held by the worker")
    assert [n["id"] for n in notes(project, f"test:starts:{tag}")] == ["running"]
    assert client.xlen(keys.stream) == 3
    client.close()

    shown = cli("status", "--config", str(project.config), "--json")
    queue = next(q for q in json.loads(shown.out)["queues"] if q["queue"] == "control")
    assert queue["paused"] is True and queue["waiting"] == 3
    assert any("queue control is paused: 3 job(s) waiting" in p for p in json.loads(shown.out)["problems"])
    assert "control (paused)" in cli("status", "--config", str(project.config)).out

    assert project.bootstrap("jobs", "resume", "control") == 0
    wait_for(lambda: len(completed(project, "control")) == 4, 30, "the waiting jobs to run after resume")
    assert "control: resumed" in project.log("worker")


@pytest.mark.usefixtures("cli_env")
def test_pause_and_resume_say_what_they_did(project: Project, cli: Any) -> None:
    config = str(project.config)
    assert "paused control" in cli("jobs", "pause", "control", "--config", config).out
    assert "control is paused already" in cli("jobs", "pause", "control", "--config", config).out
    assert "resumed control" in cli("jobs", "resume", "control", "--config", config).out
    assert "control is not paused" in cli("jobs", "resume", "control", "--config", config).out
    unknown = cli("jobs", "pause", "nope", "--config", config)
    assert unknown.code == 1 and "unknown queue 'nope'" in unknown.err


def test_rate_limit_holds_across_two_workers(project: Project) -> None:
    tag = project.key_prefix
    project.start_worker("limited", "worker-a")
    project.start_worker("limited", "worker-b")
    client = redis_client(project)
    wait_for(lambda: len(client.hgetall(f"{project.key_prefix}:workers")) == 2, 30, "both workers")
    client.close()
    assert project.bootstrap("enqueue", "limited", "note-limited", "--kwargs", json.dumps({"tag": tag}),
                             "--count", "15", "--id", "lim") == 0  # fmt: skip
    wait_for(lambda: len(completed(project, "limited")) == 15, 30, "15 jobs")
    starts = sorted(n["at"] for n in notes(project, f"test:starts:{tag}"))
    assert len(starts) == 15
    # At most 5 in any second: the 6th start after any start is (almost: the handlers note their
    # start a little after the worker took the job) a second later.
    gaps = [starts[i + 5] - starts[i] for i in range(len(starts) - 5)]
    assert min(gaps) > 0.8, gaps
    assert starts[-1] - starts[0] > 1.8  # three windows


def test_retry_after_waits_and_spends_no_attempt(project: Project) -> None:
    project.start_worker("control")
    enqueue(project, "control", "retry-after-once", "ra-1", seconds=1.0)
    done = wait_for(lambda: completed(project, "control").get("ra-1"), 30, "the job to complete")
    runs = notes(project, "test:retry-after:ra-1")
    assert [r["attempt"] for r in runs] == [1, 1]  # its only attempt (attempts: 1), run twice
    assert 1.0 <= runs[1]["at"] - runs[0]["at"] < 2.5
    assert done["attempt"] == 1
    assert "asked to run again later" in project.log("worker") and "no attempt spent" in project.log("worker")


def test_user_middlewares_from_yaml_run_around_each_job(project: Project) -> None:
    project.start_worker("control")
    enqueue(project, "control", "slow-control", "mw-ok", seconds=0.01)
    enqueue(project, "control", "fail-control", "mw-bad")
    wait_for(lambda: len(notes(project, "test:mw:mw-bad")) == 3, 30, "the failed job's hooks")
    wait_for(lambda: len(notes(project, "test:mw:mw-ok")) == 2, 30, "the completed job's hooks")
    assert notes(project, "test:mw:mw-ok") == [
        {"hook": "pre_execute", "label": "from-yaml"},
        {"hook": "post_execute", "is_err": False, "value": "done"},
    ]
    assert notes(project, "test:mw:mw-bad") == [
        {"hook": "pre_execute", "label": "from-yaml"},
        {"hook": "on_error", "error": "RuntimeError"},
        {"hook": "post_execute", "is_err": True, "value": None},
    ]


def test_a_middleware_that_cannot_be_imported_stops_its_worker_naming_the_yaml_entry(project: Project) -> None:
    project.edit("queues.yaml", "handlers_for_tests:NoteMiddleware", "handlers_for_tests:not_a_middleware")
    assert project.bootstrap("generate") == 0
    project.start_worker("control")
    enqueue(project, "control", "slow-control", "never-run", seconds=0.01)
    wait_for(lambda: "This queue's worker cannot start" in project.log("worker"), 60, "the error line")
    log = project.log("worker")
    assert (
        "queue control: middleware handlers_for_tests:not_a_middleware (queues.yaml queues.control.middlewares[0]) "
        "cannot be used: TypeError: handlers_for_tests:not_a_middleware is a int, not a taskiq middleware" in log
    )
    assert "Traceback" not in log
    assert completed(project, "control") == {}  # its job waits in Redis for a fixed middleware


def test_the_consumer_and_heartbeat_of_a_sigkilled_worker_are_removed(project: Project) -> None:
    """Worker A dies (SIGKILL) running a job; worker B takes the job over, and once A owns nothing
    and has been silent long enough, B deletes A's consumer (XGROUP DELCONSUMER) and heartbeat."""
    client = redis_client(project)
    keys, workers = project.queue_keys("test-jobs"), f"{project.key_prefix}:workers"
    first = project.start_worker("test-jobs", "worker-a")
    enqueue(project, "test-jobs", "slow-job", "long", seconds=3.0)
    wait_for(lambda: client.lrange("test:slow:long", 0, -1), 30, "the job to start on worker A")
    (dead,) = wait_for(lambda: list(client.hgetall(workers)), 10, "worker A's heartbeat")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    project.start_worker("test-jobs", "worker-b")

    def consumers() -> set[str]:
        return {c["name"] for c in client.xinfo_consumers(keys.stream, "workers")}

    wait_for(lambda: len(consumers()) == 2, 30, "worker B's consumer")
    wait_for(lambda: "long" in completed(project, "test-jobs"), 30, "worker B to take the job over and finish it")
    wait_for(lambda: dead not in consumers(), 40, "worker A's consumer to be removed")
    # The heartbeat goes right after the consumer (a second command of the same sweep).
    wait_for(lambda: dead not in client.hgetall(workers), 5, "worker A's heartbeat to be removed")
    (alive,) = consumers()
    assert alive in client.hgetall(workers)  # worker B's own consumer and heartbeat stay
    assert f"removed 1 consumer(s) of dead workers: {dead}" in project.log("worker-b")
    client.close()


def test_scheduled_fires_queue_up_while_paused_and_run_after_resume(project: Project) -> None:
    project.edit("schedules.yaml", "every: 15m", "every: 1s")  # delta-sync-schedule
    project.apply_and_generate()
    assert project.bootstrap("jobs", "pause", "delta-sync") == 0
    project.start_scheduler()
    client = redis_client(project)
    stream = project.queue_keys("delta-sync").stream
    wait_for(lambda: client.xlen(stream) >= 1, 60, "a fire before any worker")
    project.start_worker("delta-sync")  # starts paused: not even the job already waiting runs
    wait_for(lambda: "delta-sync: listening" in project.log("worker"), 60, "the worker to listen")
    wait_for(lambda: client.xlen(stream) >= 3, 60, "3 fires waiting in the paused queue")
    assert completed(project, "delta-sync") == {} and "job started" not in project.log("worker")
    assert project.bootstrap("jobs", "resume", "delta-sync") == 0
    wait_for(lambda: len(completed(project, "delta-sync")) >= 3, 30, "the fires to run after resume")
    client.close()
