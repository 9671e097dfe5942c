"""A queue broker's two Redis connections, made by `bootstrap.connect.redis`: the producer (fails
fast; also used by upkeep, acknowledgements and records) and the worker's blocking-read connection
(no socket timeout). Checked once at start-up: PING with the connect-retry policy, the eviction
policy, which is logged loudly when wrong (evicted queue keys are lost jobs) but does not stop the
process, and the data marker apply writes: without it Redis lost its data (restarted without
persistence, flushed) or apply never ran, and an ERROR line says what is gone.

The read connection also watches for NOGROUP (the queue's consumer group is gone while the worker
runs: Redis restarted empty, or someone deleted the stream). The broker recreates the group and goes
on; the ERROR line naming what was lost is written here, before it does."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from bootstrap.connect import redis as redis_connect
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.layout.keys import QueueKeys, marker_key
from bootstrap.redact import mask

# The broker's logger: these lines read as they did when the broker did this itself.
log = logging.getLogger("bootstrap.jobs.broker")

GONE = "queued jobs, schedules, consumer groups and job records are gone"


class _ReadClient(aioredis.Redis):
    """The blocking-read client, which reports a NOGROUP reply before raising it."""

    on_nogroup: Callable[[], Awaitable[None]] | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except ResponseError as exc:
            if "NOGROUP" in str(exc) and self.on_nogroup is not None:
                await self.on_nogroup()
                exc.bootstrap_reported = True  # type: ignore[attr-defined]  # the broker says it no more
            raise


class QueueConnections:
    def __init__(self, runtime: QueueRuntime) -> None:
        self.runtime = runtime
        self._producer: aioredis.Redis | None = None
        self._reader: aioredis.Redis | None = None
        self._sender: aioredis.Redis | None = None

    @property
    def producer(self) -> aioredis.Redis:
        if self._producer is None:
            self._producer = redis_connect.async_client(self.runtime)
        return self._producer

    @property
    def sender(self) -> aioredis.Redis:
        """The client jobs are sent with: a command whose reply timed out is not sent again (it may
        have run: the job would go in twice), where the producer's idempotent commands are."""
        if self._sender is None:
            self._sender = redis_connect.async_client(self.runtime, resend=False)
        return self._sender

    def reader(self) -> aioredis.Redis:
        if self._reader is None:
            made = redis_connect.async_client(self.runtime, blocking=True)
            if redis_connect.is_cluster(made):  # no single pool: the broker reports NOGROUP itself
                self._reader = made
                return made
            reader = _ReadClient.from_pool(made.connection_pool)  # same settings, NOGROUP reported
            assert isinstance(reader, _ReadClient)
            reader.on_nogroup = self.group_lost
            self._reader = reader
        return self._reader

    async def check(self, *, announce: bool) -> None:
        """PING (retried per the connect policy, RedisUnavailable when it gives up), then the
        eviction policy; `announce` (workers and schedulers) logs that the queue is ready, and
        checks the data marker."""
        shown = redis_connect.shown(self.runtime)
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
            await self.check_marker()
            log.info(
                "Redis %s: PING -> PONG, maxmemory-policy %s; queue %s ready", shown, eviction, self.runtime.queue
            )

    async def check_marker(self) -> bool:
        """True if the marker apply writes is there; else an ERROR line saying what is gone."""
        key = marker_key(self.runtime.prefix)
        if await self.producer.exists(key):
            return True
        log.error(
            "queue %s: Redis %s lost its data (no marker written by apply at %s; restarted without "
            "persistence, flushed, or never applied): %s; run `bootstrap apply`",
            self.runtime.queue,
            redis_connect.shown(self.runtime),
            key,
            GONE,
        )
        return False

    async def group_lost(self) -> None:
        """Redis answered NOGROUP: the consumer group of this queue is gone (the broker recreates
        it next). Say what was lost: everything, or this queue's stream and its jobs."""
        stream = QueueKeys(self.runtime.prefix, self.runtime.queue).stream
        try:
            kept = await self.check_marker()
        except RedisError as exc:
            log.error("queue %s: consumer group of %s lost; cannot read the marker (%s)",
                      self.runtime.queue, stream, mask(str(exc)))  # fmt: skip
            return
        if kept:
            log.error(
                "queue %s: the consumer group of %s was deleted (the data marker is there): jobs that "
                "were in the stream and jobs running are lost; recreating the group",
                self.runtime.queue,
                stream,
            )

    async def close(self) -> None:
        for conn in (self._reader, self._producer, self._sender):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.aclose()
        self._reader = self._producer = self._sender = None
