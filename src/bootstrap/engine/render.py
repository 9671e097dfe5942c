"""A plan as text for people (grouped by collection) or as JSON for machines, and the one count of
operations that both the plan's summary and apply's summary are built from."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bootstrap.engine.ops import Operation, Plan

# The summary columns that change something: (kind, as planned, as done).
COLUMNS = (
    ("create", "to create", "created"),
    ("change", "to change in place", "changed in place"),
    ("rebuild", "to rebuild", "rebuilt"),
    ("drop", "to drop", "dropped"),
)


def counts(operations: Iterable[Operation]) -> dict[str, int]:
    """Operations per summary column. An operation may stand for several things (one createIndexes
    command creates several indexes): it counts as many as it says."""
    totals = {"create": 0, "change": 0, "rebuild": 0, "drop": 0, "blocked": 0, "kept": 0, "note": 0}
    for op in operations:
        totals[op.kind] += op.count()
    return totals


def plan_text(plan: Plan, target: str) -> list[str]:
    lines = [target]
    current = None
    for op in plan.operations:
        if op.group != current:
            current = op.group
            lines += ["", current]
        for line in op.describe():
            lines.append(f"    {line}" if line.startswith("  ") else f"  {op.symbol} {line}")
    lines += ["", summary(plan)]
    return lines


def summary(plan: Plan) -> str:
    totals = counts(plan.operations)
    if not plan.changes and not plan.blocked:
        kept = f" ({totals['kept']} undeclared index(es) kept)" if totals["kept"] else ""
        return f"No changes: the database matches the spec{kept}."
    text = "Plan: " + ", ".join(f"{totals[kind]} {planned}" for kind, planned, _ in COLUMNS) + "."
    if totals["blocked"]:
        text += f" {totals['blocked']} blocked: apply will refuse to run (see '!' lines)."
    return text


def applied_summary(done: Iterable[Operation]) -> str:
    """What apply did, counted exactly as the plan's summary counts what it would do."""
    totals = counts(done)
    return "Applied: " + ", ".join(f"{totals[kind]} {past}" for kind, _, past in COLUMNS) + "."


def done_lines(op: Operation) -> list[str]:
    """How an executed operation is reported while apply runs: its plan lines."""
    return [line if line.startswith("  ") else f"{op.symbol} {line}" for line in op.describe()]


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "database": plan.database,
        "changes": bool(plan.changes),
        "blocked": bool(plan.blocked),
        "summary": counts(plan.operations),
        "operations": [op.to_json() for op in plan.operations],
    }
