"""The MongoDB side of plan/apply: read the live state (from the primary), compare it with the spec
(pure), and the Backend that apply drives (this plan, then the executors of mongo/execute.py, each
after checking that the replica set still has the primary the plan read from)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pymongo
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError

from bootstrap.connect.mongo import make_client, on_primary, reason
from bootstrap.engine.mongo.compare import compare
from bootstrap.engine.mongo.execute import duplicates_message, execute
from bootstrap.engine.mongo.live import count_expiring, count_failing, duplicate_sample, read_live_state
from bootstrap.engine.mongo.operations import (
    Blocked,
    ChangeIndex,
    CreateIndexes,
    ExpiresDocuments,
    IndexModel,
    RebuildIndex,
    UpdateValidator,
)
from bootstrap.engine.mongo.server import REPLICA_SET, ServerRole, read_role
from bootstrap.engine.ops import Backend, Operation, Options, Plan, Report
from bootstrap.errors import DataCheckTimedOut, OperationFailed, PrimaryChanged, Unavailable
from bootstrap.spec.durations import format_duration
from bootstrap.spec.model import Spec


class PrimaryWatch:
    """The primary the last plan read from. Before each operation apply asks whether it is still
    the primary: after an election the plan may rest on writes the old primary had not replicated
    (rolled back now), so apply plans again instead of going on blind."""

    def __init__(self, db: Database[Any]) -> None:
        self.db = db
        self.planned: ServerRole | None = None

    def check(self, op: Operation) -> None:
        """Raise PrimaryChanged when a replica set elected another primary since the plan (one
        `hello`; nothing to check on a standalone server or a mongos, which routes by itself)."""
        if self.planned is None or self.planned.kind != REPLICA_SET:
            return
        now = read_role(self.db)
        if now.primary_identity() != self.planned.primary_identity():
            raise PrimaryChanged(
                f"the primary changed since the plan was made ({self.planned.describe()}, election "
                f"{self.planned.election_id} -> {now.describe()}, election {now.election_id})",
                op,
            )


def make_plan(spec: Spec, db: Database[Any], options: Options, watch: PrimaryWatch | None = None) -> Plan:
    db = on_primary(db)
    live = read_live_state(db, [c.name for c in spec.collections])
    if watch is not None:
        watch.planned = live.server
    plan = compare(spec, live, allow_rebuild=options.allow_rebuild, prune=options.prune)
    if not options.impact or not plan.operations:
        return plan
    existing = {name for name, coll in live.collections.items() if not coll.is_view}
    # By the index they build (a renamed one's new name: how CreateIndexes names it).
    rebuilds = {(op.collection, op.after.name): op for op in plan.operations if isinstance(op, RebuildIndex)}
    operations: list[Operation] = []
    reads = _CheckReads(spec, db)
    try:
        for op in plan.operations:
            if _reads_documents(op, existing):
                operations += _checked(reads.database(), op, options, existing, rebuilds)
            else:
                operations += _with_impact(db, op, options, existing, rebuilds)  # reads none
    finally:
        reads.close()
    # A rebuild whose new index the data refuses is shown once, blocked, and not counted as a rebuild.
    refused = {id(op.wanted) for op in operations if isinstance(op, Blocked) and isinstance(op.wanted, RebuildIndex)}
    return Plan(plan.database, tuple(op for op in operations if id(op) not in refused))


class _CheckReads:
    """The data checks' client, of their own and made at the first check that reads: its reads are
    not sent again after a lost connection, where pymongo would look for a server for as long as
    the check's budget has left (inside `pymongo.timeout` the budget replaces the server selection
    timeout), so a MongoDB gone mid-check would be said only after --check-timeout, as a slow
    check. `_checked` reads again itself."""

    def __init__(self, spec: Spec, db: Database[Any]) -> None:
        self._spec, self._main = spec, db
        self._client: MongoClient[dict[str, Any]] | None = None

    def database(self) -> Database[Any]:
        if self._client is None:
            self._client = make_client(self._spec.mongodb, short_lived=True, retry_reads=False)
        main = self._main
        return on_primary(self._client.get_database(main.name, codec_options=main.codec_options))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _reads_documents(op: Operation, existing: set[str]) -> bool:
    """Whether `_with_impact` may read documents for `op` (a superset: a change to validate, an
    index to build or change, on a collection that exists; not notes, drops or new collections)."""
    if op.collection not in existing:
        return False
    if isinstance(op, UpdateValidator):
        return not _notes_only(op)
    return isinstance(op, CreateIndexes | ChangeIndex | Blocked)


def _notes_only(op: UpdateValidator) -> bool:
    """Only descriptions change, under the same level and action: no document passes one validator
    and fails the other."""
    return op.notes_only and (op.level, op.action) == (op.before_level, op.before_action)


def _checked(db: Database[Any], op: Operation, options: Options, existing: set[str],
             rebuilds: Mapping[tuple[str, str], RebuildIndex]) -> list[Operation]:
    """`_with_impact` within the check's budget; once more after a lost connection (a restart, an
    election), the server found again within its selection timeout (else ServerSelectionTimeoutError,
    said as unreachable), as pymongo's retried reads do but without spending the budget on it."""
    try:
        try:
            with _budget(db, op, options.check_timeout):
                return _with_impact(db, op, options, existing, rebuilds)
        except ConnectionFailure as exc:
            if isinstance(exc, ServerSelectionTimeoutError) or exc.timeout:
                raise
        with _budget(db, op, options.check_timeout):
            return _with_impact(db, op, options, existing, rebuilds)
    except ConnectionFailure as exc:
        if exc.timeout and not isinstance(exc, ServerSelectionTimeoutError):
            raise
        raise Unavailable(
            f"{op.collection}: MongoDB became unreachable while reading its documents for `{op.headline()}`: "
            f"{reason(exc)}"
        ) from None


@contextmanager
def _budget(db: Database[Any], op: Operation, seconds: float) -> Iterator[None]:
    """The reads of the documents `op` touches, within `seconds` of their own (the socket timeout of
    bootstrap.yaml, sized for the workers' small reads, does not cut a scan of a big collection
    short); past it, an error naming the collection and the way on."""
    db.command("ping")  # the server found first, within its selection timeout (see own_timeout)
    try:
        with pymongo.timeout(seconds):
            yield
    except PyMongoError as exc:
        if not exc.timeout or isinstance(exc, ServerSelectionTimeoutError):  # a server gone is said as such
            raise
        raise DataCheckTimedOut(
            f"{op.collection}: reading its documents for `{op.headline()}` took longer than {seconds:g}s "
            f"(a scan of the whole collection): give it longer with --check-timeout SECONDS"
        ) from None


def _with_impact(db: Database[Any], op: Operation, options: Options, existing: set[str],
                 rebuilds: Mapping[tuple[str, str], RebuildIndex]) -> list[Operation]:
    """What an operation does to the documents already there, read from the data (outside the pure
    compare): how many a new validator would refuse; a unique index the data cannot take (blocked:
    apply starts nothing, so no index is dropped for a rebuild that cannot finish); documents a new
    or shorter TTL deletes at once (blocked without --allow-expire, else said with their count)."""
    if isinstance(op, UpdateValidator) and _notes_only(op):
        return [replace(op, failing=0)]
    if isinstance(op, UpdateValidator) and op.level != "off":
        failing, ids = count_failing(db, op.collection, op.validator)
        return [replace(op, failing=failing, failing_ids=ids)]
    if op.collection not in existing:
        return [op]  # created by this plan: empty
    if isinstance(op, Blocked) and isinstance(op.wanted, RebuildIndex) and op.wanted.after.options.get("unique"):
        duplicates = _duplicates(db, op.collection, op.wanted.after)
        return [replace(op, reason=f"{op.reason}; and first: {duplicates}")] if duplicates else [op]
    if isinstance(op, CreateIndexes):
        refused = _refused_indexes(db, op, rebuilds)
        if refused:
            # The indexes the data takes stay in the plan (apply refuses the whole plan anyway).
            kept = tuple(ix for ix in op.indexes if ix.name not in refused)
            rest = replace(op, indexes=kept, rebuilt=tuple(n for n in op.rebuilt if n not in refused),
                           previous=tuple(p for p in op.previous if p[0] not in refused))
            return [*refused.values(), rest] if kept else list(refused.values())
    if isinstance(op, ChangeIndex) and op.makes_unique and op.index is not None:
        duplicates = _duplicates(db, op.collection, op.index, in_place=True)
        if duplicates:
            return [Blocked(op.collection, op, duplicates)]
    expiring = _expiring(db, op)
    if not expiring:
        return [op]
    if not options.allow_expire:
        said = "; ".join(f"index {x.index} (ttl {format_duration(x.seconds)}) deletes {x.documents} existing "
                         f"document(s) older than {format_duration(x.seconds)} within a minute" for x in expiring)
        return [Blocked(op.collection, op, f"{said}; run with --allow-expire")]
    return [op, *expiring]


def _refused_indexes(db: Database[Any], op: CreateIndexes,
                     rebuilds: Mapping[tuple[str, str], RebuildIndex]) -> dict[str, Blocked]:
    """Each unique index of `op` that the data's duplicates refuse, by name, blocked on its own
    (every one named at once, not one per review), a rebuilt one as its rebuild."""
    refused = {}
    for index in op.indexes:
        duplicates = _duplicates(db, op.collection, index) if index.options.get("unique") else None
        if duplicates:
            rebuild = rebuilds.get((op.collection, index.name)) if index.name in op.rebuilt else None
            wanted = rebuild or replace(op, indexes=(index,), rebuilt=(), previous=())
            refused[index.name] = Blocked(op.collection, wanted, duplicates)
    return refused


def _duplicates(db: Database[Any], collection: str, index: IndexModel, *, in_place: bool = False) -> str | None:
    sample = duplicate_sample(db, collection, index.keys, index.options)
    return duplicates_message(collection, index.name, sample, in_place=in_place) if sample is not None else None


def _expiring(db: Database[Any], op: Operation) -> list[ExpiresDocuments]:
    """The TTLs `op` sets or shortens, each with the existing documents it deletes (none: left out)."""
    ttls: list[tuple[str, str, int, Mapping[str, Any]]] = []  # (index, field, seconds, options)
    if isinstance(op, ChangeIndex):
        for option, before, after in op.changes:
            shorter = option == "expireAfterSeconds" and after is not None and (before is None or after < before)
            field = _ttl_field(op.index.keys) if op.index is not None else None
            if shorter and op.index is not None and field is not None:
                ttls.append((op.name, field, int(after), op.index.options))
    elif isinstance(op, CreateIndexes):
        previous = dict(op.previous)
        for index in op.indexes:
            seconds, field = index.options.get("expireAfterSeconds"), _ttl_field(index.keys)
            before = previous[index.name].options.get("expireAfterSeconds") if index.name in previous else None
            if before is not None and seconds is not None and int(before) <= int(seconds):
                continue  # a rebuild keeping (or lengthening) a TTL: the live index deletes those already
            if seconds is not None and field is not None:
                ttls.append((index.name, field, int(seconds), index.options))
    found = []
    for name, field, seconds, index_options in ttls:
        documents = count_expiring(db, op.collection, field, seconds, index_options)
        if documents:
            found.append(ExpiresDocuments(op.collection, name, seconds, documents))
    return found


def _ttl_field(keys: tuple[tuple[str, int | str], ...]) -> str | None:
    """The date field of a TTL index (MongoDB allows TTL on single-field indexes only)."""
    return keys[0][0] if len(keys) == 1 else None


def backend(spec: Spec, db: Database[Any], watch: PrimaryWatch | None = None) -> Backend:
    watch = watch or PrimaryWatch(db)

    def run(op: Operation, report: Report) -> None:
        try:
            watch.check(op)
        except PyMongoError as exc:  # no answer from any primary: stop here, recorded like any failure
            raise OperationFailed(f"{op.collection}: could not ask which member is primary before "
                                  f"{op.headline()}: {reason(exc)}", op) from None
        execute(db, op, report)

    return Backend(plan=lambda options: make_plan(spec, db, options, watch).operations, execute=run)
