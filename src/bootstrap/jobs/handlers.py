"""Job handlers and how generated tasks call them.

A handler is an async function taking the job's keyword arguments. It may also ask for `job` (a
`Job`: id, queue, task, attempt) and `db` (the worker's MongoDB database: one client per worker
process, connected with the spec's retry policy) by naming those parameters.
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
def _wants(handler: Handler) -> tuple[bool, bool]:
    """Whether `handler` takes `job` and `db` (looked up once per handler, not per job)."""
    parameters = inspect.signature(handler).parameters
    return "job" in parameters, "db" in parameters


async def call_handler(handler: Handler, job: Job, kwargs: dict[str, Any], db: Any = None) -> Any:
    wants_job, wants_db = _wants(handler)
    extra: dict[str, Any] = {}
    if wants_job:
        extra["job"] = job
    if wants_db:
        extra["db"] = db
    return await handler(**extra, **kwargs)


def handler_problem(path: str) -> str | None:
    """Why `path` ("package.module:function") cannot be a handler, or None when it can: its module
    imports and the name is a function (`async def`, or a plain `def`). Used by `bootstrap
    validate`, through `check_handler_imports` in a process of its own."""
    module_name, _, name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        where = f" ({_shown(exc.filename)}, line {exc.lineno})" if exc.filename else ""
        return f"cannot import {module_name}: SyntaxError: {exc.msg}{where}"
    except (Exception, SystemExit) as exc:  # whatever the module's own code raised while importing
        return f"cannot import {module_name}: {type(exc).__name__}: {exc}{_raised_at(exc)}"
    handler = getattr(module, name, None)
    if handler is None:
        return f"module {module_name} ({_shown(getattr(module, '__file__', None) or module_name)}) has no '{name}'"
    if inspect.isasyncgenfunction(handler) or inspect.isgeneratorfunction(handler):
        return f"{path} is a generator function; a handler is a function (async def or def) that returns"
    if not (inspect.iscoroutinefunction(handler) or inspect.isfunction(handler)):
        return f"{path} is a {type(handler).__name__}, not a function (async def or def)"
    return None


def check_handler_imports() -> None:
    """The checking process: handler paths as a JSON list on stdin; for each, as soon as it is
    checked, a JSON line [path, problem or null] on stdout (so when a module ends the process while
    importing, the caller knows which one). What the modules print goes to stderr."""
    import json
    import os
    import sys

    paths = json.load(sys.stdin)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    for path in paths:
        out.write(json.dumps([path, handler_problem(path)]) + "\n")
        out.flush()


def _raised_at(exc: BaseException) -> str:
    """Where in the handler's code an import failed: its innermost frame outside the import system."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
    return f" (at {_shown(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""


def _shown(file: str) -> str:
    from pathlib import Path

    try:
        return str(Path(file).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):
        return file
