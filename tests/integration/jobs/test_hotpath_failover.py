"""The worker's dedicated connection (`hotpath`) when its Redis stops being the master (a Sentinel
failover demotes it with REPLICAOF), on two real Redis servers: every reply that says so (READONLY
from a command, READONLY wrapped in a script's error as Redis 6 words it, UNBLOCKED for a blocked
read) fails the command with a ConnectionError, which the read loop and the acknowledgements retry,
and drops the connection, so the next command takes a fresh one (from a Sentinel pool: the new
master's). redis-py's Sentinel connection does the same for its own commands; a ResponseError
instead ended the worker's read loop, and a kept connection kept writing to the replica. A blocked
read Redis ends for another reason (UNBLOCKED: CLIENT UNBLOCK; on Redis 7 its stream deleted) is a
ConnectionError too: the read loop reads again (and makes the group again) instead of ending."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from taskiq import TaskiqMessage

from bootstrap.jobs.broker import StreamBroker, StreamMessage
from bootstrap.jobs.hotpath import HotConnection, Script
from bootstrap.local.servers import RedisServer
from tests.support.redis_topologies import redis7_server
from tests.support.runtimes import in_process_runtime

REDIS7 = redis7_server()
WRITE = Script("return redis.call('SET', KEYS[1], ARGV[1])")


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    servers = RedisServer(tmp_path / "a", appendonly=False), RedisServer(tmp_path / "b", appendonly=False)
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def test_a_demoted_master_fails_commands_with_a_connection_error_and_is_let_go(
    pair: tuple[RedisServer, RedisServer],
) -> None:
    first, other = pair

    async def test() -> None:
        client = aioredis.Redis.from_url(first.uri)
        admin = aioredis.Redis.from_url(first.uri)
        hot = HotConnection(client, timeout=5.0)
        try:
            await hot.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
            read = asyncio.create_task(
                hot.call("XREADGROUP", "GROUP", "g", "c", "BLOCK", 5000, "STREAMS", "s", ">", block=5)
            )
            while not any(c.get("cmd") == "xreadgroup" for c in await admin.client_list()):
                await asyncio.sleep(0.01)  # the read blocks in Redis
            await admin.execute_command("REPLICAOF", "127.0.0.1", other.port)  # demoted, as by a failover
            with pytest.raises(RedisConnectionError, match="UNBLOCKED"):
                await asyncio.wait_for(read, 10)
            assert hot._conn is None
            with pytest.raises(RedisConnectionError, match="read only replica"):
                await hot.call("SET", "k", "v")
            assert hot._conn is None  # the next command takes a fresh connection
            with pytest.raises(RedisConnectionError, match="read only replica"):
                await hot.script(WRITE, ["k"], ["v"])  # Redis 6: "ERR Error running script ... -READONLY"
            assert hot._conn is None
            await admin.execute_command("REPLICAOF", "NO", "ONE")  # a master again
            assert await hot.script(WRITE, ["k"], ["v"]) in (b"OK", "OK")
        finally:
            await hot.close()
            await client.aclose()
            await admin.aclose()

    asyncio.run(test())


def test_a_worker_reads_on_through_its_redis_being_demoted_and_promoted_again(
    pair: tuple[RedisServer, RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """The read loop used to end (its worker with it) on the UNBLOCKED and READONLY replies."""
    first, other = pair
    broker = demoted_broker(first.uri)

    async def test() -> None:
        async with blocked_read(broker, first.uri) as (admin, reading):
            with caplog.at_level(logging.WARNING, "bootstrap.jobs.broker"):
                await admin.execute_command("REPLICAOF", "127.0.0.1", other.port)
                deadline = time.monotonic() + 10
                while "read only replica" not in caplog.text:  # UNBLOCKED, then READONLY: said, retried
                    assert not reading.done(), reading.exception()
                    assert time.monotonic() < deadline, caplog.text
                    await asyncio.sleep(0.05)
            assert "UNBLOCKED" in caplog.text
            await admin.execute_command("REPLICAOF", "NO", "ONE")  # the replica's (empty) data: group made again
            await admin.xadd(broker.keys.stream, {"data": job("after")})
            message = await asyncio.wait_for(reading, 15)
            assert isinstance(message, StreamMessage) and message.job is not None
            assert message.job.task_id == "after"

    asyncio.run(test())


@contextlib.asynccontextmanager
async def blocked_read(broker: StreamBroker, url: str) -> AsyncIterator[tuple[aioredis.Redis, asyncio.Future[Any]]]:
    """(an admin connection, the broker's read loop's next message), once that read blocks in Redis."""
    admin = aioredis.Redis.from_url(url)
    await broker.startup()
    messages = broker.listen()
    reading = asyncio.ensure_future(anext(messages))
    try:
        while not any(c.get("cmd") == "xreadgroup" for c in await admin.client_list()):
            await asyncio.sleep(0.01)  # the read blocks in Redis
        yield admin, reading
    finally:
        reading.cancel()
        broker.stop_listening()
        await messages.aclose()
        await broker.shutdown()
        await admin.aclose()


async def _noop() -> None:
    """The one task the broker serves."""


def demoted_broker(url: str) -> StreamBroker:
    broker = StreamBroker(in_process_runtime(url, "demoted"))
    broker.register_task(_noop, task_name="t")
    return broker


def job(job_id: str) -> bytes:
    return TaskiqMessage(task_id=job_id, task_name="t", labels={}, args=[], kwargs={}).model_dump_json().encode()


def test_a_blocked_read_that_redis_ends_fails_as_a_connection_error(redis_server: RedisServer) -> None:
    """UNBLOCKED without a role change (CLIENT UNBLOCK ... ERROR here; on Redis 7 also the read's stream
    deleted or renamed) is worth reading again, not the end of the read loop."""

    async def test() -> None:
        client = aioredis.Redis.from_url(redis_server.uri)
        admin = aioredis.Redis.from_url(redis_server.uri)
        hot = HotConnection(client, timeout=5.0)
        try:
            own = await hot.call("CLIENT", "ID")
            read = asyncio.create_task(hot.call("BLPOP", "review-unblocked", 5, block=5))
            while not any(c.get("cmd") == "blpop" for c in await admin.client_list()):
                await asyncio.sleep(0.01)
            await admin.execute_command("CLIENT", "UNBLOCK", own, "ERROR")
            with pytest.raises(RedisConnectionError, match="Redis ended the blocked command: UNBLOCKED"):
                await asyncio.wait_for(read, 10)
            assert await hot.call("ECHO", "next") == b"next"
        finally:
            await hot.close()
            await client.aclose()
            await admin.aclose()

    asyncio.run(test())


class Redis7Server(RedisServer):
    def command(self) -> list[str]:
        assert REDIS7 is not None
        return [REDIS7, *super().command()[1:]]


def test_a_worker_reads_on_when_its_stream_is_deleted_during_a_blocked_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis 7 ends a blocked XREADGROUP whose stream is deleted (FLUSHALL, DEL, RENAME) with
    UNBLOCKED: the read loop used to end there."""
    if REDIS7 is None:
        pytest.skip("no redis-server 7: run .ci/redis7 and set BOOTSTRAP_TEST_REDIS7 to what it prints")
    server = Redis7Server(tmp_path / "redis7", appendonly=False)
    server.start()
    broker = demoted_broker(server.uri)

    async def test() -> None:
        async with blocked_read(broker, server.uri) as (admin, reading):
            with caplog.at_level(logging.WARNING, "bootstrap.jobs.broker"):
                await admin.delete(*broker.keys.streams)
                await admin.xadd(broker.keys.stream, {"data": job("after")})  # a new stream, no group
                message = await asyncio.wait_for(reading, 15)
            assert isinstance(message, StreamMessage) and message.job is not None
            assert message.job.task_id == "after"
            assert "UNBLOCKED" in caplog.text

    try:
        asyncio.run(test())
    finally:
        server.stop()
