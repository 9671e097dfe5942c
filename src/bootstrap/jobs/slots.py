"""Schedule slots: the instants a schedule fires at. Pure functions, so they are easy to test.

`every: E` slots are the multiples of E seconds since the Unix epoch (so every scheduler replica and
every restart agrees on them); cron slots are the instants the expression names in its time zone.

The slot functions expect a definition `problem()` found nothing wrong with: stored definitions come
from Redis, where an older version or a hand edit may have left one that cannot fire (a cron such as
`0 0 30 2 *` names no date that exists).
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

CATCH_UP_LIMIT = 100  # past slots considered at once; older ones count as one missed stretch


NEVER_FIRES = "never fires"


def problem(definition: Any, now: float | None = None) -> str | None:
    """Why a stored definition cannot be scheduled (starting with NEVER_FIRES for a cron that names
    no date that exists), or None when the slot functions can work on it."""
    if not isinstance(definition, dict):
        return "unreadable definition (not a JSON object)"
    for key in ("queue", "task"):
        if not isinstance(definition.get(key), str) or not definition[key]:
            return f"unreadable definition (no {key})"
    if not isinstance(definition.get("retry"), dict) or not isinstance(definition.get("kwargs") or {}, dict):
        return "unreadable definition (retry and kwargs must be JSON objects)"
    cron, every = definition.get("cron"), definition.get("every")
    if every is not None and cron is None:
        if isinstance(every, bool) or not isinstance(every, int | float) or not math.isfinite(every) or every <= 0:
            return f"unreadable definition (every: {every!r} is not a positive number of seconds)"
        return None
    if every is not None or not isinstance(cron, str):
        return "unreadable definition (needs exactly one of cron and every)"
    zone = definition.get("timezone") or "UTC"
    try:
        tz = ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        return f"unreadable definition (unknown time zone {zone!r})"
    if not croniter.is_valid(cron):
        return f"unreadable definition (cron {cron!r} is not valid)"
    try:
        croniter(cron, datetime.fromtimestamp(time.time() if now is None else now, tz)).get_next(float)
    except CroniterBadDateError:
        return f"{NEVER_FIRES} (cron '{cron}' names no date that exists)"
    return None


def next_slot(definition: dict[str, Any], after: float) -> float:
    """The first slot strictly after `after` (epoch seconds)."""
    every = definition.get("every")
    if every:
        return float((math.floor(after / every) + 1) * every)
    zone = ZoneInfo(definition.get("timezone") or "UTC")
    start = datetime.fromtimestamp(after, zone)
    return float(croniter(definition["cron"], start).get_next(float))


def previous_slot(definition: dict[str, Any], before: float) -> float:
    """The last slot strictly before `before`."""
    every = definition.get("every")
    if every:
        return float((math.ceil(before / every) - 1) * every)
    zone = ZoneInfo(definition.get("timezone") or "UTC")
    return float(croniter(definition["cron"], datetime.fromtimestamp(before, zone)).get_prev(float))


def latest_slot(definition: dict[str, Any], now: float) -> float:
    """The last slot at or before `now`."""
    on_time = next_slot(definition, now - 1e-6)  # a slot exactly at `now` counts
    return on_time if on_time <= now else previous_slot(definition, now)


def due_slots(definition: dict[str, Any], last: float | None, now: float) -> list[float]:
    """Slots after `last` up to `now`, oldest first. With no `last` (a schedule seen for the first
    time) only the latest slot. After a stretch longer than CATCH_UP_LIMIT slots, only the most
    recent CATCH_UP_LIMIT of them (the older ones are passed over)."""
    if last is None:
        return [latest_slot(definition, now)]
    slots: list[float] = []
    slot = next_slot(definition, last)
    while slot <= now and len(slots) < CATCH_UP_LIMIT:
        slots.append(slot)
        slot = next_slot(definition, slot)
    if slot > now:
        return slots
    recent: list[float] = []
    slot = latest_slot(definition, now)
    while slot > last and len(recent) < CATCH_UP_LIMIT:
        recent.append(slot)
        slot = previous_slot(definition, slot)
    return recent[::-1]
