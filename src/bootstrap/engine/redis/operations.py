"""Redis operations, planned and executed like the MongoDB ones."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bootstrap.engine.ops import Operation
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
        return "redis server"

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
        return "redis server"

    def describe(self) -> list[str]:
        return [f"cannot read maxmemory-policy (CONFIG is not allowed); make sure the server runs with {self.wanted}"]


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
    symbol = "+"

    @property
    def group(self) -> str:
        return "redis data"

    def describe(self) -> list[str]:
        return [f"write marker {self.key} (workers, scheduler and status check it to tell a Redis that lost its data)"]


@dataclass(frozen=True)
class PutSchedule(Operation):
    definition: Mapping[str, Any]
    before: Mapping[str, Any] | None

    @property
    def group(self) -> str:
        return f"schedule {self.collection}"

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "create" if self.before is None else "change"

    @property
    def symbol(self) -> str:  # type: ignore[override]
        return "+" if self.before is None else "~"

    def describe(self) -> list[str]:
        if self.before is None:
            return [f"create schedule {self.collection}: {describe_schedule(self.definition)}"]
        changed = [
            f"{k} {_show(self.before.get(k))} -> {_show(self.definition.get(k))}"
            for k in sorted(set(self.before) | set(self.definition))
            if self.before.get(k) != self.definition.get(k)
        ]
        return [f"change schedule {self.collection}: {', '.join(changed)}"]


@dataclass(frozen=True)
class DeleteSchedule(Operation):
    before: Mapping[str, Any]
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


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
