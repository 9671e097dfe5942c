"""`bootstrap health` on a Redis that answers but cannot be used: each named with its own fix. Found
walking through the README as a new user (a wrong password) and by the operator walk (a full disk:
MISCONF, Redis cannot save its data, so it refuses writes and even PING; health told the user to
start Redis, which runs)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from bootstrap.local.servers import RedisServer
from tests.conftest import Result, copy_config


@pytest.fixture
def redis_check(
    tmp_path: Path, mongo_uri: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Result]
) -> Callable[[str], dict[str, Any]]:
    """`bootstrap health --json` against the Redis at a URL: its `redis` check (the command exits 1)."""

    def check(url: str) -> dict[str, Any]:
        monkeypatch.setenv("MONGODB_URI", mongo_uri)
        monkeypatch.setenv("REDIS_URL", url)
        config = copy_config(tmp_path / "project" / "config", key_prefix)
        result = cli("health", "--json", "--config", str(config))
        assert result.code == 1
        [found] = [c for c in json.loads(result.out)["checks"] if c["name"] == "redis"]
        assert not found["ok"]
        return dict(found)

    return check


def test_a_wrong_redis_password_is_named_with_its_fix(
    tmp_path: Path, redis_check: Callable[[str], dict[str, Any]]
) -> None:
    server = RedisServer(tmp_path / "redis", password="the-right-one")
    server.start()
    try:
        check = redis_check(f"redis://:a-wrong-one@127.0.0.1:{server.port}/0")
    finally:
        server.stop()
    assert "invalid username-password pair" in check["detail"]
    assert "password" in check["fix"].lower(), check


def _cannot_save(server: RedisServer, tmp_path: Path) -> None:
    """Put `server` in the state of a full disk: its last snapshot failed and it stops writes."""
    client = redis.Redis.from_url(server.uri)
    try:
        client.config_set("save", "3600 1")
        client.config_set("stop-writes-on-bgsave-error", "yes")
        gone = tmp_path / "gone"
        gone.mkdir()
        client.config_set("dir", str(gone))
        shutil.rmtree(gone)  # the snapshot cannot be written (as on a full disk)
        client.bgsave()
        deadline = time.monotonic() + 10
        while client.info("persistence")["rdb_last_bgsave_status"] != "err" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.close()


def test_a_redis_that_cannot_save_its_data_is_said_so_with_its_fix(
    tmp_path: Path, redis_check: Callable[[str], dict[str, Any]]
) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=False)
    server.start()
    try:
        _cannot_save(server, tmp_path)
        check = redis_check(server.uri)
    finally:
        server.kill()  # a clean stop would try to save, and fail the same way
    assert "answers but cannot save its data" in check["detail"] and "MISCONF" in check["detail"]
    assert "free disk space" in check["fix"] and "start Redis" not in check["fix"], check
