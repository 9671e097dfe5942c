"""The worker's dedicated connection (`hotpath`) on a real Redis: a Redis that goes silent fails the
command in flight after the timeout instead of hanging it (redis-py's per-read timer is not used
there), and the next command gets a fresh connection; a script unknown to Redis is sent whole."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from bootstrap.jobs.hotpath import HotConnection, Script
from bootstrap.local.servers import RedisServer


def test_a_silent_redis_fails_the_command_after_the_timeout_and_the_next_reconnects(own_redis: RedisServer) -> None:
    async def test() -> None:
        client = aioredis.Redis.from_url(own_redis.uri)
        hot = HotConnection(client, timeout=1.0)
        assert await hot.call("PING") in (b"PONG", "PONG", True)
        assert own_redis.pid is not None
        os.killpg(own_redis.pid, signal.SIGSTOP)  # its group: the server runs under a watcher
        try:
            started = time.monotonic()
            with pytest.raises(RedisConnectionError, match=r"no reply from Redis within 1s"):
                await asyncio.wait_for(hot.call("PING"), 30)  # without the timeout: forever
            took = time.monotonic() - started
        finally:
            os.killpg(own_redis.pid, signal.SIGCONT)
        assert 1.0 <= took < 10, took  # the timeout plus at most a tick (and a loaded machine)
        assert await hot.call("SET", "k", "v") in (b"OK", "OK", True)  # a fresh connection
        script = Script("return redis.call('GET', KEYS[1])")
        await client.script_flush()
        assert await hot.script(script, ["k"], []) == b"v"  # NOSCRIPT: sent with its text
        assert await hot.script(script, ["k"], []) == b"v"  # known from then on
        await hot.close()
        await client.aclose()

    asyncio.run(test())
