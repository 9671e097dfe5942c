"""On call: `bootstrap health` against a Redis that hangs (a stopped process: the kernel still
accepts the connection, nothing answers). The README: "Each server gets one attempt of at most
`--timeout` seconds (default 3)". Found by the on-call drill: health took 6.7-6.9 s against the
stopped Redis of `bootstrap up` (1.7-2.5 s when it answered); the Redis check alone
(`cli.health._redis`) takes 4x `--timeout` (4.0 s with 1, 8.0 s with 2), as if the client's own
retries (3 on a timeout) were still on. compose.yaml runs `health --timeout 5` with a 20 s
healthcheck timeout: a hung Redis makes the health check itself time out, its output lost."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from bootstrap.local.servers import RedisServer
from tests.conftest import Result


def test_health_gives_a_hung_redis_at_most_its_timeout(
    own_redis: RedisServer, own_redis_config: Path, cli: Callable[..., Result]
) -> None:
    assert own_redis.pid is not None
    os.killpg(own_redis.pid, signal.SIGSTOP)  # its group: the server runs under a watcher
    try:
        started = time.monotonic()
        result = cli("health", "--json", "--timeout", "2", "--config", str(own_redis_config))
        took = time.monotonic() - started
    finally:
        os.killpg(own_redis.pid, signal.SIGCONT)
    [redis_check] = [c for c in json.loads(result.out)["checks"] if c["name"] == "redis"]
    assert not redis_check["ok"], redis_check
    assert took < 3.0, f"health --timeout 2 took {took:.1f}s against a hung Redis"
