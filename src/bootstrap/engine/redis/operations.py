"""Redis operations, planned and executed like the MongoDB ones."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bootstrap.engine.ops import Operation, shown
from bootstrap.spec.durations import format_duration


@dataclass(frozen=True)
class SetEvictionPolicy(Operation):
    """`CONFIG SET maxmemory-policy`; only with --fix-redis (it changes a server-wide setting)."""

    before: str
    after: str
    symbol = "~"
    kind = "change"

    @property
    def group(self) -> str:
        return "redis server" if self.collection == "server" else f"redis node {self.collection}"

    def describe(self) -> list[str]:
        return [f"set maxmemory-policy {self.before} -> {self.after} (--fix-redis)"]


@dataclass(frozen=True)
class PolicyUnknown(Operation):
    """CONFIG is not allowed here, so the eviction policy cannot be checked: say so, change nothing."""

    wanted: str
    symbol = "?"
    kind = "note"
    is_change = False

    @property
    def group(self) -> str:
        return "redis server" if self.collection == "server" else f"redis node {self.collection}"

    def describe(self) -> list[str]:
        return [f"cannot read maxmemory-policy (CONFIG is not allowed); make sure the server runs with {self.wanted}"]


@dataclass(frozen=True)
class JobsLeftBehind(Operation):
    """Jobs the spec no longer runs (see engine.redis.leftovers): said, never touched."""

    detail: str
    symbol = "?"
    kind = "note"
    is_change = False
    is_drift = False  # the spec and Redis agree; these jobs are the operator's to run or remove

    @property
    def group(self) -> str:
        return f"queue {self.collection}"

    def describe(self) -> list[str]:
        return [self.detail]


@dataclass(frozen=True)
class CreateQueue(Operation):
    """The queue's stream and its consumer group, reading from the start so that jobs enqueued
    before the first worker started are delivered."""

    stream: str
    group_name: str
    symbol = "+"

    @property
    def group(self) -> str:
        return f"queue {self.collection}"

    def describe(self) -> list[str]:
        return [f"create stream {self.stream} with consumer group {self.group_name}"]


@dataclass(frozen=True)
class WriteMarker(Operation):
    """The data marker (layout.marker), where it is missing: planned last, so it is there only once
    everything before it was applied. Never rewritten, so an apply with nothing else to do writes
    nothing."""

    key: str
    queue_keys: tuple[str, ...] = ()  # the queues' own markers missing (QueueKeys.marker)
    whole: bool = True  # the marker `key` is missing (not only queues' markers)
    symbol = "+"

    @property
    def group(self) -> str:
        return "redis data"

    def describe(self) -> list[str]:
        queues = f"the data markers of {len(self.queue_keys)} queue(s)"
        if not self.whole:  # only queues' markers: an older apply wrote none, or a queue is new
            return [f"write {queues} (on a Redis Cluster, a node that lost its data loses its queues' markers)"]
        lines = [f"write marker {self.key} (workers, scheduler and status check it to tell a Redis that lost its data)"]
        return lines + ([f"  and {queues}, one in each queue's slot"] if self.queue_keys else [])


@dataclass(frozen=True)
class MoveKeys(Operation):
    """RENAME each key of a queue from the layout before hash tags to its new name (layout.keys).
    Standalone Redis only, where every key is on the one server."""

    moves: tuple[tuple[str, str], ...]
    symbol = "~"
    kind = "change"

    @property
    def group(self) -> str:
        return f"queue {self.collection}"

    def describe(self) -> list[str]:
        return [f"move key {old} -> {new}" for old, new in self.moves]


@dataclass(frozen=True)
class MoveSchedules(Operation):
    """Split the global schedule hashes of the layout before hash tags into the per-queue ones
    (definition and last slot kept with the queue each schedule fires into, plus the index), then
    delete the old hashes. `queues`: schedule id -> its queue, or "" where the stored definition is
    unreadable (dropped: apply stores the declared one again)."""

    definitions_key: str
    last_slot_key: str
    queues: tuple[tuple[str, str], ...]
    symbol = "~"
    kind = "change"

    @property
    def group(self) -> str:
        return "schedules"

    def describe(self) -> list[str]:
        lines = [f"move schedule state {self.definitions_key} and {self.last_slot_key} to the queues' keys:"]
        for schedule_id, queue in self.queues:
            where = f"{queue}'s keys" if queue else "nowhere (unreadable definition: dropped)"
            lines.append(f"  {schedule_id} -> {where}")
        return lines


@dataclass(frozen=True)
class PutSchedule(Operation):
    """Store a schedule's definition with the queue it fires into; `held_in`: the queue whose keys
    hold it now, where that is another one (the schedule moves, its last slot with it)."""

    definition: Mapping[str, Any]
    before: Mapping[str, Any] | None
    held_in: str = ""

    @property
    def group(self) -> str:
        return f"schedule {self.collection}"

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "create" if self.before is None else "change"

    @property
    def symbol(self) -> str:  # type: ignore[override]
        return "+" if self.before is None else "~"

    @property
    def retimed(self) -> bool:
        """Its slots move (a new cron, time zone or aligned period): the new timing counts from the
        apply, so its slots before then are not taken as missed (run at once by `misfire: run_once`).
        An unaligned `every` keeps its last slot: its next ones follow that one (see jobs.slots)."""
        if self.before is None or (self.definition.get("every") and self.definition.get("align", True) is False):
            return False
        return any(self.before.get(k) != self.definition.get(k) for k in _TIMING)

    def describe(self) -> list[str]:
        if self.before is None:
            return [f"create schedule {self.collection}: {describe_schedule(self.definition)}"]
        changed = [
            f"{k} {_show(k, self.before.get(k))} -> {_show(k, self.definition.get(k))}"
            for k in sorted(set(self.before) | set(self.definition))
            if self.before.get(k) != self.definition.get(k)
        ]
        counted = " (its slots count from the apply: none before it is run as missed)" if self.retimed else ""
        return [f"change schedule {self.collection}: {', '.join(changed)}{counted}"]


_TIMING = ("cron", "every", "align", "timezone")  # what decides a schedule's slots


@dataclass(frozen=True)
class DeleteSchedule(Operation):
    """`held_in`: the queue whose keys hold it (default: its definition's queue)."""

    before: Mapping[str, Any]
    held_in: str = ""
    symbol = "-"
    kind = "drop"

    @property
    def group(self) -> str:
        return f"schedule {self.collection}"

    def describe(self) -> list[str]:
        return [f"delete schedule {self.collection} (no longer declared): {describe_schedule(self.before)}"]


def describe_schedule(definition: Mapping[str, Any]) -> str:
    if definition.get("cron"):
        when = f"cron '{definition['cron']}'"
    elif isinstance(definition.get("every"), int | float):
        when = f"every {format_duration(definition['every'])}"
    else:  # a stored value that is not a definition we wrote
        return "(unreadable definition)"
    return f"{definition.get('queue')}/{definition.get('task')} {when}"


def _show(key: str, value: Any) -> str:
    """A definition's value as written in the spec: an interval as a duration (every 45m -> 1h)."""
    if key == "every" and isinstance(value, int | float) and not isinstance(value, bool):
        return format_duration(value)
    return shown(value)
