"""`bootstrap jobs ...`: the failed-job store of a queue — list, show, retry, purge; `show` also shows
a completed job, with its result — and pausing and resuming a queue."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from bootstrap import console
from bootstrap.cli.common import add_config_option, redis_client, spec_from
from bootstrap.errors import BootstrapError
from bootstrap.jobs import admin, pause
from bootstrap.layout.keys import QueueKeys
from bootstrap.spec.model import Spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    failed = actions.add_parser("failed", help="list a queue's failed jobs, newest first")
    failed.add_argument("queue")
    failed.add_argument("--limit", type=int, default=50)
    failed.add_argument("--json", action="store_true")
    show = actions.add_parser(
        "show", help="one finished job: a failed one with its traceback, a completed one with its result"
    )
    show.add_argument("queue")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
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
    finished = record.get("finished_at")
    if not isinstance(finished, int | float):
        return "?"
    return datetime.fromtimestamp(finished, UTC).strftime("%Y-%m-%d %H:%M:%S")


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
            found = admin.finished_job(client, keys, args.id)
            if found is None:
                raise BootstrapError(
                    f"no finished job '{args.id}' on {args.queue} (completed or failed, within retention)"
                )
            outcome, job = found
            if args.json:
                console.out_json({"outcome": outcome, **job})
                return 0
            arguments = json.dumps({"args": job.get("args"), "kwargs": job.get("kwargs")})
            if outcome == "completed":
                console.out(
                    f"job {job['id']} ({job['task']} on {args.queue}), completed {_when(job)} "
                    f"on attempt {job.get('attempt', '?')} in {job.get('duration', 0):.3f}s"
                )
                console.out(f"arguments: {arguments}")
                if job.get("result_error"):
                    console.out(f"result: {job['result_error']}")
                else:
                    console.out(f"result: {json.dumps(job.get('result'))}")
                return 0
            console.out(
                f"job {job['id']} ({job['task']} on {args.queue}), failed {_when(job)} after "
                f"{job.get('attempts', '?')} of {job.get('max_attempts', '?')} attempt(s)"
            )
            console.out(f"arguments: {arguments}")
            console.out(f"error: {job.get('error')}")
            console.out(str(job.get("traceback", "")).rstrip())
            return 0
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
