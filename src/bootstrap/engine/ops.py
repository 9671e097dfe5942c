"""A plan: the ordered operations that bring live state (MongoDB and Redis) to the spec.

Operations are plain data; each kind knows how to describe itself and which summary column it
counts in. The same list is rendered by `plan` and executed by `apply`. A Backend is what each side
(MongoDB, Redis) gives apply: how to plan it and how to execute one of its operations.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Report = Callable[[str], None]  # where progress lines go (the console, or a list in tests)


def shown(value: Any) -> str:
    """An option's value in a plan line, the same way everywhere: `unset`, `true`/`false`, JSON for
    a mapping or a list, else as text."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    # default=str: a live option may hold a date or an ObjectId (a partialFilterExpression)
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else str(value)


@dataclass(frozen=True)
class Operation:
    """Base of every planned operation, MongoDB or Redis. `collection` names what it acts on (a
    collection, or for Redis operations the queue, schedule or server); `group` heads its section."""

    collection: str

    symbol = "?"
    kind = "create"  # the summary column it counts in: create, change, rebuild, drop, blocked, kept, note
    is_change = True  # False for informational entries (kept indexes, blocked operations)
    is_drift = True  # False for notes about the server, not about the spec (sharding off a mongos)
    echoed = False  # a note that apply says again once it ran the change it follows (documents a TTL deletes)

    @property
    def group(self) -> str:
        return f"collection {self.collection}"

    def count(self) -> int:
        return 1

    def describe(self) -> list[str]:
        raise NotImplementedError

    def headline(self) -> str:
        """One line naming the operation, for errors and records (`describe` may give none)."""
        lines = self.describe()
        return lines[0] if lines else f"{self.kind} {self.group}"

    def units(self) -> tuple[Any, ...]:
        """What this change is made of, each fingerprinted on its own (engine.reviewed): a plan made
        again after an election may hold part of it. The operation itself, unless it says otherwise."""
        return (self,)

    def to_json(self) -> dict[str, Any]:
        return {"op": type(self).__name__, "kind": self.kind, "change": self.is_change, "target": self.group,
                "symbol": self.symbol, "description": self.describe()}


@dataclass(frozen=True)
class Blocked(Operation):
    """A needed change that this run may not make; apply refuses to start while any is present."""

    wanted: Operation
    reason: str
    symbol = "!"
    kind = "blocked"
    is_change = False

    @property
    def group(self) -> str:
        return self.wanted.group

    def describe(self) -> list[str]:
        return [f"blocked: {self.reason}", *(f"  {line}" for line in self.wanted.describe())]

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "reason": self.reason, "wanted": self.wanted.to_json()}


@dataclass(frozen=True)
class Plan:
    database: str
    operations: tuple[Operation, ...] = ()

    @property
    def changes(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.operations if op.is_change)

    @property
    def blocked(self) -> tuple[Blocked, ...]:
        return tuple(op for op in self.operations if isinstance(op, Blocked))

    def with_operations(self, more: tuple[Operation, ...]) -> Plan:
        return Plan(self.database, self.operations + more)


@dataclass(frozen=True)
class Options:
    """What a plan may include: rebuilds, prunes, TTLs that delete existing documents, the Redis
    eviction fix; how long apply waits for the lock."""

    allow_rebuild: bool = False
    prune: bool = False
    allow_expire: bool = False
    # Read the documents a change touches (how many fail a new validator, duplicates under a unique
    # index, documents a TTL deletes): full scans on a large collection. `status`, `health` and the
    # dashboard only need what differs, and run often (a compose health check every few seconds).
    impact: bool = True
    # How long each of those reads may take (a whole-collection scan): its own budget, not the
    # socket timeout the workers share (seconds).
    check_timeout: float = 600.0
    fix_redis: bool = False
    lock_timeout: float = 600.0


@dataclass(frozen=True)
class Backend:
    """One side of plan/apply, bound to its connection and the spec.

    `plan` reads the live state once and compares it with the spec: the side's operations, in the
    order they must run. `execute` runs one of them and raises errors.OperationFailed (naming what
    failed) when it cannot; apply drives both, in order, under the lock.
    """

    plan: Callable[[Options], tuple[Operation, ...]]
    execute: Callable[[Operation, Report], None]
