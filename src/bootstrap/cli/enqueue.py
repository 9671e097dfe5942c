"""`bootstrap enqueue QUEUE TASK [--kwargs JSON]`: put a job on a queue (a test job, a manual run).
`--kwargs` must be JSON (NaN and Infinity refused); `--count N` streams N jobs in batches; `--delay 30s`
or `--at 2026-12-01T09:00:00Z` makes it wait; `--id ID` deduplicates (an id already waiting, delayed or
running is not enqueued again); `--priority high|normal|low` overrides the task's priority."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from datetime import UTC, datetime
from typing import Any

from bootstrap import console
from bootstrap.cli.common import spec_from
from bootstrap.errors import BootstrapError
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.wiring import enqueue
from bootstrap.layout.keys import PRIORITIES
from bootstrap.spec.durations import parse_duration


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("queue", help="a declared queue")
    parser.add_argument("task", help="a task declared on that queue")
    parser.add_argument("--kwargs", default="{}", metavar="JSON", help="keyword arguments as a JSON object")
    parser.add_argument("--count", type=int, default=1, help="how many jobs (pipelined; for load tests)")
    parser.add_argument(
        "--id",
        dest="job_id",
        help="job id (default: random); a job with this id already waiting, delayed or running is not enqueued again",
    )
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--delay", metavar="DURATION", help="run after this long (30s, 15m, 2h, or seconds)")
    when.add_argument("--at", metavar="ISO-8601", help="run at this time (2026-12-01T09:00:00Z; no zone: UTC)")
    parser.add_argument("--priority", choices=PRIORITIES, help="the job's priority (default: the task's)")


def run(args: argparse.Namespace) -> int:
    runtime = Runtime.from_spec(spec_from(args))
    if args.queue not in runtime.queue_names:
        raise BootstrapError(f"unknown queue '{args.queue}' (declared: {', '.join(runtime.queue_names)})")
    tasks = [t.name for t in runtime.queue(args.queue).tasks]
    if args.task not in tasks:
        raise BootstrapError(f"'{args.task}' is not a task of queue '{args.queue}' (declared: {', '.join(tasks)})")
    try:
        kwargs = json.loads(args.kwargs, parse_constant=_not_json, parse_float=_finite)
    except ValueError as exc:
        raise BootstrapError(f"--kwargs is not valid JSON: {exc}") from None
    if not isinstance(kwargs, dict):
        raise BootstrapError('--kwargs must be a JSON object, e.g. \'{"userId": "..."}\'')
    if args.count < 1:
        raise BootstrapError("--count must be at least 1")
    delay = _delay(args.delay, args.at)
    sent = asyncio.run(
        enqueue(
            runtime, args.queue, args.task, kwargs,
            count=args.count, job_id=args.job_id, delay=delay, priority=args.priority,
        )
    )  # fmt: skip
    if sent.existing and not sent.count:
        console.out(
            f"job {sent.existing[0]} is already waiting, delayed or running on {args.queue}: not enqueued again"
            + (f" (nor {len(sent.existing) - 1} more)" if len(sent.existing) > 1 else "")
        )
        return 0
    when = f", to run in {delay:g}s" if delay > 0 else ""
    console.out(
        f"enqueued {sent.count} job(s) on {args.queue}{when}: {sent.first}" + (" ..." if sent.count > 1 else "")
    )
    if sent.existing:
        console.out(f"{len(sent.existing)} id(s) already waiting, delayed or running, not enqueued again")
    return 0


def _delay(delay: str | None, at: str | None) -> float:
    """Seconds to wait from `--delay` or `--at` (a time in the past: at once)."""
    if delay is not None:
        try:  # a plain number is seconds, as in the spec (where YAML reads it as a number)
            seconds = _seconds(delay)
            return parse_duration(delay if seconds is None else seconds)
        except ValueError as exc:
            raise BootstrapError(f"--delay: {exc}") from None
    if at is None:
        return 0.0
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise BootstrapError(f"--at: {at!r} is not an ISO-8601 time (e.g. 2026-12-01T09:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


def _seconds(text: str) -> float | None:
    """`text` as a finite number of seconds (30, 1.5, .5, 1e3), or None when it is no number."""
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


def _not_json(constant: str) -> Any:
    """Python's json reads NaN, Infinity and -Infinity; JSON has no such numbers (the job would
    reach its handler with null)."""
    raise BootstrapError(f"--kwargs: {constant} is not a JSON number (JSON has no NaN or Infinity)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: too large for a float, read as Infinity
        raise BootstrapError(f"--kwargs: {text} is not a JSON number a job can carry (too large for a float)")
    return value
