"""rev7 review: the plan now reads the data for a unique index it would create or rebuild on an
existing collection (a $group over every document, pushing every _id) and counts documents for a TTL.
`bootstrap health` (compose's health check, every 30 s in every worker and scheduler container) runs
that plan for its drift check, with no time limit on the aggregation (the MongoDB client has no
socket timeout by default, the command no maxTimeMS): while such an index is pending (say, blocked
on duplicates), every health check scans the whole collection, and `health --timeout 1` takes as
long as the scan. Measured here (30,000 small documents, SecantusDB): health --timeout 1 took 10.8 s,
5.1 s of it the duplicate scan (the rest: the validator's count_failing, an older scan of the same
kind). A real collection of millions takes minutes, past compose's 20 s health check timeout, while
the server goes on scanning (one more scan per container every 30 s)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo.database import Database

from tests.conftest import Result


def test_health_with_a_pending_unique_index_on_a_big_collection_answers_within_its_timeout(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    seed_db.users.insert_many([{"email": f"user{n}@x.io"} for n in range(15_000)])
    seed_db.users.create_index("email")  # users.yaml declares it unique: a rebuild, blocked without a flag
    started = time.monotonic()
    result = cli("health", "--config", str(config_dir), "--timeout", "1")
    took = time.monotonic() - started
    assert result.code == 1  # unhealthy anyway: no workers, and the drift
    assert took < 2.0, f"health --timeout 1 took {took:.1f}s"
