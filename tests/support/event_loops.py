"""A test's coroutine run on each event loop a worker may run (uvloop under `taskiq worker`,
asyncio's own elsewhere), and a worker's hot Redis connection for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import uvloop

from bootstrap.jobs.hotpath import HotConnection

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run(loop: str, test: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(test())


@contextlib.asynccontextmanager
async def hot_connection(uri: str, **options: Any) -> AsyncIterator[HotConnection]:
    """A `HotConnection` (5 s timeout) over a client of `uri` made with `options`; both closed after."""
    client = aioredis.Redis.from_url(uri, **options)
    hot = HotConnection(client, timeout=5.0)
    try:
        yield hot
    finally:
        await hot.close()
        await client.aclose()
