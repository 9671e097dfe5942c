"""Worker-side behaviour the Taskiq receiver runs around each job: real exponential retries, job
records with retention, and start/finish log lines."""

from __future__ import annotations

import json
import logging
import random
import traceback
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.records import COMPLETED, FAILED
from bootstrap.layout.schedules import retry_from_json
from bootstrap.spec.model import RetryPolicy

log = logging.getLogger("bootstrap.jobs")

ATTEMPT = "attempt"  # label: which attempt this delivery is (1 = first)
RETRY = "retry"  # label: the retry policy as JSON


def message_policy(message: TaskiqMessage) -> RetryPolicy | None:
    """The job's retry policy; a malformed one counts as none (the job still fails into the store)."""
    raw = message.labels.get(RETRY)
    if not raw:
        return None
    try:
        return retry_from_json(json.loads(raw) if isinstance(raw, str) else raw)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("job %s has a malformed retry label (%s); not retrying it", message.task_id, exc)
        return None


def attempt_of(message: TaskiqMessage) -> int:
    try:
        return max(1, int(message.labels.get(ATTEMPT, 1)))
    except (ValueError, TypeError):
        return 1


def retry_delay(policy: RetryPolicy, attempt: int) -> float:
    """Seconds before the attempt after `attempt`: delay, 2 x delay, 4 x delay ... capped, with
    up to +/-50 % jitter when the policy asks for it."""
    delay = policy.delay_before(attempt)
    if policy.jitter:
        delay *= random.uniform(0.5, 1.5)
    return min(delay, policy.max_delay)


class JobsMiddleware(TaskiqMiddleware):
    """Retries a failed job after a real (exponential) delay until its attempts are used up, then
    records it in the queue's failed-job store; records completed jobs; logs both.

    The taskiq hooks (pre_execute, post_execute, on_error) serve a plain `taskiq worker`; the fast
    receiver calls `started`, `completed` and `failed` directly."""

    def __init__(self, broker: StreamBroker) -> None:
        super().__init__()
        self.stream_broker = broker

    # --- what happens around a job ------------------------------------------------------------------

    def started(self, message: TaskiqMessage) -> None:
        log.info(
            "job started: queue=%s task=%s id=%s attempt=%d",
            self.stream_broker.runtime.queue,
            message.task_name,
            message.task_id,
            attempt_of(message),
        )

    def completed(self, message: TaskiqMessage, duration: float) -> None:
        runtime = self.stream_broker.runtime
        log.info(
            "job completed: queue=%s task=%s id=%s in %.3fs",
            runtime.queue,
            message.task_name,
            message.task_id,
            duration,
        )
        self.stream_broker.record(
            COMPLETED, _record(message, duration), runtime.completed_max_age, runtime.completed_max_count
        )

    async def failed(self, message: TaskiqMessage, exception: BaseException, duration: float) -> None:
        runtime = self.stream_broker.runtime
        policy = message_policy(message)
        attempt = attempt_of(message)
        if policy is not None and attempt < policy.attempts:
            delay = retry_delay(policy, attempt)
            message.labels[ATTEMPT] = attempt + 1
            await self.stream_broker.delay(self.stream_broker.formatter.dumps(message).message, delay)
            log.warning(
                "job failed: queue=%s task=%s id=%s attempt %d of %d: %s; retrying in %.2fs",
                runtime.queue,
                message.task_name,
                message.task_id,
                attempt,
                policy.attempts,
                _error(exception),
                delay,
            )
            return
        log.error(
            "job failed for good: queue=%s task=%s id=%s after %d attempt(s): %s",
            runtime.queue,
            message.task_name,
            message.task_id,
            attempt,
            _error(exception),
        )
        record = _record(message, duration)
        record.update(
            error=_error(exception),
            traceback="".join(traceback.format_exception(exception)),
            attempts=attempt,
            max_attempts=policy.attempts if policy else 1,
        )
        self.stream_broker.record(FAILED, record, runtime.failed_max_age, runtime.failed_max_count)

    # --- taskiq's hooks -----------------------------------------------------------------------------

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self.started(message)
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        if not result.is_err:  # errors are handled in on_error
            self.completed(message, result.execution_time)

    async def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        await self.failed(message, exception, result.execution_time)


def _error(exception: BaseException) -> str:
    return f"{type(exception).__name__}: {exception}"


def _record(message: TaskiqMessage, duration: float) -> dict[str, Any]:
    return {
        "id": message.task_id,
        "task": message.task_name,
        "args": message.args,
        "kwargs": message.kwargs,
        "labels": dict(message.labels),  # the retry policy included: `jobs retry` re-enqueues with it
        "attempt": attempt_of(message),
        "duration": duration,
    }
