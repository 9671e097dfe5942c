"""Polling for a reply (`hotpath.SPIN`: a worker with nothing else to do until its acknowledgement
lands polls the socket rather than sleep through a CPU's wake-up), on a real Redis, on the event
loops a worker runs (uvloop under `taskiq worker`, asyncio's own elsewhere): what is polled is the
reply, whole, however many reads it takes; a reply later than the polling budget is waited for as
before and polling pauses; a connection closed under the poll fails the command and the next one
takes a fresh connection; a TLS connection, whose bytes are not the replies, is never polled."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from bootstrap.jobs import hotpath
from bootstrap.jobs.hotpath import HotConnection
from bootstrap.local.servers import RedisServer
from tests.support.event_loops import LOOPS, hot_connection, run


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_polled_replies_are_the_replies_whatever_their_size(
    redis_server: RedisServer, key_prefix: str, polls: list[bool], loop: str
) -> None:
    async def test() -> None:
        client = aioredis.Redis.from_url(redis_server.uri)
        hot = HotConnection(client, timeout=5.0)
        big = bytes(range(256)) * 1200  # 300 KB: more than one read of the socket
        try:
            assert await hot.call("SET", f"{key_prefix}big", big, spin=True) == b"OK"
            assert await hot.call("GET", f"{key_prefix}big", spin=True) == big
            polls.clear()
            for i in range(300):
                hot._hits = 1.0  # polls that missed (a loaded machine) stop polling for a while
                await hot.call("RPUSH", f"{key_prefix}list", f"item-{i}", spin=True)
            assert await hot.call("LRANGE", f"{key_prefix}list", 0, -1, spin=True) == [
                f"item-{i}".encode() for i in range(300)
            ]
            script = hotpath.Script(f"-- {key_prefix}\nreturn {{KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}}")  # new
            assert await hot.script(script, [f"{key_prefix}k"], ["v", 41], spin=True) == [
                f"{key_prefix}k".encode(),
                b"v",
                42,
            ]
            assert await hot.call("GET", f"{key_prefix}big") == big  # and waited for, after polls
        finally:
            await hot.close()
            await client.aclose()
        assert len(polls) >= 300 and polls.count(True) >= 1, "no reply came while polling from a local Redis"

    run(loop, test)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_replies_later_than_the_budget_are_waited_for_and_stop_polling_but_for_probes(
    redis_server: RedisServer, key_prefix: str, polls: list[bool], loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hotpath, "PROBE_EVERY", 5)

    async def test() -> None:
        client = aioredis.Redis.from_url(redis_server.uri)
        hot = HotConnection(client, timeout=5.0)
        try:
            for _ in range(3):  # a Redis whose replies always come later than SPIN (here: blocked 20 ms)
                started = time.monotonic()
                assert await hot.call("BLPOP", f"{key_prefix}empty", 0.02, block=0.02, spin=True) is None
                assert time.monotonic() - started >= 0.015
            assert polls == [False] * 3 and not hot.polling  # most polls miss: no more polling
            for _ in range(5):
                assert await hot.call("PING", spin=True) == b"PONG"
            assert len(polls) == 3, "polled while polls miss"
            assert await hot.call("PING", spin=True) == b"PONG"  # the probe
            assert len(polls) == 4
        finally:
            await hot.close()
            await client.aclose()

    run(loop, test)


def test_polling_goes_on_while_most_polls_catch_their_reply() -> None:
    """The share of hits that decides (`_hits`: 3 in 4 of the last 8 or so): a miss now and then
    keeps it on (a loaded machine); polls that miss half the time or more (a Redis across a network,
    or sharing this CPU: review 12) stop it; one probe that hits does not bring it back, seven do."""
    hot = HotConnection(aioredis.Redis(), timeout=None)  # never connected
    for hit in [True] * 20 + [False] + [True] * 3 + [False]:
        hot._polled(hit)
    assert hot.polling
    for hit in [False, True, False, False, True, False, False, False]:  # a shared CPU: most polls miss
        hot._polled(hit)
    assert not hot.polling
    hot._polled(True)  # one probe that caught its reply
    assert not hot.polling
    for _ in range(5):
        hot._polled(True)
    assert not hot.polling
    hot._polled(True)  # the seventh hit in a row
    assert hot.polling


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_connection_killed_under_the_poll_fails_the_command_and_the_next_reconnects(
    redis_server: RedisServer, key_prefix: str, loop: str
) -> None:
    async def test() -> None:
        async with (
            hot_connection(redis_server.uri) as hot,
            aioredis.Redis.from_url(redis_server.uri) as killer,
        ):
            mine = await hot.call("CLIENT", "ID", spin=True)
            # A script that kills its own connection cannot be written; a blocked command killed
            # from elsewhere while this one polls, then waits, is the nearest: the poll gives up,
            # and the end of the stream reaches the command through the event loop.
            call = asyncio.create_task(hot.call("BLPOP", f"{key_prefix}never", 5, block=5, spin=True))
            await asyncio.sleep(0.3)
            await killer.execute_command("CLIENT", "KILL", "ID", mine)
            with pytest.raises(RedisConnectionError):
                await asyncio.wait_for(call, 10)
            assert await hot.call("CLIENT", "ID", spin=True) != mine  # a fresh connection
            assert await hot.call("PING", spin=True) == b"PONG"

    run(loop, test)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_tls_connection_is_never_polled(tmp_path: Path, loop: str) -> None:
    """Its socket carries the encrypted bytes: polled, they would reach the parser as replies."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))

    async def test() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0, ssl=served)
        port = server.sockets[0].getsockname()[1]
        _, tls = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname="localhost")
        _, plain = await asyncio.open_connection("127.0.0.1", port)
        try:
            assert hotpath._plain_socket(_Conn(plain)) is not None
            assert hotpath._plain_socket(_Conn(tls)) is None
        finally:
            tls.close()
            plain.close()
            server.close()

    run(loop, test)


class _Conn:
    """What `_plain_socket` reads of a redis-py connection: its stream writer."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_reply_the_event_loop_read_first_is_not_polled_for_and_polling_stays_on(
    redis_server: RedisServer, key_prefix: str, polls: list[bool], loop: str
) -> None:
    """A worker that yielded between its acknowledgement and the next one finds the reply already read
    by the event loop: polling the socket then would spin its whole budget for nothing and count as
    a miss, and a few such misses turned polling off for the worker's life (measured: polling on for
    1 acknowledgement in 10 at concurrency 1)."""

    async def test() -> None:
        script = _incr(key_prefix)
        replies: list[object] = []
        async with hot_connection(redis_server.uri) as hot:
            for _ in range(20):
                assert await hot.script(script, [f"{key_prefix}n"], [], spin=True, later=replies.append) is (
                    hotpath.DEFERRED
                )
                await asyncio.sleep(0.005)  # the event loop reads the reply meanwhile
                started = time.perf_counter()
                await hot.settle(spin=True)
                assert time.perf_counter() - started < 0.05
            assert hot.polling
            assert polls == [], "polled for a reply that was read already"
            assert replies == list(range(1, 21))
            # And one the loop did not read is polled for, and handed over as redis-py would.
            assert await hot.script(script, [f"{key_prefix}n"], [], spin=True, later=replies.append) is (
                hotpath.DEFERRED
            )
            await hot.settle(spin=True)
            assert replies[-1] == 21 and polls

    run(loop, test)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_polled_error_replies_are_raised_as_redis_py_raises_them(
    redis_server: RedisServer, key_prefix: str, polls: list[bool], loop: str
) -> None:
    """A reply taken straight from the parser's reader after a poll (see hotpath._reply): an error is
    the exception redis-py makes of it, a script's error too, and the connection goes on."""

    async def test() -> None:
        failing = _incr(key_prefix)
        replies: list[object] = []
        async with hot_connection(redis_server.uri) as hot:
            assert await hot.call("SET", f"{key_prefix}s", "text", spin=True) == b"OK"
            with pytest.raises(ResponseError, match="not an integer"):
                await hot.call("INCR", f"{key_prefix}s", spin=True)
            with pytest.raises(ResponseError, match="wrong number of arguments"):
                await hot.call("GET", spin=True)
            assert await hot.script(failing, [f"{key_prefix}s"], [], spin=True, later=replies.append) is (
                hotpath.DEFERRED
            )
            await hot.settle(spin=True)
            assert len(replies) == 1 and isinstance(replies[0], ResponseError)
            assert "not an integer" in str(replies[0])
            assert await hot.call("PING", spin=True) == b"PONG"
            assert polls.count(True) >= 4, polls

    run(loop, test)


def _incr(key_prefix: str) -> hotpath.Script:
    """A script new to the server that increments its key (or fails on a key holding text)."""
    return hotpath.Script(f"-- {key_prefix}\nreturn redis.call('INCR', KEYS[1])")
