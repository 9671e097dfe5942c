"""Found in review of the acknowledging flush (jobs.acks, which this branch does not change): bugs
shown on a real Redis, marked xfail(strict) until acks.py is fixed.

An acknowledgement that reached Redis but whose reply did not come back (the flush cancelled at
shutdown, or its connection closed for a stall after Redis ran it) is sent again, whole. Its XACK
and XDEL are harmless twice, but its HDEL of a finished deduplicated job's id is not: if a producer
enqueued that id again in between (the id was free), the second HDEL frees the new job's id while it
waits, and a third enqueue of the same id is accepted: two jobs with one deduplicated id."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis as sync_redis
from taskiq import TaskiqMessage

from bootstrap.jobs import labels
from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.local.servers import RedisServer

DEDUPED = labels.placement({labels.DEDUPE: True})


def job(job_id: str) -> bytes:
    return TaskiqMessage(task_id=job_id, task_name="t", labels={}, args=[], kwargs={}).model_dump_json().encode()


@pytest.mark.xfail(
    strict=True,
    reason="acks.py: a re-sent acknowledgement HDELs a deduplicated id a new job holds (review finding)",
)
def test_an_acknowledgement_sent_again_never_frees_the_id_of_a_job_enqueued_since(
    redis_server: RedisServer, key_prefix: str
) -> None:
    runtime = QueueRuntime(
        prefix=key_prefix,
        queue="q",
        redis_url=redis_server.uri,
        visibility_timeout=30,
        concurrency=1,
        completed_max_age=3600,
        completed_max_count=100,
        failed_max_age=3600,
        failed_max_count=100,
    )
    broker = StreamBroker(runtime)
    watcher = sync_redis.Redis.from_url(redis_server.uri)

    async def test() -> None:
        await broker.startup()
        try:
            broker.acks.ack("0-1")  # a first flush: connected, and Redis knows the script (no NOSCRIPT)
            await broker.acks.flush()
            assert (await broker.send([("d-1", job("d-1"))], DEDUPED)).added == 1
            broker.acks.forget("d-1")  # its job finished: the id is freed with the next flush
            flush = asyncio.ensure_future(broker.acks.flush())
            await asyncio.sleep(0)  # one step of the flush: written, waiting for the reply ...
            assert broker.hot._deadline != 0.0
            deadline = time.monotonic() + 10
            while watcher.hexists(broker.keys.ids, "d-1"):  # ... and Redis ran it (the loop held: no reply read)
                assert time.monotonic() < deadline
            flush.cancel()  # e.g. shutdown; its reply is never read
            await asyncio.wait({flush}, timeout=5)
            assert flush.cancelled()
            assert (await broker.send([("d-1", job("d-1 again"))], DEDUPED)).added == 1  # the id was free
            await broker.acks.flush()  # the cancelled flush, sent again
            assert watcher.hexists(broker.keys.ids, "d-1"), "the waiting job's id was freed"
            assert (await broker.send([("d-1", job("d-1 a third time"))], DEDUPED)).added == 0
        finally:
            await broker.shutdown()
            watcher.close()

    asyncio.run(test())
