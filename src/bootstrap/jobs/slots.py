"""Schedule slots: the instants a schedule fires at. Pure functions, so they are easy to test.

`every: E` slots with `align: true` are the multiples of E seconds since the Unix epoch (so every
scheduler replica and every restart agrees on them); without it (`align: false`, the default, as
BullMQ's repeatable jobs) the first slot is the moment a scheduler first sees the schedule and the
next ones follow the last slot handled, E seconds apart: the slot functions then take that `anchor`
(the last slot handled, kept in Redis, so replicas and restarts agree on these too). A stored
definition without `align` (written before it existed) is aligned, as it was then. Cron slots are
the instants the expression names in its time zone.

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

from bootstrap.layout.keys import PRIORITIES

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
    if definition.get("priority") not in (None, *PRIORITIES):
        return f"unreadable definition (priority {definition['priority']!r} is not one of {', '.join(PRIORITIES)})"
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


def unaligned(definition: dict[str, Any]) -> bool:
    """An `every` schedule whose slots follow its first fire rather than the epoch."""
    return bool(definition.get("every")) and definition.get("align", True) is False


def _origin(definition: dict[str, Any], anchor: float | None) -> float:
    """Where the grid of an `every` schedule starts: the epoch, or the anchor of an unaligned one."""
    return anchor if anchor is not None and unaligned(definition) else 0.0


def _grid_after(origin: float, every: float, after: float) -> float:
    """The first point origin + k * every strictly after `after`. The division only guesses k: with
    an origin that is not 0, (origin + E) - origin may come out a hair off E, so k is corrected until
    the point is after `after` and the one before it is not (else a slot could fail to move on)."""
    k = math.floor((after - origin) / every) + 1
    while origin + k * every <= after:
        k += 1
    while origin + (k - 1) * every > after:
        k -= 1
    return origin + k * every


def _grid_before(origin: float, every: float, before: float) -> float:
    """The last point origin + k * every strictly before `before` (corrected as in _grid_after)."""
    k = math.ceil((before - origin) / every) - 1
    while origin + k * every >= before:
        k -= 1
    while origin + (k + 1) * every < before:
        k += 1
    return origin + k * every


def next_slot(definition: dict[str, Any], after: float, anchor: float | None = None) -> float:
    """The first slot strictly after `after` (epoch seconds); `anchor`: see the module's docstring."""
    every = definition.get("every")
    if every:
        return float(_grid_after(_origin(definition, anchor), every, after))
    zone = ZoneInfo(definition.get("timezone") or "UTC")
    start = datetime.fromtimestamp(after, zone)
    return float(croniter(definition["cron"], start).get_next(float))


def previous_slot(definition: dict[str, Any], before: float, anchor: float | None = None) -> float:
    """The last slot strictly before `before`."""
    every = definition.get("every")
    if every:
        return float(_grid_before(_origin(definition, anchor), every, before))
    zone = ZoneInfo(definition.get("timezone") or "UTC")
    return float(croniter(definition["cron"], datetime.fromtimestamp(before, zone)).get_prev(float))


def latest_slot(definition: dict[str, Any], now: float, anchor: float | None = None) -> float:
    """The last slot at or before `now`."""
    on_time = next_slot(definition, now - 1e-6, anchor)  # a slot exactly at `now` counts
    return on_time if on_time <= now else previous_slot(definition, now, anchor)


def _first_seen(definition: dict[str, Any], now: float) -> float:
    """The first slot of an unaligned `every` schedule seen at `now`: the whole second of that tick
    (for a period of a second or more). A scheduler ticks once a second, just after each whole
    second, so the later slots then fall just before a tick; `now` itself would put each just after
    one, wherever the tick's jitter landed, and the schedule would fire a second late every time."""
    return float(math.floor(now)) if float(definition["every"]) >= 1 else now


def due_slots(definition: dict[str, Any], last: float | None, now: float) -> list[float]:
    """Slots after `last` up to `now`, oldest first. With no `last` (a schedule seen for the first
    time) only the latest slot, or for an unaligned `every` schedule the tick's own second (it fires
    when first seen, see `_first_seen`). After a stretch longer than CATCH_UP_LIMIT slots, only the most recent
    CATCH_UP_LIMIT of them (the older ones are passed over)."""
    if last is None:
        return [_first_seen(definition, now)] if unaligned(definition) else [latest_slot(definition, now)]
    slots: list[float] = []
    slot = next_slot(definition, last, last)
    while slot <= now and len(slots) < CATCH_UP_LIMIT:
        slots.append(slot)
        slot = next_slot(definition, slot, last)
    if slot > now:
        return slots
    recent: list[float] = []
    slot = latest_slot(definition, now, last)
    while slot > last and len(recent) < CATCH_UP_LIMIT:
        recent.append(slot)
        slot = previous_slot(definition, slot, last)
    return recent[::-1]
