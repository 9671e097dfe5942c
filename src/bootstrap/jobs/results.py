"""A completed job's return value, kept with its record, and awaitable from Python the taskiq way.

`kept(value)` is what a completed record holds of what the handler returned: `result`, the value as
JSON, when it is JSON (NaN and Infinity are not) and no larger than the queue's `results.max_bytes`
(default 64 KiB: records live in Redis memory); otherwise `result` is null and `result_error` says
why (its type and a short repr, or its size, also in `result_bytes`; an oversized one is logged as a
warning), so a value that cannot be kept is never silently turned into text or dropped.

`RecordsResultBackend` is taskiq's result backend over the job records (no second store, same
retention): `await (await task.kiq()).wait_result()` returns the completed job's result, or for a job
that failed for good a result whose `raise_for_error()` raises `JobFailed` with its error; for a job
whose result was not kept, `is_err` is true and `raise_for_error()` raises `ResultNotKept`, saying
why (the size). A retried job has no result until its last attempt.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from taskiq import AsyncResultBackend, TaskiqResult

from bootstrap.errors import JobFailed, ResultNotKept
from bootstrap.jobs.records import COMPLETED, FAILED
from bootstrap.spec.model import Queue

if TYPE_CHECKING:
    from bootstrap.jobs.broker import StreamBroker

SHOWN = 200  # characters of a value that is not JSON kept in its record's `result_error`
MAX_BYTES = Queue.result_max_bytes  # the default of a queue's `results.max_bytes`

log = logging.getLogger("bootstrap.jobs.results")


def kept(value: Any, max_bytes: int = MAX_BYTES, job_id: str = "") -> dict[str, Any]:
    """The record fields for a handler's return value `value` (of job `job_id`, for the warning)."""
    if _plainly_kept(value, max_bytes):  # most handlers: nothing to check
        return {"result": value}
    try:
        text = json.dumps(value, allow_nan=False)  # ASCII: its length is its size in bytes
    except (TypeError, ValueError) as exc:
        shown = repr(value)
        shown = shown if len(shown) <= SHOWN else shown[: SHOWN - 3] + "..."
        return {"result": None, "result_error": f"not kept: the return value is not JSON ({exc}): {shown}"}
    if len(text) > max_bytes:
        why = too_large(len(text), max_bytes)
        log.warning("job %s: its return value was %s", job_id, why)  # once: a job completes once
        return {"result": None, "result_error": f"not kept: the return value is {why}", "result_bytes": len(text)}
    return {"result": value}


def too_large(size: int, max_bytes: int) -> str:
    return f"{size:,} bytes as JSON, more than the queue's results.max_bytes ({max_bytes:,}): not kept"


def _plainly_kept(value: Any, max_bytes: int) -> bool:
    """None (always kept: nothing returned is no error), a bool or a 64-bit int under a cap of at
    least 20 bytes (the longest such int's JSON), or a short str: JSON as it is and under the cap
    (a str's JSON is at most 12 bytes a character, a surrogate pair's escapes, plus its quotes), no
    encoding needed to tell."""
    kind = type(value)
    return (
        value is None
        or (max_bytes >= 20 and (kind is bool or (kind is int and -(2**63) <= value < 2**63)))
        or (kind is str and 12 * len(value) + 2 <= max_bytes)
    )


class RecordsResultBackend(AsyncResultBackend[Any]):
    """Results read from a queue's completed and failed job records (the worker writes those)."""

    def __init__(self, broker: StreamBroker) -> None:
        self.broker = broker

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        """Nothing to do: the worker keeps the result in the job's record."""

    async def is_result_ready(self, task_id: str) -> bool:
        keys = self.broker.keys
        pipe = self.broker.redis.pipeline(transaction=False)
        pipe.hexists(keys.record_data(COMPLETED), task_id)
        pipe.hexists(keys.record_data(FAILED), task_id)
        return any(await pipe.execute())

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        keys = self.broker.keys
        pipe = self.broker.redis.pipeline(transaction=False)
        pipe.hget(keys.record_data(COMPLETED), task_id)
        pipe.hget(keys.record_data(FAILED), task_id)
        completed, failed = await pipe.execute()
        if completed is not None:
            record = json.loads(completed)
            not_kept = record.get("result_error")
            # Completed, but nothing to return: an error result saying why, not a silent None (raised
            # here, taskiq would hide it in a ResultGetError that says only "Cannot get result").
            return TaskiqResult(
                is_err=bool(not_kept),
                return_value=record.get("result"),
                execution_time=float(record.get("duration", 0.0)),
                labels=record.get("labels", {}),
                error=ResultNotKept(f"job {task_id} completed, but its result was {not_kept}") if not_kept else None,
            )
        if failed is not None:
            record = json.loads(failed)
            return TaskiqResult(
                is_err=True,
                return_value=None,
                execution_time=float(record.get("duration", 0.0)),
                labels=record.get("labels", {}),
                error=JobFailed(f"job {task_id} failed: {record.get('error', 'unknown error')}"),
            )
        raise JobFailed(f"no result for job {task_id} on queue {keys.queue}: not finished, or its record expired")
