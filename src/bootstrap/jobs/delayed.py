"""taskiq's `schedule_by_time` for one-off delayed jobs: `DelayedJobs(broker)` is a schedule source
whose `add_schedule` puts the job in the broker's delayed set, due at the given time (the same place
`.with_labels(delay=...)` and `enqueue --at` put it: a worker of the queue moves it into its stream
when due). It holds no schedules of its own (`get_schedules` is empty): recurring schedules are
declared in `schedules.yaml`, so a cron or interval given here is refused.

    await task.kicker().schedule_by_time(DelayedJobs(BROKERS["delta-sync"]), when, mailboxId="m-1")

A time without a zone is UTC (as `enqueue --at`); a time in the past runs at once. The broker's
middlewares' `pre_send` and `post_send` run around it, as around `kiq`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC

from taskiq import ScheduledTask, ScheduleSource, TaskiqMessage, TaskiqMiddleware
from taskiq.utils import maybe_awaitable

from bootstrap.errors import BootstrapError
from bootstrap.jobs import labels
from bootstrap.jobs.broker import StreamBroker


class DelayedJobs(ScheduleSource):
    def __init__(self, broker: StreamBroker) -> None:
        self.broker = broker

    async def get_schedules(self) -> list[ScheduledTask]:
        return []  # nothing for a scheduler to fire: due jobs are moved by the queue's workers

    async def add_schedule(self, schedule: ScheduledTask) -> None:
        if schedule.time is None:
            raise BootstrapError(
                f"{schedule.task_name}: only a time can be given here (schedule_by_time); declare recurring "
                "schedules in schedules.yaml"
            )
        when = schedule.time if schedule.time.tzinfo is not None else schedule.time.replace(tzinfo=UTC)
        message = TaskiqMessage(
            task_id=schedule.task_id or uuid.uuid4().hex,
            task_name=schedule.task_name,
            labels=schedule.labels,
            args=schedule.args,
            kwargs=schedule.kwargs,
        )
        # The user middlewares' send hooks, as taskiq's `kiq` runs them around a send.
        middlewares = self.broker.middlewares
        for middleware in middlewares:
            if type(middleware).pre_send is not TaskiqMiddleware.pre_send:
                message = await maybe_awaitable(middleware.pre_send(message))
        try:
            placement = labels.placement(message.labels)
        except labels.LabelError as exc:
            raise BootstrapError(f"job {message.task_id} ({message.task_name}) not sent: {exc}") from None
        placement = replace(placement, delay=max(0.0, when.timestamp() - time.time()))
        await self.broker.send([(message.task_id, self.broker.formatter.dumps(message).message)], placement)
        for middleware in reversed(middlewares):
            if type(middleware).post_send is not TaskiqMiddleware.post_send:
                await maybe_awaitable(middleware.post_send(message))
