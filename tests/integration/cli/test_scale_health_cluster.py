"""`bootstrap health` on a Redis Cluster checks the eviction policy of one node only (found by the
scale walk: a master other than the one the URL names ran allkeys-lru; `plan` blocked on it, `health`
said "ok eviction" and exited 0)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.conftest import Result, copy_config
from tests.support.redis_topologies import RedisCluster


def test_health_fails_when_any_cluster_master_evicts(
    tmp_path: Path,
    mongo_uri: str,
    key_prefix: str,
    redis_cluster: RedisCluster,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., Result],
) -> None:
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("REDIS_URL", redis_cluster.uri)
    config = copy_config(tmp_path / "project" / "config", key_prefix, redis="  mode: cluster\n")
    other = redis.Redis(port=redis_cluster.nodes[-1].port)  # not the node the URL names
    other.config_set("maxmemory-policy", "allkeys-lru")
    try:
        plan = cli("plan", "--config", str(config))
        assert "allkeys-lru" in plan.out  # plan sees it (blocked, --fix-redis)
        result = cli("health", "--json", "--config", str(config))
    finally:
        other.config_set("maxmemory-policy", "noeviction")
        other.close()
    [check] = [c for c in json.loads(result.out)["checks"] if c["name"] == "eviction"]
    assert not check["ok"], check
    assert str(redis_cluster.nodes[-1].port) in check["detail"], check
