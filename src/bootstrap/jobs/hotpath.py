"""One dedicated Redis connection for a worker's per-job round trips: acknowledgements and reads.

redis-py's async client costs about 190-210 us of CPU per command on these machines (pool checkout,
the retry wrapper, a timer per read, response callbacks); the connection underneath it, used
directly, 70-85 us, near raw asyncio's 60 (`benchmarks/roundtrip.py` prints the three). At
concurrency 1 a worker makes one round trip per job (its acknowledgement), so that difference is a
large part of a job's cost.

The connection itself is redis-py's, taken from the client's pool once: redis-py connects,
authenticates, selects the database, speaks TLS and finds the Sentinel master. Commands are packed
by hiredis (in C: 6 times faster than redis-py's packing of an acknowledgement) and written straight
to the connection's stream; the reply is read by its parser (one a poll caught is taken straight
from the parser's hiredis reader, skipping the stream and two coroutines).
A caller with nothing else to do until the reply polls the socket for it for up to SPIN before it
waits in the event loop (`poll`): a sleeping CPU's wake-up is a large part of a local round trip;
a reply the event loop read already is taken as it is. A caller that need not wait for it (a worker
whose every slot waits for this acknowledgement: each job at concurrency 1) has it read before the
next command instead (`later`, see DEFERRED).
One command at a time (a lock; callers rarely contend). A command that takes longer than the timeout
(a Redis or network that went silent) closes the connection, which fails the command with a
ConnectionError saying no reply came in time; any connection error drops the connection, and the
next command takes a fresh one from the pool, as it does when Redis closed the connection while it
was idle (its `timeout`, a restart, a managed service's idle limit) rather than fail on it. A reply
saying the server is no longer the master (READONLY, also inside a script's error; UNBLOCKED, a
blocked read ended by the switch; MASTERDOWN) is a ConnectionError too, as redis-py's Sentinel
connection makes it: the connection is dropped and the next one is the new master's, and callers
retry it as they retry any lost connection. So is a blocked command Redis ended otherwise
(UNBLOCKED: on Redis 7 its stream deleted or renamed), which is to be sent again. On a Redis Cluster
(where a queue's keys live on one node that can move) every command goes through the client as
before.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis._parsers.hiredis import NOT_ENOUGH_DATA
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MasterDownError, NoScriptError, ReadOnlyError, RedisClusterException, ResponseError

from bootstrap.connect import redis as redis_connect

TICK = 0.5  # seconds between checks for a command that takes too long
# How long a caller with nothing else to do (`spin`) polls the socket for the reply before it waits for
# it as usual. Waiting costs a sleeping CPU's wake-up on top of the round trip: measured on these
# machines, a PING against a local Redis took 60 us waited for and 22 us polled for, at no more CPU
# (the wait's system calls cost what the polling does). A poll that misses costs SPIN of CPU, and
# where Redis shares this process's CPU it delays the very reply it waits for (review 12: 210 us per
# round trip against 135 waited for). So polling goes on only while most polls catch their reply
# (`_hits`: 3 in 4 of the last 8 or so): where they miss (a Redis across a network, or on this CPU)
# it stops, and one command in PROBE_EVERY polls to see whether that changed.
SPIN = 0.0002
PROBE_EVERY = 256
# What `call(..., later=...)` returns: the command is in the kernel's socket buffer, whole, and its
# reply is read before this connection's next command (or on `settle`). The acknowledgements of a
# worker that has nothing else to do are sent so (see acks.flush): its next job starts while Redis
# runs them. Written whole is safe from the worker's death when it is the only command whose reply is
# unread, as here: a killed process's socket is closed by the kernel, which sends what was written
# and then the end of the stream (Redis reads the command, runs it, then sees the end), unless
# unread bytes wait in the socket, when it resets the connection and Redis loses what it had not read
# yet. The only bytes that can wait unread are that command's reply, and a reply means Redis ran it.
# (With several unread, the reply to the first resets the connection under the others: a review
# lost 2 acknowledgements of 4 so, tests/integration/jobs/test_ack_slots.py.) Never over TLS, whose
# bytes are not the replies, nor with part of the command still in the event loop's buffer, nor for
# a command over DEFER_MOST bytes: one that a Redis that stops reading may leave partly in the killed
# worker's socket (more than Redis's receive buffer, 128 KB by default on Linux), which the kernel
# gives up sending after some minutes.
DEFERRED: Any = object()
DEFER_MOST = 64 * 1024


class Script:
    """A Lua script sent by its SHA1 (EVALSHA), with its text when Redis does not know it (NOSCRIPT:
    a Redis restarted or flushed its script cache)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


class NotMaster(RedisConnectionError):
    """The server is no longer the master (see `not_master`)."""


def _failure(reply: Any) -> Exception | None:
    """The exception an error reply stands for (None: not an error). A server that is no longer the
    master (NotMaster), and a blocked command that Redis ended (UNBLOCKED: on Redis 7 its key deleted
    or renamed; CLIENT UNBLOCK), which is to be sent again, are connection errors."""
    if not isinstance(reply, ResponseError):
        return None
    if not_master(reply):
        failure: Exception = NotMaster(f"Redis is no longer the master: {reply}")
    elif str(reply).startswith("UNBLOCKED"):
        failure = RedisConnectionError(f"Redis ended the blocked command: {reply}")
    else:
        return reply
    failure.__cause__ = reply
    return failure


def _all_written(conn: AbstractConnection) -> bool:
    """What was written to `conn` is in the kernel's socket buffer, none left in the event loop's."""
    transport = conn._writer.transport  # type: ignore[union-attr]
    return not transport.is_closing() and not transport.get_write_buffer_size()


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
        self._direct = not redis_connect.is_cluster(client)
        self._conn: AbstractConnection | None = None
        self._fd: int | None = None  # the connection's socket, when its bytes are the replies (no TLS)
        self._hits = 1.0  # of the last polls (about 8), the share that caught their reply (see SPIN)
        self._unpolled = 0  # commands that could have polled since the last poll
        self._lock = asyncio.Lock()
        self._deadline = 0.0  # when the command in flight has taken too long; 0: none in flight
        self._stalled = False  # the command in flight took too long: its connection was closed
        self._ticker: asyncio.TimerHandle | None = None
        self._later: Callable[[Any], None] | None = None  # who gets the unread reply (see DEFERRED)
        self._scripts: set[str] = set()  # SHA1s of the scripts this connection's server has (see `script`)

    async def call(
        self,
        *args: Any,
        block: float = 0.0,
        key: str | None = None,
        spin: bool = False,
        later: Callable[[Any], None] | None = None,
    ) -> Any:
        """Run one command; `block`: seconds it may block in Redis (XREADGROUP BLOCK); `key`: one of
        its keys, named for a cluster (see `_on_cluster`); `spin`: the caller has nothing else to do
        until the reply (see `poll`); `later`: the caller does not wait for the reply (see DEFERRED):
        once the command is in the socket whole, DEFERRED is returned and the reply, or the
        exception it stands for, goes to `later` when it is read."""
        if not self._direct:
            return await self._on_cluster(args, key)
        async with self._lock:
            conn = self._conn
            reader = conn._reader if conn is not None else None
            # None yet, or closed by Redis while idle (its `timeout`, a restart, CLIENT KILL) or broken:
            # a fresh one rather than a failed command. The reader's fields, not its methods: 5x cheaper.
            if conn is None or reader is None or reader._eof or reader._exception is not None:  # type: ignore[attr-defined]
                await self._drop()
                conn = await self._take()
            if self.timeout is not None:
                self._deadline = time.monotonic() + self.timeout + block
            self._stalled = False
            try:
                if self._later is not None:  # the reply to the command before comes first
                    await self._read_later(conn, spin=True)
                packed = hiredis.pack_command(args)
                conn._writer.write(packed)  # type: ignore[union-attr]
                if later is not None and self._fd is not None and len(packed) <= DEFER_MOST and _all_written(conn):
                    self._later = later
                    return DEFERRED
                if spin and self._fd is not None:
                    self._poll(conn, self._fd)
                reply = await _reply(conn)
            except BaseException as exc:  # the reply may still come: the connection is out of step, drop it
                await self._drop()
                if self._stalled and isinstance(exc, Exception):  # said as what it was, not "closed by server"
                    raise RedisConnectionError(
                        f"no reply from Redis within {(self.timeout or 0.0) + block:g}s; connection closed"
                    ) from exc
                raise
            finally:
                self._deadline = 0.0
        failure = _failure(reply)
        if failure is not None:
            if isinstance(failure, NotMaster):  # a replica now (a failover): the next command takes the master
                await self._drop()
            raise failure
        return reply

    @property
    def unread(self) -> bool:
        """A command's reply is not read yet (see DEFERRED)."""
        return self._later is not None

    async def settle(self, spin: bool = False) -> None:
        """Read the reply of the command not waited for, if it is not read yet: its caller's `later`
        gets it. A connection that fails meanwhile is dropped (`later` is told); nothing is raised
        but a cancellation. `spin`: polled for (see SPIN), the caller has nothing else to do."""
        if self._later is None:
            return
        async with self._lock:
            conn = self._conn
            if self._later is None or conn is None:
                return
            if self.timeout is not None:
                self._deadline = time.monotonic() + self.timeout
            try:
                await self._read_later(conn, spin)
            except Exception:  # told to `later` already
                await self._drop()
            except BaseException:
                await self._drop()
                raise
            finally:
                self._deadline = 0.0

    async def _read_later(self, conn: AbstractConnection, spin: bool) -> None:
        """Read the reply of the command not waited for and hand it to its caller's `later`; raises
        what fails the connection (the command about to be sent is then not sent). `spin`: polled
        for, the caller has nothing else to do until it comes."""
        later, self._later = self._later, None
        assert later is not None
        if spin and self._fd is not None:
            self._poll(conn, self._fd)
        try:
            reply = await _reply(conn)
        except BaseException as exc:
            later(exc if isinstance(exc, Exception) else RedisConnectionError("the connection was closed"))
            raise
        failure = _failure(reply)
        later(reply if failure is None else failure)
        if isinstance(failure, NotMaster):  # the next command is for the new master
            raise failure

    def _polled(self, hit: bool) -> None:
        """A poll caught its reply (`hit`) or gave up: into the share of hits."""
        self._hits += ((1.0 if hit else 0.0) - self._hits) / 8
        self._unpolled = 0

    @property
    def polling(self) -> bool:
        """The next command polls: most polls lately caught their reply, or it is a probe."""
        return self._hits >= 0.75 or self._unpolled >= PROBE_EVERY

    def _poll(self, conn: AbstractConnection, fd: int) -> None:
        """Poll for the reply to what was just written (see SPIN), unless polls lately miss, the
        connection is being closed (its socket may be gone), the command is not all written (the
        event loop writes the rest: no reply before that) or the event loop read the reply already
        (bytes wait in the stream: a poll would spin for nothing, and count a miss)."""
        transport = conn._writer.transport  # type: ignore[union-attr]
        if transport.is_closing() or transport.get_write_buffer_size() or conn._reader._buffer:  # type: ignore[union-attr]
            return
        if not self.polling:
            self._unpolled += 1
            return
        self._polled(poll(fd, conn._reader, _reply_reader(conn)))  # type: ignore[arg-type]

    async def _on_cluster(self, args: tuple[Any, ...], key: str | None) -> Any:
        """The command through the cluster client, sent to the master of `key`'s slot when it is
        named: for a command whose keys move with its arguments (XREADGROUP, XREAD), redis-py would
        else ask a node for them (COMMAND GETKEYS), the node it first connected to, and keep asking
        that one after it failed over and died."""
        node = None
        if key is not None:
            with contextlib.suppress(RedisClusterException):  # slot not known (yet) or without a master
                node = self.client.get_node_from_key(key)  # type: ignore[attr-defined]
        if node is None:
            return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]
        return await self.client.execute_command(*args, target_nodes=node)  # type: ignore[no-untyped-call]

    async def script(
        self,
        script: Script,
        keys: list[Any],
        args: list[Any],
        block: float = 0.0,
        spin: bool = False,
        later: Callable[[Any], None] | None = None,
    ) -> Any:
        """Run `script` (see `call`): by its SHA1 once this connection's server has it, else its text
        (which loads it). A reply not waited for can only say NOSCRIPT then after a script cache was
        flushed meanwhile: the text goes next time."""
        sha = script.sha
        if later is not None:
            told = later

            def later(reply: Any) -> None:
                if isinstance(reply, NoScriptError):
                    self._scripts.discard(sha)
                told(reply)

        if sha in self._scripts:
            try:
                return await self.call("EVALSHA", sha, len(keys), *keys, *args, block=block, spin=spin, later=later)
            except NoScriptError:
                self._scripts.discard(sha)
        result = await self.call("EVAL", script.text, len(keys), *keys, *args, block=block, spin=spin, later=later)
        self._scripts.add(sha)  # EVAL loaded it
        return result

    async def _take(self) -> AbstractConnection:
        pool = self.client.connection_pool
        conn: AbstractConnection = await pool.get_connection()  # type: ignore[no-untyped-call]
        if getattr(conn, "_writer", None) is None or getattr(conn, "_parser", None) is None:
            await pool.release(conn)  # not the connection this was written against: use the client
            self._direct = False
            raise RedisConnectionError("the Redis connection has no stream to write to")
        self._conn = conn
        self._fd = _plain_socket(conn)
        self._scripts.clear()  # a server restarted since the last connection has none
        if self.timeout is not None and self._ticker is None:
            self._ticker = asyncio.get_running_loop().call_later(TICK, self._tick)
        return conn

    def _tick(self) -> None:
        """Close the connection under a command that has taken too long: the command then fails."""
        conn = self._conn
        if conn is None:
            self._ticker = None
            return
        if self._deadline and time.monotonic() > self._deadline and conn._writer is not None:
            self._stalled = True
            conn._writer.transport.abort()
        self._ticker = asyncio.get_running_loop().call_later(TICK, self._tick)

    async def _drop(self) -> None:
        conn, self._conn, self._fd = self._conn, None, None
        later, self._later = self._later, None
        if later is not None:  # its reply will not be read: whether Redis ran the command is not known
            later(RedisConnectionError("the connection was closed before the reply was read"))
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


def _plain_socket(conn: AbstractConnection) -> int | None:
    """The file descriptor of `conn`'s socket, when what it reads is the replies themselves (TCP or a
    Unix socket, not TLS); None otherwise."""
    transport = conn._writer.transport if conn._writer is not None else None
    if transport is None or transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    return sock.fileno() if sock is not None else None


def poll(fd: int, reader: asyncio.StreamReader, replies: hiredis.Reader | None = None) -> bool:
    """Poll the socket for the reply for up to SPIN seconds, without yielding, and hand what came to
    the connection's reader, where the parser finds it as if the event loop had read it; False when
    nothing came in time. The socket is the event loop's (non-blocking); nothing else reads it
    meanwhile, since the loop does not run. An error or the end of the stream is left to the loop,
    which sees them as usual. `replies`: the parser's own reader, fed directly (see `_reply`) when the
    stream's buffer holds nothing that came before."""
    until = time.perf_counter() + SPIN
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            if time.perf_counter() > until:
                return False
            continue
        except OSError:
            return True
        if data:
            if replies is not None and not reader._buffer:  # type: ignore[attr-defined]
                replies.feed(data)
            else:
                reader.feed_data(data)
        return True


def _reply_reader(conn: AbstractConnection) -> hiredis.Reader | None:
    """The hiredis reader of `conn`'s parser (redis-py's, when hiredis parses), while connected."""
    parser = conn._parser
    replies = getattr(parser, "_reader", None)
    return replies if isinstance(replies, hiredis.Reader) and getattr(parser, "_connected", False) else None


async def _reply(conn: AbstractConnection) -> Any:
    """The next reply on `conn`: taken from its parser's reader when a poll put it there whole
    (skipping the parser's coroutine and the stream's: some microseconds per acknowledgement),
    raised or handled as redis-py's parser does; else read by the parser as usual."""
    replies = _reply_reader(conn)
    if replies is not None:
        reply = replies.gets()
        if reply is not NOT_ENOUGH_DATA:
            if isinstance(reply, RedisConnectionError):
                raise reply
            if isinstance(reply, list) and reply and isinstance(reply[0], RedisConnectionError):
                raise reply[0]
            if _PUSH is None or not isinstance(reply, _PUSH):
                return reply
            await conn._parser.handle_push_response(reply)  # type: ignore[attr-defined]  # RESP3 only
    return await conn._parser.read_response()  # type: ignore[attr-defined]


_PUSH: Any = getattr(hiredis, "PushNotification", None)  # hiredis 3.2 on
