"""Job handlers used by the job tests; copied into each test project and imported by workers.
They report what happened through Redis (list `<prefix>:test:<name>`), so tests can observe it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import redis
import redis.asyncio as aioredis

from bootstrap.jobs.handlers import Job


def _async_client() -> Any:
    if os.environ.get("REDIS_MODE") == "cluster":
        return aioredis.RedisCluster.from_url(os.environ["REDIS_URL"])
    return aioredis.Redis.from_url(os.environ["REDIS_URL"])


async def _note(key: str, value: dict[str, Any]) -> None:
    client = _async_client()
    try:
        await client.rpush(key, json.dumps(value))
    finally:
        await client.aclose()


async def always_fail(job: Job, **kwargs: Any) -> None:
    """Fails every attempt, noting when each attempt started."""
    await _note(f"test:attempts:{job.id}", {"attempt": job.attempt, "at": time.time()})
    raise RuntimeError(f"boom on attempt {job.attempt}")


async def slow(job: Job, seconds: float = 2.0, **kwargs: Any) -> str:
    """Notes its start, sleeps, notes its end."""
    await _note(f"test:slow:{job.id}", {"event": "start", "pid": os.getpid(), "at": time.time()})
    await asyncio.sleep(seconds)
    await _note(f"test:slow:{job.id}", {"event": "end", "pid": os.getpid(), "at": time.time()})
    return "done"


async def write_to_mongo(job: Job, db: Any, **kwargs: Any) -> None:
    """Uses the worker's MongoDB database, handed over by dependency injection."""
    await db["jobtests"].insert_one({"job": job.id, "kwargs": kwargs})


async def noop(**kwargs: Any) -> None:
    """Does nothing: for measuring the job system's own overhead."""


_runs: aioredis.Redis | None = None


async def note_run(job: Job, **kwargs: Any) -> None:
    """Notes each run of the job in the list `test:runs` (one connection per worker process)."""
    global _runs
    if _runs is None:
        _runs = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    await _runs.rpush("test:runs", job.id)


_runs_at_once: redis.Redis | None = None


async def note_run_at_once(job: Job, **kwargs: Any) -> None:
    """As note_run, without waiting: a blocking client, so the job never gives way to the event loop
    (jobs like it run back to back in one of the worker's coroutines)."""
    global _runs_at_once
    if _runs_at_once is None:
        _runs_at_once = redis.Redis.from_url(os.environ["REDIS_URL"])
    _runs_at_once.rpush("test:runs", job.id)


async def kill_own_worker(job: Job, **kwargs: Any) -> None:
    """Notes the delivery, then kills the worker process running it (as a segfault or the OOM killer would)."""
    await _note(f"test:killer:{job.id}", {"attempt": job.attempt, "pid": os.getpid(), "at": time.time()})
    os.kill(os.getpid(), signal.SIGKILL)


def _note_now(key: str, value: dict[str, Any]) -> None:
    """_note without the event loop (from a blocked loop or a thread)."""
    client: Any = redis.Redis.from_url(os.environ["REDIS_URL"])
    if os.environ.get("REDIS_MODE") == "cluster":
        client = redis.RedisCluster.from_url(os.environ["REDIS_URL"])
    try:
        client.rpush(key, json.dumps(value))
    finally:
        client.close()


async def block_loop(job: Job, seconds: float = 8.0, **kwargs: Any) -> None:
    """Blocks the worker's event loop: time.sleep in an async function, a classic mistake."""
    _note_now(f"test:blocker:{job.id}", {"event": "start", "pid": os.getpid(), "at": time.time()})
    time.sleep(seconds)
    _note_now(f"test:blocker:{job.id}", {"event": "end", "pid": os.getpid(), "at": time.time()})


def sync_sleep(job: Job, seconds: float = 6.0, **kwargs: Any) -> str:
    """A plain function: the worker runs it in a thread, so its loop stays free."""
    _note_now(f"test:sync:{job.id}", {"event": "start", "pid": os.getpid(), "at": time.time()})
    time.sleep(seconds)
    _note_now(f"test:sync:{job.id}", {"event": "end", "pid": os.getpid(), "at": time.time()})
    return "done"


async def note_start(job: Job, tag: str = "", seconds: float = 0.0, **kwargs: Any) -> None:
    """Notes when it started and in which worker under `tag` (rate-limit and pause tests), then
    sleeps `seconds`."""
    await _note(f"test:starts:{tag}", {"id": job.id, "pid": os.getpid(), "at": time.time()})
    await asyncio.sleep(seconds)


async def retry_after_once(job: Job, seconds: float = 1.0, **kwargs: Any) -> str:
    """Asks to run again after `seconds` the first time (as for an HTTP 429 with Retry-After), then
    succeeds; notes each run."""
    from bootstrap.errors import RetryAfter

    client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        runs = await client.rpush(f"test:retry-after:{job.id}", json.dumps({"attempt": job.attempt, "at": time.time()}))
    finally:
        await client.aclose()
    if runs == 1:
        raise RetryAfter(seconds, "429 Too Many Requests")
    return "done"


async def retry_after_then_fail(job: Job, **kwargs: Any) -> None:
    """Asks to run again later while it has not asked yet (no `retry_afters` label), else fails;
    notes the counters it ran with."""
    from bootstrap.errors import RetryAfter

    await _note(f"test:counters:{job.id}", {"attempt": job.attempt, "retry_afters": job.labels.get("retry_afters")})
    if "retry_afters" not in job.labels:
        raise RetryAfter(0.1, "429 Too Many Requests")
    raise RuntimeError("failed after its retry-after")


async def metrics_served(job: Job, port: int, **kwargs: Any) -> None:
    """Notes whether its worker's metrics port answers (a TCP connect) as the job runs."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        served = True
    except OSError:
        served = False
    await _note(f"test:metrics-served:{job.id}", {"served": served, "at": time.time()})


try:  # workers import this module; the middleware needs taskiq, which workers have
    from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

    class NoteMiddleware(TaskiqMiddleware):
        """A user middleware (declared in queues.yaml): notes each hook it sees, per job."""

        def __init__(self, label: str = "note") -> None:
            super().__init__()
            self.label = label

        def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
            _note_now(f"test:mw:{message.task_id}", {"hook": "pre_execute", "label": self.label})
            return message

        async def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
            await _note(f"test:mw:{message.task_id}", {"hook": "on_error", "error": type(exception).__name__})

        async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
            await _note(f"test:mw:{message.task_id}", {"hook": "post_execute", "is_err": result.is_err,
                                                       "value": result.return_value})  # fmt: skip

    not_a_middleware = 42
except ImportError:  # pragma: no cover
    pass

async def give_back(job: Job, **kwargs: Any) -> dict[str, Any]:
    """Returns what it was given: a result to keep."""
    return {"job": job.id, "kwargs": kwargs}


async def give_back_a_set(**kwargs: Any) -> set[int]:
    """Returns a value that is not JSON."""
    return {1, 2, 3}
