"""What a backend developer meets sending jobs from Python (README "Sending jobs": ids that
deduplicate, results, job arguments, `schedule_by_time`), on a real Redis and a real worker process:
discrepancies found while building on the generated package, fixed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from taskiq import AsyncTaskiqDecoratedTask, TaskiqMessage, TaskiqMiddleware
from taskiq.exceptions import SendTaskError, TaskiqResultTimeoutError

from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.delayed import DelayedJobs
from bootstrap.jobs.wiring import make_broker, register_task
from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, make_project, redis_client

QUEUE = "delta-sync"
TASKS = """run-delta-sync: {timeout: 10m}
      give-back: {handler: "handlers_for_tests:give_back"}"""


SENT: list[tuple[str, str]] = []  # (hook, job id) seen by Recorder in this process


class Recorder(TaskiqMiddleware):
    """A user middleware (declared in queues.yaml) noting the send hooks it sees."""

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        SENT.append(("pre_send", message.task_id))
        return message

    def post_send(self, message: TaskiqMessage) -> None:
        SENT.append(("post_send", message.task_id))


def _project(
    tmp_path: Path, mongo_uri: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, middleware: bool
) -> Iterator[Project]:
    def edit(project: Project) -> None:
        project.edit("queues.yaml", "run-delta-sync: {timeout: 10m}", TASKS)
        if middleware:  # imported by this process only: no worker runs in the test that declares it
            tasks = "    tasks:\n      run-delta-sync"
            project.edit("queues.yaml", tasks, f'    middlewares: ["{__name__}:Recorder"]\n{tasks}')

    for project in make_project(tmp_path, mongo_uri, redis_url, edit):
        for name, value in project.env.items():
            monkeypatch.setenv(name, value)
        yield project


@pytest.fixture
def project(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    yield from _project(tmp_path, mongo_uri, redis_server.uri, monkeypatch, middleware=False)


@pytest.fixture
def sender_with_middleware(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    yield from _project(tmp_path, mongo_uri, redis_server.uri, monkeypatch, middleware=True)


@asynccontextmanager
async def _sender(runtime: Runtime) -> AsyncIterator[tuple[StreamBroker, AsyncTaskiqDecoratedTask[Any, Any]]]:
    """A started broker of QUEUE in this process, and its give-back task (as an app sends jobs)."""
    broker = make_broker(runtime, QUEUE)
    give_back = register_task(broker, runtime, QUEUE, "give-back")
    await broker.startup()
    try:
        yield broker, give_back
    finally:
        await broker.shutdown()


def test_wait_result_of_an_id_enqueued_again_waits_for_the_new_run(project: Project) -> None:
    project.start_worker(QUEUE)
    runtime = Runtime.from_spec(project.spec())

    async def test() -> None:
        async with _sender(runtime) as (_broker, give_back):
            first = await give_back.kicker().with_task_id("sync-m-1").with_labels(dedupe=True).kiq(run=1)
            done = await first.wait_result(check_interval=0.05, timeout=30)
            assert done.return_value == {"job": "sync-m-1", "kwargs": {"run": 1}}
            # README: "the same id can be enqueued again once its job finished: that is a new job".
            # Pause the queue so that the new run cannot have finished yet.
            assert project.bootstrap("jobs", "pause", QUEUE) == 0
            await asyncio.sleep(1.5)  # workers stop taking jobs within a second
            again = await give_back.kicker().with_task_id("sync-m-1").with_labels(dedupe=True).kiq(run=2)
            with pytest.raises(TaskiqResultTimeoutError):
                stale = await again.wait_result(check_interval=0.05, timeout=2)
                raise AssertionError(f"got a result of a job that has not run: {stale.return_value}")
            assert project.bootstrap("jobs", "resume", QUEUE) == 0
            new = await again.wait_result(check_interval=0.05, timeout=30)
            assert new.return_value == {"job": "sync-m-1", "kwargs": {"run": 2}}

    asyncio.run(test())


def test_kiq_refuses_nan_and_infinity_arguments(project: Project) -> None:
    runtime = Runtime.from_spec(project.spec())

    async def test() -> None:
        async with _sender(runtime) as (_broker, give_back):
            for value in (float("nan"), float("inf")):
                with pytest.raises(SendTaskError):
                    await give_back.kiq(threshold=value)

    asyncio.run(test())
    client = redis_client(project)
    assert client.xlen(project.queue_keys(QUEUE).stream) == 0  # nothing sent


def test_schedule_by_time_runs_the_user_middlewares_send_hooks(sender_with_middleware: Project) -> None:
    project = sender_with_middleware
    runtime = Runtime.from_spec(project.spec())
    SENT.clear()

    async def test() -> None:
        async with _sender(runtime) as (broker, give_back):
            sent = await give_back.kicker().with_task_id("by-kiq").with_labels(delay=60).kiq()
            assert ("pre_send", sent.task_id) in SENT and ("post_send", sent.task_id) in SENT  # kiq(): both
            when = datetime.now(UTC) + timedelta(seconds=60)
            await give_back.kicker().with_task_id("by-time").schedule_by_time(DelayedJobs(broker), when)

    asyncio.run(test())
    assert redis_client(project).zcard(project.queue_keys(QUEUE).delayed) == 2  # both were sent
    assert ("pre_send", "by-time") in SENT and ("post_send", "by-time") in SENT
