"""The acknowledging script's record store (records.STORE_FUNCTION) writes one HSET and one ZADD
per 500 records, and drops what either limit (age, count) no longer keeps, 500 to a call. Checked
against a real Redis at the chunk boundaries: every record written, in both the index and the data,
and both limits trimmed right."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from bootstrap.jobs.records import STORE_FUNCTION
from bootstrap.local.servers import RedisServer

SCRIPT = (
    STORE_FUNCTION
    + """
return store(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV, 4, #ARGV)
"""
)


async def _store(
    uri: str, count: int, max_count: int, existing: int = 0, max_age: float = 3600
) -> tuple[int, int, int, set[str]]:
    """Write `count` new records after `existing` older ones (`old-i`, finished 10 + i seconds ago)."""
    client: Any = aioredis.from_url(uri)
    base = f"records:{uuid.uuid4().hex}"
    index, data = f"{base}:completed", f"{base}:completed:data"
    try:
        now = time.time()
        if existing:  # older records, all within max_age
            for i in range(existing):
                await client.hset(data, f"old-{i}", "{}")
                await client.zadd(index, {f"old-{i}": now - 10 - i})
        items: list[str] = []
        for i in range(count):
            items += [f"id-{i}", f'{{"n": {i}}}']
        removed = await client.eval(SCRIPT, 2, index, data, now, now - max_age, max_count, *items)
        members = {m.decode() for m in await client.zrange(index, 0, -1)}
        return int(removed), await client.zcard(index), await client.hlen(data), members
    finally:
        await client.delete(index, data)
        await client.aclose()


@pytest.mark.parametrize("count", [0, 1, 2, 499, 500, 501, 999, 1000, 1001, 2500])
def test_every_record_is_written_at_the_chunk_boundaries(redis_server: RedisServer, count: int) -> None:
    removed, indexed, stored, members = asyncio.run(_store(redis_server.uri, count, 100_000))
    assert removed == 0
    assert indexed == stored == count
    assert members == {f"id-{i}" for i in range(count)}


@pytest.mark.parametrize("count", [499, 500, 501])
def test_count_limit_keeps_the_newest(redis_server: RedisServer, count: int) -> None:
    removed, indexed, stored, members = asyncio.run(_store(redis_server.uri, count, 500, existing=3))
    assert indexed == stored == 500
    assert removed == count + 3 - 500
    new = {f"id-{i}" for i in range(count)}
    if count <= 500:
        assert new <= members  # the new ones all kept (newest)
    else:
        assert members <= new  # the older ones went first


@pytest.mark.parametrize("existing", [1, 499, 500, 501, 1200])
def test_age_limit_drops_every_record_older_than_it(redis_server: RedisServer, existing: int) -> None:
    # max_age 5 s: every existing record (10 s old and more) goes, in chunks of 500; the new ones stay
    removed, indexed, stored, members = asyncio.run(_store(redis_server.uri, 3, 100_000, existing, max_age=5))
    assert removed == existing
    assert indexed == stored == 3 and members == {"id-0", "id-1", "id-2"}


def test_age_limit_keeps_what_is_younger(redis_server: RedisServer) -> None:
    # existing records are 10..19 s old: max_age 14.5 s keeps old-0..old-4, drops old-5..old-9
    removed, indexed, stored, members = asyncio.run(_store(redis_server.uri, 2, 100_000, 10, max_age=14.5))
    assert removed == 5
    assert indexed == stored == 7
    assert members == {"id-0", "id-1", *(f"old-{i}" for i in range(5))}


@pytest.mark.parametrize(("max_age", "max_count", "removed"), [(14.5, 100, 5), (14.5, 3, 9), (1000, 3, 9)])
def test_the_stricter_limit_wins(redis_server: RedisServer, max_age: float, max_count: int, removed: int) -> None:
    # 10 existing (10..19 s old) + 2 new: whichever limit keeps fewer decides, oldest dropped first
    dropped, indexed, stored, members = asyncio.run(_store(redis_server.uri, 2, max_count, 10, max_age=max_age))
    assert dropped == removed
    assert indexed == stored == 12 - removed
    assert {"id-0", "id-1"} <= members


def test_a_count_limit_of_zero_keeps_nothing(redis_server: RedisServer) -> None:
    removed, indexed, stored, _ = asyncio.run(_store(redis_server.uri, 3, 0, existing=2))
    assert (removed, indexed, stored) == (5, 0, 0)


def test_record_values_match_their_ids(redis_server: RedisServer) -> None:
    async def run() -> None:
        client: Any = aioredis.from_url(redis_server.uri)
        base = f"records:{uuid.uuid4().hex}"
        index, data = f"{base}:completed", f"{base}:completed:data"
        try:
            items: list[str] = []
            for i in range(1003):
                items += [f"id-{i}", f"rec-{i}"]
            now = time.time()
            await client.eval(SCRIPT, 2, index, data, now, now - 60, 10_000, *items)
            got = await client.hgetall(data)
            assert {k.decode(): v.decode() for k, v in got.items()} == {f"id-{i}": f"rec-{i}" for i in range(1003)}
            scores = {s for _, s in await client.zrange(index, 0, -1, withscores=True)}
            assert len(scores) == 1 and abs(scores.pop() - now) < 1e-3
        finally:
            await client.delete(index, data)
            await client.aclose()

    asyncio.run(run())
