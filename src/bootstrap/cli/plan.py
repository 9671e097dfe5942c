"""`bootstrap plan`: what apply would change in MongoDB and Redis, without changing anything."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bootstrap import console
from bootstrap.cli.common import add_plan_options, database, plan_options, redis_client, spec_from
from bootstrap.connect.redis import shown
from bootstrap.engine.apply import full_plan
from bootstrap.engine.render import plan_text
from bootstrap.engine.reviewed import plan_document
from bootstrap.redact import mask


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_plan_options(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="also save the plan (as --json prints it) to FILE, for `bootstrap apply --plan FILE`",
    )
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there are no changes, 2 when there are, 1 on error or when apply would refuse the plan "
        "(a '!' blocked line)",
    )


def run(args: argparse.Namespace) -> int:
    spec = spec_from(args)
    options = plan_options(args)
    with database(spec) as db, redis_client(spec) as client:
        plan = full_plan(spec, db, client, options)
    document = plan_document(plan, spec.hash(), options, mask(spec.mongodb.uri), shown(spec.redis))
    if args.out is not None:  # for `apply --plan FILE` (and a CI artifact); masked like everything printed
        args.out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    if args.json:
        console.out_json(document)
    else:
        target = f"MongoDB {mask(spec.mongodb.uri)} (database {plan.database}), Redis {shown(spec.redis)}"
        for line in plan_text(plan, target):
            console.out(line)
        if args.out is not None:
            console.out(f"Saved to {args.out}: `bootstrap apply --plan {args.out}` applies exactly this plan.")
    if not args.detailed_exitcode:
        return 0
    if plan.blocked:  # apply would refuse it: a CI check must not read this as "changes to apply"
        console.err(f"plan blocked: apply would refuse it ({len(plan.blocked)} '!' line(s)); exit 1")
        return 1
    return 2 if plan.changes else 0
