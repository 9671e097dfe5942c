"""Redis clients from the spec's settings, sync (CLI) and async (workers, scheduler), and connecting
with retry: PING must answer PONG. Producers fail fast (socket timeout); a worker's blocking-read
connection has none, since a blocking read may wait for a long time."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis

from bootstrap.connect import retry
from bootstrap.connect.retry import Target
from bootstrap.errors import RedisUnavailable
from bootstrap.redact import mask
from bootstrap.spec.model import ConnectRetry

log = logging.getLogger("bootstrap.redis")

UNKNOWN_POLICY = "unknown"


class RedisTarget(Protocol):
    """What a Redis client is made from: the spec's RedisSettings, or a worker's resolved runtime."""

    @property
    def url(self) -> str: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def socket_timeout(self) -> float: ...
    @property
    def connect_retry(self) -> ConnectRetry: ...


def _options(settings: RedisTarget, *, blocking: bool) -> dict[str, Any]:
    return {
        "socket_connect_timeout": settings.connect_timeout,
        # Workers block on XREADGROUP: no socket timeout, or a long wait would look like a failure.
        "socket_timeout": None if blocking else settings.socket_timeout,
        "health_check_interval": 30,
        "socket_keepalive": True,
        "retry_on_timeout": not blocking,
    }


def sync_client(settings: RedisTarget) -> redis.Redis:
    """A client (no I/O yet) for the CLI: fails fast."""
    return redis.Redis.from_url(settings.url, **_options(settings, blocking=False))


def async_client(settings: RedisTarget, *, blocking: bool = False) -> aioredis.Redis:
    """An async client (no I/O yet); `blocking` for a worker's read connection."""
    return aioredis.Redis.from_url(settings.url, **_options(settings, blocking=blocking))


def transient(exc: BaseException) -> bool:
    """Worth another attempt: unreachable or timed out, not refused (bad password stays bad)."""
    if isinstance(exc, redis.AuthenticationError | redis.exceptions.AuthorizationError):
        return False
    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError)


def reason(exc: BaseException) -> str:
    return mask(str(exc))


def target(settings: RedisTarget) -> Target:
    return Target("Redis", settings.url, settings.connect_retry, transient, reason, log)


def _checked(settings: RedisTarget, pong: Any) -> None:
    if pong is not True:
        raise RedisUnavailable(f"Redis at {mask(settings.url)} answered PING with {pong!r} instead of PONG")


def connect(settings: RedisTarget) -> redis.Redis:
    """A client whose server answered PING with PONG, after retrying per `settings.connect_retry`."""
    client = sync_client(settings)
    try:
        pong = retry.call(target(settings), client.ping)
        _checked(settings, pong)
    except (redis.RedisError, RedisUnavailable) as exc:
        client.close()
        if isinstance(exc, RedisUnavailable):
            raise
        raise RedisUnavailable(retry.gave_up(target(settings), exc)) from None
    info = client.info("server")
    log.info("connected to Redis %s at %s (PING -> PONG)", info.get("redis_version", "?"), mask(settings.url))
    return client


async def connect_async(settings: RedisTarget, client: aioredis.Redis | None = None) -> aioredis.Redis:
    """The same for an async client (made here, or the one given); the caller logs success."""
    client = client if client is not None else async_client(settings)
    try:
        pong = await retry.call_async(target(settings), client.ping)
        _checked(settings, pong)
    except (redis.RedisError, RedisUnavailable) as exc:
        await client.aclose()
        if isinstance(exc, RedisUnavailable):
            raise
        raise RedisUnavailable(retry.gave_up(target(settings), exc)) from None
    return client


def _policy_text(config: Any) -> str:
    value = config.get("maxmemory-policy", config.get(b"maxmemory-policy", UNKNOWN_POLICY))
    return str(value.decode() if isinstance(value, bytes) else value)


def eviction_policy(client: redis.Redis) -> str:
    """The server's maxmemory-policy, or "unknown" where CONFIG is not allowed (managed Redis
    services and restricted ACL users disable it)."""
    try:
        return _policy_text(client.config_get("maxmemory-policy"))
    except redis.ResponseError:
        return UNKNOWN_POLICY


async def eviction_policy_async(client: aioredis.Redis) -> str:
    """The same for an async client."""
    try:
        return _policy_text(await client.config_get("maxmemory-policy"))
    except redis.ResponseError:
        return UNKNOWN_POLICY
