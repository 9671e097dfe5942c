"""Review of the pipelined acknowledgements (`acks`, `hotpath`): behaviour checked and found right.
Replies stay matched to their commands when errors (a wrong type, NOSCRIPT, an UNBLOCKED blocked
command) come in the middle of a pipeline; a job waiting in `acked` (taskiq's own receiver) whose
flush was lost with its connection is told once the flush sent again landed; a shutdown with flushes
in flight waits for them and loses none; on a Redis Cluster (not pipelined) a slot comes back only
once its acknowledgement is in Redis."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.hotpath import HotConnection
from bootstrap.jobs.records import COMPLETED
from bootstrap.local.servers import RedisServer
from tests.support.redis_topologies import RedisCluster
from tests.support.runtimes import in_process_runtime


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", appendonly=False)  # these tests freeze it
    server.start()
    yield server
    server.stop()


def finish(broker: StreamBroker, n: int) -> None:
    broker.acks.finished(f"0-{n}", "")
    broker.acks.record(COMPLETED, {"id": f"job-{n}", "task": "t"}, 3600, 100)


def test_replies_stay_matched_to_their_commands_around_errors_in_a_pipeline(redis_server: RedisServer) -> None:
    async def test() -> None:
        client = aioredis.Redis.from_url(redis_server.uri)
        admin = aioredis.Redis.from_url(redis_server.uri)
        hot = HotConnection(client, timeout=5.0)
        key = "review3-pipeline"
        try:
            blocked_id = await hot.call("CLIENT", "ID")
            replies = [
                await hot.send("SET", key, "v"),
                await hot.send("LPUSH", key, "x"),  # WRONGTYPE
                await hot.send("EVALSHA", "0" * 40, 0),  # NOSCRIPT
                await hot.send("BLPOP", f"{key}:none", 2, block=2),  # ended by CLIENT UNBLOCK ... ERROR
                await hot.send("GET", key),
                await hot.send("ECHO", "last"),
            ]
            while hot.in_flight > 3:
                await asyncio.sleep(0.001)
            await admin.execute_command("CLIENT", "UNBLOCK", blocked_id, "ERROR")
            done = await asyncio.gather(*replies, return_exceptions=True)
            assert done[0] in (b"OK", "OK")
            assert isinstance(done[1], ResponseError) and "WRONGTYPE" in str(done[1])
            assert isinstance(done[2], NoScriptError)
            assert isinstance(done[3], RedisConnectionError) and "UNBLOCKED" in str(done[3])
            assert done[4:] == [b"v", b"last"]
            assert await hot.call("PING") in (b"PONG", "PONG")  # the same connection, still in step
            assert await hot.call("CLIENT", "ID") == blocked_id
        finally:
            await admin.delete(key)
            await hot.close()
            await client.aclose()
            await admin.aclose()

    asyncio.run(test())


def test_a_job_waiting_in_acked_is_told_once_its_lost_flush_sent_again_landed(
    own_redis: RedisServer, key_prefix: str
) -> None:
    broker = StreamBroker(in_process_runtime(own_redis.uri, key_prefix))
    watcher = sync_redis.Redis.from_url(own_redis.uri)
    data = broker.keys.record_data(COMPLETED)
    assert own_redis.pid is not None

    async def test() -> None:
        await broker.startup()
        acks = broker.acks
        try:
            acks.ack("0-0", "")
            await acks.flush()
            os.kill(own_redis.pid, signal.SIGSTOP)
            try:
                acks.record(COMPLETED, {"id": "job-1", "task": "t"}, 3600, 100)
                first = asyncio.ensure_future(acks.acked("0-1", ""))
                while broker.hot.in_flight == 0:
                    await asyncio.sleep(0.001)
                second = asyncio.ensure_future(acks.acked("0-2", ""))  # queued behind the flight
                await asyncio.sleep(0.05)
                conn = broker.hot._conn
                assert conn is not None and conn._writer is not None
                conn._writer.transport.abort()  # the flush is lost with its connection
                await asyncio.sleep(0.1)
                assert not first.done() and not second.done()
            finally:
                os.kill(own_redis.pid, signal.SIGCONT)
            await asyncio.wait_for(asyncio.gather(first, second), 10)
            assert not acks.pending and not acks.flushing
            assert watcher.hkeys(data) == [b"job-1"]
        finally:
            await broker.shutdown()
            watcher.close()

    asyncio.run(test())


def test_a_shutdown_waits_for_the_flushes_in_flight_and_loses_none(own_redis: RedisServer, key_prefix: str) -> None:
    broker = StreamBroker(in_process_runtime(own_redis.uri, key_prefix))
    watcher = sync_redis.Redis.from_url(own_redis.uri)
    data = broker.keys.record_data(COMPLETED)
    assert own_redis.pid is not None

    async def test() -> None:
        await broker.startup()
        acks = broker.acks
        acks.unconfirmed = 4
        acks.ack("0-0", "")
        await acks.flush()
        os.kill(own_redis.pid, signal.SIGSTOP)
        try:
            for n in range(1, 5):
                finish(broker, n)
                await asyncio.wait_for(acks.drain(lambda: None), 5)
            finish(broker, 5)  # queued, not sent: the shutdown's last flush
            acks._held = 0  # (its slot is not waited for: the worker is stopping)
            assert broker.hot.in_flight == 4
            asyncio.get_running_loop().call_later(1.0, os.kill, own_redis.pid, signal.SIGCONT)
            await broker.shutdown()
        finally:
            os.kill(own_redis.pid, signal.SIGCONT)
        assert sorted(watcher.hkeys(data)) == [f"job-{n}".encode() for n in range(1, 6)]
        watcher.close()

    asyncio.run(test())


def test_on_a_cluster_a_slot_comes_back_only_once_its_acknowledgement_landed(
    redis_cluster: RedisCluster, key_prefix: str
) -> None:
    broker = StreamBroker(in_process_runtime(redis_cluster.uri, key_prefix, mode="cluster"))
    watcher = sync_redis.RedisCluster.from_url(redis_cluster.uri)
    data = broker.keys.record_data(COMPLETED)

    async def test() -> None:
        await broker.startup()
        acks, released = broker.acks, []
        acks.release_slots = released.append
        try:
            assert not broker.hot.pipelined
            for n in range(1, 4):  # EVAL, then EVALSHA
                finish(broker, n)
                drain = asyncio.ensure_future(acks.drain(lambda: None))
                await asyncio.sleep(0)  # written ...
                assert released == [1] * (n - 1), "a slot came back before its acknowledgement landed"
                await asyncio.wait_for(drain, 10)
                assert released == [1] * n and not acks.pending and not acks._in_flight
            assert sorted(watcher.hkeys(data)) == [f"job-{n}".encode() for n in range(1, 4)]
        finally:
            await broker.shutdown()
            watcher.close()

    asyncio.run(test())
