"""Failed-job records written straight into a queue's failed store, shaped as the workers write
them (`jobs.middleware`), for dashboard tests that need many of them fast."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from bootstrap.jobs.records import COMPLETED, FAILED
from bootstrap.layout.keys import QueueKeys


def record(job_id: str, task: str, finished: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": job_id, "task": task, "args": [], "kwargs": {"n": job_id}, "labels": {"attempt": "3"},
        "attempt": 3, "attempts": 3, "max_attempts": 3, "duration": 0.01, "finished_at": finished,
        "error": f"RuntimeError: job {job_id} failed", "traceback": f"Traceback (most recent call last):\n  {job_id}\n",
        **extra,
    }  # fmt: skip


def add_records(
    client: redis.Redis, keys: QueueKeys, task: str, count: int, *, outcome: str = FAILED,
    newest: float | None = None, step: float = 1.0, prefix: str = "job",
) -> list[str]:
    """`count` records, `step` seconds apart, the last finished at `newest`; returns their ids, oldest first."""
    newest = time.time() if newest is None else newest
    ids = [f"{prefix}-{i:05d}" for i in range(count)]
    pipe = client.pipeline(transaction=False)
    for i, job_id in enumerate(ids):
        finished = newest - (count - 1 - i) * step
        pipe.zadd(keys.records(outcome), {job_id: finished})
        pipe.hset(keys.record_data(outcome), job_id, json.dumps(record(job_id, task, finished)))
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return ids


__all__ = ["COMPLETED", "FAILED", "add_records", "record"]
