"""A finished job's slot comes back only once its acknowledgement is in Redis, not once it is
written: what a worker wrote is not safe from the worker's death until Redis has it (a Redis slow to
read leaves it in the worker's socket, and a killed worker's socket resets the connection when
Redis's reply reaches it, dropping what Redis had not taken yet: shown in review, with the slots of
written acknowledgements given back early, 2 of 4 lost). So the crash bound (at most `concurrency`
jobs run twice) holds whatever Redis is doing. On a real Redis, frozen with SIGSTOP."""

from __future__ import annotations

import asyncio
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
    server = RedisServer(tmp_path / "redis", appendonly=False)  # this test freezes it
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("polled", [False, True], ids=["waited-for", "polled-for"])
def test_a_slot_comes_back_only_once_its_acknowledgement_is_in_redis(
    own_redis: RedisServer, key_prefix: str, polled: bool
) -> None:
    """Also when the worker polls for the reply (nothing else to do: hotpath.SPIN)."""
    broker = StreamBroker(in_process_runtime(own_redis.uri, key_prefix))
    watcher = sync_redis.Redis.from_url(own_redis.uri)
    data = broker.keys.record_data(COMPLETED)
    assert own_redis.pid is not None

    async def test() -> None:
        await broker.startup()
        acks, released = broker.acks, []
        acks.on_landed = released.append
        try:
            acks.ack("0-0", "")
            await acks.flush()  # connected, the script known
            os.killpg(own_redis.pid, signal.SIGSTOP)  # its group: the server runs under a watcher
            try:
                acks.finished("0-1", "")
                acks.record(COMPLETED, {"id": "job-1", "task": "t", "result": "x" * 10_000}, 3600, 100)
                drain = asyncio.ensure_future(acks.drain(lambda: None, lambda: polled))
                await asyncio.sleep(0.5)  # written long since; Redis cannot answer
                assert not drain.done() and released == [], "a slot came back before Redis had its acknowledgement"
            finally:
                os.killpg(own_redis.pid, signal.SIGCONT)
            await asyncio.wait_for(drain, 10)
            assert released == [1]
            assert watcher.hkeys(data) == [b"job-1"]
        finally:
            await broker.shutdown()
            watcher.close()

    asyncio.run(test())
