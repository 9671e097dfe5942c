"""A Redis that BullMQ 5 used: every BullMQ queue has a `<prefix>:<queue>:marker` key (a sorted set
its workers block on). `status` and `health` look for other deployments' markers (`P:marker`) when
this spec's marker is missing (before the first apply, after data loss or a changed key prefix)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import redis

from bootstrap.local.servers import RedisServer
from tests.conftest import Result


def test_migrate_bullmq_marker_keys_are_not_another_deployment(
    config_dir: Path, cli: Callable[..., Result], redis_server: RedisServer
) -> None:
    bullmq = f"bull{uuid.uuid4().hex[:8]}"  # BullMQ's `prefix` option; `bull` by default
    r = redis.Redis.from_url(redis_server.uri)
    for queue in ("delta-sync", "token-refresh"):
        r.zadd(f"{bullmq}:{queue}:marker", {"0": 0})
        r.rpush(f"{bullmq}:{queue}:wait", "1")
    try:
        status = cli("status", "--config", str(config_dir))  # before the first apply
        assert status.code == 0, status.err
        health = cli("health", "--config", str(config_dir))
        assert f"{bullmq}:delta-sync" not in status.out + status.err
        assert f"{bullmq}:delta-sync" not in health.out
    finally:
        r.delete(*(f"{bullmq}:{q}:{k}" for q in ("delta-sync", "token-refresh") for k in ("marker", "wait")))
