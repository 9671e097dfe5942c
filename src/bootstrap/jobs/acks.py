"""Acknowledgement of finished jobs, with their job records, batched by the round trip.

Finished jobs and their records are queued here; a flush writes the buffered per-job log lines
(`logs.flush`), then one Lua script over the queue's keys (one slot on Redis Cluster) writes the
records, then frees the ids of finished deduplicated jobs, then XACK and XDEL of the finished entries
in each priority level's stream, in one round trip. A crash before a flush only
means the jobs run again (at least once), records and log lines included.

Under the fast receiver a finished job is queued (`finished`) and keeps its worker slot (see
receiver) until its acknowledgement is safe from the worker's death: a worker holds at most
`concurrency` jobs that ran or run and are not acknowledged, so a crash makes at most `concurrency`
jobs run twice. Nobody waits per job: a worker that has nothing left to run (every slot held, or no
job ready), or whose job is about to wait on I/O, sends what is queued in one flush (`drain`, group
commit), and the slots come back when it lands (`on_landed`), or, when no job runs, as soon as it is
in the socket whole (see `flush`). Under the stock receiver a finished job waits instead (`acked`):
the job whose acknowledgement finds no flush in flight sends it itself, and every acknowledgement
queued meanwhile goes out with the next, sent by the first of those jobs once the flight landed.
Records and the acknowledgements of rejected entries, which nobody waits for, go out within 20 ms
(`step`, which the broker's `Background` repeats; it also sends what a cancelled job left queued).
The round trips go over the worker's `HotConnection`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from bootstrap import logs
from bootstrap.jobs.hotpath import DEFERRED, HotConnection, Script
from bootstrap.jobs.records import STORE_FUNCTION, Records
from bootstrap.layout.keys import GROUP, PRIORITIES, QueueKeys

# The broker's logger: these lines read as they did when the broker did this itself.
log = logging.getLogger("bootstrap.jobs.broker")

FLUSH_EVERY = 0.02  # seconds: the longest a queued record or log line waits to be written
STUCK_AFTER = 5.0  # seconds after which the acknowledging loop sends a flush reserved for a job

# One Lua script over the queue's keys (one slot on Redis Cluster): records first, then HDEL of the
# freed job ids (deduplication), then XACK and XDEL of the finished entries in each priority level's
# stream, everything in chunks (Lua's unpack has a stack limit). A freed id goes with its job's
# entry, and leaves the index only if that entry's XACK is the first: a flush sent again after Redis
# ran it (its reply lost to a dropped connection or a shutdown) finds the entry acknowledged, and
# the id may belong to a job enqueued since.
# KEYS: id index, the level streams (QueueKeys.streams order), then index and data of each outcome
# (records.OUTCOMES order). ARGV: group, now, number of freed ids, for each its id, the number of
# its entry's stream (0: not known) and the entry id, then for each level stream the number of its
# entry ids and the ids, then record batches (Records.segment) to the end.
_STREAMS = len(PRIORITIES)
_ACK = Script(
    STORE_FUNCTION
    + f"""
local streams = {_STREAMS}
"""
    + """
local group, now = ARGV[1], ARGV[2]
local forget = tonumber(ARGV[3])
local acks = 4 + 3 * forget
local at = acks
for s = 1, streams do at = at + 1 + tonumber(ARGV[at]) end
while at <= #ARGV do
  local outcome, n = tonumber(ARGV[at]), tonumber(ARGV[at + 3])
  store(KEYS[1 + streams + 2 * outcome - 1], KEYS[1 + streams + 2 * outcome], now, ARGV[at + 1], ARGV[at + 2],
        ARGV, at + 4, at + 3 + 2 * n)
  at = at + 4 + 2 * n
end
for i = 4, 3 + 3 * forget, 3 do
  local s = tonumber(ARGV[i + 1])
  if s == 0 or redis.call('XACK', KEYS[1 + s], group, ARGV[i + 2]) == 1 then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
local done = 0
at = acks
for s = 1, streams do
  local count = tonumber(ARGV[at])
  for i = at + 1, at + count, 500 do
    local last = math.min(i + 499, at + count)
    redis.call('XACK', KEYS[1 + s], group, unpack(ARGV, i, last))
    redis.call('XDEL', KEYS[1 + s], unpack(ARGV, i, last))
  end
  done = done + count
  at = at + 1 + count
end
return done
"""
)


# A queued job record: outcome, record, max age, max count (see `record`).
_Queued = tuple[str, dict[str, Any], float, int]

_ACKED, _YOUR_TURN = "acked", "your turn"  # what a waiting job is told: done, or send the next flush


class AckBatch:
    def __init__(self, keys: QueueKeys, conn: Callable[[], HotConnection], records: Callable[[], Records]) -> None:
        self.keys = keys
        self._conn = conn  # where flushes go: the broker's, made on first use
        self._job_records = records
        self._ids: list[str] = []
        self._records: list[_Queued] = []
        # Ids of finished deduplicated jobs, to take out of the id index -> their entry ('': not known yet)
        self._forget: dict[str, str] = {}
        self._waiters: list[asyncio.Future[str]] = []  # jobs waiting for the next flush
        self._held = 0  # of the queued ids, how many hold a worker slot (see `finished`)
        self.on_landed: Callable[[int], None] = lambda slots: None  # slots given back by a flush
        # Slots of a flush not waited for that Redis refused, held again (the worker's free slots go
        # below zero until then: no job starts until the batch lands; see `flush`)
        self.on_refused: Callable[[int], None] = lambda slots: None
        self._defer = True  # a flush alone may go unwaited for (no refused one since the last that landed)
        self._streams = keys.streams  # fixed per queue: worked out once, not per flush
        self._keys = [keys.ids, *keys.streams, *Records.key_list_of(keys)]
        self._flushing = False  # a flush is in flight, or reserved for the job told to send it
        self._since = 0.0  # when the current flush began or was handed on
        self._queue = keys.queue

    def ack(self, entry_id: str, job_id: str) -> None:
        """Acknowledge an entry with a later flush, without waiting (an entry that did not run)."""
        self._ids.append(entry_id)
        if job_id in self._forget:
            self._forget[job_id] = entry_id

    def finished(self, entry_id: str, job_id: str) -> None:
        """A job finished (fast receiver): its acknowledgement goes with the next flush, and the slot
        it holds is given back (`on_landed`) once that is in Redis. Nothing waits for it here."""
        self._ids.append(entry_id)
        self._held += 1
        if job_id in self._forget:
            self._forget[job_id] = entry_id

    @property
    def held(self) -> int:
        """Finished jobs whose acknowledgement is queued and whose slot waits for it."""
        return self._held

    @property
    def flushing(self) -> bool:
        """A flush is in flight (or reserved for a job told to send it)."""
        return self._flushing

    async def drain(self, before_each: Callable[[], None], idle: Callable[[], bool]) -> None:
        """Flush until no finished job's acknowledgement is queued (Redis away: every half second,
        the slots stay held meanwhile). Called by a worker with nothing else to run; `before_each`
        runs before each round trip (the receiver gives the slots freed so far to an idle worker);
        `idle`: no job runs meanwhile, so the reply is not waited for (see `flush`): at concurrency 1
        every job would wait for the previous one's acknowledgement."""
        self._flushing, self._since = True, time.monotonic()
        try:
            while self._held:
                before_each()
                self._since = time.monotonic()  # each round is progress: the loop in `step` leaves it be
                try:
                    await self.flush(alone=idle())
                except Exception as exc:
                    log.warning("queue %s: acknowledging failed (%s); will retry", self._queue, exc)
                    await asyncio.sleep(0.5)
        finally:
            self._hand_off()

    async def acked(self, entry_id: str, job_id: str) -> None:
        """A job finished: return once its acknowledgement is in Redis. With no flush in flight this
        job sends it now; else it goes with the next flush, which the first job queued behind the
        one in flight sends. While Redis is away this waits, as the job's slot should."""
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._ids.append(entry_id)
        if job_id in self._forget:
            self._forget[job_id] = entry_id
        self._waiters.append(waiter)
        if self._flushing:
            try:
                if await waiter == _ACKED:
                    return
            except asyncio.CancelledError:  # its job was cancelled (a shutdown that overran)
                if waiter.done() and not waiter.cancelled():  # handed the turn as it was cancelled: pass it on
                    self._hand_off()
                raise
        await self._send(waiter)

    async def _send(self, own: asyncio.Future[str]) -> None:
        """Flush until it succeeds (Redis away: every half second), then hand the next flush on (not
        to the sender's own wait: cancelled, its job is gone)."""
        self._flushing, self._since = True, time.monotonic()
        try:
            while True:
                try:
                    await self.flush()
                    return
                except Exception as exc:  # acks stay pending; the jobs keep their slots
                    log.warning("queue %s: acknowledging failed (%s); will retry", self._queue, exc)
                    await asyncio.sleep(0.5)
        finally:
            if not own.done():
                own.cancel()
            self._hand_off()

    def _hand_off(self) -> None:
        """A flush landed: the first job queued meanwhile sends the next one. The flush stays
        reserved for it (`_flushing`): a job that finishes before it runs queues behind it instead of
        sending a flush of its own."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(_YOUR_TURN)
                self._since = time.monotonic()
                return
        self._flushing = False

    @property
    def pending(self) -> bool:
        """Acknowledgements or records wait for a flush."""
        return bool(self._ids or self._records or self._forget)

    def record(self, outcome: str, record: dict[str, Any], max_age: float, max_count: int) -> None:
        """Queue a job record; it is written with the next batch of acknowledgements, before them."""
        self._records.append((outcome, record, max_age, max_count))

    def forget(self, job_id: str) -> None:
        """A deduplicated job finished: its id leaves the id index with the next flush (it may be
        enqueued again from then on), with its entry's acknowledgement (which names the entry)."""
        self._forget.setdefault(job_id, "")

    async def flush(self, alone: bool = False) -> None:
        """One command for a batch: job records first, then XACK and XDEL of the finished jobs. The
        log lines of those jobs are written before it. `alone`: no job runs until it lands (a
        worker's every slot waits for it): its reply is not waited for once it is in the socket whole
        (hotpath.DEFERRED, which says why that is safe from the worker's death), so the slots come
        back at once and the next job runs while Redis runs this; the reply is read before the next
        flush, or within 20 ms (`step`). One that reports a failure (Redis full, a failover, NOSCRIPT,
        the connection lost) puts the batch back with its slots, taken from the jobs that run (see
        `on_refused`), and every flush is waited for until one lands: the worker stops taking jobs while
        Redis refuses them, as it does when a flush it waits for fails."""
        logs.flush()
        conn = self._conn()
        if conn.unread:  # the last flush's reply first: a failure puts its batch back into this one
            await conn.settle(spin=alone)
        if not self.pending:
            return
        records = self._job_records()
        ids, self._ids = self._ids, []
        pending, self._records = self._records, []
        forget, self._forget = self._forget, {}
        waiters, self._waiters = self._waiters, []
        held, self._held = self._held, 0
        later = None
        if alone and not waiters and self._defer:
            later = functools.partial(self._landed_later, ids, pending, forget, held)
        try:
            sent = await conn.script(_ACK, self._keys, self._arguments(ids, pending, forget, records), spin=alone,
                                     later=later)  # fmt: skip
        except BaseException:  # cancellation at shutdown included: the final flush writes them
            self._put_back(ids, pending, forget, held)
            self._waiters[:0] = waiters
            raise
        if sent is not DEFERRED:
            self._defer = True  # Redis took a batch: the next may go unwaited for again
        if held:
            self.on_landed(held)
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(_ACKED)

    def _landed_later(
        self,
        ids: list[str],
        pending: list[_Queued],
        forget: dict[str, str],
        held: int,
        reply: Any,
    ) -> None:
        """The reply to a flush not waited for (see `flush`). On a failure its batch goes with the next
        flush (sent again, it finds what Redis did run done: see _ACK), and its slots, given back when
        it was written, are held again (`on_refused`)."""
        if not isinstance(reply, Exception):
            return
        log.warning("queue %s: acknowledging failed (%s); will retry", self._queue, reply)
        self._put_back(ids, pending, forget, held)
        self._defer = False
        if held:
            self.on_refused(held)

    def _put_back(self, ids: list[str], pending: list[_Queued], forget: dict[str, str], held: int) -> None:
        """A batch that did not land, ahead of what was queued since: it goes with the next flush."""
        self._ids[:0], self._records[:0] = ids, pending
        self._forget = {**forget, **self._forget}
        self._held += held

    @property
    def unread(self) -> bool:
        """The reply to the last flush is not read yet (see `flush`)."""
        return self._conn().unread

    async def settle(self) -> None:
        """Read the reply to the last flush, if it is not read yet (see `flush`)."""
        await self._conn().settle(spin=False)

    def _arguments(
        self,
        ids: list[str],
        pending: list[_Queued],
        forget: dict[str, str],
        records: Records,
    ) -> list[Any]:
        """The acknowledging script's ARGV for one batch (see _ACK)."""
        args: list[Any] = [GROUP, time.time(), len(forget)]
        for job_id, ref in forget.items():
            stream, entry_id = self.keys.locate(ref) if ref else ("", "")
            args += [job_id, self._streams.index(stream) + 1 if ref else 0, entry_id]
        by_stream = self.keys.by_stream(ids)  # entries named `level/id` go to their level's stream
        for stream in self._streams:
            entry_ids = by_stream.get(stream, [])
            args += [len(entry_ids), *entry_ids]
        batches: dict[tuple[str, float, int], list[dict[str, Any]]] = {}
        for outcome, record, max_age, max_count in pending:
            batches.setdefault((outcome, max_age, max_count), []).append(record)
        for (outcome, max_age, max_count), batch in batches.items():
            args += records.segment(outcome, batch, max_age, max_count)
        return args

    async def step(self) -> None:
        """One round of the acknowledging loop: every 20 ms, flush what nobody is sending (or what a
        flush that has been stuck for STUCK_AFTER seconds left: its job is gone)."""
        await asyncio.sleep(FLUSH_EVERY)
        if self.unread and not self._flushing:  # a failure it reports is sent again without delay
            await self.settle()
        if not self.pending or (self._flushing and time.monotonic() - self._since < STUCK_AFTER):
            logs.flush()
            return
        self._flushing, self._since = True, time.monotonic()
        try:
            await self.flush()
        except Exception as exc:  # acks stay pending and are retried; the jobs may rerun
            log.warning("queue %s: acknowledging failed (%s); will retry", self._queue, exc)
            await asyncio.sleep(0.5)
        finally:
            self._hand_off()
            if self._held and not self._flushing:  # queued meanwhile by a worker now idle: wake one to send it
                self.on_landed(0)
