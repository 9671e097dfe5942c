"""What a failed apply and a lock/history warning say: every completed index named, no topology dump."""

from __future__ import annotations

from pymongo.errors import ServerSelectionTimeoutError

from bootstrap.connect.mongo import reason
from bootstrap.engine.mongo.operations import CreateIndexes, IndexModel
from bootstrap.errors import ApplyFailed


def test_a_failed_apply_names_every_index_a_completed_create_indexes_made() -> None:
    indexes = (
        IndexModel("email_1", (("email", 1),)),
        IndexModel("name_1", (("name", 1),)),
        IndexModel("age_-1", (("age", -1),)),
    )
    done = CreateIndexes("users", indexes)
    failed = CreateIndexes("mailboxes", (IndexModel("userId_1", (("userId", 1),)),))
    message = str(ApplyFailed("mailboxes: create index userId_1 failed", [done], failed))
    for name in ("email_1", "name_1", "age_-1"):
        assert f"create index {name} " in message


def test_a_driver_error_is_one_short_line_without_the_topology() -> None:
    topology = ", Timeout: 5.0s, Topology Description: <TopologyDescription id: 1, " + "x" * 3000 + ">"
    exc = ServerSelectionTimeoutError("db:27017: [Errno 111] Connection refused (configured timeouts)" + topology)
    text = reason(exc)
    assert text == "db:27017: [Errno 111] Connection refused (configured timeouts)"
    assert len(text) < 200
