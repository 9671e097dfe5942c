"""What each dashboard page shows, gathered from Redis, MongoDB and the spec. Read-only except
`retry` and `purge`, which are `jobs.admin`'s. Synchronous (the app runs these in a thread); the
pure parts (buckets, pages, timelines, misses) take plain values so unit tests need no server.

Reuses what `status` and `jobs` read: `jobs.admin` for queue depths, workers, schedules and the
failed store, `cli.status` for schedule runs, the engine's plan for drift, its history for the last
apply."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from pymongo.database import Database
from pymongo.errors import PyMongoError

from bootstrap.cli.status import schedules as schedule_rows
from bootstrap.engine.apply import full_plan
from bootstrap.engine.history import last_apply
from bootstrap.engine.ops import Options
from bootstrap.jobs import admin
from bootstrap.jobs.records import COMPLETED, FAILED
from bootstrap.jobs.slots import CATCH_UP_LIMIT, next_slot, problem
from bootstrap.layout import schedules as stored
from bootstrap.layout.keys import QueueKeys, as_text
from bootstrap.redact import mask
from bootstrap.spec.model import Spec

HOUR = 3600.0
BUCKETS = 12  # throughput chart: 12 bars of 5 minutes over the last hour
PER_PAGE = 50  # failed jobs per page
TIMELINE_LIMIT = 300  # slots drawn per schedule in 24 hours (an every-1m schedule is a band)


# --- queues -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    start: float  # the first bucket's start (epoch seconds)
    width: float  # seconds per bucket
    completed: tuple[int, ...]
    failed: tuple[int, ...]

    @property
    def total_completed(self) -> int:
        return sum(self.completed)

    @property
    def total_failed(self) -> int:
        return sum(self.failed)


@dataclass(frozen=True)
class QueueView:
    name: str
    waiting: int
    running: int
    delayed: int
    completed: int
    failed: int
    paused: bool
    throughput: Throughput
    workers: tuple[dict[str, Any], ...] = ()


def bucket_edges(now: float, span: float = HOUR, buckets: int = BUCKETS) -> list[tuple[float, float]]:
    """`buckets` equal [start, end) intervals ending at `now`, oldest first."""
    width = span / buckets
    start = now - span
    return [(start + i * width, start + (i + 1) * width) for i in range(buckets)]


def queues(client: redis.Redis, spec: Spec, now: float | None = None) -> list[QueueView]:
    """Each declared queue: depths (as `status`), paused, last hour's throughput, its live workers."""
    now = time.time() if now is None else now
    stats = admin.queue_stats(client, spec)
    edges = bucket_edges(now)
    keys = [QueueKeys(spec.redis.key_prefix, q.queue) for q in stats]
    pipe = client.pipeline(transaction=False)
    for k in keys:
        pipe.exists(k.paused)
        for outcome in (COMPLETED, FAILED):
            for start, end in edges:
                pipe.zcount(k.records(outcome), start, f"({end}")
    replies = pipe.execute()
    live = admin.workers(client, spec, now)
    per_queue = 1 + 2 * len(edges)
    views = []
    for i, (s, k) in enumerate(zip(stats, keys, strict=True)):
        row = replies[i * per_queue : (i + 1) * per_queue]
        counts = [int(c) for c in row[1:]]
        throughput = Throughput(
            edges[0][0], edges[0][1] - edges[0][0], tuple(counts[: len(edges)]), tuple(counts[len(edges) :])
        )
        views.append(
            QueueView(
                s.queue, s.waiting, s.running, s.delayed, s.completed, s.failed, bool(row[0]), throughput,
                tuple(w for w in live if w.get("queue") == k.queue),
            )
        )  # fmt: skip
    return views


_WIRING: dict[tuple[str, bool], str] = {}  # (spec hash, workers) -> wiring hash (rendering takes a while)


def expected_wiring(spec: Spec, workers: bool = False) -> str:
    """The wiring hash of the spec's generated package: what schedulers should run, or (`workers`)
    what workers' heartbeats should carry (the files they run)."""
    key = (spec.hash(), workers)
    if key not in _WIRING:
        from bootstrap.codegen.render import wiring_hash  # jinja2: only when a page needs it

        _WIRING[key] = wiring_hash(spec, workers=workers)
    return _WIRING[key]


# --- failed jobs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    number: int  # 1-based, clamped into range
    pages: int
    total: int
    start: int  # index of the first item, 0-based

    @property
    def stop(self) -> int:
        """Index of the last item on this page (inclusive, as ZREVRANGE takes it)."""
        return self.start + PER_PAGE - 1 if self.total else -1

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None


def paginate(total: int, requested: int, per_page: int = PER_PAGE) -> Page:
    pages = max(1, math.ceil(total / per_page))
    number = min(max(1, requested), pages)
    return Page(number, pages, total, (number - 1) * per_page)


@dataclass(frozen=True)
class FailedPage:
    queue: str
    page: Page
    jobs: tuple[dict[str, Any], ...]


def failed_page(client: redis.Redis, keys: QueueKeys, requested: int, per_page: int = PER_PAGE) -> FailedPage:
    """One page of the failed store, newest first: two round trips whatever the store's size."""
    total = int(client.zcard(keys.records(FAILED)))
    page = paginate(total, requested, per_page)
    ids: Any = client.zrevrange(keys.records(FAILED), page.start, page.start + per_page - 1) if total else []
    jobs: list[dict[str, Any]] = []
    if ids:
        for raw in client.hmget(keys.record_data(FAILED), ids):
            if raw is not None:
                jobs.append(shown_job(json.loads(raw)))
    return FailedPage(keys.queue, page, tuple(jobs))


def shown_job(record: dict[str, Any]) -> dict[str, Any]:
    """A failed-job record as the page shows it: arguments as JSON text, error and traceback with
    any credentials in them masked (a handler's error may quote a connection string)."""
    arguments = json.dumps({"args": record.get("args", []), "kwargs": record.get("kwargs", {})}, default=str)
    return {
        "id": str(record.get("id", "?")),
        "task": str(record.get("task", "?")),
        "finished_at": record.get("finished_at"),
        "attempts": record.get("attempts", "?"),
        "max_attempts": record.get("max_attempts", "?"),
        "error": _masked(str(record.get("error") or "")),
        "traceback": _masked(str(record.get("traceback") or "")),
        "arguments": _masked(arguments),
    }


def _masked(text: str) -> str:
    """`redact.mask`, skipped where it can find nothing (no URL, no `key=value`): most of a page's
    text, and the bulk of its rendering time otherwise."""
    return mask(text) if "://" in text or "=" in text else text


# --- schedules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleView:
    id: str
    queue: str | None
    task: str | None
    when: str
    enabled: bool
    misfire: str
    last_run: float | None  # the newest finished job it fired (from the records)
    last_outcome: str | None
    last_slot: float | None  # the newest slot a scheduler handled (fired or skipped)
    next_run: float | None
    missed: int  # slots due and not handled yet (no scheduler running), up to CATCH_UP_LIMIT
    skipped: bool  # the last handled slot fired no job on record (skipped as missed, or its record is gone)
    problem: str | None
    slots: tuple[float, ...] = field(default=())  # when it fires in the timeline's 24 hours


def missed_slots(definition: dict[str, Any], last_slot: float | None, now: float) -> int:
    """Slots after the last handled one that are due by `now` (a scheduler would fire or skip them
    per the misfire policy); a schedule no scheduler saw yet has none."""
    if last_slot is None or problem(definition, now) is not None:
        return 0
    count = 0
    slot = next_slot(definition, last_slot)
    while slot <= now and count < CATCH_UP_LIMIT:
        count += 1
        slot = next_slot(definition, slot)
    return count


def timeline(definition: dict[str, Any], start: float, end: float, limit: int = TIMELINE_LIMIT) -> list[float]:
    """The slots in [start, end), at most `limit` of them."""
    if problem(definition, start) is not None or not definition.get("enabled", True):
        return []
    found: list[float] = []
    slot = next_slot(definition, start - 1e-6)
    while slot < end and len(found) < limit:
        found.append(slot)
        slot = next_slot(definition, slot)
    return found


def schedules(client: redis.Redis, spec: Spec, now: float | None = None) -> list[ScheduleView]:
    now = time.time() if now is None else now
    rows = schedule_rows(client, spec)
    definitions = {as_text(k): stored.decode(v) or {} for k, v in admin.stored_schedules(client, spec)[0].items()}
    views = []
    for row in rows:
        definition = definitions.get(row["id"], {})
        last_slot = row.get("last_slot")
        views.append(
            ScheduleView(
                id=row["id"],
                queue=row.get("queue"),
                task=row.get("task"),
                when=admin.described_when(row),
                enabled=bool(row.get("enabled", True)),
                misfire=str(definition.get("misfire", "skip")),
                last_run=row.get("last_run"),
                last_outcome=row.get("last_outcome"),
                last_slot=last_slot,
                next_run=row.get("next_run"),
                missed=missed_slots(definition, last_slot, now) if row.get("enabled", True) else 0,
                skipped=last_slot is not None and (row.get("last_run") is None or row["last_run"] < last_slot),
                problem=row.get("problem"),
                slots=tuple(timeline(definition, now, now + 24 * HOUR)),
            )
        )
    return views


# --- collections --------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexView:
    name: str
    keys: str
    declared: bool  # in the spec (else live only: created by someone else)
    live: bool
    size: int | None  # bytes; None: the server did not say
    uses: int | None  # $indexStats accesses.ops since `since`; None: the server did not say
    since: Any = None


@dataclass(frozen=True)
class CollectionView:
    name: str
    model: str | None
    exists: bool
    documents: int
    size: int | None
    indexes: tuple[IndexView, ...]
    drift: tuple[str, ...]


@dataclass(frozen=True)
class CollectionsPage:
    collections: tuple[CollectionView, ...]
    redis_drift: tuple[str, ...]
    in_sync: bool
    last_apply: dict[str, Any] | None
    spec_hash: str
    missing_stats: tuple[str, ...]  # what the server did not answer (the page says so)
    database: str
    mongodb: str  # URI, masked


def _keys_text(keys: Any) -> str:
    return ", ".join(f"{k}: {v}" for k, v in keys)


def drift_by_group(operations: Any) -> dict[str, list[str]]:
    """Plan operations as `symbol description` lines per group (`collection users`, `queue x`)."""
    drift: dict[str, list[str]] = {}
    for op in operations:
        drift.setdefault(op.group, []).extend(f"{op.symbol} {line}" for line in op.describe())
    return drift


def index_stats(db: Database[Any], name: str) -> tuple[dict[str, tuple[int, Any]], bool]:
    """`$indexStats`: index name -> (accesses.ops, accesses.since); False when the server does not
    answer, or answers without counting."""
    try:
        rows = list(db[name].aggregate([{"$indexStats": {}}]))
    except PyMongoError:
        return {}, False
    found = {}
    for row in rows:
        accesses = row.get("accesses") or {}
        # mongod counts from `since` (its start, or the index's creation); a server that gives no
        # `since` does not count uses (SecantusDB answers 0 throughout): no count beats a false "unused".
        if "name" in row and "ops" in accesses and accesses.get("since") is not None:
            found[str(row["name"])] = (int(accesses["ops"]), accesses["since"])
    return found, len(found) == len(rows)


def storage_stats(db: Database[Any], name: str) -> tuple[dict[str, Any], bool]:
    """`collStats`: document size and index sizes; False when the server does not answer."""
    try:
        reply: dict[str, Any] = db.command("collStats", name)
    except PyMongoError:
        return {}, False
    return reply, "indexSizes" in reply


def collections(spec: Spec, db: Database[Any], client: redis.Redis | None) -> CollectionsPage:
    plan = full_plan(spec, db, client, Options(impact=False))
    drift = drift_by_group(plan.operations)
    live_names = set(db.list_collection_names(filter={"name": {"$in": [c.name for c in spec.collections]}}))
    missing: set[str] = set()
    views = []
    for coll in spec.collections:
        exists = coll.name in live_names
        live_indexes = db[coll.name].index_information() if exists else {}
        stats, has_sizes = storage_stats(db, coll.name) if exists else ({}, True)
        uses, has_uses = index_stats(db, coll.name) if exists else ({}, True)
        if not has_sizes:
            missing.add("index sizes (collStats)")
        if not has_uses:
            missing.add("index use counts ($indexStats)")
        sizes = stats.get("indexSizes") or {}
        declared = {ix.name: ix for ix in coll.indexes}
        names = ["_id_", *declared, *(n for n in live_indexes if n not in declared and n != "_id_")]
        indexes = []
        for name in dict.fromkeys(names):
            live = name in live_indexes
            live_keys = live_indexes.get(name, {}).get("key", [("_id", 1)])
            keys = declared[name].keys if name in declared else tuple(live_keys)
            use = uses.get(name)
            indexes.append(
                IndexView(
                    name, _keys_text(keys), name in declared or name == "_id_", live,
                    int(sizes[name]) if name in sizes else None,
                    use[0] if use else None, use[1] if use else None,
                )
            )  # fmt: skip
        views.append(
            CollectionView(
                coll.name, coll.model, exists, db[coll.name].estimated_document_count() if exists else 0,
                int(stats["size"]) if "size" in stats else None, tuple(indexes),
                tuple(drift.get(f"collection {coll.name}", [])),
            )
        )  # fmt: skip
    record = last_apply(db)
    last = None
    if record is not None:
        last = {
            "at": record.get("finishedAt"),
            "outcome": record.get("outcome"),
            "spec_hash": record.get("specHash"),
            "by": f"{record.get('user', '?')}@{record.get('host')}:{record.get('pid')}",
            "error": mask(str(record["error"])) if record.get("error") else None,
            "operations": [_operation_line(op) for op in record.get("operations", [])],
            "not_done": [_operation_line(op) for op in record.get("notDone", [])],
        }
    return CollectionsPage(
        tuple(views),
        tuple(line for group, lines in drift.items() if not group.startswith("collection ") for line in lines),
        not plan.changes and not plan.blocked,
        last,
        spec.hash(),
        tuple(sorted(missing)),
        db.name,
        mask(spec.mongodb.uri),
    )


def _operation_line(op: Any) -> str:
    if not isinstance(op, dict):
        return str(op)
    description = op.get("description") or []
    first = description[0] if description else op.get("op", "?")
    return f"{op.get('symbol', '')} {op.get('target', '')}: {first}".strip()
