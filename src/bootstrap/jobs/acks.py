"""Batched acknowledgement of finished jobs, with their job records, in one round trip.

Finished jobs and their records are queued here; a flush writes the records first, then XACK and
XDEL of the finished entries, all in one pipeline. A crash before a flush only means the jobs run
again (at least once), records included. The worker flushes when a batch is full, else every 20 ms
(`step`, which the broker's `Background` repeats).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis

from bootstrap.jobs.records import Records
from bootstrap.layout.keys import GROUP, QueueKeys

# The broker's logger: these lines read as they did when the broker did this itself.
log = logging.getLogger("bootstrap.jobs.broker")

FLUSH_EVERY = 0.02  # seconds: the longest a finished job waits for its acknowledgement


class AckBatch:
    def __init__(self, keys: QueueKeys, batch: int) -> None:
        self.keys = keys
        self.batch = batch
        self._ids: list[str] = []
        self._records: list[tuple[str, dict[str, Any], float, int]] = []
        self._forget: list[str] = []  # ids of finished deduplicated jobs, to take out of the id index
        self._full = asyncio.Event()

    def ack(self, entry_id: str) -> None:
        """A job finished: acknowledge it with the next batch (at once when the batch is full)."""
        self._ids.append(entry_id)
        if len(self._ids) >= self.batch:
            self._full.set()

    @property
    def pending(self) -> bool:
        """Acknowledgements or records wait for a flush."""
        return bool(self._ids or self._records or self._forget)

    def record(self, outcome: str, record: dict[str, Any], max_age: float, max_count: int) -> None:
        """Queue a job record; it is written with the next batch of acknowledgements, before them."""
        self._records.append((outcome, record, max_age, max_count))

    def forget(self, job_id: str) -> None:
        """A deduplicated job finished: its id leaves the id index with the next flush (it may be
        enqueued again from then on)."""
        self._forget.append(job_id)

    async def flush(self, client: aioredis.Redis, records: Records) -> None:
        """One round trip for a batch: job records first, then XACK and XDEL of the finished jobs."""
        if not self.pending:
            return
        ids, self._ids = self._ids, []
        pending, self._records = self._records, []
        forget, self._forget = self._forget, []
        pipe = client.pipeline(transaction=False)
        batches: dict[tuple[str, float, int], list[dict[str, Any]]] = {}
        for outcome, record, max_age, max_count in pending:
            batches.setdefault((outcome, max_age, max_count), []).append(record)
        for (outcome, max_age, max_count), batch in batches.items():
            await records.queue_store(pipe, outcome, batch, max_age, max_count)
        if forget:  # before the acknowledgements: a crash between leaves the job to run again, its id free
            pipe.hdel(self.keys.ids, *forget)
        for stream, entry_ids in self.keys.by_stream(ids).items():  # one stream per priority level
            pipe.xack(stream, GROUP, *entry_ids)
            pipe.xdel(stream, *entry_ids)
        try:
            await pipe.execute()
        except BaseException:  # cancellation at shutdown included: the final flush writes them
            self._ids[:0], self._records[:0], self._forget[:0] = ids, pending, forget
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
