"""Review of rev14 (a flush's reply read before the next command while no job runs, hotpath.DEFERRED),
on real Redis servers and a SIGKILLed worker process.

The worker process here is the fast receiver's own slot logic (`receiver._Intake`: `take`, `drain`,
`settle`) over a real StreamBroker; only the handler is a stand-in (it sleeps, as a job that waits on
I/O, and queues its completed record as JobsMiddleware does), so that a test controls what it does."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis as sync_redis

from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.records import COMPLETED
from bootstrap.layout.keys import GROUP
from bootstrap.local.servers import RedisServer
from tests.support.runtimes import in_process_runtime

ROOT = Path(__file__).resolve().parents[3]

# A worker at concurrency 1 (the receiver's `_Intake` and `work` loop, the handler a stand-in): prints
# "ran <entry>" once a job ran to its end, before its acknowledgement is queued.
_WORKER = """
import asyncio, sys
from bootstrap.jobs import hotpath
from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.receiver import _Intake
from bootstrap.jobs.records import COMPLETED
from tests.support.runtimes import in_process_runtime

async def main() -> None:
    broker = StreamBroker(in_process_runtime(sys.argv[1], sys.argv[2]))
    broker._serves = lambda name: True  # the stand-in handler serves every task
    if sys.argv[4] == "waited":  # as before rev14: every reply waited for
        hotpath._all_written = lambda conn: False
    await broker.startup()
    intake = _Intake(broker, 1)
    finish = asyncio.Event()

    async def work() -> None:
        while (message := await intake.take()) is not None:
            broker.started(message)
            intake.kick()
            await asyncio.sleep(float(sys.argv[3]))  # the job
            print("ran", message.entry_id, flush=True)
            broker.record(COMPLETED, {"id": message.job.task_id, "task": "t"}, 3600, 100)
            broker.finished(message)

    await asyncio.gather(intake.pump(finish), work(), work())

asyncio.run(main())
"""


class Worker:
    """The worker above in a process of its own; `ran`: the entries it said ran to their end."""

    def __init__(self, uri: str, prefix: str, job_seconds: float, replies: str = "deferred") -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER, uri, prefix, str(job_seconds), replies],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        )  # fmt: skip
        self.ran: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("ran "):
                self.ran.append(line.split()[1])

    def wait_ran(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.ran) < count:
            assert time.monotonic() < deadline, f"the worker ran {len(self.ran)} job(s), not {count}"
            assert self.process.poll() is None, "the worker exited"
            time.sleep(0.01)

    def kill(self) -> list[str]:
        """SIGKILL; the entries it said ran."""
        self.process.kill()
        self.process.wait(10)
        self._reader.join(5)
        return list(self.ran)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def enqueue(client: sync_redis.Redis, stream: str, count: int) -> None:
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        job = {"task_id": f"job-{n}", "task_name": "t", "labels": {}, "args": [], "kwargs": {}}
        pipe.xadd(stream, {"data": json.dumps(job)})
    pipe.execute()


def ran_again(client: sync_redis.Redis, stream: str, ran: list[str]) -> list[str]:
    """Of the entries that ran, those still pending: delivered again after the visibility timeout."""
    pending = {e["message_id"].decode() for e in client.xpending_range(stream, GROUP, "-", "+", 10_000)}
    return [entry for entry in ran if entry in pending]


def run_through_a_full_redis(redis: RedisServer, prefix: str, replies: str) -> list[str]:
    """A worker at concurrency 1 runs jobs; Redis becomes full (maxmemory) for a second, then the
    worker is killed: the jobs that ran and will run again."""
    stream = StreamBroker(in_process_runtime(redis.uri, prefix)).keys.stream
    client = sync_redis.Redis.from_url(redis.uri)
    enqueue(client, stream, 500)
    worker = Worker(redis.uri, prefix, 0.01, replies)
    try:
        worker.wait_ran(5)
        client.config_set("maxmemory", 1)  # full: writes refused from now on, reads served
        time.sleep(1.0)
        ran = worker.kill()
        client.config_set("maxmemory", 0)
        assert len(ran) < 500, "the worker ran every job: nothing was tested"
        return ran_again(client, stream, ran)
    finally:
        worker.stop()
        client.close()


def test_before_rev14_a_full_redis_kept_the_crash_bound(own_redis: RedisServer, key_prefix: str) -> None:
    """The control for finding 1: with every reply waited for (as before rev14) the finished job keeps
    its slot while Redis refuses its acknowledgement, so the worker stalls and a kill makes one job
    run again."""
    again = run_through_a_full_redis(own_redis, key_prefix, "waited")
    assert len(again) <= 1, again


def test_a_full_redis_stops_the_worker_one_job_later(own_redis: RedisServer, key_prefix: str) -> None:
    """Redis at maxmemory (noeviction, the declared policy) refuses the acknowledging script, which
    writes the job's record first (OOM), but still serves reads (XREADGROUP is no denyoom command).
    Finding 1 of the review: the slot of a flush not waited for came back when it was written, and the
    OOM in its reply only put the batch back, so the worker ran on for as long as Redis was full, none
    of its jobs acknowledged (about 90 in this second), all of them run again by a kill. Now the
    refused batch holds its slots again and flushes are waited for until one lands: the worker stops
    one job later (the job that ran while Redis ran, and refused, the flush), and a kill then makes
    those two run again: the crash bound plus the refused batch, as README says."""
    again = run_through_a_full_redis(own_redis, key_prefix, "deferred")
    assert len(again) <= 2, f"{len(again)} jobs that ran are not acknowledged (concurrency 1): {again[:3]} ..."


def test_a_flushed_script_cache_keeps_no_finished_job_unacknowledged(own_redis: RedisServer, key_prefix: str) -> None:
    """Concurrency 1, Redis healthy, its script cache flushed (SCRIPT FLUSH, a restart without
    persistence of scripts, a failover to a replica that never saw the script). Finding 2 of the
    review: job 1's acknowledgement, not waited for, was refused (NOSCRIPT) after its slot came back;
    job 2's flush, decided as EVALSHA before job 1's reply was read and made without job 1's batch,
    was refused too after its slot came back: with job 3 running, a crash made 3 jobs run again. Now
    a flush reads the reply before it is made: job 1's batch goes with job 2's, as the script's text,
    waited for."""
    broker = StreamBroker(in_process_runtime(own_redis.uri, key_prefix))
    watcher = sync_redis.Redis.from_url(own_redis.uri)
    stream = broker.keys.stream

    async def test() -> None:
        await broker.startup()
        await broker._background.stop()  # no flush every 20 ms: the steps below are the worker's alone
        acks, released = broker.acks, []
        acks.on_landed = released.append
        acks.on_refused = lambda slots: released.append(-slots)  # held again (the fix)
        ids = [watcher.xadd(stream, {"data": f"job-{n}"}).decode() for n in (1, 2, 3)]
        watcher.xreadgroup(GROUP, "test-worker", {stream: ">"}, count=3)
        try:
            acks.ack("0-0", "")
            await acks.flush()  # connected, the script known
            watcher.script_flush()
            for n in (0, 1):  # jobs 1 and 2 run and finish, one after the other; no job runs meanwhile
                acks.finished(ids[n], "")
                acks.record(COMPLETED, {"id": f"job-{n + 1}", "task": "t"}, 3600, 100)
                await acks.drain(lambda: None, lambda: True)
            assert sum(released) == 2  # both slots back: job 3 runs now
            await acks.settle()  # what Redis said to job 2's flush
            pending = {e["message_id"].decode() for e in watcher.xpending_range(stream, GROUP, "-", "+", 10)}
            unacknowledged = [entry for entry in ids[:2] if entry in pending]
            assert not unacknowledged, f"finished, slots given back, not acknowledged: {unacknowledged}"
        finally:
            await broker.shutdown()
            watcher.close()

    asyncio.run(test())
