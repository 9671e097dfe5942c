"""`bootstrap apply`: converge MongoDB and Redis to the spec, safely and idempotently."""

from __future__ import annotations

import argparse
from pathlib import Path

from bootstrap import console
from bootstrap.cli.common import add_plan_options, database, plan_options, redis_client, spec_from
from bootstrap.connect.redis import shown
from bootstrap.engine.apply import apply
from bootstrap.engine.render import applied_summary
from bootstrap.engine.reviewed import Reviewed
from bootstrap.redact import mask


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_plan_options(parser)
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for another apply to finish (default 600)",
    )
    parser.add_argument(
        "--plan",
        type=Path,
        metavar="FILE",
        help="apply only if the plan is still the one saved in FILE (`plan --out FILE` or `plan --json`); "
        "otherwise apply nothing and say what differs",
    )


def run(args: argparse.Namespace) -> int:
    spec = spec_from(args)
    options = plan_options(args)
    reviewed = Reviewed.read(args.plan) if args.plan is not None else None
    if reviewed is not None:
        reviewed.check_before(spec.hash(), options)
    with database(spec) as db, redis_client(spec) as client:
        console.out(
            f"applying {args.config} to MongoDB {mask(spec.mongodb.uri)} (database {db.name}) "
            f"and Redis {shown(spec.redis)}"
        )
        done = apply(spec, db, client, options, console.out, reviewed)
    if done:
        console.out(applied_summary(done))  # counted as `plan` counts
    else:
        console.out("No changes: MongoDB and Redis match the spec.")
    return 0
