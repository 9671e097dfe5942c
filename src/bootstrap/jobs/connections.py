"""A queue broker's two Redis connections, made by `bootstrap.connect.redis`: the producer (fails
fast; also used by upkeep, acknowledgements and records) and the worker's blocking-read connection
(no socket timeout). Checked once at start-up: PING with the connect-retry policy, and the eviction
policy, which is logged loudly when wrong (evicted queue keys are lost jobs) but does not stop the
process."""

from __future__ import annotations

import contextlib
import logging

import redis.asyncio as aioredis

from bootstrap.connect import redis as redis_connect
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.redact import mask

# The broker's logger: these lines read as they did when the broker did this itself.
log = logging.getLogger("bootstrap.jobs.broker")


class QueueConnections:
    def __init__(self, runtime: QueueRuntime) -> None:
        self.runtime = runtime
        self._producer: aioredis.Redis | None = None
        self._reader: aioredis.Redis | None = None

    @property
    def producer(self) -> aioredis.Redis:
        if self._producer is None:
            self._producer = redis_connect.async_client(self.runtime)
        return self._producer

    def reader(self) -> aioredis.Redis:
        if self._reader is None:
            self._reader = redis_connect.async_client(self.runtime, blocking=True)
        return self._reader

    async def check(self, *, announce: bool) -> None:
        """PING (retried per the connect policy, RedisUnavailable when it gives up), then the
        eviction policy; `announce` logs that the queue is ready (workers and schedulers)."""
        shown = mask(self.runtime.url)
        await redis_connect.connect_async(self.runtime, self.producer)
        eviction = await redis_connect.eviction_policy_async(self.producer)
        if eviction == redis_connect.UNKNOWN_POLICY:
            log.warning("Redis %s: cannot read maxmemory-policy; make sure it is noeviction", shown)
        elif eviction != "noeviction":
            log.error(
                "Redis %s runs with maxmemory-policy %s: queued jobs can be evicted and lost "
                "(run `bootstrap apply --fix-redis`)",
                shown,
                eviction,
            )
        if announce:
            log.info(
                "Redis %s: PING -> PONG, maxmemory-policy %s; queue %s ready", shown, eviction, self.runtime.queue
            )

    async def close(self) -> None:
        for conn in (self._reader, self._producer):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.aclose()
        self._reader = self._producer = None
