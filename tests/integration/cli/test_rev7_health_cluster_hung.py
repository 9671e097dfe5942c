"""rev7 review: `bootstrap health` against a Redis Cluster with a hung master (a stopped process).

1. Today's fix (`once=True`: no redis-py retries, so a hung Redis gets at most --timeout) covers
   standalone and sentinel only: `_options` sets no `retry` for a cluster, whose client retries and
   re-initialises on its own. With the second master stopped, `health --timeout 2` took 79 s
   (compose gives the health check 20 s: killed, its output lost); with --timeout 0.5 about 20 s.
2. (Older, seen on the way) with the node named by REDIS_URL stopped, health prints no checks at
   all: "internal error: RedisClusterException: Redis Cluster cannot be connected" (the cluster
   client connects in its constructor, outside `connect`'s except, and RedisClusterException is no
   RedisError)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Result, copy_config
from tests.support.redis_topologies import RedisCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    made = RedisCluster(tmp_path / "cluster")
    made.start()
    yield made
    made.stop()


def _health_with_a_stopped_node(
    cluster: RedisCluster, node: int, timeout: str, tmp_path: Path, mongo_uri: str, key_prefix: str,
    monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result],
) -> tuple[Result, float]:  # fmt: skip
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("REDIS_URL", cluster.uri)
    config = copy_config(tmp_path / "project" / "config", key_prefix, redis="  mode: cluster\n")
    assert cli("apply", "--config", str(config)).code == 0
    pid = cluster.nodes[node].pid
    assert pid is not None
    os.killpg(pid, signal.SIGSTOP)  # its group: the node runs under the parent watcher
    try:
        started = time.monotonic()
        result = cli("health", "--json", "--timeout", timeout, "--config", str(config))
        return result, time.monotonic() - started
    finally:
        os.killpg(pid, signal.SIGCONT)


def test_health_gives_a_cluster_with_a_hung_master_about_its_timeout(
    cluster: RedisCluster, tmp_path: Path, mongo_uri: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., Result],
) -> None:  # fmt: skip
    result, took = _health_with_a_stopped_node(cluster, 1, "0.5", tmp_path, mongo_uri, key_prefix, monkeypatch, cli)
    assert not json.loads(result.out)["healthy"]
    assert took < 5.0, f"health --timeout 0.5 took {took:.1f}s with one cluster master hung"


def test_health_reports_a_hung_cluster_startup_node_as_a_failed_check(
    cluster: RedisCluster, tmp_path: Path, mongo_uri: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., Result],
) -> None:  # fmt: skip
    result, _ = _health_with_a_stopped_node(cluster, 0, "1", tmp_path, mongo_uri, key_prefix, monkeypatch, cli)
    assert "internal error" not in result.err, result.err
    [redis_check] = [c for c in json.loads(result.out)["checks"] if c["name"] == "redis"]
    assert not redis_check["ok"]
