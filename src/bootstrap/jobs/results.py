"""A completed job's return value, kept with its record, and awaitable from Python the taskiq way.

`kept(value)` is what a completed record holds of what the handler returned: `result`, the value as
JSON, when it is JSON (NaN and Infinity are not); otherwise `result` is null and `result_error` says
why (its type and a short repr), so a value that cannot be kept is never silently turned into text.

`RecordsResultBackend` is taskiq's result backend over the job records (no second store, same
retention): `await (await task.kiq()).wait_result()` returns the completed job's result, or for a job
that failed for good a result whose `raise_for_error()` raises `JobFailed` with its error. A retried
job has no result until its last attempt.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from taskiq import AsyncResultBackend, TaskiqResult

from bootstrap.errors import JobFailed
from bootstrap.jobs.records import COMPLETED, FAILED

if TYPE_CHECKING:
    from bootstrap.jobs.broker import StreamBroker

_PLAIN = (str, int, bool)  # JSON as they are (a float may be NaN)
SHOWN = 200  # characters of a value that is not JSON kept in its record's `result_error`


def kept(value: Any) -> dict[str, Any]:
    """The record fields for a handler's return value `value`."""
    if value is None or type(value) in _PLAIN:  # most handlers: nothing to check
        return {"result": value}
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        shown = repr(value)
        shown = shown if len(shown) <= SHOWN else shown[: SHOWN - 3] + "..."
        return {"result": None, "result_error": f"not kept: the return value is not JSON ({exc}): {shown}"}
    return {"result": value}


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
            return TaskiqResult(
                is_err=False,
                return_value=record.get("result"),
                execution_time=float(record.get("duration", 0.0)),
                labels=record.get("labels", {}),
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
