"""`bootstrap enqueue QUEUE TASK [--kwargs JSON]`: put a job on a queue (a test job, a manual run).
`--kwargs` must be JSON (NaN and Infinity refused); `--count N` streams N jobs in batches."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from typing import Any

from bootstrap import console
from bootstrap.cli.common import spec_from
from bootstrap.errors import BootstrapError
from bootstrap.jobs.contract import Runtime
from bootstrap.jobs.wiring import enqueue


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("queue", help="a declared queue")
    parser.add_argument("task", help="a task declared on that queue")
    parser.add_argument("--kwargs", default="{}", metavar="JSON", help="keyword arguments as a JSON object")
    parser.add_argument("--count", type=int, default=1, help="how many jobs (pipelined; for load tests)")
    parser.add_argument("--id", dest="job_id", help="job id (default: random)")


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
    sent = asyncio.run(enqueue(runtime, args.queue, args.task, kwargs, count=args.count, job_id=args.job_id))
    console.out(f"enqueued {sent.count} job(s) on {args.queue}: {sent.first}" + (" ..." if sent.count > 1 else ""))
    return 0


def _not_json(constant: str) -> Any:
    """Python's json reads NaN, Infinity and -Infinity; JSON has no such numbers (the job would
    reach its handler with null)."""
    raise BootstrapError(f"--kwargs: {constant} is not a JSON number (JSON has no NaN or Infinity)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: too large for a float, read as Infinity
        raise BootstrapError(f"--kwargs: {text} is not a JSON number a job can carry (too large for a float)")
    return value
