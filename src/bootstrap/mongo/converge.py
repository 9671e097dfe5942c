"""The MongoDB half of a plan: inspect the live state, compare it with the spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.database import Database

from bootstrap.mongo.compare import compare
from bootstrap.mongo.live import read_live_state
from bootstrap.plan import Plan
from bootstrap.spec.model import Spec


@dataclass(frozen=True)
class Options:
    allow_rebuild: bool = False
    prune: bool = False
    fix_redis: bool = False
    lock_timeout: float = 600.0


def make_plan(spec: Spec, db: Database[Any], options: Options) -> Plan:
    live = read_live_state(db, [c.name for c in spec.collections])
    return compare(spec, live, allow_rebuild=options.allow_rebuild, prune=options.prune)
