"""A worker's read loop in this process, past entries it must not run: what it delivers first."""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis

from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.contract import Runtime
from tests.integration.jobs.test_broker import job, next_message


async def _noop() -> None:
    """The one task the broker serves ("t")."""


async def first_delivered(runtime: Runtime, redis_url: str, *datas: bytes, timeout: float = 10.0) -> str | None:
    """Start a broker serving task "t", add `datas` then a job "good" of "t" to its stream, and return
    the id of the first job its read loop delivers within `timeout` seconds (None: none)."""
    broker = StreamBroker(runtime)
    broker.register_task(_noop, task_name="t")
    await broker.startup()
    client = aioredis.Redis.from_url(redis_url)
    try:
        for data in datas:
            await client.xadd(broker.keys.stream, {"data": data})
        await client.xadd(broker.keys.stream, {"data": job("good", task="t")})
        messages = broker.listen()
        try:
            message = await asyncio.wait_for(next_message(messages), timeout)
        except TimeoutError:
            return None
        finally:
            broker.stop_listening()
            await messages.aclose()
        return str(json.loads(message.data)["task_id"])
    finally:
        await client.aclose()
        await broker.shutdown()
