"""The Redis half of plan/apply: queue streams, schedules as data, the eviction policy."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
import redis
from redis.cluster import RedisCluster as ClusterClient

from bootstrap.engine.redis.live import RedisLive, read_live_state
from bootstrap.layout.keys import GROUP, QueueKeys, ScheduleKeys
from bootstrap.local.servers import RedisServer
from tests.conftest import Result
from tests.support.redis_keys import stored_definitions
from tests.support.redis_topologies import RedisCluster


def edit(config_dir: Path, file: str, old: str, new: str) -> None:
    path = config_dir / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_apply_creates_queues_and_schedules_then_converges(
    config_dir: Path, cli: Callable[..., Result], redis_server: RedisServer, key_prefix: str
) -> None:
    result = cli("plan", "--config", str(config_dir))
    assert "queue delta-sync" in result.out and "create stream" in result.out
    assert "+ create schedule delta-sync-schedule: delta-sync/run-delta-sync every 15m" in result.out
    assert cli("apply", "--config", str(config_dir)).code == 0
    client = redis.Redis.from_url(redis_server.uri, decode_responses=True)
    stored = stored_definitions(client, key_prefix)
    assert sorted(stored) == [
        "delta-sync-schedule",
        "pattern-analysis-schedule",
        "staging-processor-schedule",
        "token-refresh-schedule",
        "webhook-renewal-schedule",
    ]
    assert json.loads(stored["webhook-renewal-schedule"])["cron"] == "0 */2 * * *"
    assert json.loads(stored["token-refresh-schedule"])["retry"] == {
        "attempts": 3,
        "backoff": "exponential",
        "delay": 5.0,
        "max_delay": 300.0,
        "jitter": False,
    }
    for queue in ("webhook-renewal", "delta-sync", "pattern-analysis", "staging-processor", "token-refresh"):
        groups = client.xinfo_groups(QueueKeys(key_prefix, queue).stream)
        assert [g["name"] for g in groups] == [GROUP]
    result = cli("plan", "--config", str(config_dir), "--detailed-exitcode")
    assert result.code == 0 and "No changes" in result.out

    edit(config_dir, "schedules.yaml", "every: 15m", "every: 10m")
    result = cli("plan", "--config", str(config_dir), "--detailed-exitcode")
    assert result.code == 2 and "~ change schedule delta-sync-schedule: every 15m -> 10m" in result.out

    edit(
        config_dir,
        "schedules.yaml",
        "  token-refresh-schedule:\n    queue: token-refresh\n    task: refresh-tokens\n    every: 45m\n",
        "",
    )
    result = cli("plan", "--config", str(config_dir))
    assert "- delete schedule token-refresh-schedule (no longer declared)" in result.out
    assert cli("apply", "--config", str(config_dir)).code == 0
    stored = stored_definitions(client, key_prefix)
    assert "token-refresh-schedule" not in stored
    assert json.loads(stored["delta-sync-schedule"])["every"] == 600.0
    client.close()


@pytest.fixture
def lru_redis(tmp_path: Path) -> RedisServer:
    server = RedisServer(tmp_path / "redis")
    server.start()
    client = redis.Redis(port=server.port)
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.close()
    yield server  # type: ignore[misc]
    server.stop()


def test_wrong_eviction_policy_blocks_apply_until_fix_redis(
    config_dir: Path, cli: Callable[..., Result], lru_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", lru_redis.uri)
    result = cli("plan", "--config", str(config_dir))
    assert "! blocked: Redis runs with maxmemory-policy allkeys-lru" in result.out
    result = cli("apply", "--config", str(config_dir))
    assert result.code == 1 and "--fix-redis" in result.err
    client = redis.Redis(port=lru_redis.port, decode_responses=True)
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
    assert client.keys("*") == []  # nothing was applied, on either side
    result = cli("apply", "--config", str(config_dir), "--fix-redis")
    assert result.code == 0 and "set maxmemory-policy allkeys-lru -> noeviction" in result.out
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    client.close()


def test_redis_without_config_command_works_and_says_it_cannot_check(
    config_dir: Path, cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Managed Redis services disable CONFIG: plan and apply still work, with a note."""
    server = RedisServer(tmp_path / "managed", extra=("--rename-command", "CONFIG", ""))
    server.start()
    try:
        monkeypatch.setenv("REDIS_URL", server.uri)
        result = cli("plan", "--config", str(config_dir))
        assert result.code == 0 and "? cannot read maxmemory-policy (CONFIG is not allowed)" in result.out
        assert cli("apply", "--config", str(config_dir)).code == 0
        result = cli("plan", "--config", str(config_dir), "--detailed-exitcode")
        assert result.code == 0
    finally:
        server.stop()


def test_live_state_reads_streams_groups_and_stored_schedules(redis_server: RedisServer, key_prefix: str) -> None:
    client = redis.Redis.from_url(redis_server.uri)
    ready, bare, in_the_way = (QueueKeys(key_prefix, q).stream for q in ("ready", "bare", "in-the-way"))
    client.xgroup_create(ready, GROUP, id="0", mkstream=True)
    client.xgroup_create(ready, "others", id="0")
    client.xadd(bare, {"x": "1"})  # a stream with no consumer group
    client.set(in_the_way, "not a stream")
    schedules, index = QueueKeys(key_prefix, "ready").schedules, ScheduleKeys(key_prefix).index
    client.hset(schedules, mapping={"good": '{"every": 60.0}', "bad": "{not json", "list": "[1]"})
    client.hset(index, mapping={"good": "ready", "bad": "ready", "list": "ready", "lost": "gone"})
    try:
        live = read_live_state(client, key_prefix, ["ready", "bare", "in-the-way", "missing"])
    finally:
        client.delete(ready, bare, in_the_way, schedules, index)
        client.close()
    assert live == RedisLive(
        eviction_policy="noeviction",
        streams={ready: frozenset({GROUP, "others"}), bare: frozenset()},
        schedules={"good": {"every": 60.0}, "bad": None, "list": None},
        schedule_queues={"good": "ready", "bad": "ready", "list": "ready", "lost": "gone"},
    )


def test_apply_moves_the_layout_before_hash_tags_and_keeps_jobs_records_and_schedule_state(
    config_dir: Path, cli: Callable[..., Result], redis_server: RedisServer, key_prefix: str
) -> None:
    """A deployment of the version before hash tags: a queue with a waiting job and a failed record,
    the global schedule hashes. Plan shows the moves; apply performs them; nothing is lost."""
    client = redis.Redis.from_url(redis_server.uri, decode_responses=True)
    old = f"{key_prefix}:queue:delta-sync"
    client.xgroup_create(f"{old}:jobs", GROUP, id="0", mkstream=True)
    client.xadd(f"{old}:jobs", {"data": "waiting job"})
    client.zadd(f"{old}:failed", {"job-1": 1.0})
    client.hset(f"{old}:failed:data", "job-1", "{}")
    delta = {"id": "delta-sync-schedule", "queue": "delta-sync", "task": "run-delta-sync", "every": 900.0}
    client.hset(f"{key_prefix}:schedules", mapping={"delta-sync-schedule": json.dumps(delta), "junk": "{not"})
    client.hset(f"{key_prefix}:schedules:last-slot", "delta-sync-schedule", "1700000000.0")

    result = cli("plan", "--config", str(config_dir))
    new = QueueKeys(key_prefix, "delta-sync")
    assert f"~ move key {old}:jobs -> {new.stream}" in result.out
    assert f"~ move key {old}:failed:data -> {new.record_data('failed')}" in result.out
    assert f"~ move schedule state {key_prefix}:schedules and {key_prefix}:schedules:last-slot" in result.out
    assert "create stream " + new.stream not in result.out  # the old stream moves, group and all
    assert cli("apply", "--config", str(config_dir)).code == 0

    assert not client.exists(f"{old}:jobs", f"{old}:failed", f"{old}:failed:data", f"{key_prefix}:schedules")
    assert [fields for _, fields in client.xrange(new.stream)] == [{"data": "waiting job"}]
    assert [g["name"] for g in client.xinfo_groups(new.stream)] == [GROUP]
    assert client.hget(new.record_data("failed"), "job-1") == "{}"
    assert client.hget(new.last_slot, "delta-sync-schedule") == "1700000000.0"
    assert client.hget(ScheduleKeys(key_prefix).index, "delta-sync-schedule") == "delta-sync"
    assert "junk" not in stored_definitions(client, key_prefix)
    result = cli("plan", "--config", str(config_dir), "--detailed-exitcode")
    assert result.code == 0 and "No changes" in result.out
    client.close()


def test_a_schedule_moved_to_another_queue_takes_its_last_slot_along(
    config_dir: Path, cli: Callable[..., Result], redis_server: RedisServer, key_prefix: str
) -> None:
    assert cli("apply", "--config", str(config_dir)).code == 0
    client = redis.Redis.from_url(redis_server.uri, decode_responses=True)
    delta, token = QueueKeys(key_prefix, "delta-sync"), QueueKeys(key_prefix, "token-refresh")
    client.hset(delta.last_slot, "delta-sync-schedule", "1700000000.0")
    # The schedule now fires a task of another queue.
    edit(
        config_dir,
        "schedules.yaml",
        "queue: delta-sync\n    task: run-delta-sync",
        "queue: token-refresh\n    task: refresh-tokens",
    )
    result = cli("plan", "--config", str(config_dir))
    assert "~ change schedule delta-sync-schedule:" in result.out and "queue delta-sync -> token-refresh" in result.out
    assert cli("apply", "--config", str(config_dir)).code == 0
    assert not client.hexists(delta.schedules, "delta-sync-schedule")
    assert not client.hexists(delta.last_slot, "delta-sync-schedule")
    assert json.loads(client.hget(token.schedules, "delta-sync-schedule") or "{}")["queue"] == "token-refresh"
    assert client.hget(token.last_slot, "delta-sync-schedule") == "1700000000.0"
    assert client.hget(ScheduleKeys(key_prefix).index, "delta-sync-schedule") == "token-refresh"
    assert cli("plan", "--config", str(config_dir), "--detailed-exitcode").code == 0
    client.close()


def test_plan_and_apply_on_a_cluster_spread_queues_check_every_primary_and_refuse_old_keys(
    config_dir: Path, cli: Callable[..., Result], redis_cluster: RedisCluster, key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("REDIS_URL", redis_cluster.uri)
    edit(config_dir, "bootstrap.yaml", "\nredis:\n", "\nredis:\n  mode: cluster\n")
    client = cast(redis.Redis, ClusterClient.from_url(redis_cluster.uri, decode_responses=True))
    lru = redis_cluster.nodes[1]
    node = redis.Redis(port=lru.port)
    node.config_set("maxmemory-policy", "allkeys-lru")
    try:
        result = cli("plan", "--config", str(config_dir))
        assert f"! blocked: Redis node 127.0.0.1:{lru.port} runs with maxmemory-policy allkeys-lru" in result.out
        assert cli("apply", "--config", str(config_dir)).code == 1
        assert cli("apply", "--config", str(config_dir), "--fix-redis").code == 0
        assert node.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert cli("plan", "--config", str(config_dir), "--detailed-exitcode").code == 0

        queues = ("webhook-renewal", "delta-sync", "pattern-analysis", "staging-processor", "token-refresh")
        homes = {client.cluster_keyslot(QueueKeys(key_prefix, q).stream) // 5462 for q in queues}  # type: ignore[attr-defined]
        assert len(homes) > 1  # the queues spread over the masters
        assert sorted(stored_definitions(client, key_prefix)) == sorted(f"{q}-schedule" for q in queues)
        status = cli("status", "--config", str(config_dir))  # reads every queue and schedule, across slots
        assert status.code == 0 and "delta-sync-schedule         every 15m" in status.out, status.out

        client.xadd(f"{key_prefix}:queue:delta-sync:jobs", {"data": "from the old layout"})
        result = cli("plan", "--config", str(config_dir))
        assert "Redis Cluster cannot rename a key into another slot" in result.out
        assert cli("apply", "--config", str(config_dir)).code == 1  # blocked: refused before any change
    finally:
        node.config_set("maxmemory-policy", "noeviction")
        node.close()
        client.close()
