"""Run MongoDB operations, one executor per operation type (the EXECUTORS table at the end).

A failure names the collection, the index and (for a unique index over duplicate data) a sample
duplicate key; apply adds which operations completed before it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pymongo
from bson import json_util
from pymongo.database import Database
from pymongo.errors import (
    AutoReconnect,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from bootstrap.connect.mongo import reason
from bootstrap.engine.mongo.live import duplicate_sample
from bootstrap.engine.mongo.operations import (
    ChangeIndex,
    CreateCollection,
    CreateIndexes,
    DropIndex,
    Operation,
    RebuildIndex,
    ShardCollection,
    UpdateValidator,
)
from bootstrap.engine.ops import Report
from bootstrap.errors import DuplicatesFound, OperationFailed, PrimaryChanged
from bootstrap.redact import mask

log = logging.getLogger("bootstrap.engine.apply")

# Index builds, a unique conversion's check and the duplicate check before a rebuild's drop scan the
# whole collection: their own client-side timeout instead of bootstrap.yaml's socket timeout (sized
# for the workers' reads), long enough for any build; Ctrl-C stops apply sooner.
LONG_COMMAND = 7 * 86400.0
PROGRESS_AFTER = 3.0  # seconds an index build runs before progress is reported
PROGRESS_EVERY = 5.0
NAMESPACE_EXISTS = 48
NAMESPACE_NOT_FOUND = 26
INDEX_NOT_FOUND = 27
DUPLICATE_KEY = 11000
CANNOT_CONVERT_TO_UNIQUE = 359


@contextmanager
def own_timeout(db: Database[Any], seconds: float) -> Iterator[None]:
    """Commands within `seconds` of their own instead of the socket timeout (client-side operation
    timeout). The server is found first, within the server selection timeout: inside the block,
    finding one would wait out the whole budget."""
    db.command("ping")
    with pymongo.timeout(seconds):
        yield


def execute(db: Database[Any], op: Operation, report: Report) -> None:
    """Run one MongoDB operation; raise OperationFailed with a message that says what went wrong."""
    executor = EXECUTORS.get(type(op))
    if executor is None:
        raise TypeError(f"no MongoDB executor for {type(op).__name__}")
    try:
        executor(db, op, report)
    except DuplicatesFound as exc:
        raise OperationFailed(str(exc), op) from None
    except AutoReconnect as exc:  # NotPrimaryError included: the primary stepped down or went away
        if isinstance(exc, NetworkTimeout | ServerSelectionTimeoutError):  # slow or no server: a failure
            raise OperationFailed(f"{op.collection}: {op.headline()} failed: {reason(exc)}", op) from None
        raise PrimaryChanged(f"{op.collection}: {op.headline()} was interrupted: the primary stepped "
                             f"down or became unreachable ({reason(exc)})", op) from None
    except OperationFailure as exc:
        raise OperationFailed(_explain(db, op, exc) + _put_back(db, op), op) from None
    except PyMongoError as exc:
        raise OperationFailed(f"{op.collection}: {op.headline()} failed: {mask(str(exc))}{_put_back(db, op)}",
                              op) from None


def _create_collection(db: Database[Any], op: Operation, report: Report) -> None:
    assert isinstance(op, CreateCollection)
    try:
        db.command(
            "create",
            op.collection,
            validator=dict(op.validator),
            validationLevel=op.level,
            validationAction=op.action,
        )
    except OperationFailure as exc:
        if exc.code != NAMESPACE_EXISTS:
            raise
        # Created meanwhile by someone else (an application start-up): converge its validator.
        _coll_mod(db, op.collection, op.validator, op.level, op.action)


def _coll_mod(db: Database[Any], name: str, validator: Any, level: str, action: str) -> None:
    db.command("collMod", name, validator=dict(validator), validationLevel=level, validationAction=action)


def _update_validator(db: Database[Any], op: Operation, report: Report) -> None:
    assert isinstance(op, UpdateValidator)
    _coll_mod(db, op.collection, op.validator, op.level, op.action)


def _change_index(db: Database[Any], op: Operation, report: Report) -> None:
    """collMod: made unique first (the step that can fail over duplicates, before anything else
    changed), then the TTL and `hidden` in one command."""
    assert isinstance(op, ChangeIndex)
    if op.makes_unique:
        _make_unique(db, op)
    index: dict[str, Any] = {option: after for option, _before, after in op.changes if option != "unique"}
    if index:
        db.command("collMod", op.collection, index={"name": op.name, **index})


def _make_unique(db: Database[Any], op: ChangeIndex) -> None:
    with own_timeout(db, LONG_COMMAND):
        _make_unique_now(db, op)


def _make_unique_now(db: Database[Any], op: ChangeIndex) -> None:
    """MongoDB's two steps: `prepareUnique` (the index refuses new duplicates from here on), then
    `unique` (it checks the keys already there). When that finds duplicates (written since the plan
    checked), `prepareUnique` is taken back: the index is left as it was."""

    def coll_mod(**options: Any) -> None:
        db.command("collMod", op.collection, index={"name": op.name, **options})

    coll_mod(prepareUnique=True)
    try:
        coll_mod(unique=True)
    except OperationFailure as exc:
        try:
            coll_mod(prepareUnique=False)
            undone = f" Index {op.name} is unchanged."
        except PyMongoError as undo:
            undone = (f" Index {op.name} still refuses new duplicates (prepareUnique; taking it back failed: "
                      f"{reason(undo)}): run db.runCommand({{collMod: \"{op.collection}\", index: {{name: "
                      f"\"{op.name}\", prepareUnique: false}}}}) to undo it.")
        sample = duplicate_sample(db, op.collection, op.index.keys, op.index.options) if op.index else None
        if exc.code == CANNOT_CONVERT_TO_UNIQUE and sample is not None:
            raise DuplicatesFound(duplicates_message(op.collection, op.name, sample, in_place=True) + undone) from None
        raise OperationFailed(f"{op.collection}: making index {op.name} unique failed (code {exc.code}): "
                              f"{mask(str(exc.details.get('errmsg', exc) if exc.details else exc))}.{undone}",
                              op) from None


def _drop(db: Database[Any], op: Operation, report: Report) -> None:
    assert isinstance(op, DropIndex | RebuildIndex)
    name = op.index.name if isinstance(op, DropIndex) else op.name
    if isinstance(op, RebuildIndex) and op.after.options.get("unique"):
        # Never drop an index whose unique replacement cannot be built: the data would be left
        # with neither.
        with own_timeout(db, LONG_COMMAND):
            sample = duplicate_sample(db, op.collection, op.after.keys, op.after.options)
        if sample is not None:
            raise DuplicatesFound(
                duplicates_message(op.collection, op.after.name, sample) + f" Index {name} was not dropped."
            )
    try:
        db.command("dropIndexes", op.collection, index=name)
    except OperationFailure as exc:
        if exc.code != INDEX_NOT_FOUND:  # already gone: the goal is met
            raise


def _create_indexes(db: Database[Any], op: Operation, report: Report) -> None:
    """One createIndexes command for all of a collection's missing indexes, with progress when the
    build takes a while (large collections)."""
    assert isinstance(op, CreateIndexes)
    outcome: dict[str, BaseException | None] = {}

    def build() -> None:
        try:
            quorum: dict[str, Any] = {} if op.commit_quorum is None else {"commitQuorum": op.commit_quorum}
            with own_timeout(db, LONG_COMMAND):
                db.command("createIndexes", op.collection, indexes=[ix.document() for ix in op.indexes], **quorum)
            outcome["error"] = None
        except BaseException as exc:  # re-raised in the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=build, name=f"createIndexes-{op.collection}", daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(PROGRESS_AFTER)
    while worker.is_alive():
        elapsed = time.monotonic() - started
        report(
            f"  ... building {len(op.indexes)} index(es) on {op.collection}: {elapsed:.0f}s"
            f"{_progress(db, op.collection)}"
        )
        worker.join(PROGRESS_EVERY)
    error = outcome.get("error")
    if error is not None:
        raise error


def _progress(db: Database[Any], collection: str) -> str:
    """Index build progress from $currentOp where the server reports it."""
    try:
        ops = db.client.admin.aggregate(
            [
                {"$currentOp": {"allUsers": True, "idleConnections": False}},
                {"$match": {"ns": f"{db.name}.{collection}", "progress": {"$exists": True}}},
            ]
        )
        for current in ops:
            progress = current.get("progress", {})
            if progress.get("total"):
                return f" ({progress.get('done', 0)}/{progress['total']} {current.get('msg', '')})"
    except PyMongoError:
        pass
    return ""


def _shard_collection(db: Database[Any], op: Operation, report: Report) -> None:
    """shardCollection on the admin database (MongoDB 6.0+ needs no enableSharding first), then
    one `split` per declared split point. Only planned against a mongos."""
    assert isinstance(op, ShardCollection)
    namespace = f"{db.name}.{op.collection}"
    command: dict[str, Any] = {"shardCollection": namespace, "key": dict(op.keys)}
    if op.unique:
        command["unique"] = True
    if op.chunks is not None:
        command["numInitialChunks"] = op.chunks
    db.client.admin.command(command)
    for point in op.split_at:
        db.client.admin.command({"split": namespace, "middle": dict(point)})


EXECUTORS: dict[type[Operation], Callable[[Database[Any], Operation, Report], None]] = {
    CreateCollection: _create_collection,
    UpdateValidator: _update_validator,
    ChangeIndex: _change_index,
    DropIndex: _drop,
    RebuildIndex: _drop,  # the matching CreateIndexes recreates it
    CreateIndexes: _create_indexes,
    ShardCollection: _shard_collection,
}


def _explain(db: Database[Any], op: Operation, exc: OperationFailure) -> str:
    message = mask(str(exc.details.get("errmsg", exc) if exc.details else exc))
    head = f"{op.collection}: {op.headline()} failed"
    if exc.code == DUPLICATE_KEY and isinstance(op, CreateIndexes):
        for index in op.indexes:
            if index.options.get("unique"):
                sample = duplicate_sample(db, op.collection, index.keys, index.options)
                if sample is not None:
                    return duplicates_message(op.collection, index.name, sample)
    return f"{head} (code {exc.code}): {message}"


def duplicates_message(collection: str, index: str, sample: dict[str, Any], *, in_place: bool = False) -> str:
    """Why a unique index cannot be built (or an index made unique, `in_place`), with one shared key."""
    # MongoDB Extended JSON (relaxed), as mongosh and mongoexport write values: not Python's reprs
    key, ids = json_util.dumps(sample["key"]), ", ".join(json_util.dumps(i) for i in sample["ids"])
    what = f"index {index} cannot be made unique" if in_place else f"unique index {index} cannot be built"
    return (
        f"{collection}: {what}: documents share the key {key} "
        f"({sample['count']} documents, e.g. _id {ids}). Remove the duplicates, then apply again."
    )


def _put_back(db: Database[Any], op: Operation) -> str:
    """A createIndexes that failed after its rebuilds dropped the old indexes (it is all or nothing):
    build those again as they were, so no collection is left without an index it had (a unique one
    above all); what happened, for the error message."""
    if not isinstance(op, CreateIndexes) or not op.previous:
        return ""
    old = [model for _, model in op.previous]
    names = ", ".join(model.name for model in old)
    try:
        with own_timeout(db, LONG_COMMAND):
            db.command("createIndexes", op.collection, indexes=[model.document() for model in old])
    except PyMongoError as exc:
        return (f" Dropped for a rebuild and not recreated: {names} (building them again as they were failed "
                f"too: {mask(str(exc))}); apply again once fixed.")
    return f" The index(es) dropped for the rebuild were built again as they were: {names}."
