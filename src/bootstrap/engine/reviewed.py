"""A reviewed plan that apply is held to (`bootstrap plan --out FILE`, or `plan --json > FILE`, then
`bootstrap apply --plan FILE`): apply runs only when the plan it makes under the lock, just before
executing, has the same changes as the one reviewed, for the same spec and flags; otherwise it
applies nothing and says what differs.

The plan's fingerprint covers what each change is (its operation and the fields that define it), not
what the plan read from the data to describe it (how many documents fail a new validator or a TTL
deletes): those move between a review and a merge on a live collection without changing what apply
does. One count stands for data lost, though: the documents a TTL deletes at once. Apply refuses
when that grew past what the review saw (more than `DELETIONS_SLACK` of it, and 10 documents: a
live collection's documents keep ageing past a TTL between review and merge).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bootstrap.engine.ops import Operation, Options, Plan
from bootstrap.engine.render import plan_json
from bootstrap.errors import BootstrapError

FORMAT_VERSION = 1  # of `plan --json`: raised when a key changes meaning or goes away
FLAGS = ("allow_rebuild", "prune", "allow_expire", "fix_redis")  # the Options a plan depends on
SHOWN_DIFFERENCES = 10
DELETIONS_SLACK = 0.10  # a reviewed deletion count may grow by this fraction (see the module)


class PlanChanged(BootstrapError):
    """The plan apply made is not the reviewed one: nothing was applied."""


def fingerprint(plan: Plan) -> str:
    """sha256 over the plan's changes, each as its operation's defining fields (see the module)."""
    return _digest([_plain(op) for op in plan.changes])


def change_fingerprints(op: Operation) -> list[str]:
    """One change's fingerprints, a unit each (`Operation.units`): what a plan made again after an
    election is checked against."""
    return [_digest(_plain(unit)) for unit in op.units()]


def _digest(value: Any) -> str:
    body = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.compare}
        return {"type": type(value).__name__, **fields}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def flags_of(options: Options) -> dict[str, bool]:
    return {flag: bool(getattr(options, flag)) for flag in FLAGS}


def plan_document(plan: Plan, spec_hash: str, options: Options, mongodb: str, redis: str) -> dict[str, Any]:
    """`plan --json`: what the plan is of (spec, servers, flags), its fingerprint, then the plan."""
    return {
        "format_version": FORMAT_VERSION,
        "spec_hash": spec_hash,
        "mongodb": mongodb,  # masked
        "redis": redis,
        "options": flags_of(options),
        "fingerprint": fingerprint(plan),
        **_with_fingerprints(plan_json(plan), plan),
    }


def _with_fingerprints(document: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """Each change's own fingerprint in its entry of `operations` (in the plan's order)."""
    entries = [
        {**entry, "fingerprints": change_fingerprints(op)} if op.is_change else entry
        for entry, op in zip(document["operations"], plan.operations, strict=True)
    ]
    return {**document, "operations": entries}


@dataclass(frozen=True)
class Reviewed:
    """What apply checks its own plan against, read from a saved `plan --json`."""

    path: str
    spec_hash: str
    options: Mapping[str, bool]
    fingerprint: str
    changes: tuple[str, ...]  # each change's first plan line, to say what differs
    change_fingerprints: frozenset[str] = frozenset()  # each change's units' (see `check_within`)
    deletions: Mapping[str, int] = dataclasses.field(default_factory=dict)  # documents a TTL deletes, by index

    @classmethod
    def read(cls, path: Path) -> Reviewed:
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise BootstrapError(f"--plan {path}: cannot read it ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise BootstrapError(f"--plan {path}: not JSON ({exc}); save it with `bootstrap plan --out FILE`") from None
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION or "fingerprint" not in data:
            raise BootstrapError(
                f"--plan {path}: not a plan saved by this version of `bootstrap plan --json` (format_version "
                f"{FORMAT_VERSION} with a fingerprint); plan again and review that"
            )
        operations = [entry for entry in data.get("operations") or [] if isinstance(entry, dict)]
        each = frozenset(str(f) for entry in operations for f in entry.get("fingerprints") or [])
        return cls(str(path), str(data.get("spec_hash")), dict(data.get("options") or {}), str(data["fingerprint"]),
                   tuple(_change_lines(operations)), each, _deletions(operations))  # fmt: skip

    def check_before(self, spec_hash: str, options: Options) -> None:
        """Before connecting: the same spec and the same flags as the review."""
        if spec_hash != self.spec_hash:
            raise PlanChanged(f"nothing applied: the config changed since {self.path} was planned (spec "
                              f"{self.spec_hash} -> {spec_hash}); plan again and review that")  # fmt: skip
        flags = flags_of(options)
        if flags != {flag: bool(self.options.get(flag)) for flag in FLAGS}:
            raise PlanChanged(f"nothing applied: {self.path} was planned with {_shown_flags(self.options)}, "
                              f"apply runs with {_shown_flags(flags)}; pass the same flags")  # fmt: skip

    def check(self, plan: Plan) -> None:
        """Raise PlanChanged unless `plan` (apply's own, under the lock) has the reviewed changes and
        deletes no more documents than the review said (see the module)."""
        if fingerprint(plan) == self.fingerprint:
            self.check_deletions(plan)
            return
        now = [_first_line(op) for op in plan.changes]
        lines = [f"  not reviewed: {line}" for line in now if line not in self.changes]
        lines += [f"  reviewed, no longer planned: {line}" for line in self.changes if line not in now]
        if not lines:
            lines = ["  the same lines, with other details (keys, options, definitions)"]
        more = f"\n  ... and {len(lines) - SHOWN_DIFFERENCES} more" if len(lines) > SHOWN_DIFFERENCES else ""
        raise PlanChanged(
            f"nothing applied: MongoDB or Redis changed since {self.path} was planned, so apply would not run "
            f"the reviewed plan:\n" + "\n".join(lines[:SHOWN_DIFFERENCES]) + more + "\nplan again and review that"
        )


    def check_deletions(self, plan: Plan) -> None:
        """Raise PlanChanged when a TTL of `plan` deletes more documents than the review saw (see the module)."""
        now = _deletions([op.to_json() for op in plan.operations])
        grown = [
            f"  {where}: deletes {count} existing document(s) now, {self.deletions.get(where, 0)} when reviewed"
            for where, count in now.items()
            if count > max(self.deletions.get(where, 0) * (1 + DELETIONS_SLACK), self.deletions.get(where, 0) + 10)
        ]
        if grown:
            raise PlanChanged(f"nothing applied: a TTL of {self.path} deletes more documents than the review saw:\n"
                              + "\n".join(grown) + "\nplan again and review that")  # fmt: skip

    def check_within(self, plan: Plan) -> None:
        """A plan made again after an election (some reviewed changes done, some rolled back): each
        of its changes must be one of the reviewed ones. Raise PlanChanged naming the others."""
        self.check_deletions(plan)
        others = [op for op in plan.changes if not self.change_fingerprints.issuperset(change_fingerprints(op))]
        if others:
            lines = "\n".join(f"  not reviewed: {_first_line(op)}" for op in others[:SHOWN_DIFFERENCES])
            raise PlanChanged(f"the plan made again after the election holds changes {self.path} did not:\n"
                              f"{lines}\nplan again and review that")  # fmt: skip


def _first_line(op: Operation) -> str:
    lines = op.describe()
    return f"{op.symbol} {lines[0]}" if lines else f"{op.symbol} {type(op).__name__}"


def _change_lines(operations: list[Any]) -> list[str]:
    out = []
    for entry in operations:
        if isinstance(entry, dict) and entry.get("change") and entry.get("description"):
            out.append(f"{entry.get('symbol')} {entry['description'][0]}")
    return out


def _deletions(operations: list[Any]) -> dict[str, int]:
    """Documents each TTL of a plan (`plan --json`'s operations) deletes at once, by collection and index."""
    out: dict[str, int] = {}
    for entry in operations:
        if not isinstance(entry, dict) or entry.get("op") != "ExpiresDocuments":
            continue
        if isinstance(entry.get("documents"), int):
            out[f"{entry.get('target')} index {entry.get('index')}"] = entry["documents"]
    return out


def _shown_flags(flags: Mapping[str, bool]) -> str:
    given = [f"--{flag.replace('_', '-')}" for flag in FLAGS if flags.get(flag)]
    return " ".join(given) if given else "no flags"
