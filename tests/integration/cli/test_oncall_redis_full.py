"""On call: Redis reaches `maxmemory` (noeviction, as `apply` requires). Redis still answers PING, but
refuses every write: enqueues, acknowledgements, scheduler fires and heartbeats. Found by the on-call
drill: `health` said `redis ok` and, 30 s later, "no live worker ... fix: start the workers" and "no
live scheduler ... fix: start the scheduler" while all of them ran; `status` said nothing of memory
either. The redis check should name the real cause and its fix."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from bootstrap.local.servers import RedisServer
from tests.conftest import Result


def _full(server: RedisServer) -> None:
    """Redis at its maxmemory: used memory above the limit, nothing evictable (noeviction)."""
    client = redis.Redis.from_url(server.uri)
    try:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)  # below what an empty server uses
        with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
            client.set("probe", "x")
    finally:
        client.close()


def test_health_names_a_redis_that_is_full(
    own_redis: RedisServer, own_redis_config: Path, cli: Callable[..., Result]
) -> None:
    assert cli("apply", "--config", str(own_redis_config)).code == 0
    _full(own_redis)
    result = cli("health", "--json", "--config", str(own_redis_config))
    assert result.code == 1
    [found] = [c for c in json.loads(result.out)["checks"] if c["name"] == "redis"]
    assert not found["ok"], found
    assert "maxmemory" in found["detail"], found
    checks = {c["name"]: c for c in json.loads(result.out)["checks"]}
    for name in ("workers", "scheduler"):  # their heartbeats are refused: the fix is Redis's, not theirs
        assert checks[name]["ok"] or "Redis is full" in checks[name]["fix"], checks[name]


def test_status_names_a_redis_that_is_full(
    own_redis: RedisServer, own_redis_config: Path, cli: Callable[..., Result]
) -> None:
    assert cli("apply", "--config", str(own_redis_config)).code == 0
    _full(own_redis)
    result = cli("status", "--config", str(own_redis_config))
    assert "maxmemory" in result.out.replace("maxmemory-policy", ""), result.out
