"""One dedicated Redis connection for a worker's per-job round trips: acknowledgements and reads.

redis-py's async client costs about 190-210 us of CPU per command on these machines (pool checkout,
the retry wrapper, a timer per read, response callbacks); the connection underneath it, used
directly, 70-85 us, near raw asyncio's 60 (`benchmarks/roundtrip.py` prints the three). At
concurrency 1 a worker makes one round trip per job (its acknowledgement), so that difference is a
large part of a job's cost.

The connection itself is redis-py's, taken from the client's pool once: redis-py connects,
authenticates, selects the database, speaks TLS and finds the Sentinel master. Commands are packed
by hiredis (in C: 6 times faster than redis-py's packing of an acknowledgement) and written straight
to the connection's stream. Commands are pipelined: `send` writes one at once and returns the future
of its reply, so a worker can go on before the reply comes (see acks); `call` waits for it. One
reader per connection takes the replies in order, with the connection's own parser.
A command that takes longer than the timeout (a Redis or network that went silent) closes the
connection, which fails it, and every command written after it, with a ConnectionError saying no
reply came in time; any connection error drops the connection and fails what it carried, and the
next command takes a fresh one from the pool, as it does when Redis closed the connection while it
was idle (its `timeout`, a restart, a managed service's idle limit) rather than fail on it. A
cancelled `call` drops the connection too: a blocking command would hold the next ones up. A reply
saying the server is no longer the master (READONLY, also inside a script's error; UNBLOCKED, a
blocked read ended by the switch; MASTERDOWN) is a ConnectionError too, as redis-py's Sentinel
connection makes it: the connection is dropped and the next one is the new master's, and callers
retry it as they retry any lost connection. So is a blocked command Redis ended otherwise
(UNBLOCKED: on Redis 7 its stream deleted or renamed), which is to be sent again. On a Redis Cluster
(where a queue's keys live on one node that can move) every command goes through the client as
before, one at a time (`pipelined` is False).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import deque
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MasterDownError, NoScriptError, ReadOnlyError, ResponseError

from bootstrap.connect import redis as redis_connect

TICK = 0.5  # seconds between checks for a command that takes too long


class Script:
    """A Lua script sent by its SHA1 (EVALSHA), with its text when Redis does not know it (NOSCRIPT:
    a Redis restarted or flushed its script cache)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


def not_master(error: ResponseError) -> bool:
    """`error` says the server is no longer the master. redis-py strips READONLY from its own
    ReadOnlyError's text; Redis 6 words a write refused inside a script `ERR Error running script
    ...: -READONLY ...` (Redis 7: READONLY); Redis ends a blocked command with UNBLOCKED when its role
    changes, then closes the connection."""
    if isinstance(error, ReadOnlyError | MasterDownError):
        return True
    text = str(error)
    return "-READONLY " in text or (text.startswith("UNBLOCKED") and "instance state changed" in text)


class HotConnection:
    def __init__(self, client: aioredis.Redis, timeout: float | None) -> None:
        self.client = client
        self.timeout = timeout  # seconds a command may take, on top of its own blocking time
        self.pipelined = not redis_connect.is_cluster(client)  # else every command goes through the client
        self._conn: AbstractConnection | None = None
        self._connecting = asyncio.Lock()
        # Commands written and not answered yet, in order: each reply's future, when the command has
        # taken too long (0: never) and the seconds it was allowed.
        self._waiting: deque[tuple[asyncio.Future[Any], float, float]] = deque()
        self._replies: asyncio.Task[None] | None = None  # the reader of the connection's replies
        self._stalled = False  # a command took too long: its connection was closed
        self._ticker: asyncio.TimerHandle | None = None
        self._known: set[str] = set()  # SHA1s of scripts sent whole on this connection (see send_script)

    @property
    def in_flight(self) -> int:
        """Commands written whose reply has not come yet."""
        return len(self._waiting)

    async def send(self, *args: Any, block: float = 0.0) -> asyncio.Future[Any]:
        """Write one command now; its reply (or error) comes on the future returned. `block`: seconds
        it may block in Redis (XREADGROUP BLOCK), on top of the timeout."""
        if not self.pipelined:
            return asyncio.ensure_future(self.client.execute_command(*args))  # type: ignore[no-untyped-call]
        conn = self._conn
        if conn is None:
            conn = await self._connect()
        allowed = self.timeout + block if self.timeout is not None else 0.0
        conn._writer.write(hiredis.pack_command(args))  # type: ignore[union-attr]
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((reply, time.monotonic() + allowed if allowed else 0.0, allowed))
        return reply

    async def call(self, *args: Any, block: float = 0.0) -> Any:
        """Run one command and return its reply."""
        reply = await self.send(*args, block=block)
        conn = self._conn
        try:
            return await reply
        except asyncio.CancelledError:  # its reply may still come, after a blocking command's time
            if conn is not None and conn is self._conn:
                await self._drop(RedisConnectionError("a command on this connection was cancelled"))
            raise

    async def send_script(self, script: Script, keys: list[Any], args: list[Any]) -> asyncio.Future[Any]:
        """Write a script now, see `send`: whole (EVAL, which also loads it) the first time on a
        connection, as its SHA1 (EVALSHA) from then on: pipelined, a NOSCRIPT would fail the
        commands written behind it too. Redis that lost it meanwhile (SCRIPT FLUSH): see `forgot`."""
        if script.sha not in self._known:
            self._known.add(script.sha)
            return await self.send("EVAL", script.text, len(keys), *keys, *args)
        return await self.send("EVALSHA", script.sha, len(keys), *keys, *args)

    async def script(self, script: Script, keys: list[Any], args: list[Any], block: float = 0.0) -> Any:
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args, block=block)
        except NoScriptError:
            return await self.call("EVAL", script.text, len(keys), *keys, *args, block=block)

    def forgot(self, script: Script) -> None:
        """Redis answered NOSCRIPT to a script sent with `send_script`: send its text next time."""
        self._known.discard(script.sha)

    async def _connect(self) -> AbstractConnection:
        async with self._connecting:  # one new connection for commands sent at the same time
            if self._conn is None:
                self._conn = await self._take()
            return self._conn

    async def _take(self) -> AbstractConnection:
        pool = self.client.connection_pool
        conn: AbstractConnection = await pool.get_connection()  # type: ignore[no-untyped-call]
        if getattr(conn, "_writer", None) is None or getattr(conn, "_parser", None) is None:
            await pool.release(conn)  # not the connection this was written against: use the client
            self.pipelined = False
            raise RedisConnectionError("the Redis connection has no stream to write to")
        self._stalled = False
        self._known.clear()  # a new connection may be to a new server (a failover, a restart)
        self._replies = asyncio.get_running_loop().create_task(self._read(conn))
        if self.timeout is not None and self._ticker is None:
            self._ticker = asyncio.get_running_loop().call_later(TICK, self._tick)
        return conn

    async def _read(self, conn: AbstractConnection) -> None:
        """Take the connection's replies in order, for as long as it is this one's. Parked on the
        socket while nothing is waiting: a close by Redis (idle `timeout`, restart) is seen at once,
        and the next command takes a fresh connection instead of failing on this one."""
        parser: Any = conn._parser
        waiting = self._waiting
        try:
            while True:
                reply = await parser.read_response()
                if not waiting:  # a reply nobody asked for: the connection is out of step
                    raise RedisConnectionError("Redis sent a reply to no command")
                future = waiting.popleft()[0]
                if isinstance(reply, ResponseError):
                    if not_master(reply):  # a replica now (a failover): the next command takes the master
                        error = RedisConnectionError(f"Redis is no longer the master: {reply}")
                        error.__cause__ = reply
                        _fail(future, error)
                        await self._drop(error, conn)
                        return
                    if str(reply).startswith("UNBLOCKED"):  # key deleted or renamed (Redis 7), CLIENT UNBLOCK: again
                        error = RedisConnectionError(f"Redis ended the blocked command: {reply}")
                        error.__cause__ = reply
                        _fail(future, error)
                        continue
                    _fail(future, reply)
                elif not future.done():
                    future.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            lost = exc
            if self._stalled and waiting:  # said as what it was, not "closed by server"
                lost = RedisConnectionError(f"no reply from Redis within {waiting[0][2]:g}s; connection closed")
            elif not isinstance(exc, RedisConnectionError):
                lost = RedisConnectionError(f"reading Redis's reply failed: {exc!r}")
            await self._drop(lost, conn)

    def _tick(self) -> None:
        """Close the connection under a command that has taken too long: it fails, and so does every
        command written after it."""
        conn = self._conn
        if conn is None:
            self._ticker = None
            return
        deadline = self._waiting[0][1] if self._waiting else 0.0
        if deadline and time.monotonic() > deadline and conn._writer is not None:
            self._stalled = True
            conn._writer.transport.abort()
        self._ticker = asyncio.get_running_loop().call_later(TICK, self._tick)

    async def _drop(self, error: BaseException | None = None, conn: AbstractConnection | None = None) -> None:
        """Let the connection go (only `conn`, when given: not a newer one) and fail every command it
        carried with `error`."""
        if conn is not None and conn is not self._conn:
            return
        conn, self._conn = self._conn, None
        replies, self._replies = self._replies, None
        failure = error if error is not None else RedisConnectionError("the connection was closed")
        while self._waiting:
            _fail(self._waiting.popleft()[0], failure)
        if replies is not None and replies is not asyncio.current_task():
            replies.cancel()
        if conn is not None:
            # Closed without waiting for the close (nowait): nothing here yields, so a cancellation
            # repeated meanwhile cannot keep the connection from going back to the pool.
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            with contextlib.suppress(Exception):
                await self.client.connection_pool.release(conn)

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        await self._drop()


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
