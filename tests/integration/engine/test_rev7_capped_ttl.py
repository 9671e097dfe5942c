"""rev7 review: the plan blocks a TTL index on a capped collection ("which takes no TTL index"). That
was MongoDB 5.2 to 7.0; MongoDB 7.1 and later (SERVER-77586, DOCS-16225: "TTL indexes can now be
created on capped collections") build it, and so does the test server, which targets mongod 8 (and
compose.yaml runs mongo:8). A valid apply is refused; it could be blocked by server version only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymongo.database import Database

from tests.conftest import Result


def test_a_ttl_index_on_a_capped_collection_is_applied_where_the_server_builds_it(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    seed_db.create_collection("notifications", capped=True, size=1 << 20)  # notifications.yaml: ttl 30d
    version = tuple(int(p) for p in seed_db.client.server_info()["version"].split(".")[:2])
    assert version >= (7, 1)
    seed_db.probe.drop()
    seed_db.create_collection("probe", capped=True, size=1 << 20)
    seed_db.probe.create_index("t", expireAfterSeconds=60)  # the server builds a TTL index on a capped collection
    applied = cli("apply", "--config", str(config_dir))
    assert applied.code == 0, applied.err
    ttl = [ix for ix in seed_db.notifications.list_indexes() if "expireAfterSeconds" in ix]
    assert ttl, list(seed_db.notifications.list_indexes())
