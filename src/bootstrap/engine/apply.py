"""apply: plan MongoDB and Redis together, refuse blocked plans, then under the lease lock plan
again and execute, and record what was done.

A deployment that already matches the spec gets no write at all (not even the lock or a record).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from pymongo.database import Database

from bootstrap.engine.history import record_apply
from bootstrap.engine.lock import LeaseLock
from bootstrap.engine.mongo import execute as mongo_execute
from bootstrap.engine.mongo.plan import make_plan
from bootstrap.engine.ops import Operation, Options, Plan
from bootstrap.engine.redis import converge as redis_converge
from bootstrap.errors import ApplyFailed, PlanBlocked
from bootstrap.spec.model import Spec

Report = Callable[[str], None]


def full_plan(spec: Spec, db: Database[Any], client: redis.Redis, options: Options) -> Plan:
    plan = make_plan(spec, db, options)
    return plan.with_operations(redis_converge.compare(spec, client, fix_redis=options.fix_redis))


def refuse_blocked(plan: Plan) -> None:
    if plan.blocked:
        reasons = "; ".join(f"{op.group}: {op.reason}" for op in plan.blocked)
        raise PlanBlocked(f"nothing applied: {len(plan.blocked)} blocked operation(s): {reasons}")


def apply(
    spec: Spec, db: Database[Any], client: redis.Redis, options: Options, report: Report
) -> list[Operation]:
    """Converge MongoDB and Redis to `spec`; return the operations done."""
    plan = full_plan(spec, db, client, options)
    refuse_blocked(plan)
    if not plan.changes:
        return []
    with LeaseLock(db, "apply") as lock:
        lock.acquire(
            options.lock_timeout,
            lambda holder: report(
                f"waiting for another apply to finish ({(holder or {}).get('owner', 'unknown')})"
            ),
        )
        # Whoever held the lock may have done (some of) our work: plan again under the lock.
        plan = full_plan(spec, db, client, options)
        refuse_blocked(plan)
        if not plan.changes:
            return []
        started = datetime.now(UTC)
        planned = list(plan.changes)
        done: list[Operation] = []
        try:
            done += mongo_execute.execute(db, plan, report, lock.lost)
            done += redis_converge.execute(spec, client, plan, report, done)
        except ApplyFailed as exc:
            record_apply(
                db,
                spec_hash=spec.hash(),
                started=started,
                done=exc.done,
                planned=planned,
                outcome="failed",
                error=str(exc),
            )
            raise
        record_apply(
            db, spec_hash=spec.hash(), started=started, done=done, planned=planned, outcome="success"
        )
        return done
