"""What the generated package calls: a broker per queue, a task per declared task, the scheduler.

The generated files hold the runtime contract as a literal, read once at import into `RUNTIME`
(`bootstrap.jobs.contract.Runtime.from_literal`), and call these functions, so all behaviour lives
here and is tested here. Connection URLs in the contract are templates such as
`${REDIS_URL:-redis://127.0.0.1:6379/0}`, resolved from the environment when a process starts.
tests/unit/jobs/test_contract.py pins the names generated code uses.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from taskiq import Context, TaskiqDepends, TaskiqEvents, TaskiqMessage, TaskiqState
from taskiq.decor import AsyncTaskiqDecoratedTask

from bootstrap import logs
from bootstrap.errors import BootstrapError, PartlySent
from bootstrap.jobs import labels
from bootstrap.jobs.broker import StreamBroker
from bootstrap.jobs.contract import Runtime, TaskContract
from bootstrap.jobs.handlers import Handler, Job, call_handler, import_handler, log_job, wants_job
from bootstrap.jobs.message import Message, json_arguments, printable_id
from bootstrap.jobs.metrics_middleware import MetricsMiddleware
from bootstrap.jobs.metrics_port import base_port, worker_port
from bootstrap.jobs.middleware import RETRY, JobsMiddleware, attempt_of
from bootstrap.jobs.results import RecordsResultBackend
from bootstrap.jobs.runtime import queue_runtime, resolve_url
from bootstrap.jobs.scheduler import SlotScheduler
from bootstrap.jobs.user_middlewares import add_user_middlewares
from bootstrap.layout.keys import NORMAL
from bootstrap.layout.schedules import retry_json
from bootstrap.spec.build import database_from_uri
from bootstrap.spec.model import MongoSettings, Schedule

log = logging.getLogger("bootstrap.jobs")


def mongo_settings(runtime: Runtime) -> MongoSettings:
    """MongoDB settings for this process: the URI template resolved from today's environment, the
    database as declared or else the one the URI names."""
    declared = runtime.mongodb
    uri = resolve_url(declared.uri)
    return MongoSettings(
        uri=uri,
        database=declared.database or database_from_uri(uri) or runtime.project.replace("-", "_"),
        uri_template=declared.uri,
        database_declared=declared.database,
        app_name=declared.app_name,
        pool_max=declared.pool_max,
        pool_min=declared.pool_min,
        server_selection_timeout=declared.server_selection_timeout,
        socket_timeout=declared.socket_timeout,
        connect_timeout=declared.connect_timeout,
        ipv4_only=declared.ipv4_only,
        connect_retry=declared.connect_retry,
    )


def make_broker(runtime: Runtime, queue: str) -> StreamBroker:
    """The broker of `queue`: its own Redis streams, retries, records (with results, which its result
    backend reads), and (in workers) a MongoDB client made once at start-up for the handlers that ask
    for `db`."""
    broker = StreamBroker(queue_runtime(runtime, queue))
    declared = runtime.queue(queue)
    broker.add_middlewares(JobsMiddleware(broker, declared))
    port = worker_port(base_port(runtime.metrics_port), runtime.queue_names.index(queue))
    if port:  # metrics off: nothing counted either
        broker.add_middlewares(MetricsMiddleware(broker, port))  # after JobsMiddleware: sees what it decided
    broker.with_result_backend(RecordsResultBackend(broker))  # wait_result() reads the job records

    async def worker_startup(state: TaskiqState) -> None:
        """Start-up order: logging, this queue's handlers, then MongoDB (with its retry policy), then
        Redis (the broker)."""
        from bootstrap.connect.mongo import connect_async

        logs.setup()
        project_importable(runtime)
        import_queue_handlers(broker)
        add_user_middlewares(broker, queue, declared.middlewares, worker=True)
        settings = mongo_settings(runtime)
        state.mongo_client = await connect_async(settings)
        state.mongo_db = state.mongo_client[settings.database]

    async def close_mongo(state: TaskiqState) -> None:
        client = getattr(state, "mongo_client", None)
        if client is not None:
            await client.close()
            log.info("MongoDB connection closed")

    async def client_startup(state: TaskiqState) -> None:
        """A process that sends jobs (not the scheduler, which enqueues in Lua) runs the user
        middlewares' send hooks."""
        if not broker.is_scheduler_process:
            project_importable(runtime)
            add_user_middlewares(broker, queue, declared.middlewares, worker=False)

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, worker_startup)
    if declared.middlewares:
        broker.add_event_handler(TaskiqEvents.CLIENT_STARTUP, client_startup)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, close_mongo)
    return broker


def project_importable(runtime: Runtime) -> None:
    """Put the project folder on the import path (where PYTHONPATH would put it, as `bootstrap
    validate` imports handlers), so handler and middleware import paths resolve from there however
    the process was started (`cd generated && python -m PACKAGE.worker`, `taskiq worker ...`)."""
    folder = runtime.project_dir
    if folder and os.path.isdir(folder) and folder not in sys.path:
        sys.path.insert(1 if sys.path else 0, folder)


class HandlerRef:
    """A task's handler, imported when first needed: a worker imports its own queue's handlers at
    start-up (`import_queue_handlers`) and no other, so a handler that does not import stops its own
    queue's worker, not every queue's; the scheduler and `enqueue` import none."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._handler: Handler | None = None

    def get(self) -> Handler:
        if self._handler is None:
            self._handler = import_handler(self.path) if self.path else log_job
        return self._handler


def import_queue_handlers(broker: StreamBroker) -> None:
    """Import the handlers of the tasks on `broker` (a worker's start-up). One that cannot be
    imported ends this worker with one clear line (exit code 3) instead of a traceback per job."""
    for name, task in broker.local_task_registry.items():
        ref = getattr(task.original_func, "bootstrap_handler", None)
        if not isinstance(ref, HandlerRef):
            continue
        try:
            ref.get()
        except Exception as exc:
            log.error(
                "queue %s: the handler of task %s (%s) cannot be used: %s: %s. This queue's worker "
                "cannot start; fix the handler (`bootstrap validate` checks every handler)",
                broker.runtime.queue, name, ref.path, type(exc).__name__, exc,
            )  # fmt: skip
            raise SystemExit(3) from None


def task_labels(task: TaskContract) -> dict[str, Any]:
    """Labels every job of `task` carries: its retry policy, timeout and priority."""
    found: dict[str, Any] = {}
    if task.retry is not None:
        found[RETRY] = json.dumps(retry_json(task.retry))
    if task.timeout:
        found["timeout"] = task.timeout
    if task.priority != NORMAL:  # the level its jobs are sent to (see labels.placement)
        found[labels.PRIORITY] = task.priority
    return found


@dataclass(frozen=True)
class Enqueued:
    count: int  # jobs added
    first: str  # the first added job's id (the first job's, when none was added)
    last: str
    existing: tuple[str, ...] = ()  # ids not added: a job with that id is waiting, delayed or running


async def enqueue(
    runtime: Runtime,
    queue: str,
    task: str,
    kwargs: dict[str, Any],
    *,
    count: int = 1,
    job_id: str | None = None,
    delay: float = 0.0,
    priority: str | None = None,
) -> Enqueued:
    """Put `count` jobs of `task` on `queue`, made and sent a batch at a time (memory stays the same
    for a million jobs as for ten). `kwargs` must be JSON: NaN or Infinity would reach the handler as
    null, so they are refused. The jobs run after `delay` seconds, at `priority` (default: the task's).
    With `job_id` the ids are deduplicated: one already waiting, delayed or running is not added again
    (`Enqueued.existing`)."""
    json_arguments([], kwargs)
    if job_id is not None:
        printable_id(job_id)
    job_labels = task_labels(runtime.queue(queue).task(task))
    if priority is not None:
        job_labels[labels.PRIORITY] = priority
    if job_id is not None:
        job_labels[labels.DEDUPE] = True
    try:
        placement = labels.placement({**job_labels, labels.DELAY: delay})
    except labels.LabelError as exc:
        raise BootstrapError(str(exc)) from None
    base = job_id or uuid.uuid4().hex

    def name(n: int) -> str:
        return base if count == 1 else f"{base}-{n}"

    # One message serialised, the others made from it by putting their id in (the same JSON).
    marker = f"job-id-{uuid.uuid4().hex}"
    template = TaskiqMessage(task_id=marker, task_name=task, labels=job_labels, args=[], kwargs=kwargs)
    head, _, tail = template.model_dump_json().encode().partition(json.dumps(marker).encode())
    broker = StreamBroker(queue_runtime(runtime, queue))
    await broker.startup()
    try:
        jobs = ((job, head + json.dumps(job).encode() + tail) for job in map(name, range(count)))
        try:
            sent = await broker.send(jobs, placement)
        except PartlySent as exc:
            again = "again adds only the rest: their ids deduplicate" if job_id else "again enqueues them again"
            raise BootstrapError(
                f"enqueueing {count} job(s) on {queue} failed part-way: {exc.cause}\n{exc.added} of them were "
                f"enqueued before the error and stay queued (sending all {count} {again})"
            ) from None
    finally:
        await broker.shutdown()
    # Named by the ids it added: with some ids deduplicated, the batch's first may not be one of them.
    skipped = set(sent.existing)
    first = next((name(n) for n in range(count) if name(n) not in skipped), name(0))
    last = next((name(n) for n in reversed(range(count)) if name(n) not in skipped), name(count - 1))
    return Enqueued(sent.added, first, last, sent.existing)


def register_task(broker: StreamBroker, runtime: Runtime, queue: str, task: str) -> AsyncTaskiqDecoratedTask[Any, Any]:
    """The Taskiq task `task` of `queue`, bound to its declared handler (or the logging one)."""
    declared = runtime.queue(queue).task(task)
    handler = HandlerRef(declared.handler)  # imported by this queue's workers only
    task_label_values = task_labels(declared)

    async def direct(message: Message) -> Any:
        """The job without Taskiq's dependency injection (the fast receiver calls this)."""
        call = handler.get()
        job = Job(message.task_id, queue, task, attempt_of(message), message.labels) if wants_job(call) else None
        return await call_handler(call, job, message.kwargs, db=getattr(broker.state, "mongo_db", None),
                                  job_id=message.task_id)  # fmt: skip

    async def run(context: Annotated[Context, TaskiqDepends()], **kwargs: Any) -> Any:
        return await direct(context.message)

    run.__name__ = run.__qualname__ = task.replace("-", "_")
    run.bootstrap_direct = direct  # type: ignore[attr-defined]
    run.bootstrap_handler = handler  # type: ignore[attr-defined]
    run.bootstrap_task = declared  # type: ignore[attr-defined]  # its timeout, for the fast receiver
    decorated: AsyncTaskiqDecoratedTask[Any, Any] = broker.register_task(run, task_name=task, **task_label_values)
    return decorated


def make_scheduler(brokers: dict[str, StreamBroker], declared: Iterable[Schedule] = ()) -> SlotScheduler:
    """The scheduler over `brokers`; `declared` (the generated contract's schedules) are fired while
    Redis has lost its data. Only a scheduler process imports the generated scheduler module.
    `taskiq scheduler` set up its own log format before importing it (unless --no-configure-logging)
    and logs two lines before the scheduler's start-up: ours from here on, so JSON logs are JSON from
    the first line."""
    logs.setup()
    return SlotScheduler(brokers, declared)
