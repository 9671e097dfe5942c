"""The rate limiter's Lua steps on a real Redis: permits up to `max` per sliding window, shared by
every limiter of a queue, unused ones handed back, and the wait until one frees up."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bootstrap.jobs.ratelimit import RateLimiter
from bootstrap.layout.keys import QueueKeys
from bootstrap.local.servers import RedisServer
from bootstrap.spec.model import RateLimit


def test_permits_are_shared_refunded_and_free_up_after_the_window(redis_server: RedisServer, key_prefix: str) -> None:
    async def test() -> None:
        client = aioredis.Redis.from_url(redis_server.uri)
        try:
            keys = QueueKeys(key_prefix, "limited")
            limit = RateLimit(max=5, per=0.5)
            a, b = RateLimiter(client, keys, limit), RateLimiter(client, keys, limit)
            first = await a.acquire(3)
            assert (first.granted, first.wait) == (3, 0)
            second = await b.acquire(10)  # another worker: only what is left of the window's 5
            assert second.granted == 2
            none = await a.acquire(1)
            assert none.granted == 0 and 0 < none.wait <= 0.5
            await b.refund(second, used=0)  # its read found no job: both permits back
            again = await a.acquire(10)
            assert again.granted == 2 and await client.zcard(keys.rate) == 5
            await asyncio.sleep(limit.per + 0.05)  # every permit left the window (on Redis's clock)
            assert (await b.acquire(10)).granted == 5
            assert 0 < await client.pttl(keys.rate) <= 1500  # the set does not outlive its window for long
        finally:
            await client.aclose()

    asyncio.run(test())
