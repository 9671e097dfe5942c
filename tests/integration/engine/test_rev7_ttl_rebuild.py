"""rev7 review: a TTL index rebuilt with the same TTL (the seed's TTL index under another name, so a
rename, or a changed partial filter) counts as a new TTL for --allow-expire: every document already
past the TTL is said to be deleted "within a minute" and the rebuild is blocked. The index in place
deletes those documents anyway (they are the ones its monitor has not reached yet, up to a minute's
inflow on a busy collection, so nearly never none): a false block of a valid `--allow-rebuild`, with
a message that blames the rebuild for deletions the live index does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo.database import Database

from tests.conftest import Result


def test_renaming_a_ttl_index_with_the_same_ttl_is_not_blocked_for_expiry(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    now = dt.datetime.now(dt.UTC)
    # The seed's TTL (90 days, as emailevents.yaml declares) under its own name, and one event its
    # monitor has not deleted yet (it passes every 60 s).
    seed_db.emailevents.create_index("timestamp", name="events_ttl", expireAfterSeconds=90 * 86400)
    seed_db.emailevents.insert_one({"messageId": "just expired", "timestamp": now - dt.timedelta(days=90, seconds=5)})
    planned = cli("plan", "--config", str(config_dir), "--allow-rebuild")
    assert planned.code == 0, planned.err
    assert "rebuild index events_ttl" in planned.out, planned.out
    assert "--allow-expire" not in planned.out, planned.out
