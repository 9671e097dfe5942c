"""The data marker: a key apply writes once, so that a Redis that lost its data (restarted without
persistence, flushed, failed over to an empty replica) is told apart from one that keeps it.

Apply plans it like any other Redis operation (created where missing, never rewritten), so an apply
with nothing else to do still writes nothing. Workers, the scheduler and `status` read it; where it is
missing they say so loudly with LOST_DATA.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

LOST_DATA = (
    "Redis lost its data (no marker written by apply): queued jobs, schedules and job records are gone; "
    "run `bootstrap apply`"
)


def elsewhere(prefix: str, others: list[str]) -> str:
    """What to say instead of LOST_DATA where this database holds other deployments' markers: most
    likely `key_prefix` (or the URL's database) changed, and the data is there under another one."""
    return (
        f"no marker under key prefix '{prefix}', but this Redis database holds the data of key prefix(es) "
        f"{', '.join(repr(o) for o in others[:5])}: check `redis.key_prefix` and the database in `redis.url` "
        "before `bootstrap apply`, which would start a new, empty deployment beside that one"
    )


def new_marker() -> str:
    """The marker's value: which apply wrote it, when, and from where (JSON)."""
    return json.dumps(
        {
            "id": uuid.uuid4().hex,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "by": f"{socket.gethostname()}:{os.getpid()}",
        },
        sort_keys=True,
    )


def read_marker(raw: str | bytes | None) -> dict[str, Any] | None:
    """The marker as stored, or None where there is none. A value that is not ours still counts as
    present (Redis kept it), shown as {"raw": ...}."""
    if raw is None:
        return None
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text[:80]}
    return value if isinstance(value, dict) else {"raw": text[:80]}
