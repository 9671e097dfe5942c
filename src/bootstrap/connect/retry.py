"""Connecting with retry: the one path every client takes (MongoDB and Redis, sync and async).

The policy comes from the spec (`connect_retry`: retries after the first attempt, a base delay
doubling up to `max_delay`, jitter that never exceeds it); tenacity runs it. A server kind supplies
what to call (a ping), which errors are worth another try, and how to name itself in log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from bootstrap.redact import mask
from bootstrap.spec.model import ConnectRetry

T = TypeVar("T")

# What to add to a failed attempt's line, per server kind: set by the CLI when nothing tells it
# where the servers are (no `bootstrap up`, no variable), so a user waiting on the retries is told
# how to give it one.
HINTS: dict[str, str] = {}


@dataclass(frozen=True)
class Target:
    """What is being connected to, for the retry loop and its log lines."""

    kind: str  # "MongoDB", "Redis"
    address: str  # the URI or URL; masked before it is shown
    policy: ConnectRetry
    transient: Callable[[BaseException], bool]  # worth another try (unreachable), not final (bad auth)
    reason: Callable[[BaseException], str]  # a short, masked description of an error
    log: logging.Logger

    @property
    def shown(self) -> str:
        return mask(self.address)


def _settings(target: Target) -> dict[str, Any]:
    policy = target.policy

    def wait(state: RetryCallState) -> float:
        return policy.wait(state.attempt_number)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        target.log.warning(
            "%s %s not reachable (retry %d of %d in %.1fs): %s%s",
            target.kind,
            target.shown,
            state.attempt_number,
            policy.retries,
            delay,
            target.reason(exc) if exc else "unknown error",
            f" ({HINTS[target.kind]})" if target.kind in HINTS and state.attempt_number == 1 else "",
        )

    return {
        "stop": stop_after_attempt(policy.attempts),
        "wait": wait,
        "retry": retry_if_exception(target.transient),
        "before_sleep": before_sleep,
        "reraise": True,
    }


def call(target: Target, attempt: Callable[[], T]) -> T:
    """`attempt()`, retried per the target's policy; the last error is re-raised as it is."""
    result: T = Retrying(**_settings(target))(attempt)
    return result


async def call_async(target: Target, attempt: Callable[[], Awaitable[T]]) -> T:
    """The same for a function returning an awaitable (redis-py's async methods are plain functions
    returning coroutines, which tenacity would not await: wrap them)."""

    async def run() -> T:
        return await attempt()

    result: T = await AsyncRetrying(**_settings(target))(run)
    return result


def gave_up(target: Target, exc: BaseException) -> str:
    """The message when connecting failed for good: refused (not worth retrying) or unreachable."""
    if not target.transient(exc):
        return f"{target.kind} at {target.shown} refused the connection: {target.reason(exc)}"
    hint = f" ({HINTS[target.kind]})" if target.kind in HINTS else ""
    return (
        f"cannot reach {target.kind} at {target.shown} after {target.policy.attempts} attempt(s) "
        f"({target.policy.retries} retries): {target.reason(exc)}{hint}"
    )
