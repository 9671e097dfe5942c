"""Where priority levels and deduplicated ids meet the rest of the job layer, against a real Redis
(and a 3-master cluster where the mode matters): the one acknowledging script over every level's
stream and the id index, rate limits and pause over every level, the Janitor over every level, and
queue counts summed over the levels."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

from bootstrap.jobs import admin, upkeep
from bootstrap.jobs.broker import StreamBroker, StreamMessage
from bootstrap.jobs.labels import Placement
from bootstrap.jobs.pause import pause, resume
from bootstrap.jobs.records import COMPLETED
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.jobs.upkeep import Janitor
from bootstrap.layout.keys import GROUP, PRIORITIES, QueueKeys, as_text, entry_ref
from bootstrap.local.servers import RedisServer
from bootstrap.spec.model import RateLimit
from tests.conftest import BOTH_MODES, RedisTarget
from tests.integration.jobs.test_broker import _noop, job, job_id

QUEUE = "q"


def broker_on(url: str, prefix: str, mode: str = "standalone", **settings: Any) -> StreamBroker:
    runtime = QueueRuntime(
        prefix=prefix, queue=QUEUE, redis_url=url, visibility_timeout=30, concurrency=2, completed_max_age=3600,
        completed_max_count=100, failed_max_age=3600, failed_max_count=100, mode=mode, **settings,
    )  # fmt: skip
    broker = StreamBroker(runtime)
    broker.register_task(_noop, task_name="t")
    return broker


@BOTH_MODES
def test_one_flush_acknowledges_every_level_frees_the_ids_and_writes_the_records(
    redis_target: RedisTarget, key_prefix: str
) -> None:
    broker = broker_on(redis_target.url, key_prefix, redis_target.mode)
    counts = {"high": 1100, "normal": 3, "low": 600}  # more than one chunk of 500 on two levels

    async def test() -> None:
        await broker.startup()
        client, keys = broker.redis, broker.keys
        refs = []
        for level, n in counts.items():
            stream = keys.stream_at(level)
            for i in range(n):
                await client.xadd(stream, {"data": job(f"{level}-{i}")})
            fetched: Any = await client.xreadgroup(GROUP, "c", {stream: ">"}, count=n)
            refs += [entry_ref(level, as_text(entry_id)) for _, batch in fetched for entry_id, _ in batch]
        assert len(refs) == sum(counts.values())
        freed = [f"id-{i}" for i in range(1200)]
        await client.hset(keys.ids, mapping={**dict.fromkeys(freed, 1), "kept": 1})
        for ref in refs[:-1]:
            broker.acks.ack(ref, "")
        for freed_id in freed:
            broker.acks.forget(freed_id)
        broker.record(COMPLETED, {"id": "done-1", "task": "t"}, 3600, 100)
        waiting = asyncio.ensure_future(broker.acks.acked(refs[-1], ""))  # a job waiting for its ack
        await asyncio.sleep(0)
        await broker.acks.flush()
        await asyncio.wait_for(waiting, 5)
        for level in PRIORITIES:
            stream = keys.stream_at(level)
            assert await client.xlen(stream) == 0, level
            assert (await client.xpending(stream, GROUP))["pending"] == 0, level
        assert [as_text(k) for k in await client.hkeys(keys.ids)] == ["kept"]
        assert await client.hget(keys.record_data(COMPLETED), "done-1") is not None
        await broker.shutdown()

    asyncio.run(test())


async def _collect(broker: StreamBroker, until: float) -> list[StreamMessage]:
    """What `listen` delivers before `until` (monotonic)."""
    got: list[StreamMessage] = []
    messages = broker.listen()
    try:
        while (left := until - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(messages.__anext__(), left)
            except TimeoutError:
                break
            assert isinstance(message, StreamMessage)
            got.append(message)
    finally:
        broker.stop_listening()
        await messages.aclose()
    return got


def test_the_rate_limit_counts_jobs_of_every_level_and_reads_no_more_than_its_permits(
    redis_server: RedisServer, key_prefix: str
) -> None:
    # Three levels busy: a plain read over the three streams would bring up to `room` per stream.
    broker = broker_on(redis_server.uri, key_prefix, rate_limit=RateLimit(max=4, per=60))

    async def test() -> None:
        await broker.startup()
        for level in PRIORITIES:
            await broker.send([(f"{level}-{i}", job(f"{level}-{i}", priority=level)) for i in range(5)],
                              Placement(priority=level))  # fmt: skip
        got = await _collect(broker, time.monotonic() + 2)
        assert len(got) == 4, [m.entry_id for m in got]
        assert await broker.redis.zcard(broker.keys.rate) == 4
        await broker.shutdown()

    asyncio.run(test())


def test_a_paused_queue_reads_no_level_and_resumes_on_every_level(redis_server: RedisServer, key_prefix: str) -> None:
    broker = broker_on(redis_server.uri, key_prefix)

    async def test() -> None:
        await broker.startup()
        for level in PRIORITIES:
            await broker.send([(f"{level}-1", job(f"{level}-1", priority=level))], Placement(priority=level))
        sync = redis.Redis.from_url(redis_server.uri)
        pause(sync, broker.keys)
        assert await broker.pause.check(broker.redis)
        assert await _collect(broker, time.monotonic() + 1) == []
        resume(sync, broker.keys)
        sync.close()
        assert not await broker.pause.check(broker.redis)
        broker._stopping.clear()  # listen again after the paused round
        got = await _collect(broker, time.monotonic() + 3)
        assert sorted(job_id(m) for m in got) == sorted(f"{level}-1" for level in PRIORITIES)
        await broker.shutdown()

    asyncio.run(test())


@BOTH_MODES
def test_the_janitor_keeps_a_consumer_that_holds_a_job_on_any_level(
    redis_target: RedisTarget, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upkeep, "DEAD_AFTER", 0.2)  # seconds idle before a consumer counts as dead
    broker = broker_on(redis_target.url, key_prefix, redis_target.mode)

    async def test() -> None:
        await broker.startup()
        client, keys = broker.redis, broker.keys
        high = keys.stream_at("high")
        await client.xadd(high, {"data": job("h-1")})
        fetched: Any = await client.xreadgroup(GROUP, "dead", dict.fromkeys(keys.streams, ">"), count=1)
        (entry_id,) = [as_text(e) for _, batch in fetched for e, _ in batch]
        janitor = Janitor(client, keys, broker.consumer)
        await asyncio.sleep(0.3)  # let "dead" be idle past DEAD_AFTER on every level
        assert await janitor.sweep() == []  # its high-priority job would be lost with it
        await client.xack(high, GROUP, entry_id)
        deadline = time.monotonic() + 5
        while not (deleted := await janitor.sweep()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert deleted == ["dead"]
        for stream in keys.streams:
            assert "dead" not in {as_text(c["name"]) for c in await client.xinfo_consumers(stream, GROUP)}
        await broker.shutdown()

    asyncio.run(test())


def test_queue_counts_sum_the_levels(redis_server: RedisServer, key_prefix: str) -> None:
    client = redis.Redis.from_url(redis_server.uri)
    keys = QueueKeys(key_prefix, QUEUE)
    for level, n in (("high", 2), ("normal", 3), ("low", 4)):
        stream = keys.stream_at(level)
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        for i in range(n):
            client.xadd(stream, {"data": job(f"{level}-{i}")})
    client.xreadgroup(GROUP, "c", {keys.stream_at("low"): ">"}, count=1)  # one low job running
    pause(client, keys)
    (stats,) = admin.queues_stats(client, key_prefix, [QUEUE])
    client.close()
    assert (stats.waiting, stats.running, stats.paused) == (8, 1, True)
