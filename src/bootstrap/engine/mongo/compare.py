"""Spec + live state -> plan. Identity is the collection name and the index name; an index whose
key pattern exists under another name counts as renamed (a rebuild)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bson import ObjectId

from bootstrap.engine.mongo.live import LiveCollection, LiveIndex, LiveShard, LiveState
from bootstrap.engine.mongo.operations import (
    Blocked,
    ChangeIndex,
    CreateCollection,
    CreateIndexes,
    DropIndex,
    IndexModel,
    KeepIndex,
    Operation,
    Plan,
    RebuildIndex,
    ShardCollection,
    ShardingUnavailable,
    UndeclaredShardKey,
    UpdateValidator,
)
from bootstrap.engine.mongo.server import ServerRole
from bootstrap.engine.mongo.validator import collection_validator
from bootstrap.engine.ops import shown
from bootstrap.spec.build import default_index_name
from bootstrap.spec.model import Collection, FieldType, Index, ShardKey, Spec, thaw

IN_PLACE = ("expireAfterSeconds", "hidden")  # collMod changes these without a rebuild
# ... and, from MongoDB 6.0, turns an index unique (never back); see ServerRole.
IN_PLACE_FROM_6 = (*IN_PLACE, "unique")
ANY_SERVER = ServerRole()  # version unknown: only what every server does in place
MANAGED_OPTIONS = ("unique", "sparse", "expireAfterSeconds", "partialFilterExpression", "hidden", "collation")


def index_model(index: Index) -> IndexModel:
    options: dict[str, Any] = {}
    if index.unique:
        options["unique"] = True
    if index.sparse:
        options["sparse"] = True
    if index.ttl is not None:
        options["expireAfterSeconds"] = index.ttl
    if index.partial is not None:
        options["partialFilterExpression"] = thaw(index.partial)
    if index.hidden:
        options["hidden"] = True
    if index.collation is not None:
        options["collation"] = thaw(index.collation)
    return IndexModel(index.name, index.keys, options)


def live_model(index: LiveIndex) -> IndexModel:
    return IndexModel(index.name, index.keys, {k: index.options[k] for k in MANAGED_OPTIONS
                                               if k in index.options})


def compare(spec: Spec, live: LiveState, *, allow_rebuild: bool = False, prune: bool = False) -> Plan:
    operations: list[Operation] = []
    quorum = spec.mongodb.commit_quorum if live.server.takes_commit_quorum else None
    mongos = live.server.is_mongos
    for coll in spec.collections:
        operations += compare_collection(coll, live.collections.get(coll.name), allow_rebuild, prune,
                                         quorum=quorum, mongos=mongos, database=live.database,
                                         server=live.server)
    sharded = tuple(c.name for c in spec.collections if c.shard is not None)
    if sharded and not mongos:  # one line for the plan, so the same config runs on a laptop
        operations.append(ShardingUnavailable("", sharded, live.server.describe()))
    return Plan(database=live.database, operations=tuple(operations))


def compare_collection(coll: Collection, live: LiveCollection | None, allow_rebuild: bool,
                       prune: bool, *, quorum: str | int | None = None, mongos: bool = False,
                       database: str = "", server: ServerRole = ANY_SERVER) -> list[Operation]:
    validator = collection_validator(coll)
    wanted = [index_model(ix) for ix in coll.indexes]
    support = shard_index(coll)
    if support is not None:  # the shard key's index goes first (declared, or implied by the key)
        wanted = [support, *(ix for ix in wanted if ix != support)]
    if live is None:
        ops: list[Operation] = [CreateCollection(coll.name, validator, coll.validation_level,
                                                 coll.validation_action)]
        if wanted:
            ops.append(CreateIndexes(coll.name, tuple(wanted), commit_quorum=quorum))
        if mongos and coll.shard is not None:
            ops = _place_shard(coll, coll.shard, None, ops, database)
        return ops
    if live.is_view:
        return [Blocked(coll.name, CreateCollection(coll.name, validator, coll.validation_level,
                                                    coll.validation_action),
                        f"'{coll.name}' exists as a view; drop or rename it by hand")]
    if live.is_timeseries:  # MongoDB refuses a validator on it ("'timeseries' is not allowed with 'validator'")
        return [Blocked(coll.name, CreateCollection(coll.name, validator, coll.validation_level,
                                                    coll.validation_action),
                        f"'{coll.name}' exists as a time-series collection, which takes no validator; leave it "
                        "out of the spec, or move its documents to a plain collection by hand")]
    ops = []
    live_validator = _plain(live.validator)
    if (live_validator != validator or live.validation_level != coll.validation_level
            or live.validation_action != coll.validation_action):
        # Only the level or action changed: no validator line to show.
        differences = () if live_validator == validator else tuple(validator_differences(live_validator, validator))
        # A looser level or action, or descriptions alone, refuse no document that passes now.
        ops.append(UpdateValidator(coll.name, validator, coll.validation_level, coll.validation_action,
                                   live.validation_level, live.validation_action, differences,
                                   notes_only=only_descriptions_differ(live_validator, validator)))
    indexes = _compare_indexes(coll.name, wanted, live, allow_rebuild, prune, quorum, server)
    ops += indexes if server.ttl_on_capped else [_no_ttl_if_capped(op, live) for op in indexes]
    if mongos and coll.shard is not None:
        ops = _place_shard(coll, coll.shard, live.shard, ops, database)
    elif live.shard is not None:
        ops.append(UndeclaredShardKey(coll.name, live.shard.keys))
    return ops


def _no_ttl_if_capped(op: Operation, live: LiveCollection) -> Operation:
    """Before MongoDB 7.1 no TTL index is built on a capped collection (it deletes the oldest
    documents itself): blocked with the reason rather than failing part-way through apply."""
    if not live.capped:
        return op
    if isinstance(op, CreateIndexes):
        ttl = [ix.name for ix in op.indexes if "expireAfterSeconds" in ix.options]
    elif isinstance(op, ChangeIndex):  # a TTL added in place (collMod refuses it too)
        ttl = [op.name] if any(k == "expireAfterSeconds" and old is None for k, old, _ in op.changes) else []
    else:
        return op
    if not ttl:
        return op
    return Blocked(op.collection, op, f"'{op.collection}' is a capped collection, which takes no TTL index before "
                   f"MongoDB 7.1 ({', '.join(ttl)}); declare no ttl for it, upgrade the server, or move its "
                   "documents to a plain collection")


def shard_index(coll: Collection) -> IndexModel | None:
    """The index that supports `coll`'s shard key: the first declared one that starts with the key
    (and is neither sparse, partial nor collated, which cannot back a shard key), else the one the key
    implies ({userId: 1} -> userId_1, unique when the key is). None when the collection is not sharded."""
    shard = coll.shard
    if shard is None:
        return None
    for index in coll.indexes:
        if (index.keys[: len(shard.keys)] == shard.keys and not index.sparse and index.partial is None
                and index.collation is None and (index.unique or not shard.unique)):
            return index_model(index)
    return IndexModel(default_index_name(shard.keys), shard.keys, {"unique": True} if shard.unique else {})


def _place_shard(coll: Collection, shard: ShardKey, live: LiveShard | None, ops: list[Operation],
                 database: str) -> list[Operation]:
    """Through a mongos: shardCollection after the shard-key index is built and before the other
    indexes (one createIndexes becomes two around it); a changed key is blocked with the way forward."""
    wanted = ShardCollection(coll.name, shard.keys, shard.unique, shard.chunks,
                             tuple(_split_point(coll, point) for point in shard.split_at))
    if live is not None:
        if (live.keys, live.unique) == (shard.keys, shard.unique):
            return ops
        return [*ops, Blocked(coll.name, wanted, shard_key_change(f"{database}.{coll.name}", live, shard))]
    support = shard_index(coll)
    out: list[Operation] = []
    placed = False
    for op in ops:
        if isinstance(op, CreateIndexes) and not placed:
            first = tuple(ix for ix in op.indexes if support is not None and ix.name == support.name)
            rest = tuple(ix for ix in op.indexes if ix not in first)
            names = {ix.name for ix in first}
            if first:
                out.append(replace(op, indexes=first, rebuilt=tuple(n for n in op.rebuilt if n in names)))
            out.append(wanted)
            if rest:
                out.append(replace(op, indexes=rest, rebuilt=tuple(n for n in op.rebuilt if n not in names)))
            placed = True
        else:
            out.append(op)
    if not placed:
        out.append(wanted)
    return out


def _split_point(coll: Collection, point: Any) -> Mapping[str, Any]:
    """A declared split point with objectId fields as ObjectIds (YAML has only their hex)."""
    out: dict[str, Any] = {}
    for name, value in point.items():
        fld = next((f for f in coll.fields if f.name == name), None)
        is_id = (fld is not None and fld.type is FieldType.OBJECT_ID) or name == "_id"
        out[name] = ObjectId(value) if is_id and isinstance(value, str) and ObjectId.is_valid(value) else value
    return out


def shell_keys(keys: tuple[tuple[str, int | str], ...]) -> str:
    """A key pattern as mongosh takes it: {userId: 1, email: "hashed"}."""
    return "{" + ", ".join(f"{k}: {v!r}".replace("'", '"') for k, v in keys) + "}"


def shard_key_change(namespace: str, live: LiveShard, shard: ShardKey) -> str:
    """Why apply will not change a shard key, and which command does: refineCollectionShardKey when
    the declared key extends the live one (same fields first, suffix fields added), else
    reshardCollection (MongoDB 5.0+; it rewrites the collection)."""
    before = f"sharded on {shell_keys(live.keys)}{' unique' if live.unique else ''}"
    after = f"declared {shell_keys(shard.keys)}{' unique' if shard.unique else ''}"
    head = f"{before}, {after}: apply never changes a shard key"
    if (len(shard.keys) > len(live.keys) and shard.keys[: len(live.keys)] == live.keys
            and live.unique == shard.unique):
        return (f"{head}; the new key extends the old one, so refine it once an index on the new key exists: "
                f'db.adminCommand({{refineCollectionShardKey: "{namespace}", key: {shell_keys(shard.keys)}}})')
    unique = ", unique: true" if shard.unique else ""
    return (f"{head}; reshard it (MongoDB 5.0+, copies the whole collection): "
            f'db.adminCommand({{reshardCollection: "{namespace}", key: {shell_keys(shard.keys)}{unique}}})')


def _compare_indexes(collection: str, wanted: list[IndexModel], live: LiveCollection,
                     allow_rebuild: bool, prune: bool, quorum: str | int | None,
                     server: ServerRole) -> list[Operation]:
    drops: list[Operation] = []
    changes: list[Operation] = []
    creates: list[IndexModel] = []
    rebuilt: list[str] = []
    previous: list[tuple[str, IndexModel]] = []
    claimed: set[str] = set()  # live index names accounted for by a declared index
    for index in wanted:
        current = live.index(index.name)
        renamed_from = None
        if current is None:  # same keys under another name: MongoDB allows one index per key pattern
            current = next((ix for ix in live.indexes if ix.keys == index.keys
                            and ix.name not in {w.name for w in wanted}), None)
            renamed_from = current.name if current else None
        if current is None:
            creates.append(index)
            continue
        claimed.add(current.name)
        before = live_model(current)
        reason = _rebuild_reason(before, index, renamed_from, server)
        if reason is None:
            options = IN_PLACE_FROM_6 if server.makes_unique_in_place else IN_PLACE
            in_place = tuple((k, before.options.get(k, _absent(k)), index.options.get(k, _absent(k)))
                             for k in options if before.options.get(k) != index.options.get(k))
            if in_place:
                changes.append(ChangeIndex(collection, index.name, in_place, index))
            continue
        rebuild = RebuildIndex(collection, current.name, before, index, reason)
        if allow_rebuild:
            drops.append(rebuild)
            creates.append(index)
            rebuilt.append(index.name)
            previous.append((index.name, before))
        else:
            # Unique: duplicates may refuse the new index, which `plan --allow-rebuild` reads (status does not).
            then = ("check it with `bootstrap plan --allow-rebuild` (it reads the data for duplicates), then apply "
                    "with --allow-rebuild") if index.options.get("unique") else "run with --allow-rebuild"
            drops.append(Blocked(collection, rebuild, f"index {current.name} must be rebuilt "
                                 f"(dropped and created again); {then}"))
    # Undeclared indexes go last: a pruned index serves the queries (and keeps the uniqueness) it
    # did until the indexes replacing it are built, and stays when their build fails. Unless an index
    # to build has its key pattern (a rebuild's new keys; MongoDB keeps one index per pattern): that
    # one goes first.
    undeclared: list[Operation] = []
    for current in live.indexes:
        if current.name not in claimed:
            model = live_model(current)
            if not prune:
                undeclared.append(KeepIndex(collection, model))
            elif any(index.keys == model.keys for index in creates):
                drops.append(DropIndex(collection, model))
            else:
                undeclared.append(DropIndex(collection, model))
    ops = drops + changes
    if creates:
        ops.append(CreateIndexes(collection, tuple(creates), tuple(rebuilt), commit_quorum=quorum,
                                 previous=tuple(previous)))
    return ops + undeclared


def _absent(option: str) -> Any:
    return False if option in ("hidden", "unique") else None


def _rebuild_reason(before: IndexModel, after: IndexModel, renamed_from: str | None,
                    server: ServerRole = ANY_SERVER) -> str | None:
    """Why `before` cannot become `after` in place, or None when collMod (or nothing) will do: a
    TTL's value or `hidden` on every server, a TTL added from MongoDB 5.1, `unique` added from 6.0.
    Removing a TTL or `unique` takes a rebuild."""
    if renamed_from is not None:
        return f"renamed {renamed_from} -> {after.name}"
    if before.keys != after.keys:
        return "key pattern changed"
    changed = [k for k in MANAGED_OPTIONS if k not in IN_PLACE
               and not _same_option(k, before.options.get(k), after.options.get(k))]
    if "unique" in changed and after.options.get("unique") and server.makes_unique_in_place:
        changed.remove("unique")
    ttl_before, ttl_after = before.options.get("expireAfterSeconds"), after.options.get("expireAfterSeconds")
    if (ttl_before is None) != (ttl_after is None) and not (ttl_before is None and server.adds_ttl_in_place):
        changed.append("ttl added" if ttl_after is not None else "ttl removed")
    if not changed:
        return None
    return ", ".join(f"{k} {shown(before.options.get(k))} -> {shown(after.options.get(k))}"
                     if k in MANAGED_OPTIONS else k for k in changed)


def _same_option(option: str, live: Any, declared: Any) -> bool:
    if option == "collation" and isinstance(live, Mapping) and isinstance(declared, Mapping):
        # The server fills in every collation default: compare only what the spec declares.
        return all(live.get(k) == v for k, v in declared.items())
    return bool(live == declared)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def validator_differences(live: Any, wanted: Mapping[str, Any]) -> list[str]:
    """Human summary of how a live validator differs from the wanted one, field by field."""
    if not isinstance(live, Mapping) or "$jsonSchema" not in live:
        return ["validator: none -> from spec" if live is None else "validator: replaced (not a $jsonSchema)"]
    out: list[str] = []
    _diff_schema(live["$jsonSchema"], wanted["$jsonSchema"], "", out)
    return out or ["validator: changed"]


KEYWORD_SHOWN = 120  # characters of a keyword's value in a plan line; a longer one is cut


def _keyword_changes(old: Any, new: Any) -> str:
    """What changed in one field's schema, keyword by keyword: `enum +["member"] -["user"]` (a list
    by the values it gained and lost), `bsonType double -> int`, `minimum unset -> 0`: a renamed enum
    value reads apart from a description edit, and one value added to a long list is that value."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return f"{_cut(shown(old))} -> {_cut(shown(new))}"
    keys = [k for k in dict.fromkeys([*new, *old]) if old.get(k) != new.get(k)]
    return ", ".join(f"{key} {_keyword_change(old.get(key), new.get(key))}" for key in keys)


def _keyword_change(old: Any, new: Any) -> str:
    before, after = _plain(old), _plain(new)
    if isinstance(before, list) and isinstance(after, list):
        gained, lost = [v for v in after if v not in before], [v for v in before if v not in after]
        if gained or lost:
            return " ".join(f"{sign}{_cut(shown(values))}" for sign, values in (("+", gained), ("-", lost)) if values)
    return f"{_cut(shown(before))} -> {_cut(shown(after))}"


def _cut(text: str) -> str:
    return text if len(text) <= KEYWORD_SHOWN else text[: KEYWORD_SHOWN - 3] + "..."


def only_descriptions_differ(old: Any, new: Any) -> bool:
    """Whether two validators differ in `description`s and `title`s alone: no document can pass one
    and fail the other (nothing to count)."""
    return bool(_without_notes(old) == _without_notes(new))


def _without_notes(schema: Any) -> Any:
    """`schema` without its `description` and `title` keywords (a property of that name stays)."""
    if isinstance(schema, Mapping):
        return {
            key: {name: _without_notes(sub) for name, sub in value.items()}
            if key in ("properties", "patternProperties") and isinstance(value, Mapping)
            else _without_notes(value)
            for key, value in schema.items()
            if key not in ("description", "title")
        }
    if isinstance(schema, list | tuple):
        return [_without_notes(v) for v in schema]
    return schema


def _diff_schema(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str, out: list[str]) -> None:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in new_props:
        path = f"{prefix}{name}"
        if name not in old_props:
            out.append(f"+ field {path}")
        elif old_props[name] != new_props[name]:
            if "properties" in new_props[name] and "properties" in old_props[name]:
                _diff_schema(old_props[name], new_props[name], f"{path}.", out)
            else:
                out.append(f"~ field {path}: {_keyword_changes(old_props[name], new_props[name])}")
    out += [f"- field {prefix}{name}" for name in old_props if name not in new_props]
    rest_old = {k: v for k, v in old.items() if k != "properties"}
    rest_new = {k: v for k, v in new.items() if k != "properties"}
    for key in sorted(set(rest_old) | set(rest_new)):
        if rest_old.get(key) != rest_new.get(key):
            out.append(f"~ {prefix or 'document '}{key}: {rest_old.get(key)} -> {rest_new.get(key)}")
