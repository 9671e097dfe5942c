"""Job handlers and how generated tasks call them.

A handler is a function taking the job's keyword arguments. It may also ask for `job` (a `Job`: id,
queue, task, attempt) by naming that parameter. An async function runs on the worker's event loop
and may ask for `db` too (the worker's MongoDB database, an async pymongo database: one client per
worker process, connected with the spec's retry policy) and `models` (`bootstrap.models.AsyncModels`
on that database: `models[EmailEvent]` is the typed collection). A plain function runs in a thread of
its own, so it cannot block the event loop; the task's timeout applies to waiting for it (Python
cannot stop a thread: one that times out runs on until it returns, its result unused).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import importlib
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("bootstrap.jobs.handlers")

Handler = Callable[..., Any]  # async or plain


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
    if not callable(handler) or inspect.isgeneratorfunction(handler) or inspect.isasyncgenfunction(handler):
        raise TypeError(f"handler {path} must be a function (async, or plain: a plain one runs in a thread)")
    problem = _plain_asking_async(path, handler)
    if problem is not None:
        raise TypeError(problem)
    return handler  # type: ignore[no-any-return]


def _plain_asking_async(path: str, handler: Handler) -> str | None:
    """Why a plain function cannot be the handler at `path`: it asks for what only async code can use."""
    asks = [name for name in ("db", "models") if name in inspect.signature(handler).parameters]
    if inspect.iscoroutinefunction(handler) or not asks:
        return None
    return (
        f"handler {path} is a plain function and asks for {' and '.join(asks)}, which are async "
        "(the worker's MongoDB database): make it an async function"
    )


@functools.cache
def _shape(handler: Handler) -> tuple[bool, bool, bool, bool]:
    """Whether `handler` takes `job`, `db`, `models`, and is async (looked up once per handler, not per
    job)."""
    parameters = inspect.signature(handler).parameters
    return "job" in parameters, "db" in parameters, "models" in parameters, inspect.iscoroutinefunction(handler)


def wants_job(handler: Handler) -> bool:
    """Whether `handler` takes `job` (else none is made for it: the per-job path skips it)."""
    return _shape(handler)[0]


async def call_handler(
    handler: Handler, job: Job | None, kwargs: dict[str, Any], db: Any = None, job_id: str = ""
) -> Any:
    """Call `handler` with the job's arguments and what it asks for (`job`: None when it does not
    take one, see `wants_job`)."""
    takes_job, wants_db, wants_models, is_async = _shape(handler)
    extra: dict[str, Any] = {}
    if takes_job:
        extra["job"] = job
    if wants_db:
        extra["db"] = db
    if wants_models:
        from bootstrap.models import AsyncModels  # pydantic: only for handlers that ask

        extra["models"] = AsyncModels(db)
    if is_async:
        return await handler(**extra, **kwargs)
    return await in_thread(functools.partial(handler, **extra, **kwargs), f"job-{job.id if job else job_id}")


def in_thread(call: Callable[[], Any], name: str) -> Awaitable[Any]:
    """`call()` in a daemon thread of its own, awaited on the loop. Not asyncio.to_thread: the default
    executor's threads are joined at exit, so a handler that never returns would keep the worker
    from exiting within its shutdown timeout; a daemon thread does not. Cancelling the wait (a
    timeout) leaves the thread running; its result is dropped."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(outcome: Callable[[], None]) -> None:
        if not done.done():
            outcome()

    def run() -> None:
        try:
            result = context.run(call)
        except Exception as exc:
            report = functools.partial(settle, functools.partial(done.set_exception, exc))
        except BaseException as exc:  # SystemExit and the like must not reach the loop as such
            error = RuntimeError(f"the handler raised {type(exc).__name__}: {exc}")
            report = functools.partial(settle, functools.partial(done.set_exception, error))
        else:
            report = functools.partial(settle, functools.partial(done.set_result, result))
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for it any more
            loop.call_soon_threadsafe(report)

    threading.Thread(target=run, name=name, daemon=True).start()
    return done


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
    return _plain_asking_async(path, handler)


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
        if path.startswith("middleware "):  # see spec.checks.middleware_problems
            from bootstrap.jobs.user_middlewares import middleware_problem

            out.write(json.dumps([path, middleware_problem(path.removeprefix("middleware "))]) + "\n")
        else:
            out.write(json.dumps([path, handler_problem(path)]) + "\n")
        out.flush()


def _raised_at(exc: BaseException) -> str:
    """Where in the handler's code an import failed: its innermost frame outside the import system
    and this module; nothing when there is none (the module itself is not found)."""
    import os
    import traceback

    system = (os.path.dirname(importlib.__file__) + os.sep, __file__)
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<frozen") and not f.filename.startswith(system)
    ]  # fmt: skip
    return f" (at {_shown(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""


def _shown(file: str) -> str:
    from pathlib import Path

    try:
        return str(Path(file).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):
        return file
