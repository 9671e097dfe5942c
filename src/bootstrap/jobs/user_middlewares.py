"""The user's taskiq middlewares, declared in queues.yaml (`middlewares:` per queue or in `defaults`),
so OpenTelemetry, Sentry or a custom hook needs no edit of generated code.

Each entry is an import path "package.module:Name" of a `TaskiqMiddleware` subclass (made with the
entry's `kwargs`, or none) or instance. A queue's worker imports its own middlewares at start-up and
adds them after bootstrap's own; one that cannot be used stops that worker with one line naming the
queue, the entry's place in the YAML and the error (exit code 3), as a handler that does not import
does. Processes that only send jobs (the application) add them too, for `pre_send`/`post_send`; the
scheduler does not (it enqueues in Lua).

The fast receiver runs their `pre_execute`, `on_error`, `post_execute` and `post_save` around each
job as taskiq's own receiver does; a hook that raises is logged and does not fail the job.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.utils import maybe_awaitable

from bootstrap.spec.model import MiddlewareRef, thaw

log = logging.getLogger("bootstrap.jobs")


def make_middleware(ref: MiddlewareRef) -> TaskiqMiddleware:
    """The middleware `ref` names; raises (ImportError, AttributeError, TypeError ...) when it
    cannot be made."""
    module_name, _, name = ref.path.partition(":")
    found = getattr(importlib.import_module(module_name), name)
    if isinstance(found, type) and issubclass(found, TaskiqMiddleware):
        return found(**thaw(ref.kwargs))
    if isinstance(found, TaskiqMiddleware):
        if ref.kwargs:
            raise TypeError(f"{ref.path} is a middleware instance: it takes no kwargs")
        return found
    raise TypeError(_not_middleware(ref.path, found))


def middleware_problem(path: str) -> str | None:
    """Why `path` cannot be a middleware, or None (for `bootstrap validate`, in a process of its own:
    importing runs the application's code). The class is not instantiated."""
    module_name, _, name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # whatever the module's own code raised while importing
        return f"cannot import {module_name}: {type(exc).__name__}: {exc}"
    found = getattr(module, name, None)
    if found is None:
        return f"module {module_name} has no '{name}'"
    if (isinstance(found, type) and issubclass(found, TaskiqMiddleware)) or isinstance(found, TaskiqMiddleware):
        return None
    return _not_middleware(path, found)


def _not_middleware(path: str, found: object) -> str:
    return f"{path} is a {type(found).__name__}, not a taskiq middleware (a TaskiqMiddleware class or instance)"


def add_user_middlewares(broker: Any, queue: str, refs: Iterable[MiddlewareRef], *, worker: bool) -> None:
    """Add the declared middlewares to `broker`. In a worker one that cannot be made ends the
    process (exit code 3) with one clear line; elsewhere it raises BootstrapError."""
    from bootstrap.errors import BootstrapError

    made = []
    for ref in refs:
        try:
            made.append(make_middleware(ref))
        except Exception as exc:
            message = (
                f"queue {queue}: middleware {ref.path} ({ref.where}) cannot be used: {type(exc).__name__}: {exc}"
            )
            if not worker:
                raise BootstrapError(message) from None
            log.error("%s. This queue's worker cannot start; fix it (`bootstrap validate` checks every "
                      "middleware and names its line)", message)  # fmt: skip
            raise SystemExit(3) from None
    broker.add_middlewares(*made)


class Hooks:
    """The user middlewares' execution hooks, for the fast receiver (nothing to do when none)."""

    def __init__(self, middlewares: Iterable[TaskiqMiddleware]) -> None:
        self.middlewares = list(middlewares)

    def __bool__(self) -> bool:
        return bool(self.middlewares)

    async def _call(self, hook: str, call: Callable[[TaskiqMiddleware], Any | Awaitable[Any]]) -> list[Any]:
        results = []
        for middleware in self.middlewares:
            try:
                results.append(await maybe_awaitable(call(middleware)))
            except Exception:
                log.exception("middleware %s: %s failed (the job goes on)", type(middleware).__name__, hook)
                results.append(None)
        return results

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        for middleware in self.middlewares:
            try:
                changed = await maybe_awaitable(middleware.pre_execute(message))
            except Exception:
                log.exception("middleware %s: pre_execute failed (the job goes on)", type(middleware).__name__)
                continue
            if isinstance(changed, TaskiqMessage):
                message = changed
        return message

    async def after(self, message: TaskiqMessage, result: TaskiqResult[Any], error: BaseException | None) -> None:
        if error is not None:
            await self._call("on_error", lambda m: m.on_error(message, result, error))
        await self._call("post_execute", lambda m: m.post_execute(message, result))
        await self._call("post_save", lambda m: m.post_save(message, result))
