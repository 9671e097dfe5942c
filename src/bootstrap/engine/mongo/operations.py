"""MongoDB operations: plain data, one class per kind of change, each able to describe itself.
`compare` produces them, `render` prints them, `execute` runs them — in the same order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bootstrap.engine.ops import Blocked, Operation, Plan, shown
from bootstrap.spec.durations import format_duration

__all__ = ["Blocked", "ChangeIndex", "CreateCollection", "CreateIndexes", "DropIndex", "ExpiresDocuments",
           "IndexModel", "KeepIndex", "Operation", "Plan", "RebuildIndex", "ShardCollection", "ShardingUnavailable",
           "UndeclaredShardKey", "UpdateValidator"]


def describe_keys(keys: tuple[tuple[str, int | str], ...]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in keys) + "}"


def describe_options(options: Mapping[str, Any]) -> str:
    parts = []
    for key, value in options.items():
        if key == "expireAfterSeconds":
            parts.append(f"ttl {format_duration(value)}")
        elif value is True:
            parts.append(key)
        else:
            parts.append(f"{key} {_compact(value)}")
    return " ".join(parts)


def _ttl(seconds: float | None) -> str:
    return "unset" if seconds is None else format_duration(seconds)


def _compact(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) + "}"
    return repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class IndexModel:
    """One index as createIndexes takes it."""

    name: str
    keys: tuple[tuple[str, int | str], ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {"key": dict(self.keys), "name": self.name, **self.options}

    def describe(self) -> str:
        text = f"{self.name} {describe_keys(self.keys)}"
        opts = describe_options(self.options)
        return f"{text} {opts}" if opts else text


@dataclass(frozen=True)
class CreateCollection(Operation):
    validator: Mapping[str, Any]
    level: str
    action: str
    symbol = "+"

    def describe(self) -> list[str]:
        props = self.validator.get("$jsonSchema", {}).get("properties", {})
        return [f"create collection {self.collection} (validator: {len(props)} fields, "
                f"level {self.level}, action {self.action})"]


@dataclass(frozen=True)
class UpdateValidator(Operation):
    validator: Mapping[str, Any]
    level: str
    action: str
    before_level: str
    before_action: str
    differences: tuple[str, ...]
    # Existing documents the new validator would refuse (counted by the plan step; None: not
    # counted), and a few of their ids: read from the data, not part of what the change is.
    failing: int | None = field(default=None, compare=False)
    failing_ids: tuple[str, ...] = field(default=(), compare=False)
    # The validators differ in descriptions (and titles) alone: the documents need no count.
    notes_only: bool = field(default=False, compare=False)
    symbol = "~"
    kind = "change"

    def describe(self) -> list[str]:
        lines = [f"change validator of {self.collection} (collMod; existing documents are not rechecked)"]
        if (self.before_level, self.before_action) != (self.level, self.action):
            lines.append(f"  validation: level {self.before_level} -> {self.level}, "
                         f"action {self.before_action} -> {self.action}")
        lines += [f"  {d}" for d in self.differences]
        if self.failing == 0:
            lines.append("  every existing document passes the new validator")
        elif self.failing:
            sample = f" (e.g. _id {', '.join(self.failing_ids)})" if self.failing_ids else ""
            lines.append(f"  {self.failing} existing document(s) would fail the new validator{sample}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "failing": self.failing, "failing_ids": list(self.failing_ids)}


@dataclass(frozen=True)
class CreateIndexes(Operation):
    """All missing indexes of one collection, in one createIndexes command."""

    indexes: tuple[IndexModel, ...]
    rebuilt: tuple[str, ...] = ()  # names also shown as rebuilds
    # The live indexes those rebuilds drop, by the rebuilt index's name: put back if the build fails
    # (no collection is left without the index it had), and what a TTL deleted before.
    previous: tuple[tuple[str, IndexModel], ...] = field(default=(), compare=False)
    # Sent as createIndexes' commitQuorum (replica sets and mongos); None: not sent (standalone).
    commit_quorum: str | int | None = None
    symbol = "+"

    def count(self) -> int:
        return len(self.indexes) - len(self.rebuilt)

    def units(self) -> tuple[Any, ...]:
        """Each index on its own: after an election cut a rebuild between its drop and this build,
        the plan made again builds the index as a plain create."""
        return tuple(("create index", self.collection, index) for index in self.indexes)

    def describe(self) -> list[str]:
        return [f"create index {ix.describe()}" for ix in self.indexes if ix.name not in self.rebuilt]

    def headline(self) -> str:
        created = self.describe()
        return created[0] if created else f"build index {', '.join(self.rebuilt)} again (rebuild)"


@dataclass(frozen=True)
class ChangeIndex(Operation):
    """An index changed in place with collMod, no rebuild: its TTL (set or changed), `hidden`, or
    made unique (MongoDB 6.0+)."""

    name: str
    changes: tuple[tuple[str, Any, Any], ...]  # (option, before, after)
    # As declared: its TTL field and options, for what a shorter TTL deletes and the duplicates a
    # unique index cannot take (not part of what the change is).
    index: IndexModel | None = field(default=None, compare=False)
    symbol = "~"
    kind = "change"

    @property
    def makes_unique(self) -> bool:
        return any(option == "unique" and after for option, _before, after in self.changes)

    def describe(self) -> list[str]:
        parts = []
        for option, before, after in self.changes:
            if option == "expireAfterSeconds":
                parts.append(f"ttl {_ttl(before)} -> {_ttl(after)}")
            else:
                parts.append(f"{option} {shown(before)} -> {shown(after)}")
        return [f"change index {self.name}: {', '.join(parts)} (collMod, no rebuild)"]


@dataclass(frozen=True)
class RebuildIndex(Operation):
    """Drop an index whose definition changed; the matching CreateIndexes recreates it."""

    name: str
    before: IndexModel
    after: IndexModel
    reason: str
    symbol = "-/+"
    kind = "rebuild"

    def describe(self) -> list[str]:
        return [f"rebuild index {self.name}: {self.reason}",
                f"  before: {self.before.describe()}", f"  after:  {self.after.describe()}"]


@dataclass(frozen=True)
class DropIndex(Operation):
    """An index that exists but is not declared, dropped because --prune was given."""

    index: IndexModel
    symbol = "-"
    kind = "drop"

    def describe(self) -> list[str]:
        return [f"drop index {self.index.describe()} (not declared; --prune)"]


@dataclass(frozen=True)
class KeepIndex(Operation):
    """An undeclared index that stays: shown so nobody is surprised by it."""

    index: IndexModel
    symbol = "?"
    kind = "kept"
    is_change = False
    is_drift = False  # the operator's to keep (plan changes nothing): health stays green, and names it

    def describe(self) -> list[str]:
        return [f"keep undeclared index {self.index.describe()} (drop it with --prune)"]


@dataclass(frozen=True)
class ExpiresDocuments(Operation):
    """A new or shorter TTL that deletes existing documents at once (the TTL monitor's next pass,
    within a minute): allowed by --allow-expire, and said with how many."""

    index: str
    seconds: int
    documents: int
    symbol = "!"
    kind = "note"
    is_change = False
    is_drift = False  # the change it follows is the drift
    echoed = True  # in apply's log too: the deletion is what a reviewer of that log looks for

    def describe(self) -> list[str]:
        ttl = format_duration(self.seconds)
        return [f"index {self.index} (ttl {ttl}) deletes {self.documents} existing document(s) older than {ttl} "
                "within a minute (--allow-expire)"]

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "index": self.index, "documents": self.documents}


@dataclass(frozen=True)
class ShardCollection(Operation):
    """shardCollection through a mongos (after the shard-key index exists, before the other indexes),
    then a `split` at each declared split point."""

    keys: tuple[tuple[str, int | str], ...]
    unique: bool = False
    chunks: int | None = None  # numInitialChunks
    split_at: tuple[Mapping[str, Any], ...] = ()
    symbol = "+"

    def describe(self) -> list[str]:
        text = f"shard collection {self.collection} on {describe_keys(self.keys)}"
        if self.unique:
            text += " unique"
        if self.chunks is not None:
            text += f" ({self.chunks} initial chunks)"
        if self.split_at:
            text += f", split at {len(self.split_at)} point(s)"
        return [text + " (shardCollection)"]


@dataclass(frozen=True)
class ShardingUnavailable(Operation):
    """`shard:` is declared but the server is no mongos: one line for the whole plan, no change, so
    the same config runs on a laptop's standalone server or a replica set."""

    collections: tuple[str, ...]
    server: str
    symbol = "?"
    kind = "note"
    is_change = False
    is_drift = False  # the spec and the server agree as far as this server can: health stays green

    @property
    def group(self) -> str:
        return "sharding"

    def describe(self) -> list[str]:
        return [f"shard: declared on {', '.join(self.collections)}; not applied: {self.server} is not a mongos "
                "(shard-key indexes are still created)"]


@dataclass(frozen=True)
class UndeclaredShardKey(Operation):
    """A collection sharded on the cluster whose file declares no `shard:`: left as it is (a shard
    key cannot be removed by apply), shown so the file can say so."""

    keys: tuple[tuple[str, int | str], ...]
    symbol = "?"
    kind = "note"
    is_change = False

    def describe(self) -> list[str]:
        return [f"sharded on {describe_keys(self.keys)}, not declared: left as it is (declare it with shard:)"]
