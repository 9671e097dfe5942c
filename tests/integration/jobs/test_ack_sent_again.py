"""An acknowledgement that reached Redis but whose reply did not come back (the flush cancelled at
shutdown, or its connection closed for a stall after Redis ran it) is sent again, whole. Its XACK
and XDEL are harmless twice; its HDEL of a finished deduplicated job's id must not be: a producer may
have enqueued that id again in between (the id was free), and freeing the new job's id while it
waits would let a third enqueue of the id in: two jobs with one deduplicated id. The id leaves the
index only with the first acknowledgement of its job's entry. (Found in review.)"""

from __future__ import annotations

import asyncio
import time

import redis as sync_redis
from taskiq import TaskiqMessage

from bootstrap.jobs import labels
from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.records import COMPLETED
from bootstrap.local.servers import RedisServer
from tests.integration.jobs.test_broker import next_message
from tests.support.runtimes import in_process_runtime

DEDUPED = labels.placement({labels.DEDUPE: True})


def job(job_id: str) -> bytes:
    message = TaskiqMessage(task_id=job_id, task_name="t", labels={labels.DEDUPE: True}, args=[], kwargs={})
    return message.model_dump_json().encode()


def test_an_acknowledgement_sent_again_never_frees_the_id_of_a_job_enqueued_since(
    redis_server: RedisServer, key_prefix: str
) -> None:
    broker = StreamBroker(in_process_runtime(redis_server.uri, key_prefix))
    broker.register_task(lambda: None, task_name="t")
    watcher = sync_redis.Redis.from_url(redis_server.uri)

    async def test() -> None:
        await broker.startup()
        try:
            broker.acks.ack("0-1", "")  # a first flush: connected, and Redis knows the script (no NOSCRIPT)
            await broker.acks.flush()
            assert (await broker.send([("d-1", job("d-1"))], DEDUPED)).added == 1
            messages = broker.listen()
            message = await next_message(messages)
            broker.stop_listening()
            await messages.aclose()
            broker.started(message)
            # It finished: its record frees its id, with its entry's acknowledgement.
            broker.record(COMPLETED, {"id": "d-1", "task": "t", "labels": {labels.DEDUPE: True}}, 3600, 100)
            broker.finished(message)
            flush = asyncio.ensure_future(broker.acks.flush())
            await asyncio.sleep(0)  # one step of the flush: written, waiting for the reply ...
            assert broker.hot._deadline != 0.0
            deadline = time.monotonic() + 10
            while watcher.hexists(broker.keys.ids, "d-1"):  # ... and Redis ran it (the loop held: no reply read)
                assert time.monotonic() < deadline
            flush.cancel()  # e.g. shutdown; its reply is never read
            await asyncio.wait({flush}, timeout=5)
            assert flush.cancelled()
            assert (await broker.send([("d-1", job("d-1"))], DEDUPED)).added == 1  # the id was free
            await broker.acks.flush()  # the cancelled flush, sent again
            assert watcher.hexists(broker.keys.ids, "d-1"), "the waiting job's id was freed"
            assert (await broker.send([("d-1", job("d-1"))], DEDUPED)).added == 0
            assert watcher.xlen(broker.keys.stream) == 1  # the second d-1, waiting; the first acknowledged
        finally:
            await broker.shutdown()
            watcher.close()

    asyncio.run(test())
