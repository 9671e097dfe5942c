"""The worker's read step with priority levels, on one local Redis, alternated, the entries
acknowledged and deleted per batch as the worker does: a plain XREADGROUP on one stream (before
priorities), one XREADGROUP over the three levels' streams (what a worker does while at most one
level is busy) and the weighted Lua read (while several are). It isolates what the levels cost per
job read; `jobs.py` measures whole workers.

Run: .venv/bin/python benchmarks/read_path.py [N]   (default N = 50000 entries per round, 3 rounds)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from bootstrap.jobs.broker import _READ  # noqa: E402
from bootstrap.layout.keys import GROUP, QueueKeys  # noqa: E402
from bootstrap.local.servers import RedisServer  # noqa: E402

BATCH = 100  # entries per read (a worker's prefetch at most)
ONE, EVERY, LUA = "XREADGROUP, one stream", "XREADGROUP over the 3 levels", "weighted Lua read"
DATA = b'{"task_id":"x","task_name":"noop","labels":{},"args":[],"kwargs":{}}'


async def fill(client: aioredis.Redis, keys: QueueKeys, n: int) -> None:
    for stream in keys.streams:
        await client.delete(stream)
        await client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    for start in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(1000, n - start)):
            pipe.xadd(keys.stream, {"data": DATA})
        await pipe.execute()


async def drain(client: aioredis.Redis, keys: QueueKeys, n: int, how: str) -> float:
    """Jobs/s reading (and acknowledging) all `n` entries of the normal level."""
    read = client.register_script(_READ.text)
    streams = [keys.stream_at(level) for level in ("high", "normal", "low")]  # normal's turn: high first
    done, started = 0, time.perf_counter()
    while done < n:
        ids: list[Any]
        if how == LUA:
            found: Any = await read(keys=streams, args=[GROUP, "c", BATCH])
            ids = [entry_id for _, batch in found for entry_id, _ in batch]
        else:
            read_from = {keys.stream: ">"} if how == ONE else dict.fromkeys(keys.streams, ">")
            fetched: Any = await client.xreadgroup(GROUP, "c", read_from, count=BATCH)
            ids = [entry_id for _, batch in fetched for entry_id, _ in batch]
        pipe = client.pipeline(transaction=False)
        pipe.xack(keys.stream, GROUP, *ids)
        pipe.xdel(keys.stream, *ids)
        await pipe.execute()
        done += len(ids)
    return n / (time.perf_counter() - started)


async def run(uri: str, n: int) -> None:
    client = aioredis.Redis.from_url(uri)
    keys = QueueKeys("bench", "read")
    results: dict[str, list[float]] = {ONE: [], EVERY: [], LUA: []}
    for _ in range(3):
        for how in results:
            await fill(client, keys, n)
            results[how].append(await drain(client, keys, n, how))
    await client.aclose()
    print(f"{'read step':<34}{'jobs/s (median of 3)':>22}   runs")
    for name, rates in results.items():
        print(f"{name:<34}{sorted(rates)[1]:>22.0f}   {', '.join(f'{r:.0f}' for r in rates)}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=False)
        server.start()
        try:
            asyncio.run(run(server.uri, n))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
