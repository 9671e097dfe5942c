"""An application that sends jobs and awaits results from many coroutines at once (a web app under a
burst of requests), in one process, through the generated wiring (`kiq()`, `wait_result()`).

Found while writing an app on the generated package: the producer's Redis client is redis-py's
default pool (at most 100 connections, and `MaxConnectionsError: Too many connections` at once
beyond that, no waiting), so the 101st concurrent `kiq()` raises taskiq's `SendTaskError` ("Cannot
send task to the queue") and the job is not sent; the 101st concurrent `wait_result()` raises
`ResultIsReadyError` although the job ran. On a Redis Cluster too: redis-py's async cluster client
has no blocking pool at all, so the client waits for one of its own slots (`connect.redis`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from taskiq.decor import AsyncTaskiqDecoratedTask
from taskiq.exceptions import TaskiqResultTimeoutError

from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.wiring import make_broker, register_task
from bootstrap.local.servers import RedisServer
from bootstrap.spec.load import load_spec
from tests.conftest import BOTH_MODES, RedisTarget, copy_config

QUEUE, TASK = "delta-sync", "run-delta-sync"
SENDERS = 150  # more than redis-py's default pool of 100 connections


def _runtime(
    tmp_path: Path, redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch, mode: str = "standalone"
) -> Runtime:
    """The shipped spec's runtime on this Redis (connection URLs are resolved from the environment)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1/unused")  # a sender never connects to MongoDB
    config = copy_config(tmp_path / "config", key_prefix, redis=f"  mode: {mode}\n")
    return Runtime.from_spec(load_spec(config))


@contextlib.asynccontextmanager
async def _sender(runtime: Runtime) -> AsyncIterator[tuple[StreamBroker, AsyncTaskiqDecoratedTask[Any, Any]]]:
    """The queue's broker, started as an application's, and its task."""
    broker = make_broker(runtime, QUEUE)
    task = register_task(broker, runtime, QUEUE, TASK)
    await broker.startup()
    try:
        yield broker, task
    finally:
        await broker.shutdown()


@BOTH_MODES
def test_many_concurrent_kiq_from_one_process_are_all_sent(
    tmp_path: Path, redis_target: RedisTarget, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = _runtime(tmp_path, redis_target.url, key_prefix, monkeypatch, redis_target.mode)

    async def test() -> list[BaseException]:
        async with _sender(runtime) as (_, task):
            sent = await asyncio.gather(*(task.kiq(mailboxId=f"m-{i}") for i in range(SENDERS)), return_exceptions=True)
        return [item for item in sent if isinstance(item, BaseException)]

    failed = asyncio.run(test())
    causes = {repr(error.__cause__) for error in failed}
    assert not failed, f"{len(failed)} of {SENDERS} concurrent kiq() failed: {causes}"


@BOTH_MODES
def test_many_concurrent_wait_result_wait_instead_of_failing(
    tmp_path: Path, redis_target: RedisTarget, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = _runtime(tmp_path, redis_target.url, key_prefix, monkeypatch, redis_target.mode)

    async def test() -> list[BaseException]:
        async with _sender(runtime) as (_, task):
            sent = [await task.kiq(mailboxId=f"m-{i}") for i in range(SENDERS)]  # one at a time: all sent
            # No worker runs: every wait should end with taskiq's timeout, none with another error.
            waits = (job.wait_result(check_interval=0.05, timeout=1) for job in sent)
            ended = await asyncio.gather(*waits, return_exceptions=True)
        return [item for item in ended if not isinstance(item, TaskiqResultTimeoutError)]

    other = asyncio.run(test())
    shown = {f"{type(error).__name__} <- {error.__cause__!r}" for error in other}
    assert not other, f"{len(other)} of {SENDERS} concurrent wait_result() did not wait: {shown}"


def test_kiq_waits_for_a_redis_that_restarts_instead_of_failing_at_once(
    tmp_path: Path, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the app walk: with Redis restarting, every kiq() failed at once (SendTaskError). A
    # send is now tried again per redis.connect_retry, as connecting is (BullMQ queues it meanwhile).
    server = RedisServer(tmp_path / "redis")
    server.start()
    runtime = _runtime(tmp_path, server.uri, key_prefix, monkeypatch)

    async def test() -> tuple[float, int]:
        async with _sender(runtime) as (broker, task):
            await task.kiq(mailboxId="before")
            server.stop()  # a restart: down now, back on the same port in a second
            back = asyncio.get_running_loop().run_in_executor(None, lambda: (time.sleep(1.0), server.start()))
            started = time.monotonic()
            await task.kiq(mailboxId="during")
            took = time.monotonic() - started
            await back
            return took, int(await broker.redis.xlen(broker.keys.stream))

    try:
        took, waiting = asyncio.run(test())
    finally:
        server.stop()
    assert took >= 0.5, "sent while Redis was down?"
    assert waiting == 2  # the job sent before the restart (append-only file) and the one sent during it
