"""The broker's Redis connections, in one place so they can be swapped as a whole.

TO BE REPLACED by `bootstrap.connect.redis` (clients, ping): the methods below were moved here from
the broker as they were, not rewritten. `StreamBroker` inherits them; nothing else in `bootstrap.jobs`
makes a Redis connection. The broker uses `redis` (the producer connection, also used by upkeep,
acknowledgements and records), `_blocking()` (the worker's read connection), `_check_redis()` (at
startup) and `_close_redis()` (at shutdown).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import RetryCallState

from bootstrap.connect.retry import async_retrying
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.layout.keys import as_text
from bootstrap.redact import mask

# The broker's logger: these lines read as they did when the broker did this itself.
log = logging.getLogger("bootstrap.jobs.broker")


class RedisConnections:
    """Mixed into `StreamBroker` (which provides `runtime` and the taskiq process flags)."""

    runtime: QueueRuntime
    is_worker_process: bool
    is_scheduler_process: bool
    _producer: aioredis.Redis | None = None
    _consumer: aioredis.Redis | None = None

    @property
    def redis(self) -> aioredis.Redis:
        """The producer connection: fails fast (socket timeout) instead of hanging."""
        if self._producer is None:
            self._producer = aioredis.Redis.from_url(
                self.runtime.redis_url,
                socket_connect_timeout=self.runtime.connect_timeout,
                socket_timeout=self.runtime.socket_timeout,
                retry_on_timeout=True,
                health_check_interval=30,
            )
        return self._producer

    def _blocking(self) -> aioredis.Redis:
        """The worker's read connection: no socket timeout, a blocking read may wait forever."""
        if self._consumer is None:
            self._consumer = aioredis.Redis.from_url(
                self.runtime.redis_url,
                socket_connect_timeout=self.runtime.connect_timeout,
                socket_timeout=None,
                socket_keepalive=True,
                health_check_interval=30,
            )
        return self._consumer

    async def _check_redis(self) -> None:
        """PING must answer PONG (retried per the connect policy); a wrong eviction policy is logged
        loudly (evicted queue keys are lost jobs) but does not stop the process."""
        shown = mask(self.runtime.redis_url)
        policy = self.runtime.connect_retry

        def on_retry(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "Redis %s not reachable (attempt %d of %d): %s",
                shown,
                state.attempt_number,
                policy.attempts,
                mask(str(exc)),
            )

        async for attempt in async_retrying(policy, _transient, on_retry):
            with attempt:
                pong = await self.redis.ping()
        try:
            config: Any = await self.redis.config_get("maxmemory-policy")
            eviction = as_text(config.get("maxmemory-policy", config.get(b"maxmemory-policy", b"?")))
        except ResponseError:  # CONFIG disabled (managed Redis, restricted user): cannot check
            eviction = "unknown (CONFIG not allowed)"
        if eviction.startswith("unknown"):
            log.warning("Redis %s: cannot read maxmemory-policy; make sure it is noeviction", shown)
        elif eviction != "noeviction":
            log.error(
                "Redis %s runs with maxmemory-policy %s: queued jobs can be evicted and lost "
                "(run `bootstrap apply --fix-redis`)",
                shown,
                eviction,
            )
        if self.is_worker_process or self.is_scheduler_process:
            log.info(
                "Redis %s: PING -> %s, maxmemory-policy %s; queue %s ready",
                shown,
                "PONG" if pong else pong,
                eviction,
                self.runtime.queue,
            )

    async def _close_redis(self) -> None:
        """Close both connections (the tail of the broker's shutdown, moved here unchanged)."""
        for conn in (self._consumer, self._producer):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.aclose()
        self._consumer = self._producer = None


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)
