"""The fast receiver's slots, in process against a real Redis: jobs that never wait run back to back
and are acknowledged in a few flushes (group commit), and jobs that wait still run `concurrency` at
a time (a coroutine about to wait hands the free slots to another)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bootstrap.jobs import acks
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.receiver import FastReceiver
from bootstrap.jobs.wiring import enqueue, make_broker, register_task
from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_tasks, make_project_in_env

CONCURRENCY = 4  # the test queue's
RAN: list[str] = []
WAITING: list[str] = []
WAVES: list[tuple[list[str], asyncio.Event]] = []

TASKS = """
      at-once:
        handler: "tests.integration.jobs.test_group_commit:at_once"
      waits:
        handler: "tests.integration.jobs.test_group_commit:waits"
"""


async def at_once(job: Any, **kwargs: Any) -> None:
    RAN.append(job.id)


async def waits(job: Any, **kwargs: Any) -> None:
    """Waits until `concurrency` jobs of its wave (the jobs started with it) wait at the same time."""
    WAITING.append(job.id)
    ids, complete = WAVES[(len(WAITING) - 1) // CONCURRENCY]
    ids.append(job.id)
    if len(ids) == CONCURRENCY:
        complete.set()
    await asyncio.wait_for(complete.wait(), 10)
    RAN.append(job.id)


def with_tasks(project: Project) -> None:
    add_test_tasks(project, TASKS)


@pytest.fixture
def project(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    RAN.clear()
    WAITING.clear()
    WAVES[:] = [([], asyncio.Event()) for _ in range(3)]
    yield from make_project_in_env(tmp_path, mongo_uri, redis_server.uri, with_tasks, monkeypatch)


async def run_jobs(project: Project, task: str, jobs: int) -> dict[str, Any]:
    """Enqueue `jobs` jobs of `task`, run them with a fast receiver until all ran and are acknowledged;
    Redis's command statistics over the run."""
    runtime = Runtime.from_spec(project.spec())
    broker = make_broker(runtime, "test-jobs")
    register_task(broker, runtime, "test-jobs", task)
    broker.is_worker_process = True
    client = aioredis.Redis.from_url(project.env["REDIS_URL"])
    try:
        for i in range(jobs):
            await enqueue(runtime, "test-jobs", task, {}, job_id=f"{task}-{i}")
        await broker.startup()
        await client.script_load(acks._ACK.text)  # known to Redis: one EVALSHA per flush
        await client.config_resetstat()
        receiver = FastReceiver(broker, max_async_tasks=CONCURRENCY, run_startup=False, wait_tasks_timeout=5)
        finish = asyncio.Event()
        listening = asyncio.create_task(receiver.listen(finish))
        deadline = asyncio.get_running_loop().time() + 30
        while await client.xlen(broker.keys.stream) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        stats: dict[str, Any] = await client.info("commandstats")
        finish.set()
        await asyncio.wait_for(listening, 10)
        await broker.shutdown()
        assert await client.xlen(broker.keys.stream) == 0, "not every job was acknowledged"
        return stats
    finally:
        await client.aclose()


def test_jobs_that_never_wait_are_acknowledged_a_slotful_at_a_time(project: Project) -> None:
    stats = asyncio.run(run_jobs(project, "at-once", 40))
    assert sorted(RAN) == sorted(f"at-once-{i}" for i in range(40))
    scripts = sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))
    # A flush takes the acknowledgements of every job that ran since the last: `concurrency` (4) when
    # every slot is used, fewer when the worker ran out of jobs read (it reads half its prefetch, 5,
    # at a time). Not one per job.
    assert 40 // CONCURRENCY <= scripts <= 40 // 2, stats


def test_jobs_that_wait_still_run_concurrency_at_a_time(project: Project) -> None:
    """Each wave of `concurrency` jobs waits until all of its jobs run at once: with fewer at a time,
    its jobs time out (and are retried, failing the count)."""
    asyncio.run(run_jobs(project, "waits", 3 * CONCURRENCY))
    assert [len(ids) for ids, _ in WAVES] == [CONCURRENCY] * 3
    assert sorted(RAN) == sorted(f"waits-{i}" for i in range(3 * CONCURRENCY))
