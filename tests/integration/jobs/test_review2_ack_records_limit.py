"""Review: the acknowledging script (jobs.acks._ACK) hands each record batch to the record store as
`{unpack(ARGV, at + 4, at + 3 + 2 * n)}`, one unpack of every id and record of the batch. Lua's
unpack has a stack limit (8000 values in Redis's Lua): a flush carrying more than about 4000 records
of one outcome (3999 and more here) fails as a whole, and is retried as a whole (with more records each time), so it
never lands. Records come with rejected entries too (broker.reject: no slot held), so a burst of
unreadable entries can get there."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from bootstrap.jobs.acks import _ACK, _STREAMS
from bootstrap.local.servers import RedisServer


async def _flush_records(uri: str, count: int) -> int:
    """Run the acknowledging script with `count` failed records and nothing else; the records stored."""
    client = aioredis.from_url(uri)
    base = f"review2:{uuid.uuid4().hex}"
    streams = [f"{base}:jobs{i}" for i in range(_STREAMS)]
    keys = [
        f"{base}:ids",
        *streams,
        f"{base}:completed",
        f"{base}:completed:data",
        f"{base}:failed",
        f"{base}:failed:data",
    ]
    now = time.time()
    args: list[Any] = ["group", now, 0, *([0] * _STREAMS), 2, now - 3600, 1_000_000, count]
    for i in range(count):
        args += [f"id-{i}", "{}"]
    try:
        await client.eval(_ACK.text, len(keys), *keys, *args)
        return int(await client.hlen(f"{base}:failed:data"))
    finally:
        await client.delete(*keys)
        await client.aclose()


@pytest.mark.parametrize("count", [1, 1000, 2000, 3998])
def test_a_flush_of_up_to_3998_records_lands(redis_server: RedisServer, count: int) -> None:
    assert asyncio.run(_flush_records(redis_server.uri, count)) == count


@pytest.mark.xfail(
    strict=True,
    reason="acks._ACK unpacks a whole record batch at once ({unpack(ARGV, at + 4, at + 3 + 2 * n)}): "
    "'too many results to unpack' from 3999 records (7998 values) on, and the failed flush is retried whole",
)
@pytest.mark.parametrize("count", [3999, 5000])
def test_a_flush_of_3999_records_or_more_lands(redis_server: RedisServer, count: int) -> None:
    assert asyncio.run(_flush_records(redis_server.uri, count)) == count
