"""Slot arithmetic (bootstrap.jobs.slots): pure functions, no servers."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bootstrap.jobs.slots import CATCH_UP_LIMIT, due_slots, latest_slot, next_slot

PARIS = ZoneInfo("Europe/Paris")


def ts(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, *, tz: tzinfo = UTC, fold: int = 0) -> float:
    """Epoch seconds of a wall-clock time (UTC unless `tz`; fold=1: the second of a repeated hour)."""
    return datetime(y, mo, d, h, mi, s, tzinfo=tz, fold=fold).timestamp()


def utc(slot: float) -> datetime:
    return datetime.fromtimestamp(slot, UTC)


def local(slot: float, zone: ZoneInfo = PARIS) -> str:
    return datetime.fromtimestamp(slot, zone).isoformat()


# every: N -- multiples of N seconds since the epoch


@pytest.mark.parametrize("every", [1.0, 2.0, 7.0, 60.0, 900.0, 2700.0, 86400.0])
def test_every_slots_are_multiples_of_the_interval_since_the_epoch(every: float) -> None:
    definition = {"every": every}
    for now in (ts(2026, 11, 28, 21, 31, 47) + 0.25, 1_000_000_000.5, 1_795_901_507.999):
        latest = latest_slot(definition, now)
        after = next_slot(definition, now)
        assert latest % every == 0 and after % every == 0
        assert latest <= now < after == latest + every


def test_every_slots_do_not_depend_on_when_the_scheduler_started() -> None:
    """Two replicas (or a restart) started at different moments compute the same slots."""
    definition = {"every": 900.0}  # every: 15m
    a = ts(2026, 11, 28, 21, 3, 12)
    b = ts(2026, 11, 28, 21, 14, 59)
    assert next_slot(definition, a) == next_slot(definition, b) == ts(2026, 11, 28, 21, 15)
    assert latest_slot(definition, a) == latest_slot(definition, b) == ts(2026, 11, 28, 21, 0)


def test_slot_boundaries() -> None:
    definition = {"every": 2.0}
    slot = ts(2026, 1, 1, 0, 0, 0)
    assert latest_slot(definition, slot) == slot  # a slot is due at its own instant ...
    assert next_slot(definition, slot) == slot + 2  # ... and next_slot is strictly after
    assert latest_slot(definition, slot - 0.001) == slot - 2
    assert next_slot(definition, slot - 0.001) == slot


def test_every_with_a_fractional_interval_always_moves_forward() -> None:
    definition = {"every": 1.1}
    slot = latest_slot(definition, ts(2026, 11, 28, 21, 0))
    for _ in range(10_000):
        following = next_slot(definition, slot)
        assert following == pytest.approx(slot + 1.1, abs=1e-6) and following > slot
        assert latest_slot(definition, following) == following
        slot = following


# cron -- the instants the expression names in its time zone


def test_cron_slots_in_utc_by_default() -> None:
    definition = {"cron": "0 */2 * * *", "timezone": None}
    now = ts(2026, 11, 28, 21, 31, 47)
    assert latest_slot(definition, now) == ts(2026, 11, 28, 20, 0)
    assert next_slot(definition, now) == ts(2026, 11, 28, 22, 0)
    assert next_slot({"cron": "0 */2 * * *"}, now) == ts(2026, 11, 28, 22, 0)


def test_cron_slots_are_read_in_the_schedule_time_zone() -> None:
    definition = {"cron": "0 2 * * *", "timezone": "Europe/Paris"}  # 02:00 in Paris
    winter = ts(2026, 1, 15, 12, 0)
    assert utc(next_slot(definition, winter)) == datetime(2026, 1, 16, 1, 0, tzinfo=UTC)  # UTC+1
    assert utc(latest_slot(definition, winter)) == datetime(2026, 1, 15, 1, 0, tzinfo=UTC)
    summer = ts(2026, 7, 15, 12, 0)
    assert utc(next_slot(definition, summer)) == datetime(2026, 7, 16, 0, 0, tzinfo=UTC)  # UTC+2
    assert utc(latest_slot(definition, summer)) == datetime(2026, 7, 15, 0, 0, tzinfo=UTC)


def test_cron_at_an_exact_slot() -> None:
    definition = {"cron": "*/5 * * * *", "timezone": "UTC"}
    slot = ts(2026, 11, 28, 10, 5)
    assert latest_slot(definition, slot) == slot
    assert latest_slot(definition, slot + 299.5) == slot
    assert next_slot(definition, slot) == slot + 300
    assert next_slot(definition, slot - 0.5) == slot


def slots_between(definition: dict[str, Any], start: float, end: float) -> list[float]:
    slots, slot = [], next_slot(definition, start)
    while slot <= end:
        slots.append(slot)
        slot = next_slot(definition, slot)
    return slots


def test_cron_across_the_spring_forward_change() -> None:
    """Europe/Paris, 2026-03-29: 02:00 CET jumps to 03:00 CEST; the hour 02:xx does not exist."""
    hourly = {"cron": "0 * * * *", "timezone": "Europe/Paris"}
    slots = slots_between(hourly, ts(2026, 3, 28, 23, 30, tz=PARIS), ts(2026, 3, 29, 4, 30, tz=PARIS))
    assert [local(s) for s in slots] == [
        "2026-03-29T00:00:00+01:00",
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",  # one hour after 01:00 CET
        "2026-03-29T04:00:00+02:00",
    ]
    assert all(b - a == 3600 for a, b in itertools.pairwise(slots))
    daily = {"cron": "0 3 * * *", "timezone": "Europe/Paris"}  # 03:00 local either side of the change
    slots = slots_between(daily, ts(2026, 3, 27, 12, tz=PARIS), ts(2026, 3, 31, 12, tz=PARIS))
    assert [utc(s).hour for s in slots] == [2, 1, 1, 1]  # 03:00 CET = 02:00 UTC, then 03:00 CEST = 01:00 UTC
    assert slots[1] - slots[0] == 23 * 3600  # that day is 23 hours long
    # A time that does not exist that day still fires once, at the first instant after the gap.
    skipped_hour = {"cron": "30 2 * * *", "timezone": "Europe/Paris"}
    slots = slots_between(skipped_hour, ts(2026, 3, 28, 12, tz=PARIS), ts(2026, 3, 30, 12, tz=PARIS))
    assert [local(s) for s in slots] == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_cron_across_the_fall_back_change() -> None:
    """Europe/Paris, 2026-10-25: 03:00 CEST goes back to 02:00 CET; the hour 02:xx happens twice."""
    hourly = {"cron": "0 * * * *", "timezone": "Europe/Paris"}
    slots = slots_between(hourly, ts(2026, 10, 25, 0, 30, tz=PARIS), ts(2026, 10, 25, 4, 30, tz=PARIS))
    assert [local(s) for s in slots] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",  # the repeated hour is a real, distinct hour
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T04:00:00+01:00",
    ]
    assert all(b - a == 3600 for a, b in itertools.pairwise(slots))
    daily = {"cron": "0 3 * * *", "timezone": "Europe/Paris"}
    slots = slots_between(daily, ts(2026, 10, 24, 12, tz=PARIS), ts(2026, 10, 26, 12, tz=PARIS))
    assert [local(s) for s in slots] == ["2026-10-25T03:00:00+01:00", "2026-10-26T03:00:00+01:00"]
    assert slots[1] - slots[0] == 24 * 3600 and slots[0] - ts(2026, 10, 24, 3, tz=PARIS) == 25 * 3600
    # In the repeated hour, latest_slot and next_slot agree with each other.
    second_two = ts(2026, 10, 25, 2, 0, tz=PARIS, fold=1)
    assert latest_slot(hourly, second_two + 60) == second_two
    assert next_slot(hourly, second_two - 60) == second_two


# due_slots -- what a scheduler tick has to handle


def test_due_slots_for_a_schedule_seen_for_the_first_time_is_only_the_latest_slot() -> None:
    now = ts(2026, 11, 28, 21, 31, 47) + 0.4
    assert due_slots({"every": 1.0}, None, now) == [ts(2026, 11, 28, 21, 31, 47)]
    assert due_slots({"every": 900.0}, None, now) == [ts(2026, 11, 28, 21, 30)]
    assert due_slots({"cron": "0 2 * * *", "timezone": "UTC"}, None, now) == [ts(2026, 11, 28, 2, 0)]


def test_due_slots_nothing_new() -> None:
    last = ts(2026, 11, 28, 21, 30)
    assert due_slots({"every": 900.0}, last, last) == []
    assert due_slots({"every": 900.0}, last, last + 899.9) == []
    assert due_slots({"cron": "*/15 * * * *"}, last, last + 600) == []


def test_due_slots_is_the_next_slot_in_normal_operation() -> None:
    last = ts(2026, 11, 28, 21, 31, 46)
    assert due_slots({"every": 1.0}, last, last + 1.003) == [last + 1]
    assert due_slots({"every": 1.0}, last, last + 1) == [last + 1]


def test_due_slots_catches_up_every_slot_after_last_oldest_first() -> None:
    last = ts(2026, 11, 28, 21, 30)
    definition = {"every": 60.0}
    assert due_slots(definition, last, last + 5 * 60 + 30) == [last + 60 * i for i in range(1, 6)]
    cron = {"cron": "0 * * * *", "timezone": "Europe/Paris"}  # across the fall-back change
    slots = due_slots(cron, ts(2026, 10, 25, 0, 0, tz=PARIS), ts(2026, 10, 25, 3, 30, tz=PARIS))
    assert [local(s) for s in slots] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_due_slots_last_not_on_a_slot() -> None:
    """After a schedule change (every: 1s -> every: 3s) the last slot handled is one of the old slots."""
    last = ts(2026, 11, 28, 21, 31, 47)  # 21:31:47 is not a multiple of 3 s
    assert last % 3 != 0
    slots = due_slots({"every": 3.0}, last, last + 7)
    assert slots and all(s % 3 == 0 and last < s <= last + 7 for s in slots)
    assert slots == [ts(2026, 11, 28, 21, 31, 48), ts(2026, 11, 28, 21, 31, 51), ts(2026, 11, 28, 21, 31, 54)]


def test_due_slots_up_to_the_catch_up_limit_are_all_listed() -> None:
    last = ts(2026, 11, 28, 0, 0)
    now = last + CATCH_UP_LIMIT
    assert due_slots({"every": 1.0}, last, now) == [last + i for i in range(1, CATCH_UP_LIMIT + 1)]


def test_due_slots_beyond_the_catch_up_limit_are_the_most_recent_slots() -> None:
    last = ts(2026, 11, 28, 0, 0)
    now = last + 86_400 + 0.5  # a day of 1-minute slots: 1440 missed
    slots = due_slots({"every": 60.0}, last, now)
    assert slots == [last + 86_400 - 60 * i for i in range(CATCH_UP_LIMIT - 1, -1, -1)]
    assert slots[-1] == latest_slot({"every": 60.0}, now) == last + 86_400
    # One slot over the limit: the oldest is passed over, nothing is listed twice.
    slots = due_slots({"every": 1.0}, last, last + CATCH_UP_LIMIT + 1)
    assert slots == [last + i for i in range(2, CATCH_UP_LIMIT + 2)]
    cron = {"cron": "*/5 * * * *", "timezone": "Europe/Paris"}
    slots = due_slots(cron, last, last + timedelta(days=2).total_seconds())
    assert len(slots) == CATCH_UP_LIMIT and slots == sorted(set(slots))
    assert slots[-1] == last + 2 * 86_400 and slots[0] == last + 2 * 86_400 - 300 * (CATCH_UP_LIMIT - 1)


def test_latest_slot_is_never_after_now() -> None:
    slot = ts(2026, 11, 28, 21, 30)
    cron = {"cron": "*/5 * * * *"}
    assert latest_slot(cron, slot) == slot
    assert latest_slot(cron, slot - 0.0005) == slot - 300
    assert latest_slot({"every": 300.0}, slot - 0.0005) == slot - 300


# every: N without align -- the first slot when first seen, then N apart from the last one handled

UNALIGNED = {"every": 900.0, "align": False}


def test_an_unaligned_schedule_seen_for_the_first_time_is_due_now() -> None:
    now = ts(2026, 11, 28, 21, 31, 47) + 0.25
    assert due_slots(UNALIGNED, None, now) == [ts(2026, 11, 28, 21, 31, 47)]  # the tick's second
    assert due_slots({"every": 0.5, "align": False}, None, now) == [now]  # under a second: now itself
    assert due_slots({"every": 900.0, "align": True}, None, now) == [ts(2026, 11, 28, 21, 30)]
    assert due_slots({"every": 900.0}, None, now) == [ts(2026, 11, 28, 21, 30)]  # stored before `align`: aligned


def test_an_unaligned_schedule_fires_on_time_whatever_the_ticks_jitter() -> None:
    # Found by the operator walk: first seen by a tick 4 ms after a whole second, its slots fell 4 ms
    # after the whole second, and a later tick 1 ms after it fired each one a second late.
    second = ts(2026, 11, 28, 21, 31, 47)
    (first,) = due_slots(UNALIGNED, None, second + 0.004)
    assert due_slots(UNALIGNED, first, second + 900 + 0.001) == [second + 900]


def test_unaligned_slots_follow_the_last_slot_handled() -> None:
    last = ts(2026, 11, 28, 21, 31, 47) + 0.25
    assert due_slots(UNALIGNED, last, last + 899.9) == []
    assert due_slots(UNALIGNED, last, last + 900) == [last + 900]
    assert due_slots(UNALIGNED, last, last + 2000) == [last + 900, last + 1800]
    assert next_slot(UNALIGNED, last + 100, last) == last + 900
    assert latest_slot(UNALIGNED, last + 1000, last) == last + 900


def test_unaligned_slots_always_move_forward_from_a_fractional_anchor() -> None:
    definition = {"every": 0.1, "align": False}
    last = 1_795_977_258.123456
    for _ in range(1000):
        (slot,) = due_slots(definition, last, last + 0.1)
        assert 0.1 - 1e-6 < slot - last < 0.1 + 1e-6
        last = slot
