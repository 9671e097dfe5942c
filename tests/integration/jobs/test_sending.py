"""Sending jobs from Python the taskiq way, against a real Redis: delays (`.with_labels(delay=...)`,
`schedule_by_time`), ids that deduplicate, priorities, and labels that cannot be sent."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from taskiq.exceptions import SendTaskError

from bootstrap.errors import BootstrapError
from bootstrap.jobs import admin
from bootstrap.jobs.broker import StreamBroker, StreamMessage
from bootstrap.jobs.delayed import DelayedJobs
from bootstrap.jobs.records import COMPLETED
from bootstrap.jobs.upkeep import Promoter, Renewer
from bootstrap.layout.keys import QueueKeys
from bootstrap.local.servers import RedisServer
from tests.integration.jobs.test_broker import make_broker, next_message, with_redis


async def _task() -> None:
    """The task the kicks below send (the test broker serves it as "t")."""


async def acknowledged(broker: StreamBroker, message: StreamMessage) -> None:
    """Acknowledge a job as a worker does (`ack` returns once a flush wrote it); no acknowledging
    loop runs in these tests, so flush here."""
    acking = asyncio.ensure_future(message.ack())
    await asyncio.sleep(0)
    await broker.acks.flush()
    await asyncio.wait_for(acking, 5)


def test_a_delay_label_keeps_the_job_in_the_delayed_set_until_due(redis_server: RedisServer, key_prefix: str) -> None:
    """`.with_labels(delay=30).kiq()` used to run at once."""
    broker = make_broker(redis_server, key_prefix)
    task = broker.register_task(_task, task_name="t")

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        before = time.time()
        sent = await task.kicker().with_labels(delay=0.6).kiq()
        assert await client.xlen(broker.keys.stream) == 0
        [(member, due)] = await client.zrange(broker.keys.delayed, 0, -1, withscores=True)
        assert json.loads(member)["task_id"] == sent.task_id and before + 0.6 <= due <= time.time() + 0.6
        promoter = Promoter(broker.redis, broker.keys, 100)
        assert await promoter.promote() == 0  # not due yet
        while time.time() < due:
            await asyncio.sleep(due - time.time())
        assert await promoter.promote() == 1
        assert await client.zcard(broker.keys.delayed) == 0
        [(_, fields)] = await client.xrange(broker.keys.stream)
        assert json.loads(fields[b"data"])["task_id"] == sent.task_id
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_a_deduplicated_id_is_sent_once_until_its_job_finishes(redis_server: RedisServer, key_prefix: str) -> None:
    """`--id fixed-1` twice used to run twice."""
    broker = make_broker(redis_server, key_prefix)
    task = broker.register_task(_task, task_name="t")

    async def send(delay: float = 0) -> str:
        kicker = task.kicker().with_task_id("fixed-1").with_labels(dedupe=True, delay=delay)
        return (await kicker.kiq()).task_id

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        assert await send(delay=60) == "fixed-1"  # delayed
        assert await send() == "fixed-1"  # a no-op that names the existing job
        assert await client.zcard(broker.keys.delayed) == 1 and await client.xlen(broker.keys.stream) == 0
        await client.delete(broker.keys.delayed, broker.keys.ids)
        await send()
        await send()  # waiting
        assert await client.xlen(broker.keys.stream) == 1
        messages = broker.listen()
        message = await next_message(messages)
        broker.stop_listening()
        await messages.aclose()
        broker.started(message)
        await send()  # running
        assert await client.xlen(broker.keys.stream) == 1
        assert message.job is not None
        broker.record(COMPLETED, {"id": "fixed-1", "task": "t", "labels": message.job.labels}, 3600, 100)
        await acknowledged(broker, message)
        assert not await client.hexists(broker.keys.ids, "fixed-1")  # finished: the id is free again
        await send()
        assert await client.xlen(broker.keys.stream) == 1  # the new job (the finished one was deleted)
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


@pytest.mark.parametrize(
    ("label", "value", "said"),
    [("delay", "soon", "label delay: 'soon' is not a number of seconds"),
     ("delay", -1, "label delay: '-1' is not a number of seconds"),
     ("priority", "urgent", "label priority: 'urgent' is not one of high, normal, low"),
     ("dedupe", "maybe", "label dedupe: 'maybe' is not true or false")],
)  # fmt: skip
def test_a_malformed_sending_label_is_refused_with_its_name(
    redis_server: RedisServer, key_prefix: str, label: str, value: object, said: str
) -> None:
    broker = make_broker(redis_server, key_prefix)
    task = broker.register_task(_task, task_name="t")

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        with pytest.raises(SendTaskError) as raised:
            await task.kicker().with_labels(**{label: value}).kiq()  # type: ignore[arg-type]
        assert said in str(raised.value.__cause__)
        assert await client.xlen(broker.keys.stream) == 0 and await client.zcard(broker.keys.delayed) == 0
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_a_priority_label_sends_to_its_level_and_listen_takes_the_higher_level_first(
    redis_server: RedisServer, key_prefix: str
) -> None:
    broker = make_broker(redis_server, key_prefix)
    task = broker.register_task(_task, task_name="t")

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        for level in ("low", "normal", "high"):
            await task.kicker().with_task_id(level).with_labels(priority=level).kiq()
        assert [await client.xlen(broker.keys.stream_at(level)) for level in ("high", "normal", "low")] == [1, 1, 1]
        messages = broker.listen()
        got = [await next_message(messages) for _ in range(3)]
        broker.stop_listening()
        await messages.aclose()
        assert [m.job.task_id for m in got if m.job] == ["high", "normal", "low"]
        assert got[0].entry_id.startswith("high/") and "/" not in got[1].entry_id
        for message in got:
            await acknowledged(broker, message)
        assert [await client.xlen(stream) for stream in broker.keys.streams] == [0, 0, 0]
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_a_job_of_a_dead_worker_on_any_level_is_taken_over_and_given_back_to_its_level(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """At-least-once holds for every level: reclaim, renewal and release work on each level's stream."""
    broker = make_broker(redis_server, key_prefix, visibility_timeout=0.3)
    task = broker.register_task(_task, task_name="t")

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        high = broker.keys.stream_at("high")
        await task.kicker().with_task_id("orphan").with_labels(priority="low").kiq()
        await task.kicker().with_task_id("urgent").with_labels(priority="high").kiq()
        await client.xreadgroup("workers", "dead", {high: ">"}, count=1)  # its worker dies holding it
        await asyncio.sleep(0.4)
        messages = broker.listen()
        taken = await next_message(messages)
        assert taken.job is not None and taken.job.task_id == "urgent" and taken.deliveries == 2
        low = await next_message(messages)
        assert low.job is not None and low.job.task_id == "orphan" and low.entry_id.startswith("low/")
        broker.stop_listening()
        await messages.aclose()
        broker.started(taken)
        await asyncio.sleep(0.35)
        # Renewal resets the idle time of each held entry on its own stream.
        sync_client = sync_redis.Redis.from_url(redis_server.uri)
        renewer = Renewer(sync_client, broker.keys, broker.consumer, 0.3, broker.in_flight)
        renewer.renew()
        renewer.client.close()
        [pending] = await client.xpending_range(high, "workers", "-", "+", 10)
        assert pending["consumer"] == broker.consumer.encode() and pending["time_since_delivered"] < 300
        assert await broker.release_unstarted() == 1  # the low one, back onto the low stream
        assert await client.xlen(broker.keys.stream_at("low")) == 1
        assert await client.xpending(broker.keys.stream_at("low"), "workers") == {
            "pending": 0, "min": None, "max": None, "consumers": []
        }  # fmt: skip
        await acknowledged(broker, taken)
        assert await client.xlen(high) == 0
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_schedule_by_time_puts_a_one_off_job_in_the_delayed_set(redis_server: RedisServer, key_prefix: str) -> None:
    broker = make_broker(redis_server, key_prefix)
    task = broker.register_task(_task, task_name="t")

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        when = datetime.now(UTC) + timedelta(hours=1)
        await task.kicker().with_task_id("later").schedule_by_time(DelayedJobs(broker), when)
        naive = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=2)  # no zone: UTC
        await task.kicker().with_task_id("later-still").schedule_by_time(DelayedJobs(broker), naive)
        due = {json.loads(m)["task_id"]: s for m, s in await client.zrange(broker.keys.delayed, 0, -1, withscores=True)}
        assert abs(due["later"] - when.timestamp()) < 1
        assert abs(due["later-still"] - naive.replace(tzinfo=UTC).timestamp()) < 1
        with pytest.raises(BootstrapError, match=r"declare recurring schedules in schedules\.yaml"):
            await task.kicker().schedule_by_cron(DelayedJobs(broker), "* * * * *")
        assert await client.xlen(broker.keys.stream) == 0
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_jobs_retry_puts_a_failed_job_back_on_its_level_with_its_id_taken(
    redis_server: RedisServer, key_prefix: str
) -> None:
    keys = QueueKeys(key_prefix, "q")
    client = sync_redis.Redis.from_url(redis_server.uri)
    counters = {"attempt": 3, "transient_retries": 5, "retry_afters": 100}  # all spent
    record = {"id": "urgent-1", "task": "t", "labels": {"priority": "high", "dedupe": True, **counters}}
    client.hset(keys.record_data("failed"), "urgent-1", json.dumps(record))
    client.zadd(keys.records("failed"), {"urgent-1": time.time()})
    assert admin.retry_failed(client, keys, ["urgent-1"]) == ["urgent-1"]
    [(_, fields)] = client.xrange(keys.stream_at("high"))
    assert json.loads(fields[b"data"])["labels"] == {"priority": "high", "dedupe": True}  # counters reset
    assert client.hexists(keys.ids, "urgent-1") and client.xlen(keys.stream) == 0
    client.close()
