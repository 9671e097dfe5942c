"""The broker's pieces against a real Redis: reclaim, renewal, promotion of due retries, release of
unstarted jobs, batched acknowledgement with records, the heartbeat, NOGROUP recovery."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import pytest
import redis as sync_redis
import redis.asyncio as aioredis
from taskiq import AckableMessage, TaskiqMessage

from bootstrap.jobs import acks
from bootstrap.jobs.broker import StreamBroker, StreamMessage
from bootstrap.jobs.inflight import InFlight
from bootstrap.jobs.records import COMPLETED, FAILED
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.jobs.upkeep import Promoter, Reclaimer, Renewer
from bootstrap.layout.keys import GROUP, QueueKeys, as_text, workers_key
from bootstrap.local.servers import RedisServer
from tests.support.runtimes import in_process_runtime

QUEUE = "q"


def make_runtime(
    redis_server: RedisServer, key_prefix: str, visibility_timeout: float = 30, max_deliveries: int = 3
) -> QueueRuntime:
    return in_process_runtime(
        redis_server.uri, key_prefix, QUEUE, visibility_timeout=visibility_timeout, concurrency=2,
        max_deliveries=max_deliveries,
    )  # fmt: skip


async def _noop() -> None:
    """The one task the test brokers serve."""


def make_broker(redis_server: RedisServer, key_prefix: str, **settings: Any) -> StreamBroker:
    """A broker serving task "t" (entries for other tasks are set aside, like any that cannot run)."""
    broker = StreamBroker(make_runtime(redis_server, key_prefix, **settings))
    broker.register_task(_noop, task_name="t")
    return broker


def job(job_id: str, task: str = "t", **labels: Any) -> bytes:
    """A job message as the stream holds it."""
    return TaskiqMessage(task_id=job_id, task_name=task, labels=labels, args=[], kwargs={}).model_dump_json().encode()


def job_id(message: AckableMessage) -> str:
    return str(json.loads(message.data)["task_id"])


async def with_redis(redis_server: RedisServer, test: Callable[[aioredis.Redis], Awaitable[None]]) -> None:
    client = aioredis.Redis.from_url(redis_server.uri)
    try:
        await test(client)
    finally:
        await client.aclose()


async def read_by(client: aioredis.Redis, keys: QueueKeys, consumer: str, count: int) -> list[str]:
    """Entries read by `consumer` (which then holds them pending)."""
    fetched: Any = await client.xreadgroup(GROUP, consumer, {keys.stream: ">"}, count=count)
    return [as_text(entry_id) for _stream, batch in fetched or () for entry_id, _ in batch]


async def owners(client: aioredis.Redis, keys: QueueKeys) -> dict[str, str]:
    """Pending entry id -> the consumer holding it."""
    pending = await client.xpending_range(keys.stream, GROUP, "-", "+", 100)
    return {as_text(p["message_id"]): as_text(p["consumer"]) for p in pending}


async def next_message(messages: AsyncGenerator[AckableMessage, None]) -> StreamMessage:
    message = await asyncio.wait_for(messages.__anext__(), 5)
    assert isinstance(message, StreamMessage)
    return message


def test_reclaim_takes_over_only_jobs_idle_past_the_visibility_timeout(
    redis_server: RedisServer, key_prefix: str
) -> None:
    keys = QueueKeys(key_prefix, QUEUE)

    async def test(client: aioredis.Redis) -> None:
        await client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
        await client.xadd(keys.stream, {"data": job("old")})
        [old] = await read_by(client, keys, "dead", 1)  # its worker died holding it
        await asyncio.sleep(0.4)
        await client.xadd(keys.stream, {"data": job("fresh")})
        [fresh] = await read_by(client, keys, "alive", 1)  # just read: not idle long enough
        held = InFlight()
        reclaimer = Reclaimer(keys, "me", 0.3, held)
        assert reclaimer.due() and not reclaimer.due()  # at once, then once per interval
        claimed = await reclaimer.reclaim(client, lambda: 10)
        # ... with how often it was delivered: once to the dead worker, once now
        assert [(as_text(i), fields, n) for i, fields, n in claimed] == [(old, {b"data": job("old")}, 2)]
        assert await owners(client, keys) == {old: "me", fresh: "alive"}
        # Later both are idle: the one this worker already holds is not delivered twice.
        held.hold([old])
        await asyncio.sleep(0.4)
        claimed = await Reclaimer(keys, "me", 0.3, held).reclaim(client, lambda: 10)
        assert [(as_text(i), n) for i, _, n in claimed] == [(fresh, 2)]

    asyncio.run(with_redis(redis_server, test))


def test_listen_delivers_an_idle_job_of_a_dead_consumer_first(redis_server: RedisServer, key_prefix: str) -> None:
    broker = make_broker(redis_server, key_prefix, visibility_timeout=0.3)

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        await client.xadd(broker.keys.stream, {"data": job("orphan")})
        [orphan] = await read_by(client, broker.keys, "dead", 1)
        await asyncio.sleep(0.4)
        messages = broker.listen()
        message = await next_message(messages)
        assert (message.entry_id, job_id(message), message.deliveries) == (orphan, "orphan", 2)
        assert message.job is not None and message.job.task_id == "orphan"  # read and checked once
        assert orphan in broker.in_flight
        assert await owners(client, broker.keys) == {orphan: broker.consumer}
        broker.stop_listening()
        await messages.aclose()
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_renewal_keeps_held_jobs_from_being_reclaimed_even_with_the_event_loop_blocked(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """Renewal used to run on the event loop: a handler that blocked the loop let its lease lapse and a
    second worker took the job while it still ran. It has its own thread and connection now."""
    keys = QueueKeys(key_prefix, QUEUE)

    async def test(client: aioredis.Redis) -> None:
        await client.xgroup_create(keys.stream, GROUP, id="0", mkstream=True)
        for name in ("running", "dropped"):
            await client.xadd(keys.stream, {"data": job(name)})
        running, dropped = await read_by(client, keys, "worker-a", 2)
        held = InFlight()
        held.hold([running])  # worker-a still holds this one, no longer the other
        renewer = Renewer(sync_redis.Redis.from_url(redis_server.uri), keys, "worker-a", 1.0, held)
        assert renewer.every == 0.5
        renewer.start()
        time.sleep(1.3)  # the event loop blocked past the visibility timeout; renewed at 0.5 s and 1 s
        claimed = await Reclaimer(keys, "worker-b", 1.0, InFlight()).reclaim(client, lambda: 10)
        renewer.stop()
        renewer.client.close()
        assert [as_text(i) for i, _, _ in claimed] == [dropped]
        assert await owners(client, keys) == {running: "worker-a", dropped: "worker-b"}

    asyncio.run(with_redis(redis_server, test))


def test_promotion_moves_only_due_retries_into_the_stream(redis_server: RedisServer, key_prefix: str) -> None:
    keys = QueueKeys(key_prefix, QUEUE)

    async def test(client: aioredis.Redis) -> None:
        now = time.time()
        await client.zadd(keys.delayed, {b"due-1": now - 5, b"due-2": now - 1, b"later": now + 60})
        assert await Promoter(client, keys, batch=1).promote() == 1  # at most a batch at once
        assert await Promoter(client, keys, batch=100).promote() == 1
        assert await Promoter(client, keys, batch=100).promote() == 0
        entries = await client.xrange(keys.stream)
        assert [fields[b"data"] for _, fields in entries] == [b"due-1", b"due-2"]
        assert await client.zrange(keys.delayed, 0, -1) == [b"later"]

    asyncio.run(with_redis(redis_server, test))


def test_release_gives_back_unstarted_jobs_and_keeps_started_ones(redis_server: RedisServer, key_prefix: str) -> None:
    broker = make_broker(redis_server, key_prefix)

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        for name in ("a", "b", "c"):
            await client.xadd(broker.keys.stream, {"data": job(name)})
        messages = broker.listen()
        first, second, third = [await next_message(messages) for _ in range(3)]
        broker.stop_listening()
        await messages.aclose()
        broker.started(first)
        assert broker.in_flight.waiting == 2 and broker.in_flight.running == 1
        assert await broker.release_unstarted() == 2
        assert broker.in_flight.held() == [first.entry_id]
        assert await owners(client, broker.keys) == {first.entry_id: broker.consumer}
        # Given back as new entries, delivered again at once (to anyone); the old entries are gone.
        ids = [as_text(i) for i, _ in await client.xrange(broker.keys.stream)]
        assert len(ids) == 3 and ids[0] == first.entry_id
        assert {second.entry_id, third.entry_id}.isdisjoint(ids)
        fetched: Any = await client.xreadgroup(GROUP, "other", {broker.keys.stream: ">"}, count=10)
        assert sorted(fields[b"data"] for _, batch in fetched for _, fields in batch) == [job("b"), job("c")]
        assert await broker.release_unstarted() == 0
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_acknowledgements_and_records_are_written_in_one_flush(redis_server: RedisServer, key_prefix: str) -> None:
    broker = make_broker(redis_server, key_prefix)

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        await client.xadd(broker.keys.stream, {"data": job("job")})
        messages = broker.listen()
        message = await next_message(messages)
        broker.stop_listening()
        await messages.aclose()
        broker.started(message)
        broker.record(COMPLETED, {"id": "job-1", "task": "t"}, 3600, 100)
        assert await client.xlen(broker.keys.stream) == 1  # not before the flush
        await asyncio.wait_for(message.ack(), 5)  # the job's own ack sends the flush: no loop runs here
        assert message.entry_id not in broker.in_flight
        assert not broker.acks.pending
        assert await client.xlen(broker.keys.stream) == 0 and await owners(client, broker.keys) == {}
        stored = await client.hget(broker.keys.record_data(COMPLETED), "job-1")
        assert stored is not None and json.loads(stored)["task"] == "t"
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_acks_queued_while_one_flies_go_out_together_in_the_next_flush(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """The first job's ack sends its flush; the 19 jobs that finish while it is in flight wait, and
    the first of them sends all 19 in one more round trip: 2 scripts for 20 jobs, none lost."""
    broker = make_broker(redis_server, key_prefix)

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        for i in range(20):
            await client.xadd(broker.keys.stream, {"data": job(f"job-{i}")})
        messages = broker.listen()
        read = [await next_message(messages) for _ in range(20)]
        broker.stop_listening()
        await messages.aclose()
        await broker.hot.call("PING")  # connected before counting
        await client.script_load(acks._ACK.text)  # known to Redis: one EVALSHA per flush
        await client.config_resetstat()
        for message in read:
            broker.started(message)
        await asyncio.wait_for(asyncio.gather(*(message.ack() for message in read)), 5)
        stats = await client.info("commandstats")
        scripts = sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))
        assert scripts == 2, stats
        assert await client.xlen(broker.keys.stream) == 0 and await owners(client, broker.keys) == {}
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_worker_heartbeat_appears_and_is_removed_on_shutdown(redis_server: RedisServer, key_prefix: str) -> None:
    broker = StreamBroker(make_runtime(redis_server, key_prefix))
    broker.is_worker_process = True

    async def test(client: aioredis.Redis) -> None:
        key = workers_key(key_prefix)
        await broker.startup()
        deadline = time.monotonic() + 5
        while (raw := await client.hget(key, broker.consumer)) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert raw is not None, "no heartbeat"
        beat = json.loads(raw)
        assert beat["queue"] == QUEUE and beat["pid"] == os.getpid() and beat["running"] == 0
        await broker.shutdown()
        assert await client.hget(key, broker.consumer) is None

    asyncio.run(with_redis(redis_server, test))


def test_listen_recreates_a_deleted_group_and_keeps_delivering(redis_server: RedisServer, key_prefix: str) -> None:
    broker = make_broker(redis_server, key_prefix)

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        messages = broker.listen()
        await client.xadd(broker.keys.stream, {"data": job("before")})
        assert job_id(await next_message(messages)) == "before"
        await client.delete(broker.keys.stream)  # stream and group gone (a flushed Redis, say)
        await client.xadd(broker.keys.stream, {"data": job("after")})
        assert job_id(await next_message(messages)) == "after"  # group recreated at id 0: not lost
        broker.stop_listening()
        await messages.aclose()
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_worker_shutdown_ends_even_when_cancelled_mid_flush(redis_server: RedisServer, key_prefix: str) -> None:
    """redis-py may swallow a cancellation that lands while a pipeline runs: the acknowledging loop
    then went on forever and a worker hung in shutdown until taskiq's timeout (issue 9, item 14)."""

    async def test(client: aioredis.Redis) -> None:
        slow = []
        for n in range(60):
            broker = StreamBroker(make_runtime(redis_server, key_prefix))
            broker.is_worker_process = True
            await broker.startup()
            for i in range(3):
                broker.acks.ack(f"{n}-{i}", "")
                broker.record(COMPLETED, {"id": f"{n}-{i}", "task": "t"}, 3600, 100)
            await asyncio.sleep(random.uniform(0, 0.03))  # land anywhere in the 20 ms flush cycle
            started = time.monotonic()
            stopping = asyncio.ensure_future(broker.shutdown())
            done, _ = await asyncio.wait({stopping}, timeout=5)
            if not done:
                slow.append(n)
                stopping.cancel()
            else:
                assert time.monotonic() - started < 2
        assert not slow, f"shutdown hung in rounds {slow}"
        # ... and the final flush still wrote what was pending.
        assert await client.hexists(QueueKeys(key_prefix, QUEUE).record_data(COMPLETED), "59-2")

    asyncio.run(with_redis(redis_server, test))


def test_entries_that_cannot_run_go_to_the_failed_store_with_the_reason(
    redis_server: RedisServer, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Junk used to be dropped (an entry without data even without a log line) or to fail later with
    a ValueError; now each is set aside, said, and kept where `bootstrap jobs failed` shows it."""
    broker = make_broker(redis_server, key_prefix)
    junk: dict[str, tuple[dict[str, bytes], str]] = {
        "no data": ({"payload": b"x"}, "the stream entry has no 'data' field"),
        "not json": ({"data": b"{not json"}, "not a job message (message: Invalid JSON"),
        "a list": ({"data": b"[1, 2]"}, "not a job message"),
        "unknown task": ({"data": job("u-1", task="no-such-task", unserved_since=1.0)}, "unknown task 'no-such-task'"),
        "bad attempt": ({"data": job("a-1", attempt="zz")}, "label attempt: 'zz' is not a whole number from 1 to 100"),
        "zero attempt": ({"data": job("a-2", attempt=0)}, "label attempt: 0 is not a whole number"),
        "bad schedule": ({"data": job("s-1", schedule_id=["x"])}, "label schedule_id: ['x'] is not a schedule id"),
    }

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        entries = {name: as_text(await client.xadd(broker.keys.stream, fields)) for name, (fields, _) in junk.items()}
        await client.xadd(broker.keys.stream, {"data": job("good", attempt="2")})  # taskiq's kicker sends strings
        messages = broker.listen()
        message = await next_message(messages)  # the only one that can run
        assert job_id(message) == "good" and message.job is not None and message.job.labels["attempt"] == 2
        broker.stop_listening()
        await messages.aclose()
        await broker.acks.flush()
        raw = await client.hgetall(broker.keys.record_data(FAILED))
        failed = {record["entry"]: record for record in map(json.loads, raw.values())}
        for name, (_, reason) in junk.items():
            record = failed[entries[name]]
            assert reason in record["error"], (name, record)
            assert record["rejected"] is True and isinstance(record["task"], str) and isinstance(record["kwargs"], dict)
        assert failed[entries["no data"]]["id"] == f"entry-{entries['no data']}"
        assert failed[entries["no data"]]["data"] == '{"payload": "x"}'  # kept for the operator to see
        assert failed[entries["not json"]]["data"] == "{not json"
        assert failed[entries["unknown task"]]["id"] == "u-1" and "data" not in failed[entries["unknown task"]]
        # Set aside means acknowledged and deleted: only the good job is left, held by this worker.
        assert await owners(client, broker.keys) == {message.entry_id: broker.consumer}
        assert await client.xlen(broker.keys.stream) == 1
        await broker.shutdown()

    with caplog.at_level(logging.ERROR, logger="bootstrap.jobs.broker"):
        asyncio.run(with_redis(redis_server, test))
    said = [r.getMessage() for r in caplog.records if "moved to the failed store" in r.getMessage()]
    assert len(said) == len(junk), said  # one log line each, none silent


def test_a_job_delivered_more_than_max_deliveries_goes_to_the_failed_store(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """A job whose worker dies every time (it kills it, or exhausts its memory) used to be delivered
    forever, always as attempt 1, starving the jobs behind it."""
    broker = make_broker(redis_server, key_prefix, visibility_timeout=0.2, max_deliveries=2)

    async def test(client: aioredis.Redis) -> None:
        await broker.startup()
        await client.xadd(broker.keys.stream, {"data": job("poison")})
        await client.xadd(broker.keys.stream, {"data": job("second-chance")})
        await read_by(client, broker.keys, "died-once", 2)  # delivery 1 of both
        await asyncio.sleep(0.3)
        claimed: Any = await client.xautoclaim(broker.keys.stream, GROUP, "died-twice", 200, "0-0", count=1)
        assert len(claimed[1]) == 1  # delivery 2 of "poison" only
        await asyncio.sleep(0.3)
        messages = broker.listen()
        message = await next_message(messages)  # delivery 3 of "poison" is one too many; 2 of the other is not
        assert (job_id(message), message.deliveries) == ("second-chance", 2)
        broker.stop_listening()
        await messages.aclose()
        await broker.acks.flush()
        record = json.loads(await client.hget(broker.keys.record_data(FAILED), "poison") or "{}")
        assert record["error"] == "delivered 2 times without finishing: its worker died each time"
        assert record["deliveries"] == 3 and record["task"] == "t" and record["attempts"] == 1
        assert await owners(client, broker.keys) == {message.entry_id: broker.consumer}
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))


def test_a_flush_of_many_records_writes_them_all_and_trims_index_and_data_alike(
    redis_server: RedisServer, key_prefix: str
) -> None:
    """Records go to Redis 500 to a call: a flush of 1,201 crosses that, with and without trimming."""

    async def test(client: aioredis.Redis) -> None:
        broker = StreamBroker(make_runtime(redis_server, key_prefix))
        await broker.startup()
        keys = QueueKeys(key_prefix, QUEUE)
        for outcome, kept in ((COMPLETED, 5000), (FAILED, 1000)):
            for i in range(1201):
                broker.record(outcome, {"id": f"r-{i}", "task": "t"}, 3600, kept)
            await broker.acks.flush()
            index = {as_text(m) for m in await client.zrange(keys.records(outcome), 0, -1)}
            data = {as_text(k) for k in await client.hkeys(keys.record_data(outcome))}
            assert index == data and len(index) == min(1201, kept), (outcome, len(index), len(data))
            stored = await client.hget(keys.record_data(outcome), next(iter(index)))
            assert stored is not None and json.loads(stored)["task"] == "t"
        await broker.shutdown()

    asyncio.run(with_redis(redis_server, test))
