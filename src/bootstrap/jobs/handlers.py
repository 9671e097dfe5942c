"""Job handlers and how generated tasks call them.

A handler is an async function taking the job's keyword arguments. It may also ask for `job` (a
`Job`: id, queue, task, attempt), `db` (the worker's MongoDB database: one client per worker
process, connected with the spec's retry policy) and `models` (`bootstrap.models.AsyncModels` on
that database: `models[EmailEvent]` is the typed collection) by naming those parameters.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("bootstrap.jobs.handlers")

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Job:
    id: str
    queue: str
    task: str
    attempt: int
    labels: dict[str, Any]


async def log_job(job: Job, **kwargs: Any) -> None:
    """The default handler until real ones exist: says that the job ran, and with what."""
    log.info("handling job: queue=%s task=%s id=%s kwargs=%s", job.queue, job.task, job.id, kwargs)


def import_handler(path: str) -> Handler:
    """`package.module:function` -> the function (imported when the worker starts)."""
    module_name, _, name = path.partition(":")
    handler = getattr(importlib.import_module(module_name), name)
    if not inspect.iscoroutinefunction(handler):
        raise TypeError(f"handler {path} must be an async function")
    return handler  # type: ignore[no-any-return]


@functools.cache
def _wants(handler: Handler) -> tuple[bool, bool, bool]:
    """Whether `handler` takes `job`, `db` and `models` (looked up once per handler, not per job)."""
    parameters = inspect.signature(handler).parameters
    return "job" in parameters, "db" in parameters, "models" in parameters


async def call_handler(handler: Handler, job: Job, kwargs: dict[str, Any], db: Any = None) -> Any:
    wants_job, wants_db, wants_models = _wants(handler)
    extra: dict[str, Any] = {}
    if wants_job:
        extra["job"] = job
    if wants_db:
        extra["db"] = db
    if wants_models:
        from bootstrap.models import AsyncModels  # pydantic: only for handlers that ask

        extra["models"] = AsyncModels(db)
    return await handler(**extra, **kwargs)
