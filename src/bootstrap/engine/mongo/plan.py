"""The MongoDB side of plan/apply: read the live state (from the primary), compare it with the spec
(pure), and the Backend that apply drives (this plan, then the executors of mongo/execute.py, each
after checking that the replica set still has the primary the plan read from)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from bootstrap.connect.mongo import on_primary, reason
from bootstrap.engine.mongo.compare import compare
from bootstrap.engine.mongo.execute import execute
from bootstrap.engine.mongo.live import count_failing, read_live_state
from bootstrap.engine.mongo.operations import UpdateValidator
from bootstrap.engine.mongo.server import REPLICA_SET, ServerRole, read_role
from bootstrap.engine.ops import Backend, Operation, Options, Plan, Report
from bootstrap.errors import OperationFailed, PrimaryChanged
from bootstrap.spec.model import Spec


class PrimaryWatch:
    """The primary the last plan read from. Before each operation apply asks whether it is still
    the primary: after an election the plan may rest on writes the old primary had not replicated
    (rolled back now), so apply plans again instead of going on blind."""

    def __init__(self, db: Database[Any]) -> None:
        self.db = db
        self.planned: ServerRole | None = None

    def check(self, op: Operation) -> None:
        """Raise PrimaryChanged when a replica set elected another primary since the plan (one
        `hello`; nothing to check on a standalone server or a mongos, which routes by itself)."""
        if self.planned is None or self.planned.kind != REPLICA_SET:
            return
        now = read_role(self.db)
        if now.primary_identity() != self.planned.primary_identity():
            raise PrimaryChanged(
                f"the primary changed since the plan was made ({self.planned.describe()}, election "
                f"{self.planned.election_id} -> {now.describe()}, election {now.election_id})",
                op,
            )


def make_plan(spec: Spec, db: Database[Any], options: Options, watch: PrimaryWatch | None = None) -> Plan:
    db = on_primary(db)
    live = read_live_state(db, [c.name for c in spec.collections])
    if watch is not None:
        watch.planned = live.server
    plan = compare(spec, live, allow_rebuild=options.allow_rebuild, prune=options.prune)
    return Plan(plan.database, tuple(_with_impact(db, op) for op in plan.operations))


def _with_impact(db: Database[Any], op: Operation) -> Operation:
    """A validator change, with how many existing documents the new validator would refuse
    (outside the pure compare: it reads the data)."""
    if not isinstance(op, UpdateValidator) or op.level == "off":
        return op
    failing, ids = count_failing(db, op.collection, op.validator)
    return replace(op, failing=failing, failing_ids=ids)


def backend(spec: Spec, db: Database[Any], watch: PrimaryWatch | None = None) -> Backend:
    watch = watch or PrimaryWatch(db)

    def run(op: Operation, report: Report) -> None:
        try:
            watch.check(op)
        except PyMongoError as exc:  # no answer from any primary: stop here, recorded like any failure
            raise OperationFailed(f"{op.collection}: could not ask which member is primary before "
                                  f"{op.describe()[0]}: {reason(exc)}", op) from None
        execute(db, op, report)

    return Backend(plan=lambda options: make_plan(spec, db, options, watch).operations, execute=run)
