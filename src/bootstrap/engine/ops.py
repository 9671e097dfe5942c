"""A plan: the ordered operations that bring live state (MongoDB and Redis) to the spec.

Operations are plain data; each kind knows how to describe itself and which summary column it
counts in. The same list is rendered by `plan` and executed by `apply`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Operation:
    """Base of every planned operation, MongoDB or Redis. `collection` names what it acts on (a
    collection, or for Redis operations the queue, schedule or server); `group` heads its section."""

    collection: str

    symbol = "?"
    kind = "create"  # the summary column it counts in: create, change, rebuild, drop, blocked, kept, note
    is_change = True  # False for informational entries (kept indexes, blocked operations)

    @property
    def group(self) -> str:
        return f"collection {self.collection}"

    def count(self) -> int:
        return 1

    def describe(self) -> list[str]:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {"op": type(self).__name__, "target": self.group, "symbol": self.symbol,
                "description": self.describe()}


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

    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "change": 0, "rebuild": 0, "drop": 0, "blocked": 0, "kept": 0, "note": 0}
        for op in self.operations:
            counts[op.kind] += op.count()
        return counts

    def with_operations(self, more: tuple[Operation, ...]) -> Plan:
        return Plan(self.database, self.operations + more)


@dataclass(frozen=True)
class Options:
    """What a plan may include: rebuilds, prunes, the Redis eviction fix; how long apply waits for the lock."""

    allow_rebuild: bool = False
    prune: bool = False
    fix_redis: bool = False
    lock_timeout: float = 600.0
