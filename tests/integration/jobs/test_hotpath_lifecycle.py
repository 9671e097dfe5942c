"""The worker's dedicated connection (`hotpath`) on a real Redis, across its connection's life: when
the command in flight is cancelled, the connection (its reply still to come) is never used again,
the next command reads its own reply, and the connection goes back to redis-py's pool even when the
cancellation is repeated while it is being dropped (a leaked one is never given out again: with a
bounded pool, commands then fail for good); a connection Redis closed while idle is replaced before
the next command instead of failing it; a reply split across many reads is read whole, and the next
command's after it."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bootstrap.jobs.hotpath import HotConnection
from bootstrap.local.servers import RedisServer


def test_a_cancelled_command_leaves_no_reply_for_the_next_and_no_connection_out_of_the_pool(
    redis_server: RedisServer,
) -> None:
    async def test() -> None:
        client = aioredis.Redis.from_url(redis_server.uri, max_connections=1)
        other = aioredis.Redis.from_url(redis_server.uri)
        hot = HotConnection(client, timeout=5.0)
        key, value = "review-hotpath-cancel", "its own reply"
        try:
            await other.set(key, value)
            for repeat in (False, True):
                call = asyncio.create_task(hot.call("BLPOP", f"{key}:list", 2, block=2))
                while hot._deadline == 0.0:  # written; waiting for the reply
                    await asyncio.sleep(0.001)
                call.cancel()
                if repeat:
                    await asyncio.sleep(0)  # the call drops its connection ...
                    call.cancel()  # ... and is cancelled again meanwhile
                await asyncio.wait({call}, timeout=5)
                assert call.cancelled()
                # A reply for the cancelled BLPOP (unless Redis saw the connection close first): on the
                # same connection, the GET would read it as its own.
                await other.rpush(f"{key}:list", "late")
                assert await hot.call("GET", key) == value.encode()
                await other.delete(f"{key}:list")
                await hot.close()  # every connection back in the pool (else the next _take fails)
                assert not client.connection_pool._in_use_connections
        finally:
            await hot.close()
            await other.delete(key, f"{key}:list")
            await client.aclose()
            await other.aclose()

    asyncio.run(test())


def test_a_connection_the_server_closed_while_idle_is_replaced_before_the_next_command(
    redis_server: RedisServer,
) -> None:
    """An idle connection closed by Redis (its `timeout`, a restart, CLIENT KILL, a managed service's
    idle limit) used to fail the next command (the first acknowledgement after a quiet spell: a
    warning and a retry half a second later)."""

    async def test() -> None:
        client = aioredis.Redis.from_url(redis_server.uri)
        admin = aioredis.Redis.from_url(redis_server.uri)
        hot = HotConnection(client, timeout=5.0)
        try:
            own = await hot.call("CLIENT", "ID")
            await admin.execute_command("CLIENT", "KILL", "ID", own)
            conn = hot._conn
            assert conn is not None and conn._reader is not None
            while not conn._reader.at_eof():  # the close has reached this side
                await asyncio.sleep(0.001)
            assert await hot.call("PING") in (b"PONG", "PONG")
            assert await hot.call("CLIENT", "ID") != own
        finally:
            await hot.close()
            await client.aclose()
            await admin.aclose()

    asyncio.run(test())


def test_a_reply_split_across_many_reads_is_read_whole(redis_server: RedisServer) -> None:
    async def test() -> None:
        client = aioredis.Redis.from_url(redis_server.uri)
        hot = HotConnection(client, timeout=5.0)
        key, value = "review-hotpath-big", bytes(range(256)) * 8192  # 2 MiB: many reads of the socket
        try:
            assert await hot.call("SET", key, value) in (b"OK", "OK")
            got, echoed = await asyncio.gather(hot.call("GET", key), hot.call("ECHO", "after"))
            assert got == value and echoed == b"after"
        finally:
            await hot.call("DEL", key)
            await hot.close()
            await client.aclose()

    asyncio.run(test())
