"""Worker-side behaviour the Taskiq receiver runs around each job: real exponential retries, job
records with retention, and start/finish log lines.

A job's retry policy comes from the spec, never from its labels (which anyone who can write to Redis
can set): the task's declared `retry`, or for a job a schedule fired, that schedule's `retry` as
`bootstrap apply` stored it. A transient connection error (see `transient`) is retried apart from
that policy, up to 5 times per job."""

from __future__ import annotations

import logging
import random
import traceback
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from bootstrap import logs
from bootstrap.errors import RetryAfter
from bootstrap.jobs import labels, results, transient
from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.contract import QueueContract
from bootstrap.jobs.labels import ATTEMPT, RETRY, RETRY_AFTERS
from bootstrap.jobs.message import Message, of
from bootstrap.jobs.records import COMPLETED, FAILED
from bootstrap.layout import schedules as stored
from bootstrap.layout.schedules import retry_from_json
from bootstrap.redact import mask
from bootstrap.spec.model import RetryPolicy

__all__ = ["ATTEMPT", "RETRY", "JobsMiddleware", "attempt_of", "retry_delay"]  # ATTEMPT, RETRY: re-exported

log = logging.getLogger("bootstrap.jobs")


def attempt_of(message: Message) -> int:
    """The attempt a job is on (a malformed label counts as the first: see `labels`)."""
    return labels.attempt_or_first(message.labels)


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

    def __init__(self, broker: StreamBroker, queue: QueueContract) -> None:
        super().__init__()
        self.stream_broker = broker
        self.queue = queue

    async def policy(self, message: Message) -> RetryPolicy | None:
        """The retry policy the spec gives this job (None: a failed job is not retried)."""
        try:
            declared = self.queue.task(message.task_name).retry
        except LookupError:
            return None
        try:
            schedule_id = labels.schedule_id(message.labels)
        except labels.LabelError:
            schedule_id = None
        if schedule_id is None:
            return declared
        # Kept with the queue it fires into: this one.
        raw = await self.stream_broker.redis.hget(self.stream_broker.keys.schedules, schedule_id)
        definition = stored.decode(raw) if raw is not None else None
        if definition is None:
            log.warning(
                "job %s: schedule %s is not stored in Redis; retrying with task %s's own policy",
                message.task_id,
                schedule_id,
                message.task_name,
            )
            return declared
        try:
            return retry_from_json(definition["retry"])
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("job %s: schedule %s has no readable retry policy (%s)", message.task_id, schedule_id, exc)
        return declared

    # --- what happens around a job ------------------------------------------------------------------

    # The start and completion lines go through `logs.job_info` (buffered, written before the job's
    # acknowledgement): the ordinary logging call costs as much as the rest of a no-op job.

    def started(self, message: Message) -> None:
        queue, attempt = self.stream_broker.runtime.queue, attempt_of(message)
        line = f"job started: queue={queue} task={message.task_name} id={message.task_id} attempt={attempt}"
        if not logs.job_info(log, line, message.task_id):
            log.info(
                "job started: queue=%s task=%s id=%s attempt=%d", queue, message.task_name, message.task_id, attempt
            )

    def completed(self, message: Message, duration: float, result: Any = None) -> None:
        """The job returned `result`: kept with its completed record (see `results.kept`)."""
        runtime = self.stream_broker.runtime
        line = f"job completed: queue={runtime.queue} task={message.task_name} id={message.task_id} in {duration:.3f}s"
        if not logs.job_info(log, line, message.task_id):
            log.info(
                "job completed: queue=%s task=%s id=%s in %.3fs",
                runtime.queue,
                message.task_name,
                message.task_id,
                duration,
            )
        record = _record(message, duration)
        record.update(results.kept(result, runtime.result_max_bytes, message.task_id))
        self.stream_broker.record(COMPLETED, record, runtime.completed_max_age, runtime.completed_max_count)

    async def failed(self, message: Message, exception: BaseException, duration: float) -> None:
        runtime = self.stream_broker.runtime
        attempt = attempt_of(message)
        if isinstance(exception, RetryAfter) and await self._retry_after(message, exception):
            return
        spent = labels.transient_retries_or_none(message.labels)
        if transient.is_transient(exception) and spent < transient.TRANSIENT_RETRIES:
            # The failure says nothing about the job: retry it apart from its own policy.
            delay = transient.delay(spent + 1)
            message.labels[labels.TRANSIENT] = spent + 1
            await self.stream_broker.delay(self.stream_broker.formatter.dumps(of(message)).message, delay)
            log.warning(
                "job failed on a transient error: queue=%s task=%s id=%s attempt %d: %s; retrying in %gs "
                "(transient retry %d of %d, apart from the task's retry policy)",
                runtime.queue,
                message.task_name,
                message.task_id,
                attempt,
                _error(exception),
                delay,
                spent + 1,
                transient.TRANSIENT_RETRIES,
            )
            return
        policy = await self.policy(message)
        if policy is not None and attempt < policy.attempts:
            delay = retry_delay(policy, attempt)
            message.labels[labels.ATTEMPT] = attempt + 1
            await self.stream_broker.delay(self.stream_broker.formatter.dumps(of(message)).message, delay)
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
        error = _error(exception)
        log.error(
            "job failed for good: queue=%s task=%s id=%s after %d attempt(s): %s",
            runtime.queue,
            message.task_name,
            message.task_id,
            attempt,
            error,
        )
        record = _record(message, duration)
        record.update(  # the record lives in Redis (and its backups) for the retention
            error=error,  # masked as printed: see _error
            traceback=_traceback(exception),
            attempts=attempt,
            max_attempts=policy.attempts if policy else 1,
            transient_retries=spent,
        )
        self.stream_broker.record(FAILED, record, runtime.failed_max_age, runtime.failed_max_count)

    async def _retry_after(self, message: Message, exception: RetryAfter) -> bool:
        """Put the job back for after the time it asked for, its attempt unchanged; False when it
        asked too many times in a row (it then fails as any other error would)."""
        try:
            asked = labels.whole_number(message.labels, RETRY_AFTERS, 0, 0, RetryAfter.MAX_RETRY_AFTER)
        except labels.LabelError:  # malformed (set by hand): as if all were spent
            asked = RetryAfter.MAX_RETRY_AFTER
        if asked >= RetryAfter.MAX_RETRY_AFTER:
            return False
        message.labels[RETRY_AFTERS] = asked + 1
        await self.stream_broker.delay(self.stream_broker.formatter.dumps(of(message)).message, exception.seconds)
        log.info(
            "job asked to run again later: queue=%s task=%s id=%s attempt %d: %s (no attempt spent)",
            self.stream_broker.runtime.queue,
            message.task_name,
            message.task_id,
            attempt_of(message),
            exception,
        )
        return True

    # --- taskiq's hooks -----------------------------------------------------------------------------

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self.started(message)
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        if not result.is_err:  # errors are handled in on_error
            self.completed(message, result.execution_time, result.return_value)

    async def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        await self.failed(message, exception, result.execution_time)


ERROR_KEPT = 8 * 1024  # characters of a failed job's error kept in its record and log lines
TRACEBACK_KEPT = 32 * 1024  # and of its traceback: its head (the frames) and its tail (the error)


def _error(exception: BaseException) -> str:
    """The error as logged and recorded: masked, then cut to ERROR_KEPT characters (a driver error can
    quote a whole document: megabytes, in Redis for the retention and in every log line). Masked
    first: a URL cut before its `@host` would no longer be recognised as one."""
    return _cut(mask(f"{type(exception).__name__}: {exception}"), ERROR_KEPT, keep_tail=False)


def _traceback(exception: BaseException) -> str:
    return _cut(mask("".join(traceback.format_exception(exception))), TRACEBACK_KEPT, keep_tail=True)


def _cut(text: str, most: int, *, keep_tail: bool) -> str:
    if len(text) <= most:
        return text
    cut = len(text) - most
    if not keep_tail:
        return f"{text[:most]} [... {cut:,} more characters not kept]"
    return f"{text[: most // 2]}\n[... {cut:,} characters not kept ...]\n{text[-most // 2 :]}"


def _record(message: Message, duration: float) -> dict[str, Any]:
    return {
        "id": message.task_id,
        "task": message.task_name,
        "args": message.args,
        "kwargs": message.kwargs,
        "labels": dict(message.labels),  # `jobs retry` re-enqueues with them (the attempt reset)
        "attempt": attempt_of(message),
        "duration": duration,
    }
