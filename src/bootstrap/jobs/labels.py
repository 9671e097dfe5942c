"""The labels a job carries, and how a worker reads them: as data to validate, never as settings.

Labels travel with the job through Redis, where anyone can write anything. What decides a job's fate
comes from the spec instead: its retry policy is the task's declared one (or, for a job a schedule
fired, that schedule's), its timeout the task's. The labels a worker does read are counters it wrote
itself (`attempt`, `transient_retries`) and the id of the schedule that fired the job; each is
checked here, and a job with a malformed one is not run (it goes to the failed store, saying why).
`retry` and `timeout` labels stay on jobs for people reading them (and for the scheduler, which
copies a task's labels), but no worker acts on them.

Pure: no I/O, no taskiq.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

ATTEMPT = "attempt"  # which attempt this run is (1 = first); written by the worker when it retries
TRANSIENT = "transient_retries"  # retries spent on transient connection errors (see transient.py)
RETRY_AFTERS = "retry_afters"  # how many times the job asked to run again later (errors.RetryAfter)
SCHEDULE_ID = "schedule_id"  # the schedule that fired the job (written by the scheduler)
RETRY = "retry"  # the retry policy as JSON: informational only
TIMEOUT = "timeout"  # the task's timeout in seconds: informational only

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
    try:
        return attempt(labels)
    except LabelError:
        return 1
