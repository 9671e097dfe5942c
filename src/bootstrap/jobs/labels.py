"""The labels a job carries, and how a worker reads them: as data to validate, never as settings.

Labels travel with the job through Redis, where anyone can write anything. What decides a job's fate
comes from the spec instead: its retry policy is the task's declared one (or, for a job a schedule
fired, that schedule's), its timeout the task's. The labels a worker does read are counters it wrote
itself (`attempt`, `transient_retries`) and the id of the schedule that fired the job; each is
checked here, and a job with a malformed one is not run (it goes to the failed store, saying why).
`retry` and `timeout` labels stay on jobs for people reading them (and for the scheduler, which
copies a task's labels), but no worker acts on them.

Three labels are read when a job is sent (`placement`), by the broker that enqueues it: `delay`
(seconds before it may run), `priority` (high, normal, low) and `dedupe` (its id is kept unique
while it waits, is delayed or runs). Only `priority` stays meaningful after that: the promoter puts a
delayed job back on its level's stream.

Pure: no I/O, no taskiq.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bootstrap.layout.keys import NORMAL, PRIORITIES

ATTEMPT = "attempt"  # which attempt this run is (1 = first); written by the worker when it retries
TRANSIENT = "transient_retries"  # retries spent on transient connection errors (see transient.py)
RETRY_AFTERS = "retry_afters"  # how many times the job asked to run again later (errors.RetryAfter)
SCHEDULE_ID = "schedule_id"  # the schedule that fired the job (written by the scheduler)
RETRY = "retry"  # the retry policy as JSON: informational only
TIMEOUT = "timeout"  # the task's timeout in seconds: informational only
DELAY = "delay"  # seconds to wait before the job may run (read when it is sent)
PRIORITY = "priority"  # high, normal or low
DEDUPE = "dedupe"  # true: enqueuing this id again while it waits, is delayed or runs is a no-op
UNSERVED_SINCE = "unserved_since"  # when a worker first handed the job back: its task is not in its wiring
UNSERVED_FOR = 600.0  # ... and how long it is handed back before it is set aside (a rollout's length)

TRANSIENT_RETRIES = 5  # retries on transient connection errors per job, on top of its retry policy
MAX_ATTEMPT = 100  # the schema's most attempts a retry policy may declare
MAX_SCHEDULE_ID = 200  # characters
_DIGITS = re.compile(r"[0-9]{1,9}")


class LabelError(ValueError):
    """A label a worker reads is malformed; the message names it and shows its value."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def whole_number(labels: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    """Label `name` as a whole number from `low` to `high` (`default` when absent). A string of
    digits counts: taskiq's own kicker sends labels as strings."""
    value = labels.get(name, default)
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LabelError(f"label {name}: {_shown(value)} is not a whole number from {low} to {high}")
    return value


def attempt(labels: Mapping[str, Any]) -> int:
    return whole_number(labels, ATTEMPT, 1, 1, MAX_ATTEMPT)


def transient_retries(labels: Mapping[str, Any]) -> int:
    return whole_number(labels, TRANSIENT, 0, 0, TRANSIENT_RETRIES)


def schedule_id(labels: Mapping[str, Any]) -> str | None:
    value = labels.get(SCHEDULE_ID)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_SCHEDULE_ID:
        raise LabelError(f"label {SCHEDULE_ID}: {_shown(value)} is not a schedule id")
    return value


def checked(labels: Mapping[str, Any]) -> dict[str, Any]:
    """The labels with the counters a worker reads as ints; LabelError if one is malformed."""
    clean = dict(labels)
    clean[ATTEMPT] = attempt(labels)
    if TRANSIENT in labels:
        clean[TRANSIENT] = transient_retries(labels)
    schedule_id(labels)
    return clean


def transient_retries_or_none(labels: Mapping[str, Any]) -> int:
    """The transient retries spent, for a job that was not checked: a malformed value counts as
    all of them spent (no more are given)."""
    try:
        return transient_retries(labels)
    except LabelError:
        return TRANSIENT_RETRIES


def attempt_or_first(labels: Mapping[str, Any]) -> int:
    """The attempt, for logs and records of a job that was not checked (taskiq's own receiver):
    a malformed value counts as the first attempt."""
    value = labels.get(ATTEMPT)
    if type(value) is int and 1 <= value <= MAX_ATTEMPT:  # as `checked` leaves it: several times per job
        return value
    try:
        return attempt(labels)
    except LabelError:
        return 1


@dataclass(frozen=True)
class Placement:
    """Where and when a job being sent goes: after `delay` seconds, on its `priority` level's stream,
    its id deduplicated or not."""

    delay: float = 0.0
    priority: str = NORMAL
    dedupe: bool = False

    @property
    def plain(self) -> bool:
        """Sent at once, at normal priority, not deduplicated: the fastest way in."""
        return self.delay <= 0 and self.priority == NORMAL and not self.dedupe


def placement(labels: Mapping[str, Any]) -> Placement:
    """The sending labels of a job (taskiq's kicker sends every label as a string); LabelError when
    one is malformed."""
    return Placement(delay(labels), priority(labels), dedupe(labels))


def delay(labels: Mapping[str, Any]) -> float:
    value = labels.get(DELAY, 0)
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number) or number < 0:
        raise LabelError(f"label {DELAY}: {_shown(value)} is not a number of seconds (0 or more)")
    return float(number)


def priority(labels: Mapping[str, Any]) -> str:
    value = labels.get(PRIORITY, NORMAL)
    if value not in PRIORITIES:
        raise LabelError(f"label {PRIORITY}: {_shown(value)} is not one of {', '.join(PRIORITIES)}")
    return str(value)


def dedupe(labels: Mapping[str, Any]) -> bool:
    value = labels.get(DEDUPE, False)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if not isinstance(value, bool | int) or value not in (0, 1):
        raise LabelError(f"label {DEDUPE}: {_shown(value)} is not true or false")
    return bool(value)


def dedupe_or_false(labels: Mapping[str, Any]) -> bool:
    """Whether a finished job was deduplicated (a malformed label: it was not, as it was never sent)."""
    if DEDUPE not in labels:  # most jobs: once per job
        return False
    try:
        return dedupe(labels)
    except LabelError:
        return False


def unserved_since(labels: Mapping[str, Any]) -> float | None:
    """When a worker that does not serve the job's task first handed it back (see `intake`); None
    when none did, or the label is not a time."""
    value = labels.get(UNSERVED_SINCE)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None
