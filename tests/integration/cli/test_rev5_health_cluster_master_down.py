"""Review rev5: `bootstrap health` on a Redis Cluster with one master down prints no check at all.

The eviction check now reads CONFIG GET from every primary (connect/redis.py `eviction_policies`);
the connection error from the dead one is not caught, so `health` ends with one line on stderr
(`error: Redis: Error 111 connecting to 127.0.0.1:PORT. Connection refused.`) and `health --json`
writes nothing to stdout. README, "Health": each failed check is named with its fix, and checks
that need a server that does not answer are not run, the server's check saying why; an orchestrator
or a monitor reading `--json` gets no report on exactly the day it needs one."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result, copy_config
from tests.integration.jobs.test_scale_cluster_down import cluster  # noqa: F401  (a cluster of its own)
from tests.support.redis_topologies import RedisCluster


def test_health_reports_a_lost_cluster_master_as_a_failed_check(
    tmp_path: Path,
    mongo_uri: str,
    key_prefix: str,
    cluster: RedisCluster,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., Result],
) -> None:
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("REDIS_URL", cluster.uri)
    config = copy_config(tmp_path / "project" / "config", key_prefix, redis="  mode: cluster\n")
    assert cli("apply", "--config", str(config)).code == 0
    cluster.nodes[-1].kill()  # not the node the URL names
    time.sleep(1)
    result = cli("health", "--json", "--config", str(config))
    assert result.code == 1
    report = json.loads(result.out)  # today: empty stdout
    assert report["healthy"] is False
    assert any(not check["ok"] for check in report["checks"])
