"""Plan and apply for MongoDB: inspect -> compare -> (lock, inspect again) -> execute -> record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from bootstrap.errors import BootstrapError
from bootstrap.mongo.compare import compare
from bootstrap.mongo.execute import ApplyFailed, execute
from bootstrap.mongo.history import record_apply
from bootstrap.mongo.live import read_live_state
from bootstrap.mongo.lock import LeaseLock
from bootstrap.mongo.operations import Operation, Plan
from bootstrap.spec.model import Spec

log = logging.getLogger("bootstrap.apply")


class PlanBlocked(BootstrapError):
    pass


@dataclass(frozen=True)
class Options:
    allow_rebuild: bool = False
    prune: bool = False
    lock_timeout: float = 600.0


def make_plan(spec: Spec, db: Database[Any], options: Options) -> Plan:
    live = read_live_state(db, [c.name for c in spec.collections])
    return compare(spec, live, allow_rebuild=options.allow_rebuild, prune=options.prune)


def _refuse_blocked(plan: Plan) -> None:
    if plan.blocked:
        reasons = "; ".join(f"{op.collection}: {op.reason}" for op in plan.blocked)
        raise PlanBlocked(f"nothing applied: {len(plan.blocked)} blocked operation(s): {reasons}")


def apply(spec: Spec, db: Database[Any], options: Options, report: Callable[[str], None]) -> list[Operation]:
    """Converge `db` to `spec`; return the operations done. A database already as declared gets no
    write at all (not even the lock or a record)."""
    plan = make_plan(spec, db, options)
    _refuse_blocked(plan)
    if not plan.changes:
        return []
    with LeaseLock(db, "apply") as lock:
        lock.acquire(options.lock_timeout, lambda holder: report(
            f"waiting for another apply to finish ({(holder or {}).get('owner', 'unknown')})"))
        # Whoever held the lock may have done (some of) our work: plan again under the lock.
        plan = make_plan(spec, db, options)
        _refuse_blocked(plan)
        if not plan.changes:
            return []
        started = datetime.now(UTC)
        planned = list(plan.changes)
        try:
            done = execute(db, plan, report, lock.lost)
        except ApplyFailed as exc:
            record_apply(db, spec_hash=spec.hash(), started=started, done=exc.done, planned=planned,
                         outcome="failed", error=str(exc))
            raise
        record_apply(db, spec_hash=spec.hash(), started=started, done=done, planned=planned,
                     outcome="success")
        return done
