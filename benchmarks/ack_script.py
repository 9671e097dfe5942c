"""Redis's time per call of the acknowledging script (`jobs.acks`), one finished job per call as at
concurrency 1, and of the commands it is made of, each in a script of its own: what a job's
acknowledgement costs the Redis every worker shares, and at concurrency 1 a part of every job's
critical path (see `sequential_floor.py`).

Each variant acknowledges N entries the group delivered, one call each, and reads Redis's own time
per call (INFO commandstats: the script's run, without the network). Alternated, 2 rounds, medians.

Run: .venv/bin/python benchmarks/ack_script.py [N]   (default N = 5000)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bootstrap.jobs.acks import _ACK  # noqa: E402
from bootstrap.jobs.records import encode  # noqa: E402
from bootstrap.layout.keys import GROUP  # noqa: E402
from bootstrap.local.servers import RedisServer  # noqa: E402

# KEYS: stream, record data, record index. ARGV: entry id, job id, record, now, oldest kept.
PARTS = {
    "an empty script (the call and its arguments)": "return 1",
    "XACK": "redis.call('XACK', KEYS[1], 'workers', ARGV[1]) return 1",
    "XDEL": "redis.call('XDEL', KEYS[1], ARGV[1]) return 1",
    "HSET of the record": "redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) return 1",
    "ZADD to the index": "redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2]) return 1",
    "ZCARD + ZCOUNT (retention check)": (
        "redis.call('ZCARD', KEYS[3]) redis.call('ZCOUNT', KEYS[3], '-inf', '(' .. ARGV[5]) return 1"
    ),
}
# Retention of the bench queue in benchmarks/jobs.py: 200 completed records kept, so at steady state
# every call also drops the oldest record; with a limit never reached, nothing is dropped.
SHIPPED = {"the shipped script, retention trims one record per call": 200, "the shipped script, nothing to trim": 10**9}


def record(job_id: str) -> bytes:
    return encode({"id": job_id, "task": "noop-job", "args": [], "kwargs": {"n": 1},
                   "labels": {"priority": "normal", "max_retries": 3, "timeout": 30}, "attempt": 1,
                   "duration": 1.2e-5, "result": None})  # fmt: skip


def delivered(client: redis.Redis, n: int) -> list[bytes]:
    """`n` new entries in the stream, delivered to a consumer (pending, to be acknowledged)."""
    ids = [client.xadd("s", {"data": "x"}) for _ in range(n)]
    client.xreadgroup(GROUP, "bench", {"s": ">"}, count=n)
    return ids


def per_call(client: redis.Redis) -> float:
    return float(client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"])


def part(client: redis.Redis, text: str, n: int) -> float:
    client.delete("data", "index")
    ids = delivered(client, n)
    sha = client.script_load(text)
    client.config_resetstat()
    for i, entry_id in enumerate(ids):
        now = time.time()
        client.evalsha(sha, 3, "s", "data", "index", entry_id, f"job-{i}", record(f"job-{i}"), now, now - 3600)
    client.xtrim("s", maxlen=0)
    return per_call(client)


def shipped(client: redis.Redis, max_count: int, n: int) -> float:
    keys = ["ids", "s:high", "s", "s:low", "completed", "completed:data", "failed", "failed:data"]
    client.delete(*keys[4:])
    ids = delivered(client, n)
    sha = client.script_load(_ACK.text)
    client.config_resetstat()
    for i, entry_id in enumerate(ids):
        now = time.time()
        # no freed ids; one entry on the normal level's stream; one completed record
        client.evalsha(sha, len(keys), *keys, GROUP, now, 0, 0, 1, entry_id, 0,
                       1, now - 3600, max_count, 1, f"job-{i}", record(f"job-{i}"))  # fmt: skip
    return per_call(client)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-ack-script-")) / "redis", appendonly=False)
    server.start()
    results: dict[str, list[float]] = {}
    try:
        client = redis.Redis.from_url(server.uri)
        client.xgroup_create("s", GROUP, id="0", mkstream=True)
        version = client.info("server")["redis_version"]
        for round_ in range(2):
            order = [*SHIPPED, *PARTS]
            for name in order if round_ % 2 == 0 else order[::-1]:
                value = shipped(client, SHIPPED[name], n) if name in SHIPPED else part(client, PARTS[name], n)
                results.setdefault(name, []).append(value)
        client.close()
    finally:
        server.stop()
    print(f"Redis {version}: its time per call, one finished job per call, medians of 2 alternated rounds of {n}")
    for name, values in results.items():
        print(f"  {name:<58} {statistics.median(values):6.1f} us")


if __name__ == "__main__":
    main()
