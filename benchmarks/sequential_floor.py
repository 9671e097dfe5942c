"""How fast a worker at concurrency 1 could go under the same crash bound: the floor of the work a job
needs, against the shipped worker, alternated on one Redis.

At concurrency 1 the crash bound (README: at most `concurrency` jobs run twice after a crash) means a
job starts only once the previous job's acknowledgement is safe from the worker's death: written
whole to the socket, with no other reply unread (`hotpath.DEFERRED`). This measures a loop that does
only what that requires, in-process on uvloop, with nothing of the worker's machinery: read a batch
of 10 (XREADGROUP), then for each job parse its message, write its two log lines to a file (flushed
before the acknowledgement, as the worker does), encode its record, read the previous
acknowledgement's reply (polled for, `hotpath.SPIN`) and send the shipped acknowledging script
(`jobs.acks`: record with retention, XACK, XDEL) over a raw connection. Same queue, same enqueued
messages, same script and keys as `benchmarks/jobs.py`'s bench queue; measured the same way (first
delivery to last acknowledgement; CPU of the process over that span).

What the loop leaves out is what the worker adds per job: priorities, pause, rate limits, takeover
of stuck jobs, renewal of the ones held, timeouts, retries, hooks, the read overlapped with the jobs.
The difference is the headroom a leaner per-job path could win without loosening the bound.

Run: .venv/bin/python benchmarks/sequential_floor.py [N] [--rounds R] [--compare-bullmq]
(default N = 10000, R = 3; `--compare-bullmq`: BullMQ 5 at concurrency 1 too, as in `jobs.py`)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import hiredis  # noqa: E402
import orjson  # noqa: E402
import redis  # noqa: E402
import uvloop  # noqa: E402
from jobs import BULLMQ, add_bench_queue, enqueue_connected, run_bootstrap, run_bullmq  # noqa: E402

from bootstrap.jobs.acks import _ACK  # noqa: E402
from bootstrap.jobs.contract import Runtime  # noqa: E402
from bootstrap.jobs.hotpath import poll  # noqa: E402
from bootstrap.jobs.records import COMPLETED, Records, encode  # noqa: E402
from bootstrap.layout.keys import GROUP, QueueKeys  # noqa: E402
from bootstrap.local.servers import MongoServer, RedisServer  # noqa: E402
from tests.support.jobs_project import make_project  # noqa: E402

BATCH = 10  # jobs read at once: the worker's prefetch at concurrency 1


async def sequential(host: str, port: int, keys: QueueKeys, n: int, log_path: Path) -> tuple[float, float]:
    """Process `n` jobs one at a time; (jobs/s, us of CPU per job) from the first delivery."""
    reader, writer = await asyncio.open_connection(host, port)
    replies = hiredis.Reader()

    fd = writer.transport.get_extra_info("socket").fileno()

    unread = False  # an acknowledgement's reply is not read yet (see `call`)

    async def reply() -> Any:
        while (answer := replies.gets()) is False:
            replies.feed(await reader.read(65536))
        if isinstance(answer, hiredis.ReplyError):
            raise RuntimeError(answer)
        return answer

    async def call(*args: Any, later: bool = False) -> Any:
        """`later`: the reply is read before the next command, polled for, as the worker reads its
        acknowledgement's when no job runs (hotpath.DEFERRED); else it is waited for."""
        nonlocal unread
        if unread:
            poll(fd, reader)
            await reply()
            unread = False
        writer.write(hiredis.pack_command(args))
        if later:
            unread = True
            return None
        return await reply()

    ack_keys = [keys.ids, *keys.streams, *Records.key_list_of(keys)]
    normal = keys.stream  # where the bench enqueues (the normal level)
    done, first, cpu = 0, 0.0, 0.0
    with log_path.open("w") as log:
        while done < n:
            read = await call("XREADGROUP", "GROUP", GROUP, "floor", "COUNT", BATCH, "STREAMS", keys.stream, ">")
            if not read:
                raise RuntimeError(f"the stream ran dry after {done} of {n} jobs")
            if not first:
                first, cpu = time.perf_counter(), time.process_time()
            for entry_id, fields in read[0][1]:
                job = orjson.loads(fields[fields.index(b"data") + 1])
                task, job_id = job["task_name"], job["task_id"]
                clock = time.strftime("%H:%M:%S")
                log.write(f"{clock} INFO    bootstrap.jobs.middleware: job started: queue={keys.queue} "
                          f"task={task} id={job_id} attempt=1\n")  # fmt: skip
                began = time.perf_counter()
                took = time.perf_counter() - began  # the no-op job
                log.write(f"{clock} INFO    bootstrap.jobs.middleware: job completed: queue={keys.queue} "
                          f"task={task} id={job_id} in {took:.3f}s\n")  # fmt: skip
                log.flush()  # the lines are out before the acknowledgement, as the worker's are
                record = {"id": job_id, "task": task, "args": job["args"], "kwargs": job["kwargs"],
                          "labels": job["labels"], "attempt": 1, "duration": took, "result": None}  # fmt: skip
                # each level's stream: its number of entries to acknowledge, then their ids
                counts = [part for stream in keys.streams for part in ([1, entry_id] if stream == normal else [0])]
                now = time.time()
                segment = [1, now - 3600, 200, 1, job_id, encode(record)]
                await call("EVALSHA", _ACK.sha, len(ack_keys), *ack_keys, GROUP, now, 0, *counts, *segment, later=True)
                done += 1
        await call("PING")  # the last acknowledgement's reply read
    writer.close()
    return n / (time.perf_counter() - first), (time.process_time() - cpu) * 1e6 / n


def run_floor(project: Any, redis_server: RedisServer, n: int) -> dict[str, float]:
    os.environ.update(project.env)  # the project's Redis key prefix, as run_bootstrap sets it
    runtime = Runtime.from_spec(project.spec())
    keys = project.queue_keys("bench")
    client = redis.Redis.from_url(redis_server.uri)
    client.delete(keys.records(COMPLETED))
    client.script_load(_ACK.text)
    asyncio.run(enqueue_connected(runtime, n))
    client.config_resetstat()
    rate, cpu = uvloop.run(sequential("127.0.0.1", redis_server.port, keys, n, project.root / "floor.log"))
    script = client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]
    assert client.xlen(keys.stream) == 0 and client.xpending(keys.stream, GROUP)["pending"] == 0
    assert client.zcard(keys.records(COMPLETED)) == min(n, 200)
    client.close()
    return {"process": rate, "cpu": cpu, "script": script}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare-bullmq", action="store_true")
    args = parser.parse_args()
    if args.compare_bullmq and not (BULLMQ / "node_modules" / "bullmq").is_dir():
        sys.exit(f"BullMQ is not installed: run `npm install` in {BULLMQ}")
    systems = ("worker", "floor", *(("BullMQ",) if args.compare_bullmq else ()))
    tmp = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    mongo, redis_server = MongoServer(tmp / "mongo"), RedisServer(tmp / "redis", appendonly=False)
    mongo.start()
    redis_server.start()
    results: dict[str, list[dict[str, float]]] = {name: [] for name in systems}
    try:
        gen = make_project(tmp / "c1", mongo.uri + "floor", redis_server.uri, add_bench_queue(1))
        project = next(gen)
        try:
            print(f"concurrency 1, N = {args.n} no-op jobs, logging INFO; {redis_server.uri}")
            for round_ in range(args.rounds):
                for name in systems if round_ % 2 == 0 else systems[::-1]:  # alternated
                    if name == "worker":
                        result = run_bootstrap(project, redis_server.uri, args.n, "INFO")
                    elif name == "floor":
                        result = run_floor(project, redis_server, args.n)
                    else:
                        result = run_bullmq(redis_server.uri, args.n, 1)
                    results[name].append(result)
                    script = f", acknowledging script {result['script']:.0f} us in Redis" if "script" in result else ""
                    print(f"  round {round_ + 1} {name:<7} {result['process']:6.0f} jobs/s, "
                          f"{result['cpu']:3.0f} us CPU/job{script}", flush=True)  # fmt: skip
        finally:
            gen.close()
    finally:
        mongo.stop()
        redis_server.stop()
    rate = {name: statistics.median(r["process"] for r in rs) for name, rs in results.items()}
    cpu = {name: statistics.median(r["cpu"] for r in rs) for name, rs in results.items()}
    script = statistics.median(r["script"] for r in results["floor"])
    print(f"shipped worker {rate['worker']:.0f} jobs/s, {cpu['worker']:.0f} us CPU/job; sequential floor "
          f"{rate['floor']:.0f} jobs/s, {cpu['floor']:.0f} us CPU/job, of which the acknowledging script "
          f"takes {script:.0f} us in Redis per job (medians of {args.rounds}): the floor is "
          f"{rate['floor'] / rate['worker']:.2f}x the worker's rate")  # fmt: skip
    if args.compare_bullmq:
        print(f"BullMQ 5 {rate['BullMQ']:.0f} jobs/s: the worker is {rate['worker'] / rate['BullMQ']:.2f}x BullMQ's "
              f"rate, the floor {rate['floor'] / rate['BullMQ']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
