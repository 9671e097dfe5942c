"""The fast receiver in process, against a real Redis that goes away at the worst moment: while a
failed job is being put back for its retry."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.receiver import FastReceiver
from bootstrap.jobs.wiring import enqueue, make_broker, register_task
from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_tasks, make_project_in_env, wait_for

CALLS: list[float] = []
REDIS_AWAY = threading.Event()

TASK = """
      fail-while-redis-is-away:
        handler: "tests.integration.jobs.test_receiver:fail_while_redis_is_away"
        retry: {attempts: 3, backoff: fixed, delay: 100ms, max_delay: 1s}
"""


async def fail_while_redis_is_away(**kwargs: Any) -> None:
    """First call: waits until the test stopped Redis, then fails (its retry cannot be stored).
    Later calls succeed."""
    CALLS.append(time.monotonic())
    if len(CALLS) == 1:
        await asyncio.to_thread(REDIS_AWAY.wait, 30)
        raise RuntimeError("failed while Redis is away")


def with_task(project: Project) -> None:
    add_test_tasks(project, TASK)
    project.edit("queues.yaml", "    visibility_timeout: 2s", "    visibility_timeout: 1s")


@pytest.fixture
def redis_of_its_own(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")  # this test stops it; append-only, so nothing is lost
    server.start()
    yield server
    server.stop()


@pytest.fixture
def project(
    tmp_path: Path, mongo_uri: str, redis_of_its_own: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    CALLS.clear()
    REDIS_AWAY.clear()
    yield from make_project_in_env(tmp_path, mongo_uri, redis_of_its_own.uri, with_task, monkeypatch)


def test_a_job_whose_failure_could_not_be_handled_is_delivered_again(
    project: Project, redis_of_its_own: RedisServer
) -> None:
    """The receiver said 'it will be delivered again after the visibility timeout', but kept holding
    the job: renewed for as long as the worker lived, it was never delivered again."""
    runtime = Runtime.from_spec(project.spec())
    finish: dict[str, asyncio.Event] = {}
    gave_up = threading.Event()
    errors: list[BaseException] = []

    async def worker() -> None:
        broker = make_broker(runtime, "test-jobs")
        register_task(broker, runtime, "test-jobs", "fail-while-redis-is-away")
        broker.is_worker_process = True
        await broker.startup()
        receiver = FastReceiver(broker, max_async_tasks=2, run_startup=False, wait_tasks_timeout=5)
        finish["event"] = asyncio.Event()
        listening = asyncio.create_task(receiver.listen(finish["event"]))
        await enqueue(runtime, "test-jobs", "fail-while-redis-is-away", {}, job_id="once")
        await listening
        await broker.shutdown()

    def run() -> None:
        try:
            asyncio.run(worker())
        except BaseException as exc:
            errors.append(exc)

    class Said(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "could not finish handling a job" in record.getMessage():
                gave_up.set()

    said = Said()
    logging.getLogger("bootstrap.jobs.receiver").addHandler(said)
    # The worker's event loop in a thread; Redis is stopped and started from this (main) thread.
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(lambda: CALLS, 60, "the job to start")
    redis_of_its_own.stop()
    REDIS_AWAY.set()
    wait_for(gave_up.is_set, 30, "the receiver to give up handling the failure")
    logging.getLogger("bootstrap.jobs.receiver").removeHandler(said)
    redis_of_its_own.start()
    wait_for(lambda: len(CALLS) == 2 or errors, 30, "the job to be delivered again")
    assert not errors and len(CALLS) == 2
    loop_finish = finish["event"]
    loop_finish._loop.call_soon_threadsafe(loop_finish.set)  # type: ignore[attr-defined]
    thread.join(30)
    assert not errors, errors
