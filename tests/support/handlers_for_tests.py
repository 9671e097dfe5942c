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


async def _note(key: str, value: dict[str, Any]) -> None:
    client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
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


async def kill_own_worker(job: Job, **kwargs: Any) -> None:
    """Notes the delivery, then kills the worker process running it (as a segfault or the OOM killer would)."""
    await _note(f"test:killer:{job.id}", {"attempt": job.attempt, "pid": os.getpid(), "at": time.time()})
    os.kill(os.getpid(), signal.SIGKILL)


def _note_now(key: str, value: dict[str, Any]) -> None:
    """_note without the event loop (from a blocked loop or a thread)."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
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


async def give_back(job: Job, **kwargs: Any) -> dict[str, Any]:
    """Returns what it was given: a result to keep."""
    return {"job": job.id, "kwargs": kwargs}


async def give_back_a_set(**kwargs: Any) -> set[int]:
    """Returns a value that is not JSON."""
    return {1, 2, 3}
