"""CPU per Redis round trip on one local Redis, the way a worker makes its per-job round trips:
through redis-py's async client (pool checkout, retry wrapper, a timer per read, response
callbacks), through `bootstrap.jobs.hotpath.HotConnection` (redis-py's connection used directly),
and raw asyncio streams (the floor). Alternated, best of 3 rounds each; a command is a PING and an
EVALSHA of a short script, as an acknowledgement is.

Run: .venv/bin/python benchmarks/roundtrip.py [N]   (default N = 5000 round trips per round)
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from bootstrap.jobs.hotpath import HotConnection, Script  # noqa: E402
from bootstrap.local.servers import RedisServer  # noqa: E402

SCRIPT = Script("return #KEYS + #ARGV")


async def cpu_per_call(call: Callable[[], Awaitable[object]], n: int) -> float:
    """Microseconds of this process's CPU per awaited call."""
    started = time.process_time()
    for _ in range(n):
        await call()
    return (time.process_time() - started) / n * 1e6


async def measure(uri: str, host: str, port: int, n: int) -> dict[str, list[float]]:
    client = aioredis.Redis.from_url(uri, socket_timeout=5)
    await client.script_load(SCRIPT.text)
    hot = HotConnection(aioredis.Redis.from_url(uri, socket_timeout=5), timeout=5)
    reader, writer = await asyncio.open_connection(host, port)

    async def raw_ping() -> None:
        writer.write(b"*1\r\n$4\r\nPING\r\n")
        await reader.readuntil(b"\r\n")

    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "redis-py client, PING": lambda: client.execute_command("PING"),
        "HotConnection, PING": lambda: hot.call("PING"),
        "raw asyncio, PING": raw_ping,
        "redis-py client, EVALSHA": lambda: client.evalsha(SCRIPT.sha, 1, "k", "a", "b"),
        "HotConnection, EVALSHA": lambda: hot.script(SCRIPT, ["k"], ["a", "b"]),
    }
    results: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(3):
        for name, call in calls.items() if round_ % 2 == 0 else reversed(calls.items()):
            results[name].append(await cpu_per_call(call, n))
    writer.close()
    await hot.close()
    await hot.client.aclose()
    await client.aclose()
    return results


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    server = RedisServer(Path(tempfile.mkdtemp(prefix="bench-roundtrip-")) / "redis", appendonly=False)
    server.start()
    try:
        results = asyncio.run(measure(server.uri, "127.0.0.1", server.port, n))
    finally:
        server.stop()
    print(f"CPU per round trip, best of 3 rounds of {n} (this process only; Redis's own CPU not counted)")
    for name, values in results.items():
        print(f"  {name:<28} {min(values):7.1f} us")
    best = {name: min(values) for name, values in results.items()}
    ping = best["redis-py client, PING"] / best["HotConnection, PING"]
    evalsha = best["redis-py client, EVALSHA"] / best["HotConnection, EVALSHA"]
    print(f"redis-py client / HotConnection: PING {ping:.2f}x, EVALSHA {evalsha:.2f}x")


if __name__ == "__main__":
    main()
