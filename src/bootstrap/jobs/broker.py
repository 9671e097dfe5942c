"""A Taskiq broker on a Redis stream with at-least-once delivery: send, read, acknowledge.

- Jobs are stream entries read through one consumer group; a job stays pending until its worker
  acknowledges it after the job finished, then it is removed from the stream.
- The group reads from the start of the stream: jobs enqueued before any worker existed are kept.
- Reads, acknowledgements (with job records) and enqueues are batched: one round trip for many jobs.
- A worker holds at most `prefetch` jobs it has not started, and gives them back when it shuts down.
- What it reads is checked (`intake`): an entry that cannot run, or a job delivered more than
  `max_deliveries` times, goes to the failed store with the reason instead of being run.

The pieces it composes: `InFlight` (what this worker holds), `AckBatch` (acknowledgements and
records), `upkeep` (reclaim, renewal, heartbeat, promotion of due retries), `watchdog` (a blocked
event loop, reported) and `connections` (its two Redis connections, made by `bootstrap.connect.redis`;
renewal has a third, synchronous one, in its own thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import AskError, ClusterDownError, RedisError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage, TaskiqMessage

from bootstrap.connect import redis as redis_connect
from bootstrap.connect import retry
from bootstrap.errors import BootstrapError, NotReplicated, PartlySent
from bootstrap.jobs import intake, labels
from bootstrap.jobs.acks import AckBatch
from bootstrap.jobs.connections import QueueConnections
from bootstrap.jobs.hotpath import HotConnection, Script
from bootstrap.jobs.inflight import InFlight
from bootstrap.jobs.message import JobFormatter, JobMessage
from bootstrap.jobs.pause import CHECK_EVERY, PauseWatch
from bootstrap.jobs.priority import ReadOrder
from bootstrap.jobs.ratelimit import RateLimiter
from bootstrap.jobs.records import FAILED, Records
from bootstrap.jobs.runtime import QueueRuntime
from bootstrap.jobs.upkeep import Background, Heartbeat, Janitor, Promoter, Reclaimer, Renewer, worker_heartbeat
from bootstrap.jobs.watchdog import LoopWatchdog
from bootstrap.layout.keys import GROUP, PRIORITIES, QueueKeys, as_text, entry_ref

log = logging.getLogger("bootstrap.jobs.broker")

SHUTDOWN_STEP = 3.0  # seconds each step of a shutdown may take at most
WEIGHTED_FOR = 1.0  # seconds the weighted read of the priority levels is kept after several were busy


async def bounded(step: Awaitable[Any], seconds: float, what: str) -> bool:
    """Run `step` for at most `seconds`; True if it finished without error. Errors and overruns are
    logged, never raised: shutdown goes on. A step that overruns is cancelled but not waited for."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        log.warning("shutdown: %s did not finish within %gs; going on without it", what, seconds)
        return False
    if task.cancelled():
        return False
    error = task.exception()
    if error is not None:
        log.warning("shutdown: %s failed (%s: %s)", what, type(error).__name__, error)
        return False
    return True


# Read up to a count of new jobs from the streams in the order given (one priority level after another:
# see `priority`), without blocking. KEYS: the streams in reading order; ARGV: group, consumer, count.
# Returns {stream number, entries} per stream that had some.
_READ = Script("""
local left, found = tonumber(ARGV[3]), {}
for i = 1, #KEYS do
  if left <= 0 then break end
  local got = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', left, 'STREAMS', KEYS[i], '>')
  if got and #got[1][2] > 0 then
    table.insert(found, {i, got[1][2]})
    left = left - #got[1][2]
  end
end
return found
""")

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


# Hand a job of a task this worker does not serve back (see intake.Unserved), in one step: into the
# delayed set and out of the stream, or neither (so a crash leaves it in one place, never two); only
# while the entry is still pending (else another worker took it over meanwhile).
# KEYS: delayed set, stream; ARGV: group, entry id, due time, data. Returns 1 when handed back.
_HAND_BACK = """
if redis.call('XACK', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('XDEL', KEYS[2], ARGV[2])
return 1
"""

# Enqueue many jobs in one step, in order. KEYS: stream; ARGV: the jobs' data.
_ADD_MANY = """
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'data', ARGV[i])
end
return #ARGV
"""


# Enqueue jobs with a placement, in order: a job whose id is to be deduplicated is added only if its id
# is not in the id index (HSETNX adds it there in the same step), or is there but its job has a record
# that finished since the id was (a worker of a release before the id index, which never removes
# ids, ran it; an acknowledgement sent again writes an older record), and then
# the records of the id's earlier job go (a new job by that id: its result is awaited, not the old
# one's); a delayed one goes
# to the delayed set, any other to its priority level's stream. KEYS: id index, delayed set, the
# streams highest priority first, then index and data of each outcome (records.OUTCOMES order).
# ARGV: now, then per job: id to deduplicate ('' for none), due time, stream number, data.
# Returns {jobs added, ids already there}.
_ENQUEUE = """
local now, added, existing = tonumber(ARGV[1]), 0, {}
local records = #KEYS - 4
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  local fresh = id == '' or redis.call('HSETNX', KEYS[1], id, ARGV[1]) == 1
  if not fresh then
    local since = tonumber(redis.call('HGET', KEYS[1], id)) or 0
    for r = records + 1, #KEYS, 2 do
      local raw = redis.call('HGET', KEYS[r + 1], id)
      local ok, record = pcall(cjson.decode, raw or '')
      local finished = ok and type(record) == 'table' and tonumber(record['finished_at'])
      if finished and finished >= since then
        fresh = true
        redis.call('HSET', KEYS[1], id, ARGV[1])
        break
      end
    end
  end
  if fresh then
    if id ~= '' then
      for r = records + 1, #KEYS, 2 do
        if redis.call('ZREM', KEYS[r], id) == 1 then redis.call('HDEL', KEYS[r + 1], id) end
      end
    end
    local due = tonumber(ARGV[i + 1])
    if due > now then
      redis.call('ZADD', KEYS[2], due, ARGV[i + 3])
    else
      redis.call('XADD', KEYS[2 + tonumber(ARGV[i + 2])], '*', 'data', ARGV[i + 3])
    end
    added = added + 1
  else
    table.insert(existing, id)
  end
end
return {added, existing}
"""


@dataclass(frozen=True)
class Sent:
    """What a send did: how many jobs it added, and the ids it did not add because a job with that id
    is already waiting, delayed or running (deduplicated)."""

    added: int
    existing: tuple[str, ...] = ()


class Delivery:
    """A delivered job as the fast receiver takes it (see `deliveries`): its stream entry id, its data,
    the job as read and checked (see `intake`), and how many times it has been delivered. A plain
    object: a pydantic message per job costs more than the rest of its hand-over."""

    __slots__ = ("data", "deliveries", "entry_id", "job")

    def __init__(self, entry_id: str, data: bytes, job: JobMessage, deliveries: int) -> None:
        self.entry_id = entry_id
        self.data = data
        self.job: JobMessage | None = job
        self.deliveries = deliveries


class StreamMessage(AckableMessage):
    """A delivered job as taskiq's receiver takes it (see `listen`): a `Delivery` with the
    acknowledgement taskiq calls."""

    entry_id: str = ""
    job: TaskiqMessage | None = None
    deliveries: int = 1


Delivered = Delivery | StreamMessage  # what the receiver tells the broker about


def _fields(flat: list[Any] | dict[Any, Any]) -> dict[Any, Any]:
    """A stream entry's fields as Redis returns them (a flat list) -> a mapping. (On a cluster the
    client parsed them already: a mapping.)"""
    if isinstance(flat, dict):
        return flat
    if len(flat) == 2:  # the one field a job entry has (`data`): no slicing and zipping
        return {flat[0]: flat[1]}
    return dict(zip(flat[::2], flat[1::2], strict=True))


class StreamBroker(AsyncBroker):
    def __init__(self, runtime: QueueRuntime) -> None:
        super().__init__()
        self.formatter = JobFormatter()  # refuses NaN and Infinity in job arguments (see `message`)
        self.runtime = runtime
        self.connections = QueueConnections(runtime)
        self.keys = QueueKeys(runtime.prefix, runtime.queue)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.in_flight = InFlight()
        self.acks = AckBatch(self.keys, lambda: self.hot, lambda: self.records)
        self._hot: HotConnection | None = None  # a worker's per-job round trips (see `hotpath`)
        self._stopping = asyncio.Event()
        self._unserved_said: set[str] = set()  # tasks whose jobs this worker handed back (said once each)
        self._background = Background()
        self._heartbeat: Heartbeat | None = None
        self._renewer: Renewer | None = None
        self._blocked_beats: redis.Redis | None = None  # the watchdog's, for beats while the loop is blocked
        self.watchdog = LoopWatchdog(runtime.queue)
        self._job_records: Records | None = None
        self.pause = PauseWatch(self.keys)
        self._limiter: RateLimiter | None = None
        self._weighted_until = 0.0  # until then, reads weigh the priority levels (see `_read`)

    @property
    def redis(self) -> aioredis.Redis:
        """The producer connection (fails fast), shared by sending, acknowledgements and upkeep."""
        return self.connections.producer

    @property
    def hot(self) -> HotConnection:
        """The connection of the per-job round trips (see `hotpath`); no I/O until its first command."""
        if self._hot is None:
            self._hot = HotConnection(self.redis, self.runtime.socket_timeout)
        return self._hot

    @property
    def records(self) -> Records:
        """This queue's completed and failed job records."""
        if self._job_records is None:
            self._job_records = Records(self.redis, self.keys)
        return self._job_records

    # --- lifecycle --------------------------------------------------------------------------------

    async def startup(self) -> None:
        await super().startup()
        await self.connections.check(announce=self.is_worker_process or self.is_scheduler_process)
        await self._create_group()
        if self.is_worker_process:
            client, runtime = self.redis, self.runtime
            self._heartbeat = worker_heartbeat(client, self.keys, self.consumer, self.in_flight,
                                               self.runtime.visibility_timeout)  # fmt: skip
            # Renewal and the watchdog run in threads of their own: a blocked event loop stops neither.
            self._renewer = Renewer(
                redis_connect.sync_client(runtime), self.keys, self.consumer, runtime.visibility_timeout, self.in_flight
            )
            self._renewer.start()
            # Its own client, one try per command: a hung Redis must not hold the watchdog's thread.
            heartbeat, beats = self._heartbeat, redis_connect.sync_client(runtime, once=True)
            self._blocked_beats = beats
            self.watchdog.on_blocked = lambda blocker: heartbeat.beat_blocked(beats, blocker)
            self.watchdog.tell_every = heartbeat.every
            self.watchdog.start()
            queue = runtime.queue
            if await self.pause.check(client):  # before the first read: a paused queue starts paused
                log.warning("queue %s: paused: taking no new jobs", queue)
            self._background.start(
                self.acks.step,
                Promoter(client, self.keys, runtime.batch).step,
                self._heartbeat.step,
                self.watchdog.step,
                self._watch_pause,
                Janitor(client, self.keys, self.consumer).step,
            )

    async def _watch_pause(self) -> None:
        """Follow the queue's paused key; while paused, give back the jobs read but not started."""
        was = self.pause.paused
        try:
            if await self.pause.check(self.redis):
                await self.release_unstarted()
        except Exception as exc:  # Redis away: the read loop says so; keep the last known state
            log.debug("queue %s: could not check the paused key (%s)", self.runtime.queue, exc)
        if self.pause.paused != was:
            log.warning("queue %s: %s", self.runtime.queue, "paused: taking no new jobs" if self.pause.paused
                        else "resumed: taking jobs again")  # fmt: skip
        await asyncio.sleep(CHECK_EVERY)

    async def _create_group(self) -> None:
        """The consumer group of each priority level's stream, reading from its start (id 0): jobs
        enqueued before it existed are delivered too."""
        for stream in self.keys.streams:
            with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
                await self.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)

    async def shutdown(self) -> None:
        """Stop the background loops, say goodbye, write what is pending, run the shutdown handlers
        (MongoDB closed) and close Redis. Every step is bounded in time (a Redis or MongoDB that
        went away cannot hold up a worker's exit), and none relies on cancellation."""
        await self._background.stop()
        self.watchdog.stop()
        if self._blocked_beats is not None:
            self._blocked_beats.close()
            self._blocked_beats = None
        if self._renewer is not None:
            self._renewer.stop()
            self._renewer.client.close()
            self._renewer = None
        if self._heartbeat is not None:  # a worker: say goodbye so status stops listing it
            await bounded(self._heartbeat.remove(), SHUTDOWN_STEP, "removing the heartbeat")
            self._heartbeat = None
        if self._hot is not None and self._hot.unread:  # a failure it reports goes with the last flush
            await bounded(self.acks.settle(), SHUTDOWN_STEP, "the last acknowledgement's reply")
        if self.acks.pending:
            await bounded(self.acks.flush(), SHUTDOWN_STEP, "the last acknowledgements")
        if self._hot is not None:
            await bounded(self._hot.close(), SHUTDOWN_STEP, "closing the acknowledging connection")
            self._hot = None
        await bounded(super().shutdown(), SHUTDOWN_STEP, "the shutdown handlers")
        await bounded(self.connections.close(), SHUTDOWN_STEP, "closing Redis")

    # --- sending ----------------------------------------------------------------------------------

    async def kick(self, message: BrokerMessage) -> None:
        """Send one job (taskiq's `kiq`). Its labels `delay`, `priority` and `dedupe` say when, on
        which level and whether its id is deduplicated (see `labels.placement`). While Redis cannot
        be reached (a restart, a failover) the send is tried again per `redis.connect_retry`, as
        connecting is, rather than fail at once; a reply lost with the connection can so make a job
        without an id that deduplicates go in twice (at least once)."""
        try:
            placement = labels.placement(message.labels)
        except labels.LabelError as exc:
            raise BootstrapError(f"job {message.task_id} ({message.task_name}) not sent: {exc}") from None
        target = replace(redis_connect.target(self.runtime), transient=_not_sent)
        await retry.call_async(target, lambda: self._kick(message, placement))

    async def _kick(self, message: BrokerMessage, placement: labels.Placement) -> None:
        """One attempt of `kick`."""
        if not placement.plain:
            await self.send([(message.task_id, message.message)], placement)
            return
        if not self.runtime.wait_replicas:
            await self.connections.sender.xadd(self.keys.stream, {"data": message.message})
            return
        pipe = self.connections.sender.pipeline(transaction=False)  # one connection: WAIT covers its writes
        pipe.xadd(self.keys.stream, {"data": message.message})
        await self._replicated(pipe, "job")

    async def _replicated(self, pipe: Any, what: str) -> list[Any]:
        """Run `pipe` followed by WAIT for `redis.wait.replicas`; NotReplicated when fewer replicas
        confirmed the writes within `redis.wait.timeout`."""
        replicas, timeout = self.runtime.wait_replicas, self.runtime.wait_timeout
        pipe.execute_command("WAIT", replicas, max(1, int(timeout * 1000)))
        *replies, confirmed = await pipe.execute()
        if int(confirmed) < replicas:
            raise NotReplicated(
                f"queue {self.runtime.queue}: the {what} was stored, but {confirmed} of {replicas} replica(s) "
                f"confirmed it within {timeout:g}s (redis.wait); a failover now could lose it"
            )
        return list(replies)

    async def send(self, jobs: Iterable[tuple[str, bytes]], placement: labels.Placement, chunk: int = 1000) -> Sent:
        """Enqueue (id, serialised job) pairs with one placement: one round trip (one Lua call over
        this queue's keys only: one slot on a cluster) per `chunk` jobs. With `placement.dedupe` a job
        whose id is already waiting, delayed or running is not added again (its id is in
        `Sent.existing`). With `redis.wait` each chunk is confirmed by the replicas."""
        if placement.plain:
            return Sent(await self.kick_data((data for _, data in jobs), chunk))
        script = self.connections.sender.register_script(_ENQUEUE)
        keys = [self.keys.ids, self.keys.delayed, *self.keys.streams, *Records.key_list_of(self.keys)]
        level = PRIORITIES.index(placement.priority) + 1
        remaining, added, existing = iter(jobs), 0, []
        while batch := list(itertools.islice(remaining, chunk)):
            try:
                count, seen = await self._send_batch(script, keys, batch, placement, level)
            except Exception as exc:
                if added:  # the batches before stay queued: say how many
                    raise PartlySent(added, exc) from exc
                raise
            added += int(count)
            existing += [as_text(job_id) for job_id in seen]
        return Sent(added, tuple(existing))

    async def _send_batch(
        self, script: Any, keys: list[str], batch: list[tuple[str, bytes]], placement: labels.Placement, level: int
    ) -> tuple[int, list[Any]]:
        """One batch of `send`: (jobs added, ids already there)."""
        now = time.time()
        due = now + placement.delay if placement.delay > 0 else 0
        args: list[Any] = [now]
        for job_id, data in batch:
            args += [job_id if placement.dedupe else "", due, level, data]
        if not self.runtime.wait_replicas:
            count, seen = await script(keys=keys, args=args)
        else:
            pipe = self.connections.sender.pipeline(transaction=False)
            await script(keys=keys, args=args, client=pipe)
            count, seen = (await self._replicated(pipe, f"batch of {len(batch)} jobs"))[0]
        return int(count), list(seen)

    async def kick_many(self, messages: Iterable[BrokerMessage], chunk: int = 1000) -> int:
        """Enqueue many jobs with pipelined XADDs: see `kick_data`."""
        return await self.kick_data((message.message for message in messages), chunk)

    async def kick_data(self, datas: Iterable[bytes], chunk: int = 1000) -> int:
        """Enqueue many serialised jobs: one round trip (one Lua call: far cheaper for the client
        than pipelined XADDs) per `chunk` jobs, taken from `datas` (an iterator is fine) a chunk at a
        time, so memory is bounded by the chunk."""
        add = self.connections.sender.register_script(_ADD_MANY)
        remaining, count = iter(datas), 0
        while batch := list(itertools.islice(remaining, chunk)):
            try:
                if not self.runtime.wait_replicas:
                    count += int(await add(keys=[self.keys.stream], args=batch))
                    continue
                pipe = self.connections.sender.pipeline(transaction=False)
                await add(keys=[self.keys.stream], args=batch, client=pipe)
                count += int((await self._replicated(pipe, f"batch of {len(batch)} jobs"))[0])
            except Exception as exc:
                if count:  # the batches before stay queued: say how many
                    raise PartlySent(count, exc) from exc
                raise
        return count

    async def delay(self, data: bytes, seconds: float) -> None:
        """Put a job back after `seconds` (a retry): it waits in the delayed set until due."""
        if not self.runtime.wait_replicas:
            await self.redis.zadd(self.keys.delayed, {data: time.time() + seconds})
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.keys.delayed, {data: time.time() + seconds})
        await self._replicated(pipe, "retry")

    # --- reading ----------------------------------------------------------------------------------

    @property
    def prefetch(self) -> int:
        """Most jobs this worker holds without running them: enough to keep it busy, few enough that
        slow jobs are not hoarded while other workers are idle."""
        return min(self.runtime.batch, max(10, 2 * self.runtime.concurrency))

    def _room(self, most: int | None = None) -> int:
        """Jobs this worker may read now (at most `most`: the rate limit's permits)."""
        room = max(1, self.prefetch - self.in_flight.waiting)
        return room if most is None else min(room, most)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Jobs to run, each once per delivery, as taskiq's receiver takes them (see `deliveries`)."""
        async for delivery in self.deliveries():
            yield self.ackable(delivery)

    async def deliveries(self) -> AsyncGenerator[Delivery, None]:
        """Jobs to run, each once per delivery. Entries that cannot run (see `intake`) are moved to
        the failed store with the reason, and logged, instead."""
        conn = self.connections.reader()
        hot = HotConnection(conn, self.runtime.socket_timeout)  # new jobs are read through it (see `hotpath`)
        reclaimer = Reclaimer(self.keys, self.consumer, self.runtime.visibility_timeout, self.in_flight)
        limit = self.runtime.rate_limit
        if limit is not None and self._limiter is None:
            self._limiter = RateLimiter(self.redis, self.keys, limit)
        order = ReadOrder()
        try:
            async for entry in self._listen(conn, hot, reclaimer, order):
                yield entry
        finally:
            await hot.close()

    async def _listen(
        self, conn: aioredis.Redis, hot: HotConnection, reclaimer: Reclaimer, order: ReadOrder
    ) -> AsyncGenerator[Delivery, None]:
        while not self._stopping.is_set():
            if self.pause.paused:  # see `pause`: no reads, no takeovers until resumed
                await asyncio.sleep(0.05)
                continue
            try:
                room = self._room
                permits = None
                if self._limiter is not None:
                    permits = await self._limiter.acquire(self._room())
                    if not permits.granted:  # the queue's rate limit is used up for now
                        await asyncio.sleep(min(permits.wait, 0.25))
                        continue
                    room = functools.partial(self._room, permits.granted)
                entries: list[tuple[Any, Any, int]] = []
                if reclaimer.due():
                    entries = await reclaimer.reclaim(conn, room)
                if not entries:
                    # Holding permits, never block: a permit counts from when it was granted, so one
                    # held through a long wait would let jobs taken at its end exceed the limit.
                    entries = await self._read(hot, order, room, limited=permits is not None)
                decided = []  # what each entry is (see intake), before the permits are settled
                for entry_id, fields, deliveries in entries:
                    ident = as_text(entry_id)
                    job = intake.accept(ident, fields, deliveries, self.runtime.max_deliveries, self._serves)
                    decided.append((ident, fields, deliveries, job))
                if permits is not None and self._limiter is not None:
                    # Jobs set aside or handed back do not run: their permits go back too.
                    runs = sum(isinstance(job, JobMessage) for *_, job in decided)
                    await self._limiter.refund(permits, runs)
                    if not entries:  # wait for a new job on any level without holding permits (nor taking it)
                        streams = self.keys.streams
                        await hot.call("XREAD", "COUNT", 1, "BLOCK", 500, "STREAMS", *streams, *["$"] * len(streams),
                                       block=0.5, key=streams[0])  # fmt: skip
            # A cluster with a slot whose master is down answers CLUSTERDOWN on every node until a
            # replica took over or the master is back; TRYAGAIN, MOVED or ASK while a slot moves (sent to
            # a named node, see hotpath): wait as for an outage.
            except (RedisConnectionError, RedisTimeoutError, OSError, ClusterDownError, TryAgainError, AskError) as exc:
                log.warning("queue %s: Redis read failed (%s); retrying in 1s", self.runtime.queue, exc)
                reclaimer.outage()  # no takeover until the owners of running jobs renewed them
                await asyncio.sleep(1)
                continue
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                if not getattr(exc, "bootstrap_reported", False):  # said already by the read connection
                    await self.connections.group_lost()
                await self._create_group()  # the stream or its group was deleted meanwhile
                continue
            # Every job read is ours from now on: renewed while it waits here, given back on shutdown.
            self.in_flight.hold(ident for ident, *_ in decided)
            for ident, fields, deliveries, job in decided:
                if isinstance(job, intake.Rejected):
                    self.reject(ident, job)
                elif isinstance(job, intake.Unserved):
                    await self.hand_back(ident, job)
                else:
                    yield Delivery(ident, fields[b"data"], job, deliveries)

    async def _read(
        self, hot: HotConnection, order: ReadOrder, room: Callable[[], int], limited: bool = False
    ) -> list[tuple[Any, Any, int]]:
        """New jobs, at most `room()`, each named by its entry reference (`entry_ref`: the level,
        unless normal, and the id).

        While at most one level has had jobs lately (the common case), one plain XREADGROUP over
        every level, highest first: as fast as reading one stream. Once a read finds jobs on several
        levels, the weighted read (one Lua call taking the levels in `order`, see `priority`) is used
        for WEIGHTED_FOR seconds, renewed while several levels stay busy. COUNT applies per stream in
        a plain read, so the read that finds several levels busy may bring more than the room (at
        most once per WEIGHTED_FOR; those jobs are held and renewed like any). When nothing waits, a
        read that blocks for at most a second until a job arrives on any level.

        `limited` (rate-limit permits held): always the Lua read, which never brings more than the
        room (the permits), and never blocking (see `listen`)."""
        if limited or time.monotonic() < self._weighted_until:
            levels = order.next()
            streams = [self.keys.stream_at(level) for level in levels]
            found: Any = await hot.script(_READ, streams, [GROUP, self.consumer, room()])
            if len(found or ()) > 1:
                self._weighted_until = time.monotonic() + WEIGHTED_FOR
            if found or limited:
                return [
                    (entry_ref(levels[int(number) - 1], as_text(entry_id)), _fields(flat), 1)
                    for number, batch in found or ()
                    for entry_id, flat in batch
                ]
        else:
            entries = await self._read_every_level(hot, room, block=None)
            if entries:
                return entries
        return await self._read_every_level(hot, room, block=1000)

    async def _read_every_level(
        self, hot: HotConnection, room: Callable[[], int], block: int | None
    ) -> list[tuple[Any, Any, int]]:
        """One XREADGROUP over every level's stream, highest first (COUNT: the room, per stream)."""
        streams = self.keys.streams
        command: list[Any] = ["XREADGROUP", "GROUP", GROUP, self.consumer, "COUNT", room()]
        if block is not None:
            command += ["BLOCK", block]
        fetched: Any = await hot.call(
            *command, "STREAMS", *streams, *[">"] * len(streams), block=(block or 0) / 1000, key=streams[0]
        )
        if isinstance(fetched, dict):  # RESP3: stream -> entries
            fetched = list(fetched.items())
        busy = [(stream, batch) for stream, batch in fetched or () if batch]
        if len(busy) > 1:  # several levels busy: weigh them for a while
            self._weighted_until = time.monotonic() + WEIGHTED_FOR
        level_of = {self.keys.stream_at(level): level for level in PRIORITIES}
        return [
            (entry_ref(level_of[as_text(stream)], as_text(entry_id)), _fields(flat), 1)
            for stream, batch in busy
            for entry_id, flat in batch
        ]

    def _serves(self, task_name: str) -> bool:
        return self.find_task(task_name) is not None

    def reject(self, entry_id: str, rejected: intake.Rejected) -> None:
        """Set an entry that cannot run aside: a record in the failed store (with the reason), then
        acknowledged, in the next flush; logged now."""
        ran = int(rejected.record.get("deliveries", 1)) > 1  # its workers died running it (the reason says so)
        log.error(
            "queue %s: job %s moved to the failed store%s: %s",
            self.runtime.queue,
            rejected.job_id,
            "" if ran else " without running",
            rejected.reason,
        )
        self.in_flight.let_go(entry_id)
        self.record(FAILED, rejected.record, self.runtime.failed_max_age, self.runtime.failed_max_count)
        self.acks.ack(entry_id, rejected.job_id)

    async def hand_back(self, entry_id: str, unserved: intake.Unserved) -> None:
        """A job of a task this worker does not serve (see `intake`): delayed UNSERVED_WAIT for the
        worker that reads it next, with the time it was first handed back, and acknowledged, in one
        step (`_HAND_BACK`): a crash leaves it either pending (taken over as any) or delayed. When
        Redis fails, it stays pending: taken over after the visibility timeout. Said once per task."""
        message = unserved.message
        message.labels[labels.UNSERVED_SINCE] = unserved.since
        try:
            data = self.formatter.dumps(message.to_taskiq()).message
        except Exception as exc:  # refused by the formatter (a NaN argument, a control character in the id)
            reason = f"unknown task '{message.task_name[:100]}', and it cannot be handed back: {exc}"
            self.reject(entry_id, intake.rejected(entry_id, unserved.raw, reason))
            return
        stream, entry = self.keys.locate(entry_id)
        self.in_flight.let_go(entry_id)
        script = self.redis.register_script(_HAND_BACK)
        # Jittered: a worker's reads and its own hand-backs keep one rhythm, which could let it win
        # the job back from the worker that serves it every time.
        due = time.time() + intake.UNSERVED_WAIT * random.uniform(0.5, 1.5)
        args: list[str | float | bytes] = [GROUP, entry, due, data]
        try:
            if not self.runtime.wait_replicas:
                await script(keys=[self.keys.delayed, stream], args=args)
            else:
                pipe = self.redis.pipeline(transaction=False)
                await script(keys=[self.keys.delayed, stream], args=args, client=pipe)
                await self._replicated(pipe, "hand-back")
        except NotReplicated as exc:  # stored on the primary: only a failover now could lose it
            log.warning("queue %s: job %s: %s", self.runtime.queue, message.task_id, exc)
        except (RedisError, OSError) as exc:
            log.warning("queue %s: handing back job %s failed (%s); it is delivered again after the visibility "
                        "timeout", self.runtime.queue, message.task_id, exc)  # fmt: skip
            return
        if message.task_name not in self._unserved_said:
            self._unserved_said.add(message.task_name)
            log.warning(
                "queue %s: job %s is of task '%s', which this worker's wiring does not declare (a rollout: "
                "another release's workers may serve it): handed back for about %gs at a time; it goes to the "
                "failed store if no worker of the queue takes it within %g minutes",
                self.runtime.queue, message.task_id, message.task_name[:100], intake.UNSERVED_WAIT,
                intake.UNSERVED_FOR / 60,
            )  # fmt: skip

    def stop_listening(self) -> None:
        """Make `listen` return after its current read (at most about a second)."""
        self._stopping.set()

    # --- acknowledging ----------------------------------------------------------------------------

    def ackable(self, delivery: Delivery) -> StreamMessage:
        """A delivery as taskiq's receiver takes it: with the acknowledgement it awaits once the job
        finished (the job keeps its slot until the acknowledgement is safe from a crash: see acks)."""
        ident, job = delivery.entry_id, delivery.job

        async def ack() -> None:
            self.in_flight.let_go(ident)
            await self.acks.acked(ident, job.task_id if job is not None else "")

        model = job.to_taskiq() if job is not None else None
        return StreamMessage(data=delivery.data, ack=ack, entry_id=ident, job=model, deliveries=delivery.deliveries)

    def record(self, outcome: str, record: dict[str, Any], max_age: float, max_count: int) -> None:
        """Queue the record of a finished job; it is written with the next batch of acknowledgements,
        before them. A deduplicated job's id leaves the id index with it."""
        self.acks.record(outcome, record, max_age, max_count)
        if labels.dedupe_or_false(record.get("labels") or {}):
            self.acks.forget(str(record["id"]))

    # --- what the receiver tells the broker -------------------------------------------------------

    def started(self, message: Delivered) -> None:
        """The receiver began running this job (it is no longer just prefetched)."""
        self.in_flight.start(message.entry_id, message.deliveries, message.job.task_id if message.job else "")

    def may_start(self, message: Delivered) -> bool:
        """False for a job the receiver must not run: the queue is paused (the job is given back
        within CHECK_EVERY), or it was given back already."""
        return not self.pause.paused and message.entry_id in self.in_flight

    def finished(self, message: Delivered) -> None:
        """The receiver ran this job to its end: acknowledged with the next flush (see acks), its slot
        held until then."""
        self.in_flight.let_go(message.entry_id)
        self.acks.finished(message.entry_id, message.job.task_id if message.job is not None else "")

    def abandon(self, message: Delivered) -> None:
        """Stop renewing a job this worker could not finish: another worker (or this one) takes it
        over after the visibility timeout."""
        self.in_flight.let_go(message.entry_id)

    async def release_unstarted(self) -> int:
        """Give back jobs this worker read but never started, for immediate redelivery."""
        ids = self.in_flight.unstarted()
        if not ids:
            return 0
        release, released = self.redis.register_script(_RELEASE), 0
        for stream, entry_ids in self.keys.by_stream(ids).items():  # back onto the level it came from
            entry_ids.sort(key=_stream_order)  # in the order they were sent, behind the jobs sent since
            released += int(await release(keys=[stream], args=[GROUP, *entry_ids]))
        self.in_flight.gave_back(ids)
        if released:
            log.info("queue %s: gave back %d job(s) not started before shutdown", self.runtime.queue, released)
        return released


    async def hand_back_cut(self) -> list[str]:
        """Jobs still running when the shutdown timeout ran out (cancelled now): delivered again
        after the visibility timeout (a handler in a thread may run on until this process exits),
        with this delivery not counted against `max_deliveries`: a stop is no crash, and a long job
        cut by a few deploys is no poison job. Their job ids."""
        running = self.in_flight.running_jobs()
        for ref, (deliveries, _) in running.items():
            stream, entry_id = self.keys.locate(ref)
            # JUSTID: the count is set to RETRYCOUNT, not raised; the idle time restarts from now.
            await self.redis.xclaim(stream, GROUP, self.consumer, 0, [entry_id],
                                    retrycount=max(0, deliveries - 1), justid=True)  # fmt: skip
            self.in_flight.let_go(ref)
        return [job_id or ref for ref, (_, job_id) in running.items()]


def _stream_order(entry_id: str) -> tuple[int, int]:
    """A stream entry id ("1700000000000-3") as the stream orders it."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _not_sent(exc: BaseException) -> bool:
    """A send worth another attempt: the connection failed (Redis restarting, failing over, or no
    free connection in time), not refused. A read that timed out is not: the command may have run
    (a WAIT longer than the socket timeout did), and another attempt would add the job again."""
    return isinstance(exc, RedisConnectionError) and redis_connect.transient(exc)
