"""What a worker accepts from its stream, and what it sets aside.

Every entry a worker reads (fresh, or taken over from a worker that died) is either a job to run, a
job of a task this worker does not serve, or a rejection: an entry with no `data` field, data that
is not a job message, a malformed label (see `labels`), or a job delivered more than the queue's
`max_deliveries` times without finishing (its worker died each time: a job that kills its worker
would otherwise be delivered forever and starve the jobs behind it). A rejection carries the reason
and a failed-job record, which the broker writes to the queue's failed store: nothing read from a
stream is dropped silently.

A task the worker does not serve is what a rolling deploy makes: workers of two releases read one
queue, and a job of a task only the other release declares reaches a worker of this one. Such a job
is handed back (`Unserved`: delayed UNSERVED_WAIT, for whichever worker reads it next) until one
that serves it takes it, and set aside as "unknown task" only when none did within UNSERVED_FOR.

Pure: no I/O.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from bootstrap.jobs import labels
from bootstrap.jobs.message import JobMessage, parse
from bootstrap.layout.keys import as_text

RAW_KEPT = 4000  # characters of an unreadable entry kept in its record
UNSERVED_WAIT = 5.0  # seconds a job of a task this worker does not serve waits before it is read again
UNSERVED_FOR = labels.UNSERVED_FOR  # how long it is handed back before it is set aside


@dataclass(frozen=True)
class Unserved:
    """A job of a task this worker does not serve, to hand back (see the module)."""

    message: JobMessage
    since: float  # when a worker first handed it back (now, the first time)
    raw: bytes = b""  # the entry's data, for the record when it cannot be handed back


@dataclass(frozen=True)
class Rejected:
    reason: str
    record: dict[str, Any]  # a failed-job record: id, task, args, kwargs, labels, error, ...

    @property
    def job_id(self) -> str:
        return str(self.record["id"])


def accept(
    entry_id: str,
    fields: Mapping[Any, Any] | None,
    deliveries: int,
    max_deliveries: int,
    serves: Callable[[str], bool],
) -> JobMessage | Unserved | Rejected:
    """The job in a stream entry, with its labels checked; one to hand back; or why it cannot run."""
    data = (fields or {}).get(b"data", (fields or {}).get("data"))
    if data is None:
        shown = {as_text(k): as_text(v) for k, v in (fields or {}).items()}
        return _rejected(entry_id, json.dumps(shown)[:RAW_KEPT], None, "the stream entry has no 'data' field")
    raw = data if isinstance(data, bytes) else str(data).encode()
    if deliveries > max_deliveries:
        reason = f"delivered {deliveries - 1} times without finishing: its worker died each time"
        return _rejected(entry_id, raw, salvage(raw), reason, deliveries)
    try:
        message = parse(raw)
    except (ValidationError, ValueError, TypeError) as exc:
        return _rejected(entry_id, raw, salvage(raw), f"not a job message ({_first_error(exc)})")
    if not serves(message.task_name):
        now, since = time.time(), labels.unserved_since(message.labels)
        if since is None or now - since < UNSERVED_FOR:
            return Unserved(message, now if since is None else since, raw)
        reason = (f"unknown task '{message.task_name[:100]}': no worker of this queue that serves it took it "
                  f"within {UNSERVED_FOR / 60:g} minutes (workers of this queue on other wiring handed it back "
                  "meanwhile)")  # fmt: skip
        return _rejected(entry_id, raw, salvage(raw), reason)
    try:
        message.labels = labels.checked(message.labels)
    except labels.LabelError as exc:
        return _rejected(entry_id, raw, salvage(raw), str(exc))
    # Served now: a retry of it that reaches the other release later waits for a worker afresh.
    message.labels.pop(labels.UNSERVED_SINCE, None)
    return message


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "message"
        return f"{where}: {error['msg']}"[:200]
    return f"{type(exc).__name__}: {exc}"[:200]


def salvage(raw: bytes) -> dict[str, Any]:
    """What can be read of a message that failed a check: the fields that have the right type."""
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    expected = {"task_id": str, "task_name": str, "args": list, "kwargs": dict, "labels": dict}
    return {key: data[key] for key, kind in expected.items() if isinstance(data.get(key), kind)}


def _rejected(
    entry_id: str, raw: bytes | str, salvaged: dict[str, Any] | None, reason: str, deliveries: int = 1
) -> Rejected:
    known = salvaged or {}
    job_labels = known.get("labels", {})
    record = {
        "id": known.get("task_id") or f"entry-{entry_id}",
        "task": known.get("task_name", ""),
        "args": known.get("args", []),
        "kwargs": known.get("kwargs", {}),
        "labels": job_labels,
        "attempt": labels.attempt_or_first(job_labels),
        "attempts": labels.attempt_or_first(job_labels),
        "duration": 0.0,
        "error": reason,
        "traceback": "",
        "rejected": True,  # never run by this delivery: set aside by the worker that read it
        "entry": entry_id,
        "deliveries": deliveries,
    }
    if salvaged is None or not salvaged:  # nothing readable: keep the raw entry for the operator
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        record["data"] = text[:RAW_KEPT]
    return Rejected(reason, record)


def rejected(entry_id: str, raw: bytes, reason: str) -> Rejected:
    """A rejection decided after `accept` (a job that could not be handed back)."""
    return _rejected(entry_id, raw, salvage(raw), reason)
