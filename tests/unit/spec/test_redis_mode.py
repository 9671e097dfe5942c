"""`redis.mode` and what each mode may have: findings with file, line and field; settings typed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.connect.redis import sentinel_addresses
from bootstrap.errors import ConfigError
from bootstrap.jobs.contract import Runtime
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"


def config_with(tmp_path: Path, redis_lines: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    settings = config / "bootstrap.yaml"
    settings.write_text(settings.read_text().replace("\nredis:\n", f"\nredis:\n{redis_lines}", 1))
    return config


def findings(config: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env or {})
    return [str(f) for f in caught.value.findings]


def test_standalone_is_the_default_and_nothing_waits(tmp_path: Path) -> None:
    redis = load_spec(SHIPPED, {}).redis
    assert (redis.mode, redis.sentinel_master, redis.wait_replicas, redis.wait_timeout) == ("standalone", "", 0, 0.0)


def test_a_database_other_than_0_on_a_cluster_is_a_finding(tmp_path: Path) -> None:
    config = config_with(tmp_path, "  mode: cluster\n")
    assert load_spec(config, {"REDIS_URL": "redis://node-1:7000/0"}).redis.mode == "cluster"
    assert load_spec(config, {"REDIS_URL": "redis://node-1:7000"}).redis.mode == "cluster"
    (line,) = findings(config, {"REDIS_URL": "redis://node-1:7000/3"})
    assert line.startswith(f"{config / 'bootstrap.yaml'}:16:8: ")  # the url line, below the mode
    assert "redis.url: Redis Cluster has database 0 only, and the URL selects database 3" in line


def test_sentinel_needs_its_master_and_sentinels_and_they_reach_the_generated_runtime(tmp_path: Path) -> None:
    lines = "  mode: sentinel\n  sentinel: {master: mymaster, hosts: \"${REDIS_SENTINELS:-a:26379,b}\"}\n"
    config = config_with(tmp_path, lines)
    spec: Spec = load_spec(config, {"REDIS_SENTINELS": "s1:5000, s2"})
    assert (spec.redis.sentinel_master, spec.redis.sentinel_hosts) == ("mymaster", "s1:5000, s2")
    assert sentinel_addresses(spec.redis.sentinel_hosts) == [("s1", 5000), ("s2", 26379)]
    runtime = Runtime.from_spec(spec)
    assert runtime.redis.sentinel_hosts == "${REDIS_SENTINELS:-a:26379,b}"  # the template, never the value
    assert Runtime.from_literal(runtime.to_literal()) == runtime
    assert "sentinel_hosts" not in spec.declared()["redis"]
    (line,) = findings(config_with(tmp_path / "2", "  mode: sentinel\n"))
    assert "redis.mode: sentinel mode needs `sentinel: {master: NAME" in line
    (line,) = findings(config_with(tmp_path / "3", "  sentinel: {master: m, hosts: \"a:1\"}\n"))
    assert "redis.sentinel: sentinels are used in sentinel mode only (mode is standalone)" in line
    (line,) = findings(config_with(tmp_path / "4", "  mode: sentinel\n  sentinel: {master: m, hosts: \"a:x\"}\n"))
    assert "redis.sentinel.hosts: expected host:port, comma-separated; got 'a:x'" in line


def test_wait_is_typed_with_a_default_timeout_and_checked_by_the_schema(tmp_path: Path) -> None:
    redis = load_spec(config_with(tmp_path, "  wait: {replicas: 1}\n"), {}).redis
    assert (redis.wait_replicas, redis.wait_timeout) == (1, 1.0)
    redis = load_spec(config_with(tmp_path / "2", "  wait: {replicas: 2, timeout: 250ms}\n"), {}).redis
    assert (redis.wait_replicas, redis.wait_timeout) == (2, 0.25)
    (line,) = findings(config_with(tmp_path / "3", "  wait: {replicas: 0}\n"))
    assert "redis.wait.replicas" in line
    (line,) = findings(config_with(tmp_path / "5", "  mode: cluster\n  wait: {replicas: 1}\n"))
    assert "redis.wait: is not supported with mode cluster" in line
    (line,) = findings(config_with(tmp_path / "4", "  mode: shard\n"))
    assert "redis.mode" in line and "'shard' is not allowed" in line
