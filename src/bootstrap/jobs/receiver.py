"""A leaner Taskiq receiver for the generated tasks (`taskiq worker --receiver
bootstrap.jobs.receiver:FastReceiver`, which the launcher passes).

Taskiq's receiver resolves dependencies, builds result models and awaits every middleware hook for
every job; for our tasks none of that is needed: the job runs its handler directly, with a timeout
context instead of an extra task, and the same retry/record/log behaviour (JobsMiddleware) as under
the stock receiver. Messages for any other task fall back to the stock path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from taskiq import AckableMessage
from taskiq.receiver import Receiver
from taskiq.utils import maybe_awaitable

from bootstrap.jobs.middleware import JobsMiddleware

log = logging.getLogger("bootstrap.jobs.receiver")


class FastReceiver(Receiver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs = next((m for m in self.broker.middlewares if isinstance(m, JobsMiddleware)), None)

    async def callback(self, message: bytes | AckableMessage, raise_err: bool = False) -> None:
        if self.jobs is None or not isinstance(message, AckableMessage):
            return await super().callback(message, raise_err)
        try:
            parsed = self.broker.formatter.loads(message.data)
            parsed.parse_labels()
        except Exception as exc:  # a message nobody can run: drop it, loudly
            log.error("queue %s: cannot parse a message, dropping it: %s", self.jobs.stream_broker.runtime.queue, exc)
            await maybe_awaitable(message.ack())
            return None
        task = self.broker.find_task(parsed.task_name)
        direct = getattr(task.original_func, "bootstrap_direct", None) if task is not None else None
        if direct is None:
            return await super().callback(message, raise_err)
        self.jobs.started(parsed)
        timeout = parsed.labels.get("timeout")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(float(timeout) if timeout else None):
                await direct(parsed)
        except Exception as exc:  # the job failed (a TimeoutError included): retry or record it
            await self.jobs.failed(parsed, exc, time.perf_counter() - started)
        else:
            self.jobs.completed(parsed, time.perf_counter() - started)
        await maybe_awaitable(message.ack())
        return None
