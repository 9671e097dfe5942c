"""The MongoDB side of plan/apply: read the live state, compare it with the spec (pure), and the
Backend that apply drives (this plan, then the executors of mongo/execute.py)."""

from __future__ import annotations

from functools import partial
from typing import Any

from pymongo.database import Database

from bootstrap.engine.mongo.compare import compare
from bootstrap.engine.mongo.execute import execute
from bootstrap.engine.mongo.live import read_live_state
from bootstrap.engine.ops import Backend, Options, Plan
from bootstrap.spec.model import Spec


def make_plan(spec: Spec, db: Database[Any], options: Options) -> Plan:
    live = read_live_state(db, [c.name for c in spec.collections])
    return compare(spec, live, allow_rebuild=options.allow_rebuild, prune=options.prune)


def backend(spec: Spec, db: Database[Any]) -> Backend:
    return Backend(
        plan=lambda options: make_plan(spec, db, options).operations,
        execute=partial(execute, db),
    )
