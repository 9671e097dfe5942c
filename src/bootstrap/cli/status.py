"""`bootstrap status`: one screen answering "is everything as declared, and is it working?"."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import redis
from pymongo.database import Database

from bootstrap import console
from bootstrap.cli.common import database, redis_client, spec_from
from bootstrap.codegen.render import wiring_hash
from bootstrap.codegen.write import stale_note
from bootstrap.connect.redis import memory_full, shown
from bootstrap.engine.apply import full_plan
from bootstrap.engine.history import TOOL, last_apply
from bootstrap.engine.ops import Options
from bootstrap.jobs import admin
from bootstrap.jobs.pause import EARLIER
from bootstrap.jobs.schedule_runs import last_runs
from bootstrap.layout.marker import LOST_DATA, elsewhere
from bootstrap.local.upstate import GAVE_UP, RESTARTING, running_up
from bootstrap.redact import mask
from bootstrap.spec.model import Spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    parser.add_argument("--interval", type=float, default=2.0, metavar="SECONDS", help="refresh interval for --watch")


def collect(spec: Spec, db: Database[Any], client: redis.Redis) -> dict[str, Any]:
    plan = full_plan(spec, db, client, Options(impact=False))
    marker = admin.data_marker(client, spec)
    others = admin.other_prefixes(client, spec) if marker is None else []  # another key prefix's data here?
    drift: dict[str, list[str]] = {}
    for op in plan.operations:
        # Not notes about the server (`shard:` off a mongos: `plan` says it); an undeclared index kept
        # is shown (it is no change: in_sync stays true).
        if op.is_drift or op.kind == "kept":
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
                # Declared indexes there (by name: one changed in place or to rebuild counts; an undeclared one not).
                "indexes": f"{len([ix for ix in coll.indexes if ix.name in indexes])}/{len(coll.indexes)}",
                "drift": drift.get(f"collection {coll.name}", []),
            }
        )
    record = last_apply(db)
    return {
        "spec_hash": spec.hash(),
        "mongodb": {"uri": mask(spec.mongodb.uri), "database": db.name},
        # `url` as configured (masked); `shown` as said to the user (in sentinel mode: the master and sentinels)
        "redis": {"url": mask(spec.redis.url), "shown": shown(spec.redis), "marker": marker, "others": others,
                  "key_prefix": spec.redis.key_prefix, "full": memory_full(client)},
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
            "tool": record.get("tool"),
        },
        "queues": [vars(q) for q in admin.queue_stats(client, spec)],
        "schedules": schedules(client, spec),
        "workers": admin.workers(client, spec),
        "schedulers": admin.schedulers(client, spec),
        "wiring": wiring_hash(spec),
        "worker_wiring": wiring_hash(spec, workers=True),  # what workers' heartbeats carry (no schedules)
        "generated": stale_note(spec),  # None: current (or never generated here)
        "up": up_status(spec),
    }


def up_status(spec: Spec) -> dict[str, Any] | None:
    """The `bootstrap up` running for this project, if any: its pid and how its children are doing."""
    up = running_up(spec.root)
    if up is None:
        return None
    return {
        "pid": up.pid,
        "started": up.started,
        "wiring": up.wiring,
        "restart_window": up.restart_window,
        "max_restarts": up.max_restarts,
        "children": [asdict(child) for child in up.children],
    }


def problems(status: dict[str, Any]) -> list[str]:
    """What needs attention besides drift: workers or schedulers on other wiring than the spec's,
    schedules with no live scheduler to fire them, workers that keep crashing under `bootstrap up`,
    jobs waiting on a queue no live worker takes jobs from."""
    found = []
    full = status["redis"].get("full")
    if full:
        found.append(f"Redis is full: {full}; it refuses writes (sends, acknowledgements, records, heartbeats): "
                     "give it memory (see `bootstrap health`)")  # fmt: skip
    for worker in status.get("workers", []):
        if worker.get("blocked"):
            found.append(f"worker {worker['name']} of queue {worker['queue']}: its event loop is blocked "
                         f"{worker['blocked']} (see its log; a handler blocks it)")  # fmt: skip
    for kind in ("workers", "schedulers"):
        expected = _expected(kind, status)
        stale = [p for p in status.get(kind, []) if p.get("wiring") and expected and p["wiring"] != expected]
        if stale:
            running = ", ".join(sorted({p["wiring"] for p in stale}))
            found.append(
                f"{len(stale)} {kind[:-1]}(s) run other wiring ({running}) than the spec's ({expected}): run "
                "`bootstrap generate` if the package is stale, then restart them (`bootstrap up` restarts its own)"
            )
    enabled = [s for s in status["schedules"] if s.get("enabled", True)]
    if enabled and not status.get("schedulers"):
        found.append(
            f"no live scheduler: the {len(enabled)} enabled schedule(s) do not fire (start the scheduler, "
            "see `bootstrap health`)"
        )
    up: dict[str, Any] = status.get("up") or {}
    for child in up.get("children", []):
        if child["state"] == GAVE_UP:
            found.append(
                f"{child['name']} kept crashing: `bootstrap up` (pid {up['pid']}) stopped it after "
                f"{up['max_restarts']} restarts in {up['restart_window']:g}s; see {child['log']}"
            )
        elif child["state"] == RESTARTING:
            found.append(
                f"{child['name']} is crash-looping: restarted {child['restarts']} time(s) in the last "
                f"{up['restart_window']:g}s by `bootstrap up` (pid {up['pid']}); see {child['log']}"
            )
    if status.get("generated"):
        found.append(status["generated"])
    live = {w["queue"] for w in status["workers"]}
    for queue in status["queues"]:
        if queue.get("paused"):
            found.append(
                f"queue {queue['queue']} is paused: {queue['waiting']} job(s) waiting "
                f"(`bootstrap jobs resume {queue['queue']}`)"
            )
            earlier = admin.earlier_releases(status["workers"], queue["queue"])
            if earlier:
                found.append(f"queue {queue['queue']}: " + EARLIER.format(count=len(earlier), names=", ".join(earlier)))
        elif queue["waiting"] and queue["queue"] not in live:
            found.append(f"queue {queue['queue']}: {queue['waiting']} job(s) waiting and no live worker to take them")
    return found


def schedules(client: redis.Redis, spec: Spec) -> list[dict[str, Any]]:
    """Each stored schedule; `last_run` is the slot of the newest finished job it fired (from the
    job records), not merely the last slot handled, which may have been skipped (`last_slot`)."""
    rows = admin.schedule_states(client, spec)
    runs = last_runs(client, spec.redis.key_prefix, {row["id"]: row["queue"] for row in rows if row["queue"]})
    for row in rows:
        run = runs.get(row["id"])
        row["last_slot"] = row["last_run"]
        row["last_run"] = run.finished if run else None
        row["last_outcome"] = run.outcome if run else None
    return rows


def render(status: dict[str, Any], now: float) -> list[str]:
    lines = [
        f"MongoDB {status['mongodb']['uri']} (database {status['mongodb']['database']}), "
        f"Redis {status['redis'].get('shown') or status['redis']['url']}, spec {status['spec_hash']}",
    ]
    attention = problems(status)
    if status["redis"]["marker"] is None:
        others = status["redis"].get("others")
        lines.append(elsewhere(str(status["redis"].get("key_prefix")), others) if others else LOST_DATA)
    if not status["in_sync"]:
        lines.append("DRIFT: run `bootstrap plan` for details")
    elif attention:
        lines.append("MongoDB and Redis match the spec, but the jobs need attention:")
    else:
        lines.append("everything matches the spec")
    lines += [f"  ! {problem}" for problem in attention]
    lines.append("")
    rows = []
    for c in status["collections"]:
        drift = "; ".join(c["drift"]) if c["drift"] else ("none" if c["exists"] else "missing")
        rows.append([c["name"], str(c["documents"]), c["indexes"], drift])
    lines += table(["collection", "documents", "indexes", "drift"], rows, right={1, 2})
    lines += [f"redis: {line}" for line in status["redis_drift"]]
    last = status["last_apply"]
    if last:
        if last["spec_hash"] == status["spec_hash"]:
            same = "the current spec"
        elif last.get("tool") and last["tool"] != TOOL:  # hashed by another release: not comparable
            same = f"applied by {last['tool']}"
        else:
            same = "another spec"
        lines.append(
            f"last apply: {_ago(last['at'], now)}, {last['outcome']}, {last['operations']} operation(s), "
            f"{same} ({last['spec_hash']}), by {last['by']}"
        )
    else:
        lines.append("last apply: none recorded")
    lines.append("")
    counts = ("waiting", "running", "delayed", "completed", "failed")
    rows = [[q["queue"] + (" (paused)" if q.get("paused") else ""), *(str(q[name]) for name in counts)]
            for q in status["queues"]]  # fmt: skip
    lines += table(["queue", *counts], rows, right={1, 2, 3, 4, 5})
    lines.append("")
    rows = [[s["id"], admin.described_when(s), _last_run(s, now), _next_run(s, now)] for s in status["schedules"]]
    lines += table(["schedule", "when", "last run", "next run"], rows)
    workers = status["workers"]
    lines += ["", f"workers seen in the last {admin.WORKER_SEEN_WITHIN:g}s: {len(workers) or 'none'}"]
    rows = []
    for w in workers:
        rows.append([w["queue"], w["name"], f"running {w.get('running', 0)}", f"up {console.span(now - w['started'])}",
                     f"wiring {_wiring(w, status, 'workers')}"])  # fmt: skip
    lines += ["  " + line for line in table(["queue", "worker", "jobs", "since", "wiring"], rows)[1:]]
    schedulers = status.get("schedulers", [])
    lines += [f"schedulers seen in the last {admin.WORKER_SEEN_WITHIN:g}s: {len(schedulers) or 'none'}"]
    rows = [
        [s["name"], f"up {console.span(now - s['started'])}", f"wiring {_wiring(s, status, 'schedulers')}"]
        for s in schedulers
    ]
    lines += ["  " + line for line in table(["scheduler", "since", "wiring"], rows)[1:]]
    return lines


def _wiring(process: dict[str, Any], status: dict[str, Any], kind: str) -> str:
    """The wiring a worker or scheduler runs, marked when it is not the spec's."""
    wiring, expected = process.get("wiring") or "?", _expected(kind, status)
    if process.get("wiring") and expected and process["wiring"] != expected:
        wiring += " (not the spec's)"
    return wiring


def _expected(kind: str, status: dict[str, Any]) -> str | None:
    """The spec's wiring hash as `kind` (workers, schedulers) carry it: workers, of the files they run."""
    return status.get("worker_wiring") if kind == "workers" else status.get("wiring")


def table(header: list[str], rows: list[list[str]], right: set[int] | frozenset[int] = frozenset()) -> list[str]:
    """Columns as wide as their widest cell, two spaces apart (so no two cells ever run together);
    the columns in `right` (counts) aligned right."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(cells)]
        return "  ".join(padded).rstrip()

    return [line(header), *(line(row) for row in rows)]


def _last_run(schedule: dict[str, Any], now: float) -> str:
    """When the schedule's job last ran, from the job records; a handled slot that fired nothing
    (skipped) is not a run."""
    if schedule.get("last_run"):
        outcome = schedule.get("last_outcome")
        return _ago(schedule["last_run"], now) + (", failed" if outcome == "failed" else "")
    return "none on record" if schedule.get("last_slot") else "never"


def _next_run(schedule: dict[str, Any], now: float) -> str:
    """When it fires next, or why it does not (disabled, never fires, unreadable)."""
    if schedule["next_run"]:
        return _ago(schedule["next_run"], now)
    return str(schedule.get("problem") or "disabled")


def _ago(when: Any, now: float) -> str:
    ts = when.timestamp() if isinstance(when, datetime) else float(when)
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    delta = now - ts
    return f"{stamp} ({console.span(delta)} ago)" if delta >= 0 else f"{stamp} (in {console.span(-delta)})"


def run(args: argparse.Namespace) -> int:
    spec = spec_from(args)
    with database(spec) as db, redis_client(spec) as client:
        if not args.watch:
            show(collect(spec, db, client), args.json)
            return 0
        # Ctrl-C is how --watch ends. The first one lets a refresh in progress finish (a KeyboardInterrupt
        # inside a driver call can leave closing the MongoDB client waiting on a half-read reply); a
        # second one interrupts at once.
        stop = threading.Event()

        def ctrl_c(signum: int, frame: Any) -> None:
            stop.set()
            signal.signal(signal.SIGINT, signal.default_int_handler)

        previous = signal.signal(signal.SIGINT, ctrl_c)
        try:
            while not stop.is_set():
                show(collect(spec, db, client), args.json, clear=True)
                stop.wait(args.interval)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGINT, previous)
        return 0


def show(status: dict[str, Any], as_json: bool, *, clear: bool = False) -> None:
    if as_json:
        console.out_json({**status, "problems": problems(status)})
        return
    if clear:
        console.clear_screen()
    for line in render(status, time.time()):
        console.out(line)
