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


def latest_slot(definition: dict[str, Any], now: float) -> float:
    """The last slot at or before `now`."""
    every = definition.get("every")
    if every:
        return float(math.floor(now / every) * every)
    zone = ZoneInfo(definition.get("timezone") or "UTC")
    start = datetime.fromtimestamp(now + 0.001, zone)  # get_prev excludes the start itself
    return float(croniter(definition["cron"], start).get_prev(float))


def due_slots(definition: dict[str, Any], last: float | None, now: float) -> list[float]:
    """Slots after `last` up to `now`, oldest first. With no `last` (a schedule seen for the first
    time) only the latest slot. A longer stretch than CATCH_UP_LIMIT ends with the latest slot."""
    if last is None:
        return [latest_slot(definition, now)]
    slots: list[float] = []
    slot = next_slot(definition, last)
    while slot <= now and len(slots) < CATCH_UP_LIMIT:
        slots.append(slot)
        slot = next_slot(definition, slot)
    if slot <= now:
        latest = latest_slot(definition, now)
        if latest > slots[-1]:
            slots.append(latest)
    return slots
