"""`bootstrap plan` and `bootstrap apply` on both sides at once (MongoDB and Redis, real servers):
output, exit codes, counts, and a failure on one side after work on the other."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from pymongo import MongoClient

from bootstrap.engine.history import APPLIES
from bootstrap.layout.keys import QueueKeys
from bootstrap.local.servers import RedisServer
from tests.conftest import Result

SUMMARY = re.compile(r"^(Plan|Applied): (\d+) (?:to create|created), (\d+) (?:to change in place|changed in place), "
                     r"(\d+) (?:to rebuild|rebuilt), (\d+) (?:to drop|dropped)\.", re.MULTILINE)


def edit(config_dir: Path, file: str, old: str, new: str) -> None:
    path = config_dir / file
    text = path.read_text()
    assert old in text, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, 1))


def numbers(out: str, head: str) -> list[int]:
    """The four summary numbers (create, change, rebuild, drop) of the line starting with `head`."""
    found = [m for m in SUMMARY.finditer(out) if m.group(1) == head]
    assert len(found) == 1, out
    return [int(n) for n in found[0].groups()[1:]]


def test_plan_cli_text_json_and_exit_codes(config_dir: Path, cli: Callable[..., Result]) -> None:
    result = cli("plan", "--config", str(config_dir), "--detailed-exitcode")
    assert result.code == 2
    assert "+ create collection users" in result.out and "Plan: 43 to create" in result.out
    result = cli("plan", "--config", str(config_dir), "--json")
    assert result.code == 0 and '"changes": true' in result.out
    assert cli("apply", "--config", str(config_dir)).code == 0
    result = cli("plan", "--config", str(config_dir), "--detailed-exitcode")
    assert result.code == 0 and "No changes" in result.out


def test_apply_cli_refuses_blocked_plan_with_exit_1(config_dir: Path, cli: Callable[..., Result]) -> None:
    assert cli("apply", "--config", str(config_dir)).code == 0
    edit(config_dir, "collections/users.yaml", "    sparse: true\n", "")
    result = cli("apply", "--config", str(config_dir))
    assert result.code == 1
    assert "blocked" in result.err and "--allow-rebuild" in result.err and "Traceback" not in result.err
    assert cli("apply", "--config", str(config_dir), "--allow-rebuild").code == 0


def test_apply_reports_the_numbers_plan_showed(config_dir: Path, cli: Callable[..., Result], mongo_uri: str) -> None:
    """9 collections, their 23 indexes, 5 queues, 5 schedules and the Redis data marker: 43 to
    create, and 43 created (not the 29 commands that do it)."""
    config = str(config_dir)
    plan = cli("plan", "--config", config)
    applied = cli("apply", "--config", config)
    assert numbers(plan.out, "Plan") == numbers(applied.out, "Applied") == [43, 0, 0, 0]

    # Then one of each column, on both sides.
    edit(config_dir, "collections/emailevents.yaml", "ttl: 90d", "ttl: 30d")  # change in place
    edit(config_dir, "collections/mailboxes.yaml", "  - keys: {userId: 1}\n",
         "  - keys: {userId: 1}\n    unique: true\n    sparse: true\n")  # rebuild
    edit(config_dir, "schedules.yaml", "every: 15m", "every: 10m")  # change (Redis)
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    db = client.get_default_database()
    db["users"].drop_index("email_1")  # create
    db["users"].create_index("displayName", name="displayName_1")  # drop (with --prune)
    client.close()
    plan = cli("plan", "--config", config, "--allow-rebuild", "--prune")
    applied = cli("apply", "--config", config, "--allow-rebuild", "--prune")
    assert applied.code == 0, applied.err
    assert numbers(plan.out, "Plan") == numbers(applied.out, "Applied") == [1, 2, 1, 1]


def test_a_redis_failure_names_what_was_done_on_both_sides(
    config_dir: Path, cli: Callable[..., Result], mongo_uri: str, redis_server: RedisServer, key_prefix: str
) -> None:
    """A key in the way of the third queue's stream: MongoDB and the first two queues are done,
    apply stops there, says so, and records it."""
    blocker = QueueKeys(key_prefix, "pattern-analysis").stream
    client = redis.Redis.from_url(redis_server.uri)
    client.set(blocker, "not a stream")
    result = cli("apply", "--config", str(config_dir))
    client.close()
    assert result.code == 1 and "Traceback" not in result.err
    failed = f"queue pattern-analysis: create stream {blocker} with consumer group workers failed: WRONGTYPE"
    assert failed in result.err
    done = result.err.split("completed before the failure: ", 1)[1]
    assert "create collection users" in done and "create index" in done  # MongoDB
    assert "create stream" in done and "webhook-renewal" in done and "delta-sync" in done  # Redis
    mongo: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    record = mongo.get_default_database()[APPLIES].find_one()
    mongo.close()
    assert record is not None and record["outcome"] == "failed"
    assert len(record["operations"]) == 9 + 9 + 2  # collections, index batches, two queues
    assert [op["target"] for op in record["notDone"][:1]] == ["queue pattern-analysis"]
