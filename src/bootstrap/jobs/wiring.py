"""What the generated package calls: a broker per queue, a task per declared task, the scheduler.

The generated files hold the declared data as a literal (`SPEC`) and call these functions, so all
behaviour lives here and is tested here. Connection URLs in `SPEC` are templates such as
`${REDIS_URL:-redis://127.0.0.1:6379/0}`, resolved from the environment when a process starts.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated, Any

from taskiq import Context, TaskiqDepends, TaskiqEvents, TaskiqMessage, TaskiqState
from taskiq.decor import AsyncTaskiqDecoratedTask

from bootstrap import logs
from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.handlers import Handler, Job, call_handler, import_handler, log_job
from bootstrap.jobs.middleware import ATTEMPT, RETRY, JobsMiddleware
from bootstrap.jobs.runtime import queue_runtime, resolve_url
from bootstrap.jobs.scheduler import SlotScheduler
from bootstrap.spec.build import database_from_uri
from bootstrap.spec.model import ConnectRetry, MongoSettings

log = logging.getLogger("bootstrap.jobs")


def mongo_settings(spec: dict[str, Any]) -> MongoSettings:
    """MongoDB settings for this process: the URI template resolved from today's environment, the
    database as declared or else the one the URI names."""
    data = dict(spec["mongodb"])
    data["uri"] = resolve_url(data["uri"])
    data["database"] = data["database"] or database_from_uri(data["uri"]) or spec["project"].replace("-", "_")
    data["connect_retry"] = ConnectRetry.from_json(data["connect_retry"])
    return MongoSettings(**data)


def make_broker(spec: dict[str, Any], queue: str) -> StreamBroker:
    """The broker of `queue`: its own Redis stream, retries, records, and (in workers) a MongoDB
    client made once at start-up for the handlers that ask for `db`."""
    broker = StreamBroker(queue_runtime(spec, queue))
    broker.add_middlewares(JobsMiddleware(broker))

    async def worker_startup(state: TaskiqState) -> None:
        """Start-up order: logging, then MongoDB (with its retry policy), then Redis (the broker)."""
        from bootstrap.connect.mongo import connect_async

        logs.setup()
        settings = mongo_settings(spec)
        state.mongo_client = await connect_async(settings)
        state.mongo_db = state.mongo_client[settings.database]

    async def close_mongo(state: TaskiqState) -> None:
        client = getattr(state, "mongo_client", None)
        if client is not None:
            await client.close()
            log.info("MongoDB connection closed")

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, worker_startup)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, close_mongo)
    return broker


def task_labels(spec: dict[str, Any], queue: str, task: str) -> dict[str, Any]:
    """Labels every job of `task` carries: its retry policy and timeout."""
    declared = spec["queues"][queue]["tasks"][task]
    labels: dict[str, Any] = {}
    if declared.get("retry"):
        labels[RETRY] = json.dumps(declared["retry"])
    if declared.get("timeout"):
        labels["timeout"] = declared["timeout"]
    return labels


async def enqueue(
    spec: dict[str, Any], queue: str, task: str, kwargs: dict[str, Any], *, count: int = 1, job_id: str | None = None
) -> list[str]:
    """Put `count` jobs of `task` on `queue` (pipelined); return their ids."""
    broker = StreamBroker(queue_runtime(spec, queue))
    await broker.startup()
    try:
        labels = task_labels(spec, queue, task)
        messages = []
        for n in range(count):
            ident = job_id if job_id and count == 1 else f"{job_id or uuid.uuid4().hex}{'' if count == 1 else f'-{n}'}"
            message = TaskiqMessage(task_id=ident, task_name=task, labels=labels, args=[], kwargs=kwargs)
            messages.append(broker.formatter.dumps(message))
        await broker.kick_many(messages)
        return [m.task_id for m in messages]
    finally:
        await broker.shutdown()


def register_task(
    broker: StreamBroker, spec: dict[str, Any], queue: str, task: str
) -> AsyncTaskiqDecoratedTask[Any, Any]:
    """The Taskiq task `task` of `queue`, bound to its declared handler (or the logging one)."""
    declared = spec["queues"][queue]["tasks"][task]
    handler: Handler = import_handler(declared["handler"]) if declared.get("handler") else log_job
    labels = task_labels(spec, queue, task)

    async def direct(message: TaskiqMessage) -> Any:
        """The job without Taskiq's dependency injection (the fast receiver calls this)."""
        job = Job(
            id=message.task_id,
            queue=queue,
            task=task,
            attempt=int(message.labels.get(ATTEMPT, 1)),
            labels=message.labels,
        )
        return await call_handler(handler, job, message.kwargs, db=getattr(broker.state, "mongo_db", None))

    async def run(context: Annotated[Context, TaskiqDepends()], **kwargs: Any) -> Any:
        return await direct(context.message)

    run.__name__ = run.__qualname__ = task.replace("-", "_")
    run.bootstrap_direct = direct  # type: ignore[attr-defined]
    decorated: AsyncTaskiqDecoratedTask[Any, Any] = broker.register_task(run, task_name=task, **labels)
    return decorated


def make_scheduler(brokers: dict[str, StreamBroker]) -> SlotScheduler:
    return SlotScheduler(brokers)
