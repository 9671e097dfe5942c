"""Records of every apply that changed something, in `bootstrap_applies`: when, which spec, what was
done and how it ended — what `status` reports as the last apply."""

from __future__ import annotations

import getpass
import logging
import os
import socket
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from bootstrap import RELEASE
from bootstrap.connect.mongo import majority, reason
from bootstrap.engine.mongo.operations import Operation

log = logging.getLogger("bootstrap.engine.apply")
TOOL = RELEASE  # in each apply record: spec hashes are comparable within one release

APPLIES = "bootstrap_applies"


def record_apply(
    db: Database[Any],
    *,
    spec_hash: str,
    started: datetime,
    done: list[Operation],
    planned: list[Operation],
    outcome: str,
    error: str | None = None,
) -> None:
    """Best effort: a record that cannot be written (MongoDB failing over) is logged, and never
    hides the outcome of the apply itself."""
    record = {
        "startedAt": started,
        "finishedAt": datetime.now(UTC),
        "specHash": spec_hash,
        "outcome": outcome,
        "error": error,
        "operations": [op.to_json() for op in done],
        "notDone": [op.to_json() for op in planned[len(done) :]],
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "user": _user(),
        "tool": TOOL,
    }
    try:
        majority(db, APPLIES).insert_one(record)  # w: majority: the record survives a failover
    except PyMongoError as exc:
        log.warning("could not record this apply in %s: %s", APPLIES, reason(exc))


def last_apply(db: Database[Any]) -> dict[str, Any] | None:
    return db[APPLIES].find_one(sort=[("startedAt", -1)])


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return "unknown"
