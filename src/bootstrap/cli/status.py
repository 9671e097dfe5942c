"""`bootstrap status`: one screen answering "is everything as declared, and is it working?"."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

import redis
from pymongo.database import Database

from bootstrap import console
from bootstrap.cli.common import database, redis_client, spec_from
from bootstrap.engine.apply import full_plan
from bootstrap.engine.history import last_apply
from bootstrap.engine.ops import Options
from bootstrap.jobs import admin
from bootstrap.layout.marker import LOST_DATA
from bootstrap.redact import mask
from bootstrap.spec.model import Spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    parser.add_argument("--interval", type=float, default=2.0, metavar="SECONDS", help="refresh interval for --watch")


def collect(spec: Spec, db: Database[Any], client: redis.Redis) -> dict[str, Any]:
    plan = full_plan(spec, db, client, Options())
    drift: dict[str, list[str]] = {}
    for op in plan.operations:
        drift.setdefault(op.group, []).extend(f"{op.symbol} {line}" for line in op.describe()[:1])
    live_names = set(db.list_collection_names(filter={"name": {"$in": [c.name for c in spec.collections]}}))
    collections = []
    for coll in spec.collections:
        exists = coll.name in live_names
        indexes = db[coll.name].index_information() if exists else {}
        collections.append(
            {
                "name": coll.name,
                "exists": exists,
                "documents": db[coll.name].estimated_document_count() if exists else 0,
                "indexes": f"{len([n for n in indexes if n != '_id_'])}/{len(coll.indexes)}",
                "drift": drift.get(f"collection {coll.name}", []),
            }
        )
    record = last_apply(db)
    return {
        "spec_hash": spec.hash(),
        "mongodb": {"uri": mask(spec.mongodb.uri), "database": db.name},
        "redis": {"url": mask(spec.redis.url), "marker": admin.data_marker(client, spec)},
        "in_sync": not plan.changes and not plan.blocked,
        "collections": collections,
        "redis_drift": [
            line for group, lines in drift.items() if not group.startswith("collection ") for line in lines
        ],
        "last_apply": None
        if record is None
        else {
            "at": record["finishedAt"],
            "outcome": record["outcome"],
            "spec_hash": record["specHash"],
            "operations": len(record.get("operations", [])),
            "by": f"{record.get('host')}:{record.get('pid')}",
        },
        "queues": [vars(q) for q in admin.queue_stats(client, spec)],
        "schedules": admin.schedule_states(client, spec),
        "workers": admin.workers(client, spec),
    }


def render(status: dict[str, Any], now: float) -> list[str]:
    lines = [
        f"MongoDB {status['mongodb']['uri']} (database {status['mongodb']['database']}), "
        f"Redis {status['redis']['url']}, spec {status['spec_hash']}",
        "everything matches the spec" if status["in_sync"] else "DRIFT: run `bootstrap plan` for details",
        "",
    ]
    if status["redis"]["marker"] is None:
        lines[1:1] = [LOST_DATA]
    lines.append(f"{'collection':<24}{'documents':>10}{'indexes':>9}  drift")
    for c in status["collections"]:
        drift = "; ".join(c["drift"]) if c["drift"] else ("none" if c["exists"] else "missing")
        lines.append(f"{c['name']:<24}{c['documents']:>10}{c['indexes']:>9}  {drift}")
    lines += [f"redis: {line}" for line in status["redis_drift"]]
    last = status["last_apply"]
    if last:
        same = "the current spec" if last["spec_hash"] == status["spec_hash"] else "an older spec"
        lines.append(
            f"last apply: {_ago(last['at'], now)}, {last['outcome']}, {last['operations']} operation(s), "
            f"{same} ({last['spec_hash']}), by {last['by']}"
        )
    else:
        lines.append("last apply: none recorded")
    lines += ["", f"{'queue':<24}{'waiting':>9}{'running':>9}{'delayed':>9}{'completed':>11}{'failed':>8}"]
    for q in status["queues"]:
        lines.append(
            f"{q['queue']:<24}{q['waiting']:>9}{q['running']:>9}{q['delayed']:>9}{q['completed']:>11}{q['failed']:>8}"
        )
    lines += ["", f"{'schedule':<30}{'when':<22}{'last run':<24}next run"]
    for s in status["schedules"]:
        last_run = _ago(s["last_run"], now) if s["last_run"] else "never"
        next_run = _ago(s["next_run"], now) if s["next_run"] else (s.get("problem") or "disabled")
        lines.append(f"{s['id']:<30}{s['when']:<22}{last_run:<24}{next_run}")
    workers = status["workers"]
    lines += ["", f"workers seen in the last {admin.WORKER_SEEN_WITHIN:g}s: {len(workers) or 'none'}"]
    for w in workers:
        lines.append(f"  {w['queue']:<22} {w['name']}  running {w.get('running', 0)}  up {_span(now - w['started'])}")
    return lines


def _ago(when: Any, now: float) -> str:
    ts = when.timestamp() if isinstance(when, datetime) else float(when)
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    delta = now - ts
    return f"{stamp} ({_span(delta)} ago)" if delta >= 0 else f"{stamp} (in {_span(-delta)})"


def _span(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def run(args: argparse.Namespace) -> int:
    spec = spec_from(args)
    with database(spec) as db, redis_client(spec) as client:
        if not args.watch:
            show(collect(spec, db, client), args.json)
            return 0
        try:
            while True:
                show(collect(spec, db, client), args.json, clear=True)
                time.sleep(args.interval)
        except KeyboardInterrupt:  # Ctrl-C is how --watch ends, whether it lands in a sleep or a refresh
            return 0


def show(status: dict[str, Any], as_json: bool, *, clear: bool = False) -> None:
    if as_json:
        console.out_json(status)
        return
    if clear:
        console.out("\033[2J\033[H")  # clear the screen between refreshes
    for line in render(status, time.time()):
        console.out(line)
