"""Batched acknowledgement of finished jobs, with their job records, in one round trip.

Finished jobs and their records are queued here; a flush runs one Lua script over the queue's keys
(one slot on Redis Cluster, where redis-py cannot send EVALSHA inside a pipeline) that writes the
records first, then XACK and XDEL of the finished entries. A crash before a flush only means the jobs
run again (at least once), records included. The worker flushes when a batch is full, else every
20 ms (`step`, which the broker's `Background` repeats).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import redis.asyncio as aioredis

from bootstrap.jobs.records import STORE_FUNCTION, Records
from bootstrap.layout.keys import GROUP, QueueKeys

# The broker's logger: these lines read as they did when the broker did this itself.
log = logging.getLogger("bootstrap.jobs.broker")

FLUSH_EVERY = 0.02  # seconds: the longest a finished job waits for its acknowledgement

# KEYS: stream, then index and data of each outcome (records.OUTCOMES order). ARGV: group, now,
# number of entry ids, the ids, then record batches (records.Records.segment) to the end.
_ACK = (
    STORE_FUNCTION
    + """
local now, count = ARGV[2], tonumber(ARGV[3])
local at = 4 + count
while at <= #ARGV do
  local outcome, n = tonumber(ARGV[at]), tonumber(ARGV[at + 3])
  local items = {unpack(ARGV, at + 4, at + 3 + 2 * n)}
  store(KEYS[2 * outcome], KEYS[2 * outcome + 1], now, ARGV[at + 1], ARGV[at + 2], items)
  at = at + 4 + 2 * n
end
if count > 0 then
  local ids = {unpack(ARGV, 4, 3 + count)}
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
  redis.call('XDEL', KEYS[1], unpack(ids))
end
return count
"""
)


class AckBatch:
    def __init__(self, keys: QueueKeys, batch: int) -> None:
        self.keys = keys
        self.batch = batch
        self._ids: list[str] = []
        self._records: list[tuple[str, dict[str, Any], float, int]] = []
        self._full = asyncio.Event()
        self._script: Any = None

    def ack(self, entry_id: str) -> None:
        """A job finished: acknowledge it with the next batch (at once when the batch is full)."""
        self._ids.append(entry_id)
        if len(self._ids) >= self.batch:
            self._full.set()

    @property
    def pending(self) -> bool:
        """Acknowledgements or records wait for a flush."""
        return bool(self._ids or self._records)

    def record(self, outcome: str, record: dict[str, Any], max_age: float, max_count: int) -> None:
        """Queue a job record; it is written with the next batch of acknowledgements, before them."""
        self._records.append((outcome, record, max_age, max_count))

    async def flush(self, client: aioredis.Redis, records: Records) -> None:
        """One round trip for a batch: job records first, then XACK and XDEL of the finished jobs."""
        if not self.pending:
            return
        ids, self._ids = self._ids, []
        pending, self._records = self._records, []
        batches: dict[tuple[str, float, int], list[dict[str, Any]]] = {}
        for outcome, record, max_age, max_count in pending:
            batches.setdefault((outcome, max_age, max_count), []).append(record)
        args: list[Any] = [GROUP, time.time(), len(ids), *ids]
        for (outcome, max_age, max_count), batch in batches.items():
            args += records.segment(outcome, batch, max_age, max_count)
        if self._script is None:
            self._script = client.register_script(_ACK)
        try:
            await self._script(keys=[self.keys.stream, *records.key_list()], args=args, client=client)
        except BaseException:  # cancellation at shutdown included: the final flush writes them
            self._ids[:0], self._records[:0] = ids, pending
            raise

    async def step(self, client: aioredis.Redis, records: Records, queue: str) -> None:
        """One round of the acknowledging loop: wait until a batch is full or 20 ms passed, flush."""
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can lose a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_EVERY):
                await self._full.wait()
        self._full.clear()
        try:
            await self.flush(client, records)
        except Exception as exc:  # acks stay pending and are retried; the jobs may rerun
            log.warning("queue %s: acknowledging failed (%s); will retry", queue, exc)
            await asyncio.sleep(0.5)
