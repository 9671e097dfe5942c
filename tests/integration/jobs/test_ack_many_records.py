"""The acknowledging script (jobs.acks._ACK) reads each record batch in place: a flush carrying
thousands of records of one outcome lands. It used to copy a batch with one unpack, which Lua in
Redis limits to about 8000 values: from 3999 records on the flush failed, and was retried whole (with
more records each time), so it never landed. Records come with rejected entries too (broker.reject:
no slot held), so a burst of unreadable entries could get there."""

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
    base = f"acks:{uuid.uuid4().hex}"
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


@pytest.mark.parametrize("count", [1, 1000, 3998, 3999, 5000, 12000])
def test_a_flush_of_thousands_of_records_lands(redis_server: RedisServer, count: int) -> None:
    assert asyncio.run(_flush_records(redis_server.uri, count)) == count
