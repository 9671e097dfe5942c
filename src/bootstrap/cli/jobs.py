"""`bootstrap jobs ...`: the failed-job store of a queue — list, show, retry, purge; `show` finds any
job (waiting, delayed, running, or finished: a completed one with its result) — and pausing and
resuming a queue."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from bootstrap import console
from bootstrap.cli.common import add_config_option, redis_client, spec_from
from bootstrap.errors import BootstrapError
from bootstrap.jobs import admin, labels, lookup, pause
from bootstrap.layout.keys import QueueKeys
from bootstrap.spec.model import Spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    failed = actions.add_parser("failed", help="list a queue's failed jobs, newest first")
    failed.add_argument("queue")
    failed.add_argument("--limit", type=int, default=50)
    failed.add_argument("--json", action="store_true")
    show = actions.add_parser(
        "show",
        help="one job and its state: waiting, delayed, running (which worker holds it), or finished "
        "(a failed one with its traceback, a completed one with its result)",
    )
    show.add_argument("queue")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.add_argument(
        "--scan",
        type=int,
        default=lookup.LIMIT,
        metavar="N",
        help=f"entries searched at most per priority level's stream and of the delayed set (default {lookup.LIMIT})",
    )
    retry = actions.add_parser("retry", help="put failed jobs back on their queue")
    retry.add_argument("queue")
    retry.add_argument("ids", nargs="*", metavar="ID")
    retry.add_argument("--all", action="store_true", help="every failed job of the queue")
    purge = actions.add_parser("purge", help="empty the queue's failed-job store")
    purge.add_argument("queue")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    paused = actions.add_parser("pause", help="workers of the queue take no new jobs (running ones finish)")
    paused.add_argument("queue")
    resumed = actions.add_parser("resume", help="workers of a paused queue take jobs again")
    resumed.add_argument("queue")
    for action in (failed, show, retry, purge, paused, resumed):
        add_config_option(action, nested=True)  # `jobs failed QUEUE --config DIR` works too


def _keys(spec: Spec, queue: str) -> QueueKeys:
    names = [q.name for q in spec.queues]
    if queue not in names:
        raise BootstrapError(f"unknown queue '{queue}' (declared: {', '.join(names)})")
    return QueueKeys(spec.redis.key_prefix, queue)


def _when(record: dict[str, object]) -> str:
    return _time(record.get("finished_at"))


def _time(when: object) -> str:
    if not isinstance(when, int | float):
        return "?"
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _show(client: Any, keys: QueueKeys, args: argparse.Namespace, spec: Spec) -> int:
    if args.scan < 1:
        raise BootstrapError(f"--scan must be at least 1 (got {args.scan})")
    found = lookup.find_job(client, keys, args.id, args.scan)
    if found.found is None:
        message = (
            f"no job '{args.id}' on {args.queue}: not waiting, delayed or running, and no completed or failed "
            "record (records are kept within the queue's retention)"
        )
        if found.gave_up:
            message += (
                f"; searched only the first {found.limit} entries of {', '.join(found.gave_up)} "
                "(a larger --scan searches further)"
            )
        raise BootstrapError(message)
    job = found.found
    if args.json:
        console.out_json(job.to_json())
        return 0
    record = job.job
    arguments = json.dumps({"args": record.get("args"), "kwargs": record.get("kwargs")})
    title = f"job {record['id']} ({record['task']} on {args.queue})"
    if job.state == "completed":
        console.out(
            f"{title}, completed {_when(record)} "
            f"on attempt {record.get('attempt', '?')} in {record.get('duration', 0):.3f}s"
        )
        console.out(f"arguments: {arguments}")
        if record.get("result_error"):
            console.out(f"result: {record['result_error']}")
        else:
            console.out(f"result: {json.dumps(record.get('result'))}")
        return 0
    if job.state == "failed":
        tried = f"{record.get('attempts', '?')} of {record['max_attempts']}" if "max_attempts" in record else (
            f"{record.get('attempts', '?')}")  # set aside by a worker (rejected): no retry policy was read
        delivered = f", delivered {record['deliveries']} times" if int(record.get("deliveries", 1) or 1) > 1 else ""
        console.out(f"{title}, failed {_when(record)} after {tried} attempt(s){delivered}")
        console.out(f"arguments: {arguments}")
        console.out(f"error: {record.get('error')}")
        console.out(str(record.get("traceback", "")).rstrip())
        return 0
    attempt = record["labels"].get("attempt", 1)
    holder = ""
    running = job.state not in (lookup.DELAYED, lookup.WAITING)
    if running and job.consumer not in {w["name"] for w in admin.workers(client, spec)}:
        holder = (f"; no live worker is consumer {job.consumer} (none seen in the last "
                  f"{admin.WORKER_SEEN_WITHIN:g}s): it died or hangs, and another worker takes the job over "
                  "once it was held for the queue's visibility_timeout")  # fmt: skip
    if job.state == lookup.DELAYED:
        console.out(
            f"{title}, delayed until {_time(job.due)} ({lookup.describe_wait(job)}), then waiting on the "
            f"{job.level} level; attempt {attempt}"
        )
    elif job.state == lookup.WAITING:
        console.out(f"{title}, waiting on the {job.level} level (no worker took it yet); attempt {attempt}")
    else:
        console.out(
            f"{title}, running: held by consumer {job.consumer} for {job.held_for:.1f}s "
            f"(delivered {job.deliveries} time(s), {job.level} level); attempt {attempt}{holder}"
        )
    since = labels.unserved_since(record.get("labels") or {})
    if since is not None and job.state in (lookup.DELAYED, lookup.WAITING):
        console.out(f"handed back since {_time(since)} by workers whose wiring does not declare task "
                    f"{record['task']!r} (a rollout); set aside if none that serves it takes it within "
                    f"{labels.UNSERVED_FOR / 60:g} minutes")  # fmt: skip
    console.out(f"arguments: {arguments}")
    return 0


def run(args: argparse.Namespace) -> int:
    spec = spec_from(args)
    keys = _keys(spec, args.queue)
    with redis_client(spec) as client:
        if args.action == "pause":
            if pause.pause(client, keys):
                console.out(
                    f"paused {args.queue}: its workers take no new jobs within a second and finish the running "
                    f"ones; jobs enqueued meanwhile wait (resume: `bootstrap jobs resume {args.queue}`)"
                )
            else:
                console.out(f"{args.queue} is paused already")
            earlier = admin.earlier_releases(admin.workers(client, spec), args.queue)
            if earlier:
                console.out(f"note: {pause.EARLIER.format(count=len(earlier), names=', '.join(earlier))}")
            return 0
        if args.action == "resume":
            if pause.resume(client, keys):
                console.out(f"resumed {args.queue}: its workers take jobs again")
            else:
                console.out(f"{args.queue} is not paused")
            return 0
        if args.action == "failed":
            jobs = admin.failed_jobs(client, keys, args.limit)
            if args.json:
                console.out_json(jobs)
                return 0
            if not jobs:
                console.out(f"no failed jobs on {args.queue}")
            for job in jobs:
                console.out(
                    f"{job['id']}  {job['task']}  {_when(job)}  attempts {job.get('attempts', '?')}  "
                    f"{job.get('error', '')}"
                )
            return 0
        if args.action == "show":
            return _show(client, keys, args, spec)
        if args.action == "retry":
            if bool(args.ids) == bool(args.all):
                raise BootstrapError("name the jobs to retry, or give --all (not both)")
            ids = admin.all_failed_ids(client, keys) if args.all else args.ids
            done = admin.retry_failed(client, keys, ids)
            missing = [i for i in ids if i not in done]
            console.out(f"re-enqueued {len(done)} job(s) on {args.queue}")
            if missing:
                raise BootstrapError(f"not in the failed store of {args.queue}: {', '.join(missing)}")
            return 0
        count = client.zcard(keys.records("failed"))
        if not args.yes and not console.ask(f"delete {count} failed job record(s) of {args.queue}?"):
            raise BootstrapError("nothing deleted (confirm at the prompt, or pass --yes)")
        console.out(f"deleted {admin.purge_failed(client, keys)} failed job record(s) of {args.queue}")
        return 0
