"""Where one job is (`bootstrap jobs show`): delayed, waiting on a priority level's stream, running
(pending in the consumer group: which consumer holds it, for how long), or finished (completed or
failed, within retention).

A finished job is one hash lookup. The others are not indexed by id (the stream entries and the
delayed set hold the job's message), so they are searched: in batches, at most `limit` entries per
stream and of the delayed set, and the answer says when a search stopped there (`gave_up`). The places
are looked at in the order a job moves through them (delayed, then the streams, then the records),
so a job moving on during the search is still found; a retry moves it back (from its stream to the
delayed set), so when a job was not found the delayed set and the records are looked at once more.

Synchronous, like the rest of `admin`; no taskiq.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from bootstrap.jobs.records import COMPLETED, FAILED
from bootstrap.layout.keys import GROUP, NORMAL, PRIORITIES, QueueKeys, as_text

LIMIT = 100_000  # entries searched per stream and of the delayed set, by default
BATCH = 1_000  # entries read per round trip
WAITING, DELAYED, RUNNING = "waiting", "delayed", "running"


@dataclass(frozen=True)
class Found:
    """One job and its state: COMPLETED or FAILED (`job` is its record), or WAITING, DELAYED or
    RUNNING (`job` is its message: id, task, labels, args, kwargs)."""

    state: str
    job: dict[str, Any]
    level: str | None = None  # the priority level's stream it is on (or goes to, when delayed)
    entry_id: str | None = None  # its stream entry (waiting, running)
    due: float | None = None  # when a delayed job may run (epoch seconds)
    consumer: str | None = None  # the worker's consumer that holds a running job
    held_for: float | None = None  # seconds since it was last delivered to that consumer
    deliveries: int | None = None  # times it was delivered

    def to_json(self) -> dict[str, Any]:
        if self.state in (COMPLETED, FAILED):  # as before: the record, with its outcome
            return {"state": self.state, "outcome": self.state, **self.job}
        extra = {
            "level": self.level,
            "entry_id": self.entry_id,
            "due": self.due,
            "consumer": self.consumer,
            "held_for": self.held_for,
            "deliveries": self.deliveries,
        }
        return {"state": self.state, **{k: v for k, v in extra.items() if v is not None}, "job": self.job}


@dataclass(frozen=True)
class Lookup:
    found: Found | None
    gave_up: tuple[str, ...] = field(default=())  # the places whose search stopped at the limit
    limit: int = LIMIT


def find_job(client: redis.Redis, keys: QueueKeys, job_id: str, limit: int = LIMIT) -> Lookup:
    """Where job `job_id` of the queue is, searching at most `limit` entries per place."""
    gave_up: set[str] = set()
    found = _delayed(client, keys, job_id, limit, gave_up) or _on_streams(client, keys, job_id, limit, gave_up)
    found = found or _finished(client, keys, job_id)
    if found is None:  # a retry moves a job back (from its stream to the delayed set) during the search
        found = _delayed(client, keys, job_id, limit, gave_up) or _finished(client, keys, job_id)
    return Lookup(found, () if found is not None else tuple(sorted(gave_up)), limit)


def _finished(client: redis.Redis, keys: QueueKeys, job_id: str) -> Found | None:
    """Failed first: a failed record is the one to act on."""
    pipe = client.pipeline(transaction=False)
    pipe.hget(keys.record_data(FAILED), job_id)
    pipe.hget(keys.record_data(COMPLETED), job_id)
    failed, completed = pipe.execute()
    if failed:
        return Found(FAILED, json.loads(failed))
    if completed:
        return Found(COMPLETED, json.loads(completed))
    return None


def _message(data: Any, job_id: str, needle: bytes) -> dict[str, Any] | None:
    """The job in `data` (a message as JSON) if it is job `job_id`; the byte search skips parsing the
    others."""
    raw = data if isinstance(data, bytes) else str(data).encode()
    if needle not in raw:
        return None
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("task_id") != job_id:
        return None
    return {
        "id": job_id,
        "task": message.get("task_name"),
        "labels": message.get("labels", {}),
        "args": message.get("args", []),
        "kwargs": message.get("kwargs", {}),
    }


def _delayed(client: redis.Redis, keys: QueueKeys, job_id: str, limit: int, gave_up: set[str]) -> Found | None:
    needle = json.dumps(job_id).encode()
    start = 0
    while start < limit:
        batch: Any = client.zrange(keys.delayed, start, min(start + BATCH, limit) - 1, withscores=True)
        for data, due in batch:
            job = _message(data, job_id, needle)
            if job is not None:
                level = str(job["labels"].get("priority", NORMAL))
                return Found(DELAYED, job, level=level if level in PRIORITIES else NORMAL, due=float(due))
        if len(batch) < min(BATCH, limit - start):
            return None
        start += len(batch)
    if client.zcard(keys.delayed) > limit:
        gave_up.add(keys.delayed)
    return None


def _entries(client: redis.Redis, stream: str, limit: int, gave_up: set[str]) -> Iterator[tuple[str, Any]]:
    """The stream's entries (id, data), oldest first, at most `limit`."""
    start, seen = "-", 0
    while seen < limit:
        count = min(BATCH, limit - seen)
        batch: Any = client.xrange(stream, start, "+", count=count)
        for entry_id, fields in batch:
            yield as_text(entry_id), fields.get(b"data", fields.get("data"))
        seen += len(batch)
        if len(batch) < count:
            return
        start = "(" + as_text(batch[-1][0])
    if client.xrange(stream, start, "+", count=1):
        gave_up.add(stream)


def _on_streams(client: redis.Redis, keys: QueueKeys, job_id: str, limit: int, gave_up: set[str]) -> Found | None:
    needle = json.dumps(job_id).encode()
    for level in PRIORITIES:
        stream = keys.stream_at(level)
        for entry_id, data in _entries(client, stream, limit, gave_up):
            job = _message(data, job_id, needle)
            if job is None:
                continue
            # Delivered and not acknowledged: a worker holds it (running, or read and about to run).
            try:
                pending: Any = client.xpending_range(stream, GROUP, min=entry_id, max=entry_id, count=1)
            except redis.ResponseError:  # no consumer group yet (no worker started): nobody holds it
                pending = []
            if not pending:
                return Found(WAITING, job, level=level, entry_id=entry_id)
            held = pending[0]
            return Found(
                RUNNING,
                job,
                level=level,
                entry_id=entry_id,
                consumer=as_text(held["consumer"]),
                held_for=int(held["time_since_delivered"]) / 1000,
                deliveries=int(held["times_delivered"]),
            )
    return None


def describe_wait(found: Found, now: float | None = None) -> str:
    """How long a delayed job still waits, or how long ago it was due (a promoter will move it)."""
    now = time.time() if now is None else now
    left = (found.due or now) - now
    return f"in {left:.1f}s" if left >= 0 else f"due {-left:.1f}s ago"
