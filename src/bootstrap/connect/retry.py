"""Connect-retry policies (from the spec) as tenacity retryers, shared by MongoDB and Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from bootstrap.spec.model import RetryPolicy


def _settings(
    policy: RetryPolicy, transient: Callable[[BaseException], bool], on_retry: Callable[[RetryCallState], None]
) -> dict[str, Any]:
    """Exponential (or fixed) delays from `policy.delay`, capped at `policy.max_delay`, optionally
    jittered; retries only exceptions `transient` accepts; re-raises the last one."""
    base = 2 if policy.backoff == "exponential" else 1
    wait: Any = wait_exponential(multiplier=policy.delay, exp_base=base, max=policy.max_delay)
    if policy.jitter:
        wait = wait + wait_random(0, policy.delay)
    return {
        "stop": stop_after_attempt(policy.attempts),
        "wait": wait,
        "retry": retry_if_exception(transient),
        "before_sleep": on_retry,
        "reraise": True,
    }


def retrying(
    policy: RetryPolicy, transient: Callable[[BaseException], bool], on_retry: Callable[[RetryCallState], None]
) -> Retrying:
    return Retrying(**_settings(policy, transient, on_retry))


def async_retrying(
    policy: RetryPolicy, transient: Callable[[BaseException], bool], on_retry: Callable[[RetryCallState], None]
) -> AsyncRetrying:
    return AsyncRetrying(**_settings(policy, transient, on_retry))
