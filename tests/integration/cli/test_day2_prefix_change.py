"""Day 2: `redis.key_prefix` changed by mistake (a typo, a copied config) while the stack runs.

The queued jobs, schedules and records are all still in Redis, under the old prefix. `status` prints
"Redis lost its data (no marker written by apply): queued jobs, schedules and job records are gone;
run `bootstrap apply`", which is not true, and the advice starts a second, empty deployment beside
the first one (whose jobs are then never run by the new workers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from bootstrap.local.servers import RedisServer
from tests.conftest import Result


def test_status_does_not_say_data_lost_when_only_the_prefix_changed(
    config_dir: Path, key_prefix: str, tmp_path: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Redis of its own: the shared one holds other tests' deployments, which the message names too.
    redis_server = RedisServer(tmp_path / "own-redis")
    redis_server.start()
    monkeypatch.setenv("REDIS_URL", redis_server.uri)
    try:
        _prefix_changed(config_dir, key_prefix, redis_server, cli)
    finally:
        redis_server.stop()


def _prefix_changed(config_dir: Path, key_prefix: str, redis_server: RedisServer, cli: Callable[..., Result]) -> None:
    assert cli("apply", "--config", str(config_dir)).code == 0
    assert cli("enqueue", "delta-sync", "run-delta-sync", "--config", str(config_dir)).code == 0
    client = redis.Redis.from_url(redis_server.uri)
    try:
        assert client.xlen(f"{key_prefix}:queue:{{delta-sync}}:jobs") == 1  # the job is there, under the old prefix
    finally:
        client.close()
    settings = config_dir / "bootstrap.yaml"
    settings.write_text(settings.read_text().replace(f"key_prefix: {key_prefix}\n", f"key_prefix: {key_prefix}-typo\n"))

    result = cli("status", "--config", str(config_dir))
    assert "Redis lost its data (no marker" not in result.out, result.out
    assert f"no marker under key prefix '{key_prefix}-typo', but this Redis database holds" in result.out
    assert repr(key_prefix) in result.out and "check `redis.key_prefix`" in result.out

    health = cli("health", "--config", str(config_dir))
    assert health.code == 1
    assert "start the workers" not in health.out, health.out  # that would start a second, empty deployment
    assert f"fix: no marker under key prefix '{key_prefix}-typo'" in health.out, health.out


def test_status_still_says_data_lost_on_an_empty_database(
    config_dir: Path, tmp_path: Path, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = RedisServer(tmp_path / "empty-redis")  # the shared one holds other tests' deployments
    empty.start()
    try:
        monkeypatch.setenv("REDIS_URL", empty.uri)
        result = cli("status", "--config", str(config_dir))  # no marker, and no other prefix here
    finally:
        empty.stop()
    assert "Redis lost its data (no marker" in result.out, result.out
