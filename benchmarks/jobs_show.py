"""What `bootstrap jobs show` costs for a job that is not finished: the bounded search of the delayed
set and the priority levels' streams (`jobs.lookup`), on one local Redis. Each level's stream and the
delayed set hold N jobs (messages as workers write them); the searches are for the last job of the
low level (found after searching everything else) and for an id nowhere (everything searched, the
worst case), each with the default limit. A finished job is one hash lookup and is not measured.

Run: .venv/bin/python benchmarks/jobs_show.py [N]   (default N = 100000, the default --scan; 3 runs)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bootstrap.jobs import lookup  # noqa: E402
from bootstrap.layout.keys import GROUP, PRIORITIES, QueueKeys  # noqa: E402
from bootstrap.local.servers import RedisServer  # noqa: E402


def message(job_id: str) -> bytes:
    labels = {"retry": '{"attempts": 3}', "timeout": 600.0}
    return json.dumps(
        {"task_id": job_id, "task_name": "run-delta-sync", "labels": labels, "args": [], "kwargs": {"mailboxId": "m"}},
        separators=(",", ":"),
    ).encode()


def fill(client: redis.Redis, keys: QueueKeys, n: int) -> None:
    for level in PRIORITIES:
        stream = keys.stream_at(level)
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        for start in range(0, n, 1000):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(n, start + 1000)):
                pipe.xadd(stream, {"data": message(f"{level}-{i}")})
            pipe.execute()
    for start in range(0, n, 1000):
        due = time.time() + 3600
        client.zadd(keys.delayed, {message(f"delayed-{i}"): due for i in range(start, min(n, start + 1000))})


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else lookup.LIMIT
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", appendonly=False)
        server.start()
        try:
            client = redis.Redis.from_url(server.uri)
            keys = QueueKeys("bench", "show")
            fill(client, keys, n)
            print(f"{n} jobs on each of the 3 levels and {n} delayed; limit {lookup.LIMIT} per place")
            print(f"{'search':<44}{'seconds (median of 3)':>22}   runs")
            searches = (("the last low-priority job (found)", f"low-{n - 1}"), ("an id nowhere (all searched)", "x"))
            for what, job_id in searches:
                runs = []
                for _ in range(3):
                    started = time.perf_counter()
                    found = lookup.find_job(client, keys, job_id)
                    runs.append(time.perf_counter() - started)
                    assert (found.found is not None) == (job_id != "x")
                print(f"{what:<44}{sorted(runs)[1]:>22.2f}   {', '.join(f'{r:.2f}' for r in runs)}")
            client.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
