"""Day 2: a DBA adds an index by hand (or another tool does; README: "indexes created by other tools
are recognised"). `plan` shows it as `? keep undeclared index ... (drop it with --prune)`, and
`plan --detailed-exitcode` exits 0 (no changes); `status` says "MongoDB and Redis match the spec".
`bootstrap health` fails `drift` for it ("1 difference(s) from the spec") and names the fix "run
`bootstrap plan` to see them, then `bootstrap apply`", which changes nothing: the stack stays
unhealthy (compose's health check) until the index is dropped with `--prune`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import redis
from pymongo import MongoClient

from bootstrap.cli.health import drift
from bootstrap.spec.load import load_spec
from tests.conftest import Result


def test_health_drift_agrees_with_plan_about_a_kept_undeclared_index(
    config_dir: Path, mongo_uri: str, cli: Callable[..., Result]
) -> None:
    assert cli("apply", "--config", str(config_dir)).code == 0
    mongo: MongoClient[dict[str, object]] = MongoClient(mongo_uri)
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        db = mongo.get_default_database()
        db["users"].create_index("lastLoginAt")  # by hand, not declared
        plan = cli("plan", "--detailed-exitcode", "--config", str(config_dir))
        assert plan.code == 0, plan.out  # no changes
        assert "? keep undeclared index lastLoginAt_1" in plan.out
        check = drift(load_spec(config_dir), db, client)
    finally:
        client.close()
        mongo.close()
    assert check.ok, check.detail
