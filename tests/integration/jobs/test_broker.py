"""The broker's pieces against a real Redis: reclaim, renewal, promotion of due retries, release of
unstarted jobs, batched acknowledgement with records, the heartbeat, NOGROUP recovery."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from taskiq import AckableMessage

from bootstrap.jobs.broker import StreamBroker, StreamMessage
from bootstrap.jobs.inflight import InFlight
from bootstrap.jobs.records import COMPLETED
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.jobs.upkeep import Background, Promoter, Reclaimer, Renewer
from bootstrap.layout.keys import GROUP, QueueKeys, as_text, workers_key
from bootstrap.local.servers import RedisServer

QUEUE = "q"


def make_runtime(redis_server: RedisServer, key_prefix: str, visibility_timeout: float = 30) -> QueueRuntime:
    return QueueRuntime(
        prefix=key_prefix,
        queue=QUEUE,
        redis_url=redis_server.uri,
        visibility_timeout=visibility_timeout,
        concurrency=2,
        completed_max_age=3600,
        completed_max_count=100,
        failed_max_age=3600,
        failed_max_count=100,
    )


async def with_redis(redis_server: RedisServer, test: Callable[[aioredis.Redis], Awaitable[None]]) -> None:
    client = aioredis.Redis.from_url(redis_server.uri)
    try:
        await test(client)
    finally:
        await client.aclose()


async def read_by(client: aioredis.Redis, keys: QueueKeys, consumer: str, count: int) -> list[str]:
    """Entries read by `consumer` (which then holds them pending)."""
    fetched: Any = await client.xreadgroup(GROUP, consumer, {keys.stream: ">"}, count=count)
    return [as_text(entry_id) for _stream, batch in fetched or () for entry_id, _ in batch]


async def owners(client: aioredis.Redis, keys: QueueKeys) -> dict[str, str]:
    """Pending entry id -> the consumer holding it."""
    pending = await client.xpending_range(keys.stream, GROUP, "-", "+", 100)
    return {as_text(p["message_id"]): as_text(p["consumer"]) for p in pending}


async def next_message(messages: AsyncGenerator[AckableMessage, None]) -> StreamMessage:
    message = await asyncio.wait_for(messages.__anext__(), 5)
    assert isinstance(message, StreamMessage)
    return message


def test_reclaim_takes_over_only_jobs_idle_past_the_visibility_timeout(
    redis_server: RedisServer, key_prefix: str
) -> None:
    keys = QueueKeys(key_prefix, QUEUE)

    async def test(client: aioredis.Redis) -> None:
        await client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
        await client.xadd(keys.stream, {"data": b"old"})
        [old] = await read_by(client, keys, "dead", 1)  # its worker died holding it
        await asyncio.sleep(0.4)
        await client.xadd(keys.stream, {"data": b"fresh"})
        [fresh] = await read_by(client, keys, "alive", 1)  # just read: not idle long enough
        held = InFlight()
        reclaimer = Reclaimer(keys, "me", 0.3, held)
        assert reclaimer.due() and not reclaimer.due()  # at once, then once per interval
        claimed = await reclaimer.reclaim(client, lambda: 10)
        assert [(as_text(i), fields) for i, fields in claimed] == [(old, {b"data": b"old"})]
        assert await owners(client, keys) == {old: "me", fresh: "alive"}
        # Later both are idle: the one this worker already holds is not delivered twice.
        held.hold([old])
        await asyncio.sleep(0.4)
        claimed = await Reclaimer(keys, "me", 0.3, held).reclaim(client, lambda: 10)
        assert [as_text(i) for i, _ in claimed] == [fresh]

    asyncio.run(with_redis(redis_server, test))


def test_listen_delivers_an_idle_job_of_a_dead_consumer_first(redis_server: RedisServer, key_prefix: str) -> None:
    broker = StreamBroker(make_runtime(redis_server, key_prefix, visibility_timeout=0.3))

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        await client.xadd(broker.keys.stream, {"data": b"orphan"})
        [orphan] = await read_by(client, broker.keys, "dead", 1)
        await asyncio.sleep(0.4)
        messages = broker.listen()
        message = await next_message(messages)
        assert (message.entry_id, message.data) == (orphan, b"orphan")
        assert orphan in broker.in_flight
        assert await owners(client, broker.keys) == {orphan: broker.consumer}
        broker.stop_listening()
        await messages.aclose()
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_renewal_keeps_held_jobs_from_being_reclaimed(redis_server: RedisServer, key_prefix: str) -> None:
    keys = QueueKeys(key_prefix, QUEUE)

    async def test(client: aioredis.Redis) -> None:
        await client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
        for data in (b"running", b"dropped"):
            await client.xadd(keys.stream, {"data": data})
        running, dropped = await read_by(client, keys, "worker-a", 2)
        held = InFlight()
        held.hold([running])  # worker-a still holds this one, no longer the other
        renewer = Renewer(client, keys, "worker-a", 1.0, held)
        assert renewer.every == 0.5
        loops = Background()
        loops.start(renewer.step)
        await asyncio.sleep(1.3)  # past the visibility timeout; renewed at 0.5 s and 1 s
        claimed = await Reclaimer(keys, "worker-b", 1.0, InFlight()).reclaim(client, lambda: 10)
        await loops.stop()
        assert [as_text(i) for i, _ in claimed] == [dropped]
        assert await owners(client, keys) == {running: "worker-a", dropped: "worker-b"}

    asyncio.run(with_redis(redis_server, test))


def test_promotion_moves_only_due_retries_into_the_stream(redis_server: RedisServer, key_prefix: str) -> None:
    keys = QueueKeys(key_prefix, QUEUE)

    async def test(client: aioredis.Redis) -> None:
        now = time.time()
        await client.zadd(keys.delayed, {b"due-1": now - 5, b"due-2": now - 1, b"later": now + 60})
        assert await Promoter(client, keys, batch=1).promote() == 1  # at most a batch at once
        assert await Promoter(client, keys, batch=100).promote() == 1
        assert await Promoter(client, keys, batch=100).promote() == 0
        entries = await client.xrange(keys.stream)
        assert [fields[b"data"] for _, fields in entries] == [b"due-1", b"due-2"]
        assert await client.zrange(keys.delayed, 0, -1) == [b"later"]

    asyncio.run(with_redis(redis_server, test))


def test_release_gives_back_unstarted_jobs_and_keeps_started_ones(redis_server: RedisServer, key_prefix: str) -> None:
    broker = StreamBroker(make_runtime(redis_server, key_prefix))

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        for data in (b"a", b"b", b"c"):
            await client.xadd(broker.keys.stream, {"data": data})
        messages = broker.listen()
        first, second, third = [await next_message(messages) for _ in range(3)]
        broker.stop_listening()
        await messages.aclose()
        broker.started(first)
        assert broker.in_flight.waiting == 2 and broker.in_flight.running == 1
        assert await broker.release_unstarted() == 2
        assert broker.in_flight.held() == [first.entry_id]
        assert await owners(client, broker.keys) == {first.entry_id: broker.consumer}
        # Given back as new entries, delivered again at once (to anyone); the old entries are gone.
        ids = [as_text(i) for i, _ in await client.xrange(broker.keys.stream)]
        assert len(ids) == 3 and ids[0] == first.entry_id
        assert {second.entry_id, third.entry_id}.isdisjoint(ids)
        fetched: Any = await client.xreadgroup(GROUP, "other", {broker.keys.stream: ">"}, count=10)
        assert sorted(fields[b"data"] for _, batch in fetched for _, fields in batch) == [b"b", b"c"]
        assert await broker.release_unstarted() == 0
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_acknowledgements_and_records_are_written_in_one_flush(redis_server: RedisServer, key_prefix: str) -> None:
    broker = StreamBroker(make_runtime(redis_server, key_prefix))

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        await client.xadd(broker.keys.stream, {"data": b"job"})
        messages = broker.listen()
        message = await next_message(messages)
        broker.stop_listening()
        await messages.aclose()
        broker.started(message)
        broker.record(COMPLETED, {"id": "job-1", "task": "t"}, 3600, 100)
        await message.ack()
        assert message.entry_id not in broker.in_flight and broker.acks.pending
        assert await client.xlen(broker.keys.stream) == 1  # not before the flush
        await broker.acks.flush(broker.redis, broker.records)
        assert not broker.acks.pending
        assert await client.xlen(broker.keys.stream) == 0 and await owners(client, broker.keys) == {}
        stored = await client.hget(broker.keys.record_data(COMPLETED), "job-1")
        assert stored is not None and json.loads(stored)["task"] == "t"
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_worker_heartbeat_appears_and_is_removed_on_shutdown(redis_server: RedisServer, key_prefix: str) -> None:
    broker = StreamBroker(make_runtime(redis_server, key_prefix))
    broker.is_worker_process = True

    async def test(client: aioredis.Redis) -> None:
        key = workers_key(key_prefix)
        await broker.startup()
        deadline = time.monotonic() + 5
        while (raw := await client.hget(key, broker.consumer)) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert raw is not None, "no heartbeat"
        beat = json.loads(raw)
        assert beat["queue"] == QUEUE and beat["pid"] == os.getpid() and beat["running"] == 0
        await broker.shutdown()
        assert await client.hget(key, broker.consumer) is None

    asyncio.run(with_redis(redis_server, test))


def test_listen_recreates_a_deleted_group_and_keeps_delivering(redis_server: RedisServer, key_prefix: str) -> None:
    broker = StreamBroker(make_runtime(redis_server, key_prefix))

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        messages = broker.listen()
        await client.xadd(broker.keys.stream, {"data": b"before"})
        assert (await next_message(messages)).data == b"before"
        await client.delete(broker.keys.stream)  # stream and group gone (a flushed Redis, say)
        await client.xadd(broker.keys.stream, {"data": b"after"})
        assert (await next_message(messages)).data == b"after"  # group recreated at id 0: not lost
        broker.stop_listening()
        await messages.aclose()
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_worker_shutdown_ends_even_when_cancelled_mid_flush(redis_server: RedisServer, key_prefix: str) -> None:
    """redis-py may swallow a cancellation that lands while a pipeline runs: the acknowledging loop
    then went on forever and a worker hung in shutdown until taskiq's timeout (issue 9, item 14)."""

    async def test(client: aioredis.Redis) -> None:
        slow = []
        for n in range(60):
            broker = StreamBroker(make_runtime(redis_server, key_prefix))
            broker.is_worker_process = True
            await broker.startup()
            for i in range(3):
                broker.acks.ack(f"{n}-{i}")
                broker.record(COMPLETED, {"id": f"{n}-{i}", "task": "t"}, 3600, 100)
            await asyncio.sleep(random.uniform(0, 0.03))  # land anywhere in the 20 ms flush cycle
            started = time.monotonic()
            stopping = asyncio.ensure_future(broker.shutdown())
            done, _ = await asyncio.wait({stopping}, timeout=5)
            if not done:
                slow.append(n)
                stopping.cancel()
            else:
                assert time.monotonic() - started < 2
        assert not slow, f"shutdown hung in rounds {slow}"
        # ... and the final flush still wrote what was pending.
        assert await client.hexists(QueueKeys(key_prefix, QUEUE).record_data(COMPLETED), "59-2")

    asyncio.run(with_redis(redis_server, test))
