"""`bootstrap health`'s eviction check in words, for what the primaries of a cluster report (their
reading is tested against real clusters in tests/integration/cli/test_scale_health_cluster.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bootstrap.cli import health
from bootstrap.connect.redis import UNKNOWN_POLICY
from bootstrap.spec.load import load_spec
from tests.conftest import SHIPPED_CONFIG

ENV = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}


@pytest.mark.parametrize(
    ("policies", "ok", "detail"),
    [
        ({"server": "noeviction"}, True, "maxmemory-policy noeviction"),
        ({"server": UNKNOWN_POLICY}, True,
         "maxmemory-policy cannot be read (CONFIG is disabled); it must be noeviction"),
        ({"a:1": "noeviction", "b:2": "noeviction"}, True, "maxmemory-policy noeviction on 2 of 2 primaries"),
        ({"a:1": "noeviction", "b:2": UNKNOWN_POLICY}, True,
         "maxmemory-policy noeviction on 1 of 2 primaries; cannot be read on b:2 (CONFIG disabled), where it must "
         "be noeviction"),
        ({"a:1": "noeviction", "b:2": "allkeys-lru"}, False,
         "Redis runs with maxmemory-policy allkeys-lru on b:2: queued jobs can be evicted (expected noeviction)"),
    ],
)  # fmt: skip
def test_the_eviction_check_says_what_each_primary_reported(
    monkeypatch: pytest.MonkeyPatch, policies: dict[str, str], ok: bool, detail: str
) -> None:
    spec = load_spec(SHIPPED_CONFIG, env=ENV)
    monkeypatch.setattr(health, "eviction_policies", lambda client: policies)
    client: Any = None  # not read: the policies above stand for what the servers answer
    check = health.eviction(spec, client)
    assert (check.ok, check.detail) == (ok, detail)
