"""Before a validator change is applied, `plan` says how many existing documents the new validator
would refuse, with a few of their ids (collMod does not recheck them, so nobody else says it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo import MongoClient

from tests.conftest import Result


def edit(config_dir: Path, file: str, old: str, new: str) -> None:
    path = config_dir / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))


def test_plan_counts_the_documents_a_new_validator_would_refuse(
    config_dir: Path, cli: Callable[..., Result], mongo_uri: str
) -> None:
    config = str(config_dir)
    assert cli("apply", "--config", config).code == 0
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    users = client.get_default_database()["users"]
    short = [ObjectId() for _ in range(5)]
    users.insert_many([{"_id": oid, "email": f"u{n}@x.io"} for n, oid in enumerate(short)])
    users.insert_many([{"email": f"a-much-longer-address-{n}@example.com"} for n in range(3)])
    client.close()

    edit(config_dir, "collections/users.yaml", "  email: {type: string, required: true}",
         "  email: {type: string, required: true, max_length: 10}")
    result = cli("plan", "--config", config)
    assert result.code == 0, result.err
    line = next(line for line in result.out.splitlines() if "would fail the new validator" in line)
    assert line.strip().startswith("3 existing document(s) would fail the new validator (e.g. _id ")
    assert all(str(oid) not in line for oid in short)  # the samples are failing documents
    plan = json.loads(cli("plan", "--config", config, "--json").out)
    (change,) = [op for op in plan["operations"] if op["op"] == "UpdateValidator"]
    assert change["failing"] == 3 and len(change["failing_ids"]) == 3

    edit(config_dir, "collections/users.yaml", "max_length: 10", "max_length: 100")
    assert "every existing document passes the new validator" in cli("plan", "--config", config).out
