"""Schedule slots: the instants a schedule fires at. Pure functions, so they are easy to test.

`every: E` slots are the multiples of E seconds since the Unix epoch (so every scheduler replica and
every restart agrees on them); cron slots are the instants the expression names in its time zone.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

CATCH_UP_LIMIT = 100  # past slots considered at once; older ones count as one missed stretch


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
