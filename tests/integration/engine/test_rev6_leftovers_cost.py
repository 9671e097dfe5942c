"""rev6 review: plan (and health's drift check, compose's health check) reads the oldest 100 jobs of
every priority level of every declared queue, whole, to find task names the spec no longer declares
(e019f45). With a backlog of large jobs that is the whole payload of 300 jobs per queue on every run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import redis

from bootstrap.layout.keys import QueueKeys
from tests.conftest import Result

JOB_BYTES = 200_000


def test_plan_does_not_download_the_backlog(
    config_dir: Path, cli: Callable[..., Result], redis_server, key_prefix: str  # type: ignore[no-untyped-def]
) -> None:
    assert cli("apply", "--config", str(config_dir)).code == 0
    client = redis.Redis.from_url(redis_server.uri)
    keys = QueueKeys(key_prefix, "token-refresh")
    body = json.dumps({"task_id": "x", "task_name": "refresh-tokens", "labels": {}, "args": [],
                       "kwargs": {"blob": "x" * JOB_BYTES}})  # fmt: skip
    try:
        pipe = client.pipeline(transaction=False)
        for stream in keys.streams:
            for _ in range(100):
                pipe.xadd(stream, {"data": body})
        pipe.execute()
        before = int(client.info("stats")["total_net_output_bytes"])
        assert cli("plan", "--config", str(config_dir)).code == 0
        sent = int(client.info("stats")["total_net_output_bytes"]) - before
        assert sent < 10 * JOB_BYTES, f"plan made Redis send {sent / 1e6:.1f} MB"
    finally:
        for key in client.scan_iter(match=f"{key_prefix}*"):
            client.delete(key)
        client.close()
