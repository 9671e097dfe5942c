"""Read what is live in a database, normalised so it compares cleanly with the spec.

Round trips: one `hello` (the server's role; on a mongos one find on config.collections for shard
keys), one `listCollections` for all managed collections,
then one `listIndexes` per existing managed collection. Server-added noise (`v`, `ns`, `background`)
is dropped; defaults are made explicit (validation level/action); numeric key directions become
ints (1.0 -> 1).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.database import Database

from bootstrap.engine.mongo.server import ServerRole, read_role

IGNORED_INDEX_KEYS = frozenset({"v", "ns", "background", "key", "name"})


@dataclass(frozen=True)
class LiveIndex:
    name: str
    keys: tuple[tuple[str, int | str], ...]
    options: Mapping[str, Any]  # unique, sparse, expireAfterSeconds, partialFilterExpression, ...

    @property
    def ttl(self) -> int | None:
        value = self.options.get("expireAfterSeconds")
        return None if value is None else int(value)


@dataclass(frozen=True)
class LiveShard:
    """A collection's shard key as the config server records it (config.collections: key, unique)."""

    keys: tuple[tuple[str, int | str], ...]
    unique: bool = False


@dataclass(frozen=True)
class LiveCollection:
    name: str
    validator: Mapping[str, Any] | None
    validation_level: str
    validation_action: str
    indexes: tuple[LiveIndex, ...] = ()
    is_view: bool = False
    shard: LiveShard | None = None  # None: not sharded (or not on a mongos)
    is_timeseries: bool = False  # MongoDB allows no validator on it
    capped: bool = False  # MongoDB before 7.1 builds no TTL index on it

    def index(self, name: str) -> LiveIndex | None:
        return next((ix for ix in self.indexes if ix.name == name), None)


@dataclass(frozen=True)
class LiveState:
    database: str
    collections: Mapping[str, LiveCollection] = field(default_factory=dict)
    server: ServerRole = field(default_factory=ServerRole)


def _direction(value: Any) -> int | str:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int | str) else str(value)


def _declared_keys(raw: Mapping[str, Any]) -> tuple[tuple[str, int | str], ...]:
    """Key pattern as declared. Text indexes are reported as `{_fts: "text", _ftsx: 1}` with the
    fields in `weights`: turn that back into `{field: "text", ...}`."""
    keys: list[tuple[str, int | str]] = []
    for name, direction in raw["key"].items():
        if name == "_fts":
            keys += [(str(field), "text") for field in raw.get("weights", {})]
        elif name != "_ftsx":
            keys.append((str(name), _direction(direction)))
    return tuple(keys)


def normalise_index(raw: Mapping[str, Any]) -> LiveIndex:
    options = {k: v for k, v in raw.items() if k not in IGNORED_INDEX_KEYS}
    # Absent and false mean the same to the server; keep only what is set.
    options = {k: v for k, v in options.items() if v is not False}
    return LiveIndex(name=str(raw["name"]), keys=_declared_keys(raw), options=options)


def read_live_state(db: Database[Any], names: Iterable[str]) -> LiveState:
    """The live state of the collections named (others are never looked at), and the server's role."""
    server = read_role(db)
    wanted = sorted(set(names))
    shards = read_shards(db, wanted) if server.is_mongos else {}
    collections: dict[str, LiveCollection] = {}
    for info in db.list_collections(filter={"name": {"$in": wanted}}):
        options = info.get("options", {})
        is_view = info.get("type") == "view"
        indexes: tuple[LiveIndex, ...] = ()
        if not is_view:
            indexes = tuple(
                normalise_index(raw) for raw in db[info["name"]].list_indexes() if raw["name"] != "_id_"
            )
        collections[info["name"]] = LiveCollection(
            name=info["name"],
            validator=options.get("validator"),
            validation_level=options.get("validationLevel", "strict"),
            validation_action=options.get("validationAction", "error"),
            indexes=indexes,
            is_view=is_view,
            shard=shards.get(info["name"]),
            is_timeseries=info.get("type") == "timeseries" or "timeseries" in options,
            capped=bool(options.get("capped")),
        )
    return LiveState(database=db.name, collections=collections, server=server)


def read_shards(db: Database[Any], names: list[str]) -> dict[str, LiveShard]:
    """Shard keys of the named collections, from the config database a mongos serves: one find on
    config.collections (`_id` is the namespace; entries of dropped collections are skipped)."""
    namespaces = {f"{db.name}.{name}": name for name in names}
    found: dict[str, LiveShard] = {}
    for entry in db.client["config"]["collections"].find({"_id": {"$in": list(namespaces)}}):
        if entry.get("dropped"):
            continue
        keys = tuple((str(k), _direction(v)) for k, v in entry.get("key", {}).items())
        found[namespaces[entry["_id"]]] = LiveShard(keys, bool(entry.get("unique", False)))
    return found


def count_failing(db: Database[Any], collection: str, validator: Mapping[str, Any],
                  samples: int = 3) -> tuple[int, tuple[str, ...]]:
    """How many documents of `collection` `validator` would refuse, and the ids of a few of them.
    collMod does not recheck existing documents, so nobody else says it. Two reads: a count and
    a find limited to `samples` ids."""
    failing = {"$nor": [dict(validator)]}
    count = db[collection].count_documents(failing)
    ids = tuple(str(doc["_id"]) for doc in db[collection].find(failing, {"_id": 1}).limit(samples)) if count else ()
    return count, ids


EMPTY_ARRAY = {"__emptyArray__": True}  # how an empty array is grouped: its own key, as the index has it


def duplicate_sample(db: Database[Any], collection: str, keys: tuple[tuple[str, int | str], ...],
                     options: Mapping[str, Any]) -> dict[str, Any] | None:
    """One key value shared by several documents, if any: what a unique index build trips on. As the
    index sees them: each element of an array is a key of its own (one document repeating a value
    is no duplicate), a missing field and null are the same key, an empty array is one key, strings
    compare under the index's collation; a sparse index skips documents missing every key field, a
    partial one those outside its filter."""
    pipeline: list[dict[str, Any]] = []
    if "partialFilterExpression" in options:
        pipeline.append({"$match": options["partialFilterExpression"]})
    if options.get("sparse"):
        pipeline.append({"$match": {"$or": [{name: {"$exists": True}} for name, _ in keys]}})
    values = {f"k{n}": _key_value(f"${name}") for n, (name, _) in enumerate(keys)}
    pipeline.append({"$project": values})
    pipeline += [{"$unwind": {"path": f"$k{n}", "preserveNullAndEmptyArrays": True}} for n in range(len(keys))]
    group_id = {f"k{n}": {"$ifNull": [f"$k{n}", None]} for n in range(len(keys))}
    pipeline += [
        {"$group": {"_id": group_id, "ids": {"$addToSet": "$_id"}}},
        {"$project": {"ids": 1, "count": {"$size": "$ids"}}},
        {"$match": {"count": {"$gt": 1}}},
        {"$limit": 1},
    ]
    collation = dict(options["collation"]) if options.get("collation") else None
    for row in db[collection].aggregate(pipeline, allowDiskUse=True, collation=collation):
        key = {name: _shown_key(row["_id"].get(f"k{n}")) for n, (name, _) in enumerate(keys)}
        return {"key": key, "count": row["count"], "ids": sorted(row["ids"], key=str)[:3]}
    return None


def _key_value(path: str) -> dict[str, Any]:
    """A key field's value, an empty array made a key of its own (unwinding would drop it)."""
    return {"$cond": [{"$eq": [path, []]}, {"$literal": EMPTY_ARRAY}, path]}


def _shown_key(value: Any) -> Any:
    return [] if value == EMPTY_ARRAY else value


def count_expiring(db: Database[Any], collection: str, field: str, seconds: int,
                   options: Mapping[str, Any]) -> int:
    """How many documents a TTL index of `seconds` on `field` deletes at its monitor's next pass:
    those whose date is older (a value that is no date never expires; a partial index only sees
    the documents its filter matches)."""
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
    query: dict[str, Any] = {field: {"$lt": cutoff}}
    if "partialFilterExpression" in options:
        query = {"$and": [query, dict(options["partialFilterExpression"])]}
    return db[collection].count_documents(query)
