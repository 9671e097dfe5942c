"""The worker's dedicated connection (`hotpath`) when its Redis stops being the master (a Sentinel
failover demotes it with REPLICAOF), on two real Redis servers: every reply that says so (READONLY
from a command, READONLY wrapped in a script's error as Redis 6 words it, UNBLOCKED for a blocked
read) fails the command with a ConnectionError, which the read loop and the acknowledgements retry,
and drops the connection, so the next command takes a fresh one (from a Sentinel pool: the new
master's). redis-py's Sentinel connection does the same for its own commands; a ResponseError
instead ended the worker's read loop, and a kept connection kept writing to the replica."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from bootstrap.jobs.hotpath import HotConnection, Script
from bootstrap.local.servers import RedisServer

WRITE = Script("return redis.call('SET', KEYS[1], ARGV[1])")


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    servers = RedisServer(tmp_path / "a", appendonly=False), RedisServer(tmp_path / "b", appendonly=False)
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def test_a_demoted_master_fails_commands_with_a_connection_error_and_is_let_go(
    pair: tuple[RedisServer, RedisServer],
) -> None:
    first, other = pair

    async def test() -> None:
        client = aioredis.Redis.from_url(first.uri)
        admin = aioredis.Redis.from_url(first.uri)
        hot = HotConnection(client, timeout=5.0)
        try:
            await hot.call("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
            read = asyncio.create_task(
                hot.call("XREADGROUP", "GROUP", "g", "c", "BLOCK", 5000, "STREAMS", "s", ">", block=5)
            )
            while not any(c.get("cmd") == "xreadgroup" for c in await admin.client_list()):
                await asyncio.sleep(0.01)  # the read blocks in Redis
            await admin.execute_command("REPLICAOF", "127.0.0.1", other.port)  # demoted, as by a failover
            with pytest.raises(RedisConnectionError, match="UNBLOCKED"):
                await asyncio.wait_for(read, 10)
            assert hot._conn is None
            with pytest.raises(RedisConnectionError, match="read only replica"):
                await hot.call("SET", "k", "v")
            assert hot._conn is None  # the next command takes a fresh connection
            with pytest.raises(RedisConnectionError, match="read only replica"):
                await hot.script(WRITE, ["k"], ["v"])  # Redis 6: "ERR Error running script ... -READONLY"
            assert hot._conn is None
            await admin.execute_command("REPLICAOF", "NO", "ONE")  # a master again
            assert await hot.script(WRITE, ["k"], ["v"]) in (b"OK", "OK")
        finally:
            await hot.close()
            await client.aclose()
            await admin.aclose()

    asyncio.run(test())
