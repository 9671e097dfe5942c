"""Adopting a database the seed (an ODM at start-up, BullMQ in Redis) left behind: what plan and
apply do to collections and indexes that already exist, and to BullMQ's keys beside the queues."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from pymongo.database import Database

from bootstrap.local.servers import RedisServer
from tests.conftest import Result


def section(plan: str, collection: str) -> str:
    """The lines of `plan` under `collection NAME`, up to the next blank line."""
    lines = plan.splitlines()
    start = lines.index(f"collection {collection}")
    out = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        out.append(line)
    return "\n".join(out)


def test_migrate_a_refused_unique_rebuild_keeps_the_other_unique_indexes(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    # The seed's users: a unique email index under its own name (a rename: rebuild), and a plain
    # microsoftId index the spec declares unique, over two users sharing a microsoftId. Apply used to
    # drop the email index, then refuse the microsoftId one, leaving users.email without a unique index.
    seed_db.users.insert_many([{"email": "a@x.io", "microsoftId": "m1"}, {"email": "b@x.io", "microsoftId": "m1"}])
    seed_db.users.create_index("email", name="user_email_unique", unique=True)
    seed_db.users.create_index("microsoftId")

    planned = cli("plan", "--config", str(config_dir), "--allow-rebuild")
    assert planned.code == 0, planned.err
    users = section(planned.out, "users")
    assert "! blocked: users: unique index microsoftId_1 cannot be built: documents share the key" in users, users
    assert '{"microsoftId": "m1"} (2 documents' in users, users

    result = cli("apply", "--config", str(config_dir), "--allow-rebuild")
    assert result.code == 1
    assert "microsoftId_1 cannot be built" in result.err and "Remove the duplicates" in result.err
    unique_on_email = [ix["name"] for ix in seed_db.users.list_indexes()
                       if dict(ix["key"]) == {"email": 1} and ix.get("unique")]
    assert unique_on_email == ["user_email_unique"], "users.email lost its unique index"


def test_migrate_unique_over_a_missing_and_a_null_value_drops_nothing(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    # The seed indexed users.email without `unique`; one user has no email, another a null one: a
    # unique index stores both as null (the check used to group them apart, drop the old index and
    # fail the build on E11000; MongoDB 6.0+ now makes the index unique in place, checked the same way).
    seed_db.users.insert_many([{"displayName": "no email"}, {"displayName": "null email", "email": None}])
    seed_db.users.create_index("email")

    result = cli("apply", "--config", str(config_dir), "--allow-rebuild")
    assert result.code == 1
    assert [ix["name"] for ix in seed_db.users.list_indexes() if dict(ix["key"]) == {"email": 1}] == ["email_1"]
    assert 'index email_1 cannot be made unique: documents share the key {"email": null} (2 documents' in result.err
def test_migrate_plan_says_a_declared_collection_is_time_series(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    seed_db.create_collection("notifications", timeseries={"timeField": "createdAt", "metaField": "userId"})
    result = cli("plan", "--config", str(config_dir))
    assert result.code == 0, result.err
    notifications = section(result.out, "notifications")
    assert "time-series" in notifications
    assert "change validator of notifications" not in notifications


def test_migrate_a_shorter_ttl_that_deletes_documents_is_blocked_and_counted(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    # The seed kept email events 180 days; the spec keeps them 90 (emailevents.yaml: ttl 90d). The
    # plan used to say only `ttl 180d -> 90d`, and apply deleted the older events without a flag.
    now = dt.datetime.now(dt.UTC)
    seed_db.emailevents.insert_many([{"messageId": f"old-{n}", "timestamp": now - dt.timedelta(days=120)}
                                     for n in range(2)] + [{"messageId": "new", "timestamp": now}])
    seed_db.emailevents.create_index("timestamp", expireAfterSeconds=180 * 86400)

    result = cli("plan", "--config", str(config_dir))
    assert result.code == 0, result.err
    events = section(result.out, "emailevents")
    assert ("! blocked: index timestamp_1 (ttl 90d) deletes 2 existing document(s) older than 90d within a "
            "minute; run with --allow-expire") in events, events
    refused = cli("apply", "--config", str(config_dir))
    assert refused.code == 1 and "--allow-expire" in refused.err, refused.err
    ttl = next(ix for ix in seed_db.emailevents.list_indexes() if ix["name"] == "timestamp_1")
    assert ttl["expireAfterSeconds"] == 180 * 86400  # nothing changed

    allowed = cli("plan", "--config", str(config_dir), "--allow-expire")
    events = section(allowed.out, "emailevents")
    assert "~ change index timestamp_1: ttl 180d -> 90d" in events
    assert "! index timestamp_1 (ttl 90d) deletes 2 existing document(s) older than 90d" in events, events
    applied = cli("apply", "--config", str(config_dir), "--allow-expire")
    assert applied.code == 0, applied.err
    ttl = next(ix for ix in seed_db.emailevents.list_indexes() if ix["name"] == "timestamp_1")
    assert ttl["expireAfterSeconds"] == 90 * 86400


def test_a_new_ttl_index_over_old_documents_is_blocked_too(
    config_dir: Path, cli: Callable[..., Result], seed_db: Database[Any]
) -> None:
    now = dt.datetime.now(dt.UTC)
    seed_db.emailevents.insert_many([{"messageId": "old", "timestamp": now - dt.timedelta(days=400)},
                                     {"messageId": "no date", "timestamp": "2020-01-01"}])  # a string never expires
    result = cli("plan", "--config", str(config_dir))
    events = section(result.out, "emailevents")
    assert "! blocked: index timestamp_1 (ttl 90d) deletes 1 existing document(s)" in events, events
def test_migrate_bullmq_keys_beside_the_queues_are_never_touched(
    config_dir: Path, cli: Callable[..., Result], redis_server: RedisServer, seed_db: Database[Any]
) -> None:
    """The seed's BullMQ queues (`bull:<queue>:*`, repeatable jobs) in the same Redis database:
    plan, apply (all flags), status and health neither read them as ours nor change them."""
    r = redis.Redis.from_url(redis_server.uri)
    prefix = f"bull-{config_dir.parent.name}-{id(r)}"  # keys of this test only (the server is shared)
    for queue in ("delta-sync", "token-refresh"):
        r.hset(f"{prefix}:{queue}:meta", mapping={"version": "bullmq:5.0.0"})
        r.hset(f"{prefix}:{queue}:1", mapping={"name": queue, "data": json.dumps({"mailboxId": "m"})})
        r.rpush(f"{prefix}:{queue}:wait", "1")
        r.zadd(f"{prefix}:{queue}:repeat", {f"{queue}::::900000": 1700000900000})
        r.zadd(f"{prefix}:{queue}:delayed", {"repeat:abc:1700000900000": 1})
        r.xadd(f"{prefix}:{queue}:events", {"event": "added", "jobId": "1"})
    keys = sorted(r.scan_iter(f"{prefix}:*"))
    before = {k: r.dump(k) for k in keys}

    config = str(config_dir)
    plan = cli("plan", "--config", config)
    assert plan.code == 0, plan.err
    assert prefix not in plan.out
    assert cli("apply", "--config", config, "--prune", "--fix-redis", "--allow-rebuild").code == 0
    assert cli("status", "--config", config).code == 0
    health = cli("health", "--config", config)
    assert prefix not in health.out
    assert "ok    drift" in health.out

    assert sorted(r.scan_iter(f"{prefix}:*")) == keys
    assert {k: r.dump(k) for k in keys} == before
    r.delete(*keys)
