"""The MongoDB half of a plan: inspect the live state, compare it with the spec."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from bootstrap.engine.mongo.compare import compare
from bootstrap.engine.mongo.live import read_live_state
from bootstrap.engine.ops import Options, Plan
from bootstrap.spec.model import Spec


def make_plan(spec: Spec, db: Database[Any], options: Options) -> Plan:
    live = read_live_state(db, [c.name for c in spec.collections])
    return compare(spec, live, allow_rebuild=options.allow_rebuild, prune=options.prune)
