"""Benchmark the dashboard's failed-jobs page: how long one page of 50 takes out of 10,000 records.

Run from the repository root:

    .venv/bin/python benchmarks/dashboard.py [--records 10000] [--requests 60]

It starts its own Redis server (`bootstrap.local.servers`) in a temporary folder and stops it at the
end, also on error; no MongoDB is needed (the failed-jobs page reads Redis only). It fills the
`delta-sync` queue's failed store with --records records shaped as workers write them, then asks
the dashboard (the real aiohttp app, over HTTP on this machine, through aiohttp's test server) for
the first, a middle and the last page, --requests times each.

Columns:

* page -- which page (newest first, 50 records per page);
* p50 / p95 / max ms -- the time from sending the GET to having read the whole HTML response:
  the token check, the two Redis round trips (ZCARD + ZREVRANGE, then HMGET of 50 records), JSON
  decoding, masking, and rendering the Jinja2 template;
* bytes -- the size of the page.

Then the same for the data alone (`dashboard.data.failed_page`, no HTTP, no template). All times are
wall-clock on this machine, shared with Redis and anything else running. The target: a page in
under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis
from aiohttp.test_utils import TestClient, TestServer
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bootstrap.dashboard import data  # noqa: E402
from bootstrap.dashboard.app import Sources, make_app  # noqa: E402
from bootstrap.dashboard.auth import Guard  # noqa: E402
from bootstrap.layout.keys import QueueKeys  # noqa: E402
from bootstrap.local.servers import RedisServer  # noqa: E402
from bootstrap.spec.load import load_spec  # noqa: E402

QUEUE = "delta-sync"


def fill(client: redis.Redis, keys: QueueKeys, count: int) -> None:
    now = time.time()
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        job_id = f"job-{i:06d}"
        record = {
            "id": job_id, "task": "run-delta-sync", "args": [], "kwargs": {"mailboxId": f"mb-{i}", "full": False},
            "labels": {"attempt": "3"}, "attempt": 3, "attempts": 3, "max_attempts": 3, "duration": 0.4,
            "finished_at": now - (count - i), "error": f"GraphError: 503 Service Unavailable for mailbox mb-{i}",
            "traceback": "Traceback (most recent call last):\n" + "  File \"handlers.py\", line 12, in sync\n" * 8,
        }  # fmt: skip
        pipe.zadd(keys.records("failed"), {job_id: record["finished_at"]})
        pipe.hset(keys.record_data("failed"), job_id, json.dumps(record))
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def row(label: str, samples: list[float], extra: str = "") -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"{label:<14} {statistics.median(ms):>8.1f} {p95:>8.1f} {ms[-1]:>8.1f}  {extra}"


async def measure(sources: Sources, keys: QueueKeys, records: int, requests: int) -> None:
    pages = data.paginate(records, 1).pages
    async with TestClient(TestServer(make_app(sources, Guard("benchmark-token")))) as client:
        headers = {"Authorization": "Bearer benchmark-token"}
        print(f"{'page':<14} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  bytes")
        for number in (1, pages // 2, pages):
            await client.get(f"/queues/{QUEUE}/failed?page={number}", headers=headers)  # warm up
            samples = []
            size = 0
            for _ in range(requests):
                start = time.perf_counter()
                response = await client.get(f"/queues/{QUEUE}/failed?page={number}", headers=headers)
                body = await response.read()
                samples.append(time.perf_counter() - start)
                assert response.status == 200, response.status
                size = len(body)
            print(row(f"{number} of {pages}", samples, str(size)))
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        page = data.failed_page(sources.redis, keys, pages // 2)
        samples.append(time.perf_counter() - start)
    assert len(page.jobs) == data.PER_PAGE
    print(row("data only", samples, f"{len(page.jobs)} records"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        try:
            prefix = f"bench-{uuid.uuid4().hex[:8]}"
            env = {"REDIS_URL": server.uri, "MONGODB_URI": "mongodb://127.0.0.1:1/bench"}
            spec = load_spec(ROOT / "config", env=env)
            spec = replace(spec, redis=replace(spec.redis, key_prefix=prefix))  # keys of its own
            client = redis.Redis.from_url(server.uri)
            keys = QueueKeys(prefix, QUEUE)
            started = time.perf_counter()
            fill(client, keys, args.records)
            print(f"filled {args.records} failed records in {time.perf_counter() - started:.1f}s "
                  f"(Redis {client.info()['redis_version']})")  # fmt: skip
            mongo: MongoClient[dict[str, Any]] = MongoClient(spec.mongodb.uri, connect=False)  # never used here
            sources = Sources(lambda: spec, mongo["bench"], client)
            asyncio.run(measure(sources, keys, args.records, args.requests))
            client.close()
            mongo.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
