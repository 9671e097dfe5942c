"""Schedules as data in Redis: the JSON definition apply writes and schedulers read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from bootstrap.spec.model import RetryPolicy, Schedule, thaw


def retry_json(policy: RetryPolicy) -> dict[str, Any]:
    return asdict(policy)


def retry_from_json(data: Mapping[str, Any]) -> RetryPolicy:
    """The inverse of retry_json, strict about types (the data comes back from Redis or labels)."""
    return RetryPolicy(
        attempts=int(data["attempts"]),
        backoff=str(data["backoff"]),
        delay=float(data["delay"]),
        max_delay=float(data["max_delay"]),
        jitter=bool(data["jitter"]),
    )


def definition(schedule: Schedule) -> dict[str, Any]:
    """The stored form of a schedule: plain JSON, compared key by key by plan. `priority` only when
    declared (absent: the task's level), so the definitions stored before it existed stay the same."""
    stored = {
        "id": schedule.id,
        "queue": schedule.queue,
        "task": schedule.task,
        "cron": schedule.cron,
        "every": schedule.every,
        "timezone": schedule.timezone,
        "kwargs": thaw(schedule.kwargs),
        "retry": retry_json(schedule.retry),
        "misfire": schedule.misfire,
        "enabled": schedule.enabled,
        "align": schedule.align,
    }
    if schedule.priority is not None:
        stored["priority"] = schedule.priority
    return stored


# Keys a release before them did not store, at the spec's defaults.
_ADDED_SINCE = {"align": False}


def with_defaults(stored: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A stored definition as `plan` compares it, with the keys later releases added at the spec's
    defaults: an upgrade alone plans no change. (A schedule stored without `align` stays aligned in
    the scheduler, as that release fired it; once it fired, an unaligned one follows the same grid.)"""
    return None if stored is None else {**_ADDED_SINCE, **stored}


def encode(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def decode(raw: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
