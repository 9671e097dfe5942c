"""`bootstrap plan`: what apply would change in MongoDB, without changing anything."""

from __future__ import annotations

import argparse

from bootstrap import console
from bootstrap.cli.common import add_plan_options, database, plan_options, spec_from
from bootstrap.mongo.converge import make_plan
from bootstrap.redact import mask
from bootstrap.render import plan_json, plan_text

HELP = "show what apply would change (+ create, ~ change in place, -/+ rebuild, - drop, ! blocked)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_plan_options(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 0 when there are no changes, 2 when there are, 1 on error")


def run(args: argparse.Namespace) -> int:
    spec = spec_from(args)
    with database(spec) as db:
        plan = make_plan(spec, db, plan_options(args))
    if args.json:
        console.out_json(plan_json(plan))
    else:
        for line in plan_text(plan, mask(spec.mongodb.uri)):
            console.out(line)
    if args.detailed_exitcode and (plan.changes or plan.blocked):
        return 2
    return 0
