"""In sentinel mode the URL's host is not used (docs/scaling.md: "its host is not used, since the
master's address is asked of the sentinels"), yet `plan`, `apply`, `health`, the workers' start-up
line and the connect log all name that host as the Redis they talk to (found by the scale walk with
`REDIS_URL=redis://10.255.255.1:1/0`: "Redis redis://10.255.255.1:1/0 answers"; and, with no master
during a failover, health's fix said "point REDIS_URL at one that runs"). They should name the
master the sentinels gave, or the service and the sentinels."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result, copy_config
from tests.support.redis_topologies import SentinelSet

UNUSED = "10.255.255.1"


def test_sentinel_mode_names_the_master_not_the_unused_url_host(
    tmp_path: Path,
    mongo_uri: str,
    key_prefix: str,
    sentinels: SentinelSet,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., Result],
) -> None:
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("REDIS_URL", f"redis://{UNUSED}:1/0")
    block = f'  mode: sentinel\n  sentinel: {{master: {sentinels.service}, hosts: "{sentinels.hosts}"}}\n'
    config = copy_config(tmp_path / "project" / "config", key_prefix, redis=block)
    plan = cli("plan", "--config", str(config))
    assert plan.code == 0, plan.err
    health = cli("health", "--json", "--config", str(config))
    [check] = [c for c in json.loads(health.out)["checks"] if c["name"] == "redis"]
    assert check["ok"], check  # it does reach the master through the sentinels
    assert UNUSED not in plan.out.splitlines()[0], plan.out.splitlines()[0]
    assert UNUSED not in check["detail"], check
