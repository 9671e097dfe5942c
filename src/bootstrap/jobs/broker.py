"""A Taskiq broker on a Redis stream with at-least-once delivery.

- Jobs are stream entries read through one consumer group; a job stays pending until its worker
  acknowledges it after the job finished, then it is removed from the stream.
- A worker that dies (SIGKILL, lost host) leaves its jobs pending: every worker reclaims jobs idle
  longer than the queue's visibility timeout (XAUTOCLAIM), whether or not new jobs arrive.
- A worker renews the jobs it is running (XCLAIM ... JUSTID resets their idle time), so a long job
  is not handed to a second worker while the first is still on it.
- The group reads from the start of the stream: jobs enqueued before any worker existed are kept.
- Reads, acknowledgements and enqueues are batched: one round trip for many jobs.
- Retries wait in a sorted set by due time and are moved into the stream when due (atomically).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncGenerator, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage

from bootstrap.connect import redis as redis_connect
from bootstrap.jobs.records import Records
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.layout.keys import GROUP, QueueKeys, as_text, workers_key
from bootstrap.redact import mask

log = logging.getLogger("bootstrap.jobs.broker")

HEARTBEAT_EVERY = 5.0  # seconds between a worker's "alive" notes

# Put jobs that were read but never started back as new entries (a worker shutting down), so they are
# delivered again at once instead of after the visibility timeout. KEYS: stream; ARGV: group, ids.
_RELEASE = """
local n = 0
for i = 2, #ARGV do
  local entry = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])[1]
  if entry and redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[1], '*', entry[2][1], entry[2][2])
    redis.call('XDEL', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n
"""

# Move due retries into the stream: ZRANGEBYSCORE + XADD + ZREM in one step, so a job is never in
# both places or in neither.
_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, data in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'data', data)
  redis.call('ZREM', KEYS[1], data)
end
return #due
"""


class StreamMessage(AckableMessage):
    """A delivered job and its stream entry id."""

    entry_id: str = ""


class StreamBroker(AsyncBroker):
    def __init__(self, runtime: QueueRuntime) -> None:
        super().__init__()
        self.runtime = runtime
        self.keys = QueueKeys(runtime.prefix, runtime.queue)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._producer: aioredis.Redis | None = None
        self._consumer: aioredis.Redis | None = None
        self._in_flight: set[Any] = set()  # delivered to this worker and not acknowledged yet
        self._started: set[str] = set()  # ... of which the receiver started running these
        self._stopping = asyncio.Event()
        self._acks: list[str] = []
        self._records: list[tuple[str, dict[str, Any], float, int]] = []
        self._ack_wakeup = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []
        self._promote: Any = None
        self._job_records: Records | None = None

    @property
    def records(self) -> Records:
        """This queue's completed and failed job records."""
        if self._job_records is None:
            self._job_records = Records(self.redis, self.keys)
        return self._job_records

    # --- connections ------------------------------------------------------------------------------

    @property
    def redis(self) -> aioredis.Redis:
        """The producer connection: fails fast (socket timeout) instead of hanging."""
        if self._producer is None:
            self._producer = redis_connect.async_client(self.runtime)
        return self._producer

    def _blocking(self) -> aioredis.Redis:
        """The worker's read connection: no socket timeout, a blocking read may wait forever."""
        if self._consumer is None:
            self._consumer = redis_connect.async_client(self.runtime, blocking=True)
        return self._consumer

    async def startup(self) -> None:
        await super().startup()
        await self._check_redis()
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await self.redis.xgroup_create(self.keys.stream, GROUP, id="0", mkstream=True)
        self._promote = self.redis.register_script(_PROMOTE)
        if self.is_worker_process:
            for job in (self._flush_acks, self._renew_in_flight, self._promote_due_retries, self._heartbeat):
                self._background.append(asyncio.create_task(job()))

    async def _check_redis(self) -> None:
        """PING must answer PONG (retried per the connect policy); a wrong eviction policy is logged
        loudly (evicted queue keys are lost jobs) but does not stop the process."""
        shown = mask(self.runtime.url)
        await redis_connect.connect_async(self.runtime, self.redis)
        eviction = await redis_connect.eviction_policy_async(self.redis)
        if eviction == redis_connect.UNKNOWN_POLICY:
            log.warning("Redis %s: cannot read maxmemory-policy; make sure it is noeviction", shown)
        elif eviction != "noeviction":
            log.error(
                "Redis %s runs with maxmemory-policy %s: queued jobs can be evicted and lost "
                "(run `bootstrap apply --fix-redis`)",
                shown,
                eviction,
            )
        if self.is_worker_process or self.is_scheduler_process:
            log.info(
                "Redis %s: PING -> PONG, maxmemory-policy %s; queue %s ready",
                shown,
                eviction,
                self.runtime.queue,
            )

    async def shutdown(self) -> None:
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._background:  # a worker: say goodbye so status stops listing it
            with contextlib.suppress(Exception):
                await self.redis.hdel(workers_key(self.runtime.prefix), self.consumer)
        self._background.clear()
        with contextlib.suppress(Exception):
            await self._ack_now()
        await super().shutdown()
        for conn in (self._consumer, self._producer):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.aclose()
        self._consumer = self._producer = None

    # --- producing --------------------------------------------------------------------------------

    async def kick(self, message: BrokerMessage) -> None:
        await self.redis.xadd(self.keys.stream, {"data": message.message})

    async def kick_many(self, messages: Iterable[BrokerMessage], chunk: int = 1000) -> int:
        """Enqueue many jobs with pipelined XADDs: one round trip per `chunk` jobs."""
        count = 0
        pipe = self.redis.pipeline(transaction=False)
        for message in messages:
            pipe.xadd(self.keys.stream, {"data": message.message})
            count += 1
            if count % chunk == 0:
                await pipe.execute()
        await pipe.execute()
        return count

    async def delay(self, data: bytes, seconds: float) -> None:
        """Put a job back after `seconds` (a retry): it waits in the delayed set until due."""
        await self.redis.zadd(self.keys.delayed, {data: time.time() + seconds})

    # --- consuming --------------------------------------------------------------------------------

    @property
    def prefetch(self) -> int:
        """Most jobs this worker holds without running them: enough to keep it busy, few enough that
        slow jobs are not hoarded while other workers are idle."""
        return min(self.runtime.batch, max(10, 2 * self.runtime.concurrency))

    def _room(self) -> int:
        return max(1, self.prefetch - (len(self._in_flight) - len(self._started)))

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        conn = self._blocking()
        reclaim_every = max(1.0, self.runtime.visibility_timeout / 4)
        next_reclaim = 0.0
        while not self._stopping.is_set():
            try:
                entries: list[tuple[Any, Any]] = []
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + reclaim_every
                    entries = await self._reclaim(conn)
                if not entries:
                    fetched: Any = await conn.xreadgroup(
                        GROUP, self.consumer, {self.keys.stream: ">"}, count=self._room(), block=1000
                    )
                    entries = [entry for _stream, batch in fetched or () for entry in batch]
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("queue %s: Redis read failed (%s); retrying in 1s", self.runtime.queue, exc)
                await asyncio.sleep(1)
                continue
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self.redis.xgroup_create(self.keys.stream, GROUP, id="0", mkstream=True)
                continue
            # Every job read is ours from now on: renewed while it waits here, given back on shutdown.
            self._in_flight.update(as_text(entry_id) for entry_id, _ in entries)
            for entry_id, fields in entries:
                if fields and b"data" in fields:
                    yield self._ackable(entry_id, fields[b"data"])
                else:  # an entry whose data is gone: nothing to run
                    self._in_flight.discard(as_text(entry_id))
                    self._acks.append(as_text(entry_id))

    async def _reclaim(self, conn: aioredis.Redis) -> list[tuple[Any, Any]]:
        """Jobs pending longer than the visibility timeout (their worker died): take them over, as
        many as this worker has room for."""
        claimed: list[tuple[Any, Any]] = []
        start = "0-0"
        idle_ms = int(self.runtime.visibility_timeout * 1000)
        while len(claimed) < self._room():
            result = await conn.xautoclaim(
                self.keys.stream,
                GROUP,
                self.consumer,
                min_idle_time=idle_ms,
                start_id=start,
                count=self._room() - len(claimed),
            )
            start, entries = as_text(result[0]), result[1]
            claimed += [(entry_id, fields) for entry_id, fields in entries if as_text(entry_id) not in self._in_flight]
            if start == "0-0" or not entries:
                break
        if claimed:
            log.warning(
                "queue %s: took over %d job(s) whose worker stopped responding", self.runtime.queue, len(claimed)
            )
        return claimed

    def _ackable(self, entry_id: Any, data: bytes) -> StreamMessage:
        ident = as_text(entry_id)

        async def ack() -> None:
            self._in_flight.discard(ident)
            self._started.discard(ident)
            self._acks.append(ident)
            if len(self._acks) >= self.runtime.batch:
                self._ack_wakeup.set()

        return StreamMessage(data=data, ack=ack, entry_id=ident)

    def started(self, message: StreamMessage) -> None:
        """The receiver began running this job (it is no longer just prefetched)."""
        self._started.add(message.entry_id)

    def abandon(self, message: StreamMessage) -> None:
        """Stop renewing a job this worker could not finish: another worker (or this one) takes it
        over after the visibility timeout."""
        self._in_flight.discard(message.entry_id)
        self._started.discard(message.entry_id)

    def stop_listening(self) -> None:
        """Make `listen` return after its current read (at most about a second)."""
        self._stopping.set()

    async def release_unstarted(self) -> int:
        """Give back jobs this worker read but never started, for immediate redelivery."""
        ids = [i for i in self._in_flight if i not in self._started]
        if not ids:
            return 0
        released = int(await self.redis.register_script(_RELEASE)(keys=[self.keys.stream], args=[GROUP, *ids]))
        self._in_flight.difference_update(ids)
        if released:
            log.info("queue %s: gave back %d job(s) not started before shutdown", self.runtime.queue, released)
        return released

    def record(self, outcome: str, record: dict[str, Any], max_age: float, max_count: int) -> None:
        """Queue a job record; it is written with the next batch of acknowledgements, before them."""
        self._records.append((outcome, record, max_age, max_count))

    async def _ack_now(self) -> None:
        """One round trip for a batch: job records first, then XACK and XDEL of the finished jobs.
        A crash before it only means the jobs run again (at least once), records included."""
        if not self._acks and not self._records:
            return
        ids, self._acks = self._acks, []
        records, self._records = self._records, []
        pipe = self.redis.pipeline(transaction=False)
        batches: dict[tuple[str, float, int], list[dict[str, Any]]] = {}
        for outcome, record, max_age, max_count in records:
            batches.setdefault((outcome, max_age, max_count), []).append(record)
        for (outcome, max_age, max_count), batch in batches.items():
            await self.records.queue_store(pipe, outcome, batch, max_age, max_count)
        if ids:
            pipe.xack(self.keys.stream, GROUP, *ids)
            pipe.xdel(self.keys.stream, *ids)
        try:
            await pipe.execute()
        except BaseException:  # cancellation at shutdown included: the final flush writes them
            self._acks[:0], self._records[:0] = ids, records
            raise

    async def _flush_acks(self) -> None:
        """Acknowledge in batches: when a batch is full, else every 20 ms."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ack_wakeup.wait(), 0.02)
            self._ack_wakeup.clear()
            try:
                await self._ack_now()
            except Exception as exc:  # acks stay pending and are retried; the jobs may rerun
                log.warning("queue %s: acknowledging failed (%s); will retry", self.runtime.queue, exc)
                await asyncio.sleep(0.5)

    async def _renew_in_flight(self) -> None:
        """Reset the idle time of running jobs so no other worker takes them over."""
        interval = max(0.5, self.runtime.visibility_timeout / 3)
        while True:
            await asyncio.sleep(interval)
            ids: list[Any] = list(self._in_flight)
            if not ids:
                continue
            try:
                await self.redis.xclaim(
                    self.keys.stream, GROUP, self.consumer, min_idle_time=0, message_ids=ids, justid=True
                )
            except Exception as exc:
                log.warning("queue %s: could not renew running jobs (%s)", self.runtime.queue, exc)

    async def _heartbeat(self) -> None:
        """Tell `bootstrap status` this worker is alive, every few seconds."""
        started = time.time()
        while True:
            beat = {
                "queue": self.runtime.queue,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": started,
                "seen": time.time(),
                "running": len(self._started),
            }
            with contextlib.suppress(Exception):
                await self.redis.hset(workers_key(self.runtime.prefix), self.consumer, json.dumps(beat))
            await asyncio.sleep(HEARTBEAT_EVERY)

    async def _promote_due_retries(self) -> None:
        while True:
            try:
                moved = await self._promote(
                    keys=[self.keys.delayed, self.keys.stream], args=[time.time(), self.runtime.batch]
                )
            except Exception as exc:  # Redis away: say so once a second, not 20 times
                log.warning("queue %s: moving due retries failed (%s)", self.runtime.queue, exc)
                await asyncio.sleep(1)
                continue
            if not moved:
                await asyncio.sleep(0.05)

