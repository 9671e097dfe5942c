"""Acknowledgements are pipelined (see `acks`): a finished job's slot comes back once its
acknowledgement is written to Redis's connection, without waiting for the reply, and at most
`unconfirmed` jobs' acknowledgements wait for Redis at a time. A pipelined flush that was written and
then lost with its connection goes back to the queue and is sent again. On a real Redis, frozen with
SIGSTOP so that replies cannot come."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis

from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.records import COMPLETED
from bootstrap.local.servers import RedisServer
from tests.support.runtimes import in_process_runtime


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", appendonly=False)  # these tests freeze it
    server.start()
    yield server
    server.stop()


def finish(broker: StreamBroker, n: int) -> None:
    """Job n finished: its acknowledgement (of an entry that is not there: harmless) and its record."""
    broker.acks.finished(f"0-{n}", "")
    broker.acks.record(COMPLETED, {"id": f"job-{n}", "task": "t"}, 3600, 100)


def test_slots_come_back_once_written_and_at_most_unconfirmed_acknowledgements_wait_for_redis(
    own_redis: RedisServer, key_prefix: str
) -> None:
    broker = StreamBroker(in_process_runtime(own_redis.uri, key_prefix))
    watcher = sync_redis.Redis.from_url(own_redis.uri)
    data = broker.keys.record_data(COMPLETED)
    assert own_redis.pid is not None

    async def test() -> None:
        await broker.startup()
        acks, released = broker.acks, []
        acks.release_slots = released.append
        acks.unconfirmed = 4
        try:
            acks.ack("0-0", "")
            await acks.flush()  # connected, the script known
            os.kill(own_redis.pid, signal.SIGSTOP)  # no reply comes from here on
            try:
                for n in range(1, 5):
                    finish(broker, n)
                    await asyncio.wait_for(acks.drain(lambda: None), 5)  # written: not waiting for Redis
                    assert released == [1] * n
                assert broker.hot.in_flight == 4
                finish(broker, 5)
                fifth = asyncio.ensure_future(acks.drain(lambda: None))
                await asyncio.sleep(0.5)
                assert not fifth.done() and released == [1] * 4, "a fifth unconfirmed acknowledgement"
            finally:
                os.kill(own_redis.pid, signal.SIGCONT)
            await asyncio.wait_for(fifth, 10)
            assert released == [1] * 5
            await asyncio.wait_for(acks.settle(), 10)
            assert broker.hot.in_flight == 0 and not acks.pending
            assert sorted(watcher.hkeys(data)) == [f"job-{n}".encode() for n in range(1, 6)]
        finally:
            await broker.shutdown()
            watcher.close()

    asyncio.run(test())


def test_a_pipelined_flush_lost_with_its_connection_is_sent_again(
    own_redis: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    broker = StreamBroker(in_process_runtime(own_redis.uri, key_prefix))
    watcher = sync_redis.Redis.from_url(own_redis.uri)
    data = broker.keys.record_data(COMPLETED)
    assert own_redis.pid is not None

    async def test() -> None:
        await broker.startup()
        acks, released = broker.acks, []
        acks.release_slots = released.append
        try:
            acks.ack("0-0", "")
            await acks.flush()
            os.kill(own_redis.pid, signal.SIGSTOP)
            try:
                finish(broker, 1)
                with caplog.at_level(logging.WARNING, "bootstrap.jobs.broker"):
                    await asyncio.wait_for(acks.drain(lambda: None), 5)
                    assert released == [1] and not acks.pending
                    conn = broker.hot._conn
                    assert conn is not None and conn._writer is not None
                    conn._writer.transport.abort()  # lost before the reply (a stall, a network failure)
                    for _ in range(100):
                        if acks.pending:
                            break
                        await asyncio.sleep(0.01)
                assert acks.pending and acks.held == 0, "the lost flush is queued again (its slot stays free)"
                assert "acknowledging failed" in caplog.text
            finally:
                os.kill(own_redis.pid, signal.SIGCONT)
            await asyncio.wait_for(acks.step(), 10)  # the acknowledging loop's next round sends it again
            assert not acks.pending
            assert watcher.hkeys(data) == [b"job-1"]
        finally:
            await broker.shutdown()
            watcher.close()

    asyncio.run(test())
