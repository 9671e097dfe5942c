"""Sending jobs from Python the taskiq way, against a real Redis: delays (`.with_labels(delay=...)`),
ids that deduplicate, priorities, and labels that cannot be sent."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis
from taskiq.exceptions import SendTaskError

from bootstrap.jobs.records import COMPLETED
from bootstrap.jobs.upkeep import Promoter
from bootstrap.local.servers import RedisServer
from tests.integration.jobs.test_broker import make_broker, next_message, with_redis


async def _task() -> None:
    """The task the kicks below send (the test broker serves it as "t")."""


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
        await message.ack()
        await broker.acks.flush(broker.redis, broker.records)
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
