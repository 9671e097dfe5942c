"""The fast receiver's per-job path (JobMessage, no Job for handlers that do not take one,
first_step/resume, user middlewares given taskiq's model), in process against a real Redis: handlers get
their arguments and job, a user middleware sees and changes the message, a retry carries the next
attempt, a timeout fires as JobTimedOut, and a task bootstrap did not generate runs taskiq's way."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.receiver import FastReceiver
from bootstrap.jobs.wiring import enqueue, make_broker, register_task
from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_queue, make_project_in_env

QUEUE = "test-jobs"
HANDLED: list[tuple[Any, ...]] = []
SEEN: list[tuple[Any, ...]] = []
H = "tests.integration.jobs.test_fast_path_semantics"

TASKS = f"""
      r2-echo: {{handler: "{H}:echo"}}
      r2-no-job: {{handler: "{H}:no_job"}}
      r2-sync-no-job: {{handler: "{H}:sync_no_job"}}
      r2-late-wait: {{handler: "{H}:late_wait", timeout: 300ms}}
      r2-first-wait: {{handler: "{H}:first_wait", timeout: 300ms}}
      r2-swallow: {{handler: "{H}:swallow", timeout: 300ms}}
      r2-fails-once:
        handler: "{H}:fails_once"
        retry: {{attempts: 2, backoff: fixed, delay: 100ms, max_delay: 1s}}
"""


async def echo(job: Any, **kwargs: Any) -> dict[str, Any]:
    HANDLED.append(("echo", job.id, job.queue, job.task, job.attempt, dict(job.labels), kwargs))
    return kwargs


async def no_job(**kwargs: Any) -> str:
    HANDLED.append(("no-job", kwargs))
    return "ok"


def sync_no_job(**kwargs: Any) -> str:
    HANDLED.append(("sync-no-job", threading.current_thread().name, kwargs))
    return "sync-ok"


async def late_wait(**kwargs: Any) -> None:
    await asyncio.sleep(0)  # a first wait that ends at once: the long one is its second
    await asyncio.sleep(0.01)
    await asyncio.sleep(30)
    HANDLED.append(("late-wait finished",))


async def first_wait(**kwargs: Any) -> None:
    await asyncio.sleep(30)
    HANDLED.append(("first-wait finished",))


async def swallow(**kwargs: Any) -> str:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        HANDLED.append(("swallowed",))
        return "swallowed"
    return "slept"


async def fails_once(job: Any, **kwargs: Any) -> str:
    HANDLED.append(("fails-once", job.attempt, dict(job.labels), kwargs))
    if job.attempt == 1:
        raise RuntimeError("first attempt fails")
    return "second"


async def stock_task(a: int, b: str = "", **kwargs: Any) -> str:
    HANDLED.append(("stock", a, b))
    return f"{a}{b}"


class Spy(TaskiqMiddleware):
    """Changes the message in pre_execute (kwargs and a label) and notes what the later hooks see."""

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        assert isinstance(message, TaskiqMessage)
        SEEN.append(("pre", message.task_id, dict(message.labels), dict(message.kwargs)))
        message.kwargs["added"] = "by-middleware"
        message.labels["mark"] = "spy"
        return message

    def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        SEEN.append(("error", message.task_id, type(exception).__name__, dict(message.labels)))

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        SEEN.append(("post", message.task_id, result.is_err, result.return_value, dict(result.labels)))


def with_tasks(project: Project) -> None:
    add_test_queue(project)
    path = project.config / "queues.yaml"
    path.write_text(path.read_text().rstrip("\n") + TASKS)


@pytest.fixture
def project(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    HANDLED.clear()
    SEEN.clear()
    yield from make_project_in_env(tmp_path, mongo_uri, redis_server.uri, with_tasks, monkeypatch)


TASK_NAMES = ("r2-echo", "r2-no-job", "r2-sync-no-job", "r2-late-wait", "r2-first-wait", "r2-swallow", "r2-fails-once")


def run_worker(
    project: Project,
    jobs: list[tuple[str, dict[str, Any], str]],
    until: Callable[[], bool],
    *,
    spy: bool = False,
    timeout: float = 20,
    inspect: Callable[[aioredis.Redis, Runtime], Any] | None = None,
    raw_jobs: tuple[bytes, ...] = (),
    stock: bool = False,
) -> Any:
    runtime = Runtime.from_spec(project.spec())

    async def main() -> Any:
        broker = make_broker(runtime, QUEUE)
        for task in TASK_NAMES:
            register_task(broker, runtime, QUEUE, task)
        if spy:
            broker.add_middlewares(Spy())
        if stock:  # a task of taskiq's own on the same broker: not generated by bootstrap
            broker.register_task(stock_task, task_name="r2-stock")
        broker.is_worker_process = True
        await broker.startup()
        finish = asyncio.Event()
        receiver = FastReceiver(broker, max_async_tasks=4, run_startup=False, wait_tasks_timeout=5)
        listening = asyncio.create_task(receiver.listen(finish))
        try:
            for task, kwargs, job_id in jobs:
                await enqueue(runtime, QUEUE, task, kwargs, job_id=job_id)
            if raw_jobs:
                client = aioredis.from_url(project.env["REDIS_URL"])
                try:
                    for data in raw_jobs:
                        await client.xadd(project.queue_keys(QUEUE).stream, {"data": data})
                finally:
                    await client.aclose()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not until():
                assert loop.time() < deadline, f"timed out: handled {HANDLED}, seen {SEEN}"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # acknowledgements and records flushed
            result = None
            if inspect is not None:
                client = aioredis.from_url(project.env["REDIS_URL"], decode_responses=True)
                try:
                    result = await inspect(client, runtime)
                finally:
                    await client.aclose()
            return result
        finally:
            finish.set()
            await listening
            await broker.shutdown()

    return asyncio.run(main())


def test_handlers_get_their_arguments_and_job_as_before(project: Project) -> None:
    jobs: list[tuple[str, dict[str, Any], str]] = [
        ("r2-echo", {"a": 1, "b": [1, 2.5, None], "c": {"d": "e"}}, "echo-1"),
        ("r2-no-job", {"x": "y"}, "nojob-1"),
        ("r2-sync-no-job", {"z": 3}, "syncnojob-1"),
    ]
    run_worker(project, jobs, lambda: len(HANDLED) == 3)
    by_kind = {entry[0]: entry for entry in HANDLED}
    _, job_id, queue, task, attempt, _labels, kwargs = by_kind["echo"]
    assert (job_id, queue, task, attempt) == ("echo-1", QUEUE, "r2-echo", 1)
    assert kwargs == {"a": 1, "b": [1, 2.5, None], "c": {"d": "e"}}
    assert by_kind["no-job"] == ("no-job", {"x": "y"})
    assert by_kind["sync-no-job"][2] == {"z": 3}
    assert by_kind["sync-no-job"][1] == "job-syncnojob-1"  # the thread is named for its job, as before


def test_a_user_middleware_sees_and_changes_the_message(project: Project) -> None:
    run_worker(project, [("r2-echo", {"a": 1}, "mw-1")], lambda: len(SEEN) == 2, spy=True)
    assert SEEN[0][:2] == ("pre", "mw-1") and SEEN[0][3] == {"a": 1}
    _, _id, _, _, _, job_labels, kwargs = HANDLED[0]
    assert kwargs == {"a": 1, "added": "by-middleware"}  # the middleware's change reached the handler
    assert job_labels.get("mark") == "spy"
    assert SEEN[1][:4] == ("post", "mw-1", False, {"a": 1, "added": "by-middleware"})
    assert SEEN[1][4].get("mark") == "spy"


@pytest.mark.parametrize("spy", [False, True])
def test_a_retry_carries_the_next_attempt_and_the_same_arguments(project: Project, spy: bool) -> None:
    run_worker(project, [("r2-fails-once", {"n": 7}, "retry-1")], lambda: len(HANDLED) == 2, spy=spy, timeout=30)
    (_, first, _, first_kwargs), (_, second, _, second_kwargs) = HANDLED
    assert (first, second) == (1, 2)
    expected = {"n": 7, "added": "by-middleware"} if spy else {"n": 7}
    assert first_kwargs == second_kwargs == expected
    if spy:
        assert [s[0] for s in SEEN] == ["pre", "error", "post", "pre", "post"]
        assert SEEN[1][2] == "RuntimeError"


@pytest.mark.parametrize("task", ["r2-late-wait", "r2-first-wait"])
@pytest.mark.parametrize("spy", [False, True])
def test_a_timeout_fires_as_job_timed_out(project: Project, task: str, spy: bool) -> None:
    """A job that waits past its timeout fails with JobTimedOut, whether its long wait is its first
    (run by first_step, passed on by resume) or a later one."""
    import redis as sync_redis

    client = sync_redis.Redis.from_url(project.env["REDIS_URL"], decode_responses=True)
    job_id = f"{task}-{spy}-timeout"

    def failed() -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key in client.scan_iter(match="*failed:data"):
            for ident, record in client.hgetall(key).items():
                if ident == job_id:
                    found[ident] = json.loads(record)
        return found

    try:
        until = (lambda: len(SEEN) >= 3) if spy else (lambda: bool(failed()))
        run_worker(project, [(task, {}, job_id)], until, spy=spy, timeout=20)
        records = failed()
    finally:
        client.close()
    assert not [h for h in HANDLED if "finished" in h[0]]
    assert "JobTimedOut" in records[job_id]["error"], records
    if spy:
        assert SEEN[1][:3] == ("error", job_id, "JobTimedOut")


def test_a_handler_that_swallows_its_timeout_completes(project: Project) -> None:
    run_worker(project, [("r2-swallow", {}, "swallow-1")], lambda: len(SEEN) >= 2, spy=True)
    assert HANDLED == [("swallowed",)]
    assert SEEN[1][:4] == ("post", "swallow-1", False, "swallowed")


@pytest.mark.parametrize("spy", [False, True])
def test_a_task_bootstrap_did_not_generate_runs_the_stock_way_and_is_acknowledged(project: Project, spy: bool) -> None:
    """receiver._run hands it to taskiq's own callback with broker.ackable(delivery)."""
    raw = TaskiqMessage(task_id="stock-1", task_name="r2-stock", labels={}, args=[4], kwargs={"b": "x"})
    stream = project.queue_keys(QUEUE).stream

    async def pending(client: aioredis.Redis, runtime: Runtime) -> Any:
        return await client.xlen(stream)

    result = run_worker(
        project,
        [],
        lambda: len(HANDLED) == 1 and (not spy or len(SEEN) >= 2),
        spy=spy,
        stock=True,
        raw_jobs=(raw.model_dump_json().encode(),),
        inspect=pending,
    )
    assert HANDLED == [("stock", 4, "x")]
    assert result == 0  # acknowledged (and deleted)
    if spy:
        assert [entry[0] for entry in SEEN] == ["pre", "post"]
