"""rev6 review: plan, apply and status now SCAN the keyspace (e019f45, 2c24f02: jobs left behind,
other key prefixes). Until today no command used SCAN, so a Redis user whose ACL denies it (a
least-privilege user) could plan and apply; the look-around is a note and should not stop them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import Result


@pytest.fixture
def no_scan_url(redis_server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    user, password = f"rev6-{uuid.uuid4().hex[:8]}", "pw-rev6"
    admin = redis.Redis.from_url(redis_server.uri)
    admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"],
                      commands=["+@all", "-scan"])  # fmt: skip
    host, port = admin.connection_pool.connection_kwargs["host"], admin.connection_pool.connection_kwargs["port"]
    url = f"redis://{user}:{password}@{host}:{port}/0"
    monkeypatch.setenv("REDIS_URL", url)
    try:
        yield url
    finally:
        admin.acl_deluser(user)
        admin.close()


def test_apply_works_for_a_redis_user_without_scan(
    config_dir: Path, no_scan_url: str, cli: Callable[..., Result]
) -> None:
    result = cli("apply", "--config", str(config_dir))
    assert result.code == 0, result.err[-600:]
    assert "'scan' command" not in result.out + result.err


def test_status_works_for_a_redis_user_without_scan(
    config_dir: Path, no_scan_url: str, cli: Callable[..., Result]
) -> None:
    result = cli("status", "--config", str(config_dir))  # nothing applied: no marker
    assert "'scan' command" not in result.out + result.err, result.err[-2000:]
    assert "lost its data" in result.out + result.err or "marker" in result.out + result.err
