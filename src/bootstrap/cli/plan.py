"""`bootstrap plan`: what apply would change in MongoDB and Redis, without changing anything."""

from __future__ import annotations

import argparse

from bootstrap import console
from bootstrap.cli.common import add_plan_options, database, plan_options, redis_client, spec_from
from bootstrap.connect.redis import shown
from bootstrap.engine.apply import full_plan
from bootstrap.engine.render import plan_json, plan_text
from bootstrap.redact import mask


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_plan_options(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there are no changes, 2 when there are, 1 on error or when apply would refuse the plan "
        "(a '!' blocked line)",
    )


def run(args: argparse.Namespace) -> int:
    spec = spec_from(args)
    with database(spec) as db, redis_client(spec) as client:
        plan = full_plan(spec, db, client, plan_options(args))
    if args.json:
        console.out_json(plan_json(plan))
    else:
        target = f"MongoDB {mask(spec.mongodb.uri)} (database {plan.database}), Redis {shown(spec.redis)}"
        for line in plan_text(plan, target):
            console.out(line)
    if not args.detailed_exitcode:
        return 0
    if plan.blocked:  # apply would refuse it: a CI check must not read this as "changes to apply"
        console.err(f"plan blocked: apply would refuse it ({len(plan.blocked)} '!' line(s)); exit 1")
        return 1
    return 2 if plan.changes else 0
