"""A finished job's slot comes back only once its acknowledgement is safe from the worker's death.
While other jobs run, that is once Redis answered: what a worker wrote is not safe until Redis has it
when more of its commands may be unread (a Redis slow to read leaves them in the socket, and a killed
worker's socket resets the connection when Redis's reply to an earlier one reaches it, dropping what
Redis had not taken yet: shown in review, with the slots of up to 4 written acknowledgements given
back early, 2 of 4 lost). While no job runs (every slot waits for the acknowledgement: at
concurrency 1, after every job) the slots come back once the acknowledgement is in the socket whole,
with no other reply unread (hotpath.DEFERRED): a worker killed then, with Redis frozen, loses
nothing. So the crash bound (at most `concurrency` jobs run twice) holds whatever Redis is doing. On
a real Redis, frozen with SIGSTOP, and a worker process killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis as sync_redis

from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.records import COMPLETED
from bootstrap.layout.keys import GROUP
from bootstrap.local.servers import RedisServer
from tests.support.runtimes import in_process_runtime

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("alone", "size"), [(False, 10_000), (True, 100_000)], ids=["jobs-run", "no-job-runs-but-over-64-KB"]
)
def test_a_slot_comes_back_only_once_its_acknowledgement_is_in_redis(
    own_redis: RedisServer, key_prefix: str, alone: bool, size: int
) -> None:
    """While other jobs run; and while none runs, for an acknowledgement over 64 KB (hotpath.DEFER_MOST:
    more than a frozen Redis's socket may take could stay in the worker's)."""
    broker = StreamBroker(in_process_runtime(own_redis.uri, key_prefix))
    watcher = sync_redis.Redis.from_url(own_redis.uri)
    data = broker.keys.record_data(COMPLETED)
    assert own_redis.pid is not None

    async def test() -> None:
        await broker.startup()
        acks, released = broker.acks, []
        acks.on_landed = released.append
        try:
            acks.ack("0-0", "")
            await acks.flush()  # connected, the script known
            os.killpg(own_redis.pid, signal.SIGSTOP)  # its group: the server runs under a watcher
            try:
                acks.finished("0-1", "")
                acks.record(COMPLETED, {"id": "job-1", "task": "t", "result": "x" * size}, 3600, 100)
                drain = asyncio.ensure_future(acks.drain(lambda: None, lambda: alone))
                await asyncio.sleep(0.5)  # written long since; Redis cannot answer
                assert not drain.done() and released == [], "a slot came back before Redis had its acknowledgement"
            finally:
                os.killpg(own_redis.pid, signal.SIGCONT)
            await asyncio.wait_for(drain, 10)
            assert released == [1]
            assert watcher.hkeys(data) == [b"job-1"]
        finally:
            await broker.shutdown()
            watcher.close()

    asyncio.run(test())


# A worker process in small: one finished job (the first entry) acknowledged while no job runs, then
# the second entry "runs" until the process is killed.
_WORKER = """
import asyncio, sys
from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.records import COMPLETED
from bootstrap.layout.keys import GROUP
from bootstrap.layout.keys import GROUP
from tests.support.runtimes import in_process_runtime

async def main() -> None:
    broker = StreamBroker(in_process_runtime(sys.argv[1], sys.argv[2]))
    await broker.startup()
    stream = broker.keys.stream
    for n in (1, 2):
        await broker.redis.xadd(stream, {"data": f"job-{n}"})
    read = await broker.redis.xreadgroup(GROUP, "test-worker", {stream: ">"}, count=2)
    first, second = (entry_id.decode() for entry_id, _ in read[0][1])
    acks, released = broker.acks, []
    acks.on_landed = released.append
    acks.ack("0-0", "")
    await acks.flush()  # connected, the script known
    print("ready", first, second, flush=True)
    sys.stdin.readline()  # Redis is frozen now
    acks.finished(first, "")
    acks.record(COMPLETED, {"id": "job-1", "task": "t", "result": "x" * 10_000}, 3600, 100)
    await acks.drain(lambda: None, lambda: True)  # no job runs
    print("released", released, flush=True)
    await asyncio.sleep(3600)  # the next job runs

asyncio.run(main())
"""


def test_while_no_job_runs_a_slot_comes_back_once_written_and_a_killed_worker_loses_no_acknowledgement(
    own_redis: RedisServer, key_prefix: str
) -> None:
    """The worker's next job starts while Redis runs the acknowledgement of the one before. Killed
    then, before a frozen Redis read a byte of it, it loses nothing: the kernel sends what the
    process wrote, then the end of the stream, and Redis runs it once it runs again. Only the job
    that was running is delivered again."""
    broker = StreamBroker(in_process_runtime(own_redis.uri, key_prefix))
    stream, data = broker.keys.stream, broker.keys.record_data(COMPLETED)
    watcher = sync_redis.Redis.from_url(own_redis.uri)
    assert own_redis.pid is not None
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER, own_redis.uri, key_prefix],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert worker.stdin is not None and worker.stdout is not None
    try:
        _, first, second = worker.stdout.readline().split()
        os.killpg(own_redis.pid, signal.SIGSTOP)
        try:
            worker.stdin.write("go\n")
            worker.stdin.flush()
            answer = _line_within(worker, 10)
            assert answer == "released [1]", f"the slot did not come back with Redis frozen: {answer!r}"
            worker.kill()  # SIGKILL, while the second job runs and Redis has read nothing
            worker.wait(10)
        finally:
            os.killpg(own_redis.pid, signal.SIGCONT)
        pending = [entry["message_id"].decode() for entry in watcher.xpending_range(stream, GROUP, "-", "+", 10)]
        assert pending == [second], f"pending: {pending}; {first}'s acknowledgement was lost, only {second} ran"
        assert [entry_id.decode() for entry_id, _ in watcher.xrange(stream)] == [second]  # the first deleted
        assert watcher.hkeys(data) == [b"job-1"]  # and its record written
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(10)
        watcher.close()


def _line_within(process: subprocess.Popen[str], seconds: float) -> str:
    """The next line `process` prints, or a failure after `seconds`."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    assert ready, f"no line from the worker within {seconds}s"
    return process.stdout.readline().strip()


def test_a_failure_in_a_reply_not_waited_for_sends_the_batch_again(own_redis: RedisServer, key_prefix: str) -> None:
    """NOSCRIPT (a script cache flushed) in the reply read after the next job ran: the batch goes
    with the next flush, as the script's text. A connection closed before the reply was read: the
    batch goes again too, and Redis, which ran it once, keeps one record and one acknowledgement."""
    broker = StreamBroker(in_process_runtime(own_redis.uri, key_prefix))
    watcher = sync_redis.Redis.from_url(own_redis.uri)
    stream, data = broker.keys.stream, broker.keys.record_data(COMPLETED)

    async def test() -> None:
        await broker.startup()
        acks, released = broker.acks, []
        acks.on_landed = released.append
        ids = [watcher.xadd(stream, {"data": f"job-{n}"}).decode() for n in (1, 2)]
        watcher.xreadgroup(GROUP, "test-worker", {stream: ">"}, count=2)
        try:
            acks.ack("0-0", "")
            await acks.flush()  # connected, the script known
            watcher.script_flush()
            acks.finished(ids[0], "")
            acks.record(COMPLETED, {"id": "job-1", "task": "t"}, 3600, 100)
            await acks.drain(lambda: None, lambda: True)
            assert released == [1] and acks.unread and not acks.pending
            await acks.settle()  # NOSCRIPT
            assert not acks.unread and acks.pending, "the batch Redis refused was not put back"
            await acks.flush()
            assert watcher.hkeys(data) == [b"job-1"]
            assert [e["message_id"].decode() for e in watcher.xpending_range(stream, GROUP, "-", "+", 10)] == [ids[1]]

            acks.finished(ids[1], "")
            acks.record(COMPLETED, {"id": "job-2", "task": "t"}, 3600, 100)
            await acks.drain(lambda: None, lambda: True)
            hot = broker.hot
            assert hot.unread
            await hot.close()  # its reply never read: whether Redis ran it is not known here
            assert acks.pending, "the batch whose reply was lost was not put back"
            await acks.flush()  # again, on a new connection
            assert sorted(watcher.hkeys(data)) == [b"job-1", b"job-2"]
            assert watcher.xpending(stream, GROUP)["pending"] == 0 and watcher.xlen(stream) == 0
        finally:
            await broker.shutdown()
            watcher.close()

    asyncio.run(test())
