"""apply: plan every side (MongoDB, then Redis), refuse a blocked plan, then under the lease lock plan
again, execute each side's operations in order (planning again when the MongoDB primary changes),
and record what was done.

The sequence knows nothing of either backend: each side is a Backend (plan + execute one operation).
A deployment that already matches the spec gets no write at all (not even the lock or a record).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NoReturn

import redis
from pymongo.database import Database

from bootstrap.engine.history import record_apply
from bootstrap.engine.lock import LeaseLock
from bootstrap.engine.mongo import plan as mongo
from bootstrap.engine.ops import Backend, Operation, Options, Plan, Report
from bootstrap.engine.redis import plan as redis_side
from bootstrap.engine.render import done_lines
from bootstrap.engine.reviewed import PlanChanged, Reviewed
from bootstrap.errors import ApplyFailed, DataCheckTimedOut, OperationFailed, PlanBlocked, PrimaryChanged, Terminated
from bootstrap.spec.model import Spec

LOCK = "apply"


@dataclass(frozen=True)
class SidePlan:
    """One backend and the operations it planned."""

    backend: Backend
    operations: tuple[Operation, ...]

    @property
    def changes(self) -> tuple[Operation, ...]:
        return tuple(op for op in self.operations if op.is_change)


def backends(spec: Spec, db: Database[Any], client: redis.Redis | None) -> tuple[Backend, ...]:
    """MongoDB, then Redis; without a Redis client the Redis side is left out (planned and applied
    by no one), which is how MongoDB alone is planned and applied."""
    sides = [mongo.backend(spec, db)]
    if client is not None:
        sides.append(redis_side.backend(spec, client))
    return tuple(sides)


def plan_sides(sides: tuple[Backend, ...], options: Options) -> tuple[SidePlan, ...]:
    return tuple(SidePlan(side, side.plan(options)) for side in sides)


def as_plan(database: str, planned: tuple[SidePlan, ...]) -> Plan:
    return Plan(database, tuple(op for side in planned for op in side.operations))


def full_plan(spec: Spec, db: Database[Any], client: redis.Redis | None, options: Options) -> Plan:
    """What `plan` shows and `apply` would run: MongoDB's operations, then Redis's."""
    return as_plan(db.name, plan_sides(backends(spec, db, client), options))


def refuse_blocked(plan: Plan) -> None:
    if plan.blocked:
        reasons = "; ".join(f"{op.group}: {op.reason}" for op in plan.blocked)
        raise PlanBlocked(f"nothing applied: {len(plan.blocked)} blocked operation(s): {reasons}")


def plan_checked(database: str, sides: tuple[Backend, ...], options: Options) -> tuple[SidePlan, ...]:
    """Plan every side; raise PlanBlocked when anything is blocked (then nothing is applied)."""
    planned = plan_sides(sides, options)
    refuse_blocked(as_plan(database, planned))
    return planned


def apply(
    spec: Spec,
    db: Database[Any],
    client: redis.Redis | None,
    options: Options,
    report: Report,
    reviewed: Reviewed | None = None,
) -> list[Operation]:
    """Converge MongoDB (and Redis, unless `client` is None) to `spec`; return the operations done.
    With `reviewed`, only when the plan made under the lock is that one (else PlanChanged): a plan
    with nothing left to do is fine, and after an election apply goes on towards the same spec."""
    sides = backends(spec, db, client)
    # Without reading the documents (full scans on a big collection): the plan under the lock does.
    first = plan_checked(db.name, sides, replace(options, impact=False))
    if not _changes(first):
        return []
    if reviewed is not None:
        reviewed.check(as_plan(db.name, first))  # before taking the lock: it may be wrong from the start
    def waiting(holder: dict[str, Any] | None) -> None:
        """While another apply holds the lock, the data is read now: what it blocks is said at once,
        not after the wait."""
        _waiting(report)(holder)
        plan_checked(db.name, sides, options)

    with LeaseLock(db, LOCK) as lock:
        lock.acquire(options.lock_timeout, waiting)
        # Whoever held the lock may have done (some of) our work: plan again under the lock.
        planned = plan_checked(db.name, sides, options)
        if not _changes(planned):
            return []
        if reviewed is not None:
            reviewed.check(as_plan(db.name, planned))

        def replan() -> tuple[SidePlan, ...]:
            again = plan_checked(db.name, sides, options)
            if reviewed is not None:  # what is left of the reviewed plan, and nothing else
                reviewed.check_within(as_plan(db.name, again))
            return again

        return execute(spec, db, planned, report, lock.lost, replan=replan)


MAX_REPLANS = 3  # elections in a row during one apply: beyond that, stop and say so


def execute(
    spec: Spec,
    db: Database[Any],
    planned: tuple[SidePlan, ...],
    report: Report,
    lock_lost: threading.Event,
    replan: Callable[[], tuple[SidePlan, ...]] | None = None,
) -> list[Operation]:
    """Every side's changes, side by side and in plan order; the apply recorded either way. Stops at
    the first failure, or before an operation once the lock was lost (another run may be applying).
    When the MongoDB primary changed (PrimaryChanged), plans again with `replan` (what the old
    primary acknowledged may have been rolled back) and goes on with the new plan, at most
    MAX_REPLANS times."""
    started = datetime.now(UTC)
    done: list[Operation] = []
    replans = 0
    while True:
        remaining = [op for side in planned for op in side.changes]
        notes = _notes_after(planned)
        try:
            for side in planned:
                for op in side.changes:
                    if lock_lost.is_set():
                        raise OperationFailed("stopped: the apply lock was lost (lease expired)", op)
                    side.backend.execute(op, report)
                    done.append(op)  # before its lines: an interrupt while they print records it as done
                    remaining.remove(op)
                    for shown in (op, *notes.get(id(op), ())):
                        for line in done_lines(shown):
                            report(line)
            break
        except PrimaryChanged as exc:
            if replan is None or replans >= MAX_REPLANS:
                _failed(spec, db, started, done, remaining, str(exc) + (
                    f" (planned again {replans} time(s) already)" if replans else ""), exc.operation)
            replans += 1
            report(f"{exc}: planning again ({replans}/{MAX_REPLANS})")
            try:
                planned = replan()
            except (PlanBlocked, PlanChanged, DataCheckTimedOut) as stopped:
                _record(spec, db, started, done, remaining, "failed", str(stopped))
                raise
        except OperationFailed as exc:
            _failed(spec, db, started, done, remaining, str(exc), exc.operation)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (cli.main): what was done is recorded
            how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
            during = f"; at: {remaining[0].headline()} (it may or may not have taken effect)" if remaining else ""
            _record(spec, db, started, done, remaining, "interrupted", how + during)
            raise
    _record(spec, db, started, done, [], "success")
    return done


def _record(spec: Spec, db: Database[Any], started: datetime, done: list[Operation],
            remaining: list[Operation], outcome: str, error: str | None = None) -> None:
    record_apply(db, spec_hash=spec.hash(), started=started, done=done, planned=done + remaining,
                 outcome=outcome, error=error)


def _failed(spec: Spec, db: Database[Any], started: datetime, done: list[Operation],
            remaining: list[Operation], message: str, operation: Operation) -> NoReturn:
    failure = ApplyFailed(message, done, operation)
    _record(spec, db, started, done, remaining, "failed", str(failure))
    raise failure from None


def _notes_after(planned: tuple[SidePlan, ...]) -> dict[int, list[Operation]]:
    """The notes apply says again (`Operation.echoed`), by the change each follows in the plan."""
    notes: dict[int, list[Operation]] = {}
    last: Operation | None = None
    for side in planned:
        for op in side.operations:
            if op.is_change:
                last = op
            elif op.echoed and last is not None:
                notes.setdefault(id(last), []).append(op)
    return notes


def _changes(planned: tuple[SidePlan, ...]) -> bool:
    return any(side.changes for side in planned)


def _waiting(report: Report) -> Callable[[dict[str, Any] | None], None]:
    """Say once whom apply waits for (the lock's holder, as its lease names it)."""
    return lambda holder: report(f"waiting for another apply to finish ({(holder or {}).get('owner', 'unknown')})")
