"""A plan as text for people (grouped by collection) or as JSON for machines."""

from __future__ import annotations

from typing import Any

from bootstrap.engine.ops import Plan


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
    counts = plan.counts()
    if not plan.changes and not plan.blocked:
        kept = f" ({counts['kept']} undeclared index(es) kept)" if counts["kept"] else ""
        return f"No changes: the database matches the spec{kept}."
    text = (f"Plan: {counts['create']} to create, {counts['change']} to change in place, "
            f"{counts['rebuild']} to rebuild, {counts['drop']} to drop.")
    if counts["blocked"]:
        text += f" {counts['blocked']} blocked: apply will refuse to run (see '!' lines)."
    return text


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "database": plan.database,
        "changes": bool(plan.changes),
        "blocked": bool(plan.blocked),
        "summary": plan.counts(),
        "operations": [op.to_json() for op in plan.operations],
    }
