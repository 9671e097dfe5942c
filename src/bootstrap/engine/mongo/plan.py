"""The MongoDB side of plan/apply: read the live state, compare it with the spec (pure), and the
Backend that apply drives (this plan, then the executors of mongo/execute.py)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from pymongo.database import Database

from bootstrap.engine.mongo.compare import compare
from bootstrap.engine.mongo.execute import execute
from bootstrap.engine.mongo.live import count_failing, read_live_state
from bootstrap.engine.mongo.operations import UpdateValidator
from bootstrap.engine.ops import Backend, Operation, Options, Plan
from bootstrap.spec.model import Spec


def make_plan(spec: Spec, db: Database[Any], options: Options) -> Plan:
    live = read_live_state(db, [c.name for c in spec.collections])
    plan = compare(spec, live, allow_rebuild=options.allow_rebuild, prune=options.prune)
    return Plan(plan.database, tuple(_with_impact(db, op) for op in plan.operations))


def _with_impact(db: Database[Any], op: Operation) -> Operation:
    """A validator change, with how many existing documents the new validator would refuse
    (outside the pure compare: it reads the data)."""
    if not isinstance(op, UpdateValidator) or op.level == "off":
        return op
    failing, ids = count_failing(db, op.collection, op.validator)
    return replace(op, failing=failing, failing_ids=ids)


def backend(spec: Spec, db: Database[Any]) -> Backend:
    return Backend(
        plan=lambda options: make_plan(spec, db, options).operations,
        execute=partial(execute, db),
    )
