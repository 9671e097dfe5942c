"""The server's role read from `hello` (replies shaped as MongoDB documents them), what it changes
in the pure compare (commitQuorum on createIndexes), and the primary-only view plans read through."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient, ReadPreference

from bootstrap.connect.mongo import majority, on_primary
from bootstrap.engine.mongo.compare import compare
from bootstrap.engine.mongo.live import LiveState
from bootstrap.engine.mongo.operations import CreateIndexes, IndexModel
from bootstrap.engine.mongo.plan import PrimaryWatch, backend
from bootstrap.engine.mongo.server import MONGOS, REPLICA_SET, STANDALONE, ServerRole, role_from_hello
from bootstrap.errors import OperationFailed
from bootstrap.spec.model import Collection, Field, FieldType, Index
from tests.unit.engine.build import spec_of

USERS = Collection("users", "User", (Field("email", FieldType.STRING),), (Index((("email", 1),), "email_1"),))
ELECTION = ObjectId("7fffffff0000000000000003")


def test_hello_of_a_standalone_server_a_replica_set_member_and_a_mongos() -> None:
    assert role_from_hello({"isWritablePrimary": True, "ok": 1}) == ServerRole(STANDALONE)
    member = role_from_hello({"isWritablePrimary": True, "setName": "rs0", "primary": "db1:27017",
                              "electionId": ELECTION, "hosts": ["db1:27017", "db2:27017"]})
    assert member == ServerRole(REPLICA_SET, "rs0", "db1:27017", str(ELECTION))
    assert member.describe() == "replica set 'rs0' (primary db1:27017)"
    mongos = role_from_hello({"isWritablePrimary": True, "msg": "isdbgrid"})
    assert mongos.is_mongos and mongos.kind == MONGOS


def test_another_primary_or_another_election_is_another_identity() -> None:
    before = ServerRole(REPLICA_SET, "rs0", "db1:27017", str(ELECTION))
    assert ServerRole(REPLICA_SET, "rs0", "db2:27017", "x").primary_identity() != before.primary_identity()
    re_elected = ServerRole(REPLICA_SET, "rs0", "db1:27017", "7fffffff0000000000000004")
    assert re_elected.primary_identity() != before.primary_identity()


def quorums(server: ServerRole, quorum: str | int = "votingMembers") -> list[Any]:
    spec = spec_of((USERS,))
    spec = replace(spec, mongodb=replace(spec.mongodb, commit_quorum=quorum))
    plan = compare(spec, LiveState("t", server=server))
    return [op.commit_quorum for op in plan.operations if isinstance(op, CreateIndexes)]


def test_commit_quorum_goes_to_replica_sets_and_mongos_never_to_a_standalone_server() -> None:
    assert quorums(ServerRole(STANDALONE)) == [None]  # a standalone mongod refuses commitQuorum
    assert quorums(ServerRole(REPLICA_SET, "rs0", "db1:27017", "e")) == ["votingMembers"]
    assert quorums(ServerRole(MONGOS), "majority") == ["majority"]
    assert quorums(ServerRole(REPLICA_SET, "rs0", "db1:27017", "e"), 2) == [2]


def test_plans_read_from_the_primary_and_records_are_majority_writes_whatever_the_uri_says() -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(
        "mongodb://127.0.0.1:1/t?readPreference=secondaryPreferred", connect=False, tz_aware=True)
    db = client.get_default_database()
    assert db.read_preference != ReadPreference.PRIMARY
    primary = on_primary(db)
    assert primary.read_preference == ReadPreference.PRIMARY
    assert primary.codec_options.tz_aware and primary.name == "t"
    records = majority(db, "bootstrap_locks")
    assert records.write_concern.document == {"w": "majority", "wtimeout": 10000}
    assert records.read_concern.level == "majority" and records.read_preference == ReadPreference.PRIMARY
    client.close()


def test_no_server_to_ask_for_the_primary_is_an_operation_failure_not_a_crash() -> None:
    client: MongoClient[dict[str, Any]] = MongoClient("mongodb://127.0.0.1:1/t", serverSelectionTimeoutMS=100)
    db = client.get_default_database()
    watch = PrimaryWatch(db)
    watch.planned = ServerRole(REPLICA_SET, "rs0", "db1:27017", "e")
    run = backend(spec_of((USERS,)), db, watch).execute
    with pytest.raises(OperationFailed, match=r"^users: could not ask which member is primary before create index"):
        run(CreateIndexes("users", (IndexModel("email_1", (("email", 1),)),)), lambda line: None)
    client.close()
