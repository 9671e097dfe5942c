"""Reading and writing the schedule state tests look at: kept with the queue each schedule fires
into (layout.keys), found through the schedule index."""

from __future__ import annotations

from typing import Any

from bootstrap.layout.keys import ScheduleKeys, as_text


def _queues(client: Any, prefix: str) -> list[str]:
    return sorted({as_text(q) for q in client.hgetall(ScheduleKeys(prefix).index).values()})


def stored_definitions(client: Any, prefix: str) -> dict[str, Any]:
    """Schedule id -> stored definition (as Redis returned it), over every indexed queue."""
    keys = ScheduleKeys(prefix)
    found: dict[str, Any] = {}
    for queue in _queues(client, prefix):
        found.update({as_text(k): v for k, v in client.hgetall(keys.of(queue).schedules).items()})
    return found


def stored_last_slots(client: Any, prefix: str, queues: tuple[str, ...] = ()) -> dict[str, Any]:
    """Schedule id -> last slot handled, over every indexed queue and `queues`."""
    keys = ScheduleKeys(prefix)
    found: dict[str, Any] = {}
    for queue in sorted(set(_queues(client, prefix)) | set(queues)):
        found.update({as_text(k): v for k, v in client.hgetall(keys.of(queue).last_slot).items()})
    return found


def store_definition(client: Any, prefix: str, queue: str, schedule_id: str, raw: str) -> None:
    """Write a definition as apply would keep it (by hand: tests of what schedulers do with it)."""
    keys = ScheduleKeys(prefix)
    client.hset(keys.of(queue).schedules, schedule_id, raw)
    client.hset(keys.index, schedule_id, queue)
