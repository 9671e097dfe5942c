"""A taskiq task that bootstrap did not generate (registered on the broker by hand) still runs under
the fast receiver, taskiq's way: with its arguments, recorded and acknowledged like any job."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.receiver import FastReceiver
from bootstrap.jobs.wiring import make_broker
from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import Project, add_test_queue, make_project_in_env

GOT: list[Any] = []


async def by_hand(x: int, y: int = 0) -> int:
    GOT.append((x, y))
    return x + y


@pytest.fixture
def project(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    GOT.clear()
    yield from make_project_in_env(tmp_path, mongo_uri, redis_server.uri, add_test_queue, monkeypatch)


async def run(project: Project) -> tuple[int, int]:
    runtime = Runtime.from_spec(project.spec())
    broker = make_broker(runtime, "test-jobs")
    plain = broker.register_task(by_hand, task_name="by-hand")
    broker.is_worker_process = True
    client = aioredis.Redis.from_url(project.env["REDIS_URL"])
    try:
        await broker.startup()
        for i in range(5):
            await plain.kiq(i, y=10)
        receiver = FastReceiver(broker, max_async_tasks=2, run_startup=False, wait_tasks_timeout=5)
        finish = asyncio.Event()
        listening = asyncio.create_task(receiver.listen(finish))
        deadline = asyncio.get_running_loop().time() + 20
        while (len(GOT) < 5 or await client.xlen(broker.keys.stream)) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        finish.set()
        await asyncio.wait_for(listening, 10)
        await broker.shutdown()
        return await client.xlen(broker.keys.stream), await client.zcard(broker.keys.records("completed"))
    finally:
        await client.aclose()


def test_a_task_registered_by_hand_runs_taskiqs_way_and_is_acknowledged(project: Project) -> None:
    left, completed = asyncio.run(run(project))
    assert sorted(GOT) == [(i, 10) for i in range(5)]
    assert left == 0, "not every job was acknowledged"
    assert completed == 5  # recorded by the jobs middleware, as a generated task's jobs are
