"""Found walking through the README as a new user: `bootstrap health` with a wrong Redis password."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.conftest import Result, copy_config


def test_a_wrong_redis_password_is_named_with_its_fix(
    tmp_path: Path,
    mongo_uri: str,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., Result],
) -> None:
    server = RedisServer(tmp_path / "redis", password="the-right-one")
    server.start()
    try:
        monkeypatch.setenv("MONGODB_URI", mongo_uri)
        monkeypatch.setenv("REDIS_URL", f"redis://:a-wrong-one@127.0.0.1:{server.port}/0")
        config = copy_config(tmp_path / "project" / "config", key_prefix)
        result = cli("health", "--json", "--config", str(config))
    finally:
        server.stop()
    assert result.code == 1
    [check] = [c for c in json.loads(result.out)["checks"] if c["name"] == "redis"]
    assert not check["ok"] and "invalid username-password pair" in check["detail"]
    assert "password" in check["fix"].lower(), check
