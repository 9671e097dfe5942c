"""Redis connections from the spec: producers fail fast, workers never give up on a blocking read;
start-up connects with retry and checks PING and the eviction policy."""

from __future__ import annotations

import logging
from typing import Any

import redis
from tenacity import RetryCallState

from bootstrap.connect.retry import retrying
from bootstrap.errors import RedisUnavailable
from bootstrap.redact import mask
from bootstrap.spec.model import RedisSettings

log = logging.getLogger("bootstrap.redis")


def _options(settings: RedisSettings, *, blocking: bool) -> dict[str, Any]:
    return {
        "socket_connect_timeout": settings.connect_timeout,
        # Workers block on XREADGROUP: no socket timeout, or a long wait would look like a failure.
        "socket_timeout": None if blocking else settings.socket_timeout,
        "health_check_interval": 30,
        "socket_keepalive": True,
        "retry_on_timeout": not blocking,
    }


def sync_client(settings: RedisSettings) -> redis.Redis:
    return redis.Redis.from_url(settings.url, **_options(settings, blocking=False))


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, redis.AuthenticationError | redis.exceptions.AuthorizationError):
        return False
    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError)


def connect(settings: RedisSettings) -> redis.Redis:
    """A client whose server answered PING with PONG, after retrying per `settings.connect_retry`."""
    client = sync_client(settings)
    shown, policy = mask(settings.url), settings.connect_retry

    def on_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0
        log.warning(
            "Redis %s not reachable (attempt %d of %d): %s; retrying in %.1fs",
            shown,
            state.attempt_number,
            policy.attempts,
            mask(str(exc)),
            delay,
        )

    attempts = 0
    try:
        for attempt in retrying(policy, _transient, on_retry):
            with attempt:
                attempts += 1
                pong = client.ping()
    except redis.RedisError as exc:
        client.close()
        if not _transient(exc):
            raise RedisUnavailable(f"Redis at {shown} refused the connection: {mask(str(exc))}") from None
        raise RedisUnavailable(f"cannot reach Redis at {shown} after {attempts} attempt(s): {mask(str(exc))}") from None
    if pong is not True:
        raise RedisUnavailable(f"Redis at {shown} answered PING with {pong!r} instead of PONG")
    info = client.info("server")
    log.info("connected to Redis %s at %s (PING -> PONG)", info.get("redis_version", "?"), shown)
    return client


UNKNOWN_POLICY = "unknown"


def eviction_policy(client: redis.Redis) -> str:
    """The server's maxmemory-policy, or "unknown" where CONFIG is not allowed (managed Redis
    services and restricted ACL users disable it)."""
    try:
        value = client.config_get("maxmemory-policy").get("maxmemory-policy", UNKNOWN_POLICY)
    except redis.ResponseError:
        return UNKNOWN_POLICY
    return str(value.decode() if isinstance(value, bytes) else value)
