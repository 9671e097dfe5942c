"""Sharding in the pure compare: live state built by hand as a mongos reports it (hello with
msg "isdbgrid", config.collections entries), since SecantusDB is no mongos. The order MongoDB
needs (collection, shard-key index, shardCollection, other indexes), the implied shard-key index,
a changed key blocked with the command that changes it, and one note line off a mongos."""

from __future__ import annotations

from dataclasses import replace

from bson import ObjectId

from bootstrap.engine.mongo.compare import compare
from bootstrap.engine.mongo.live import LiveCollection, LiveIndex, LiveShard, LiveState
from bootstrap.engine.mongo.operations import (
    CreateCollection,
    CreateIndexes,
    IndexModel,
    ShardCollection,
    ShardingUnavailable,
    UndeclaredShardKey,
)
from bootstrap.engine.mongo.server import MONGOS, REPLICA_SET, ServerRole
from bootstrap.engine.mongo.validator import collection_validator
from bootstrap.engine.render import plan_text, summary
from bootstrap.spec.model import Collection, Field, FieldType, Index, ShardKey
from tests.unit.engine.build import spec_of

USER_EMAIL = Index((("userId", 1), ("email", 1)), "userId_1_email_1", unique=True)
SEEN = Index((("seenAt", 1),), "seenAt_1")
FIELDS = (Field("userId", FieldType.OBJECT_ID, required=True, nullable=False),
          Field("email", FieldType.STRING), Field("seenAt", FieldType.DATE))
BY_USER = ShardKey((("userId", 1),))
MAILBOXES = Collection("mailboxes", "Mailbox", FIELDS, (SEEN, USER_EMAIL), shard=BY_USER)
MONGOS_ROLE = ServerRole(MONGOS)
QUORUM = "votingMembers"

USER_EMAIL_MODEL = IndexModel("userId_1_email_1", (("userId", 1), ("email", 1)), {"unique": True})
SEEN_MODEL = IndexModel("seenAt_1", (("seenAt", 1),), {})


def live_mailboxes(*indexes: IndexModel, shard: LiveShard | None = None,
                   server: ServerRole = MONGOS_ROLE) -> LiveState:
    coll = LiveCollection("mailboxes", collection_validator(MAILBOXES), "strict", "error",
                          tuple(LiveIndex(ix.name, ix.keys, ix.options) for ix in indexes), shard=shard)
    return LiveState("app", {"mailboxes": coll}, server=server)


def test_through_a_mongos_a_new_collection_is_created_indexed_on_its_key_sharded_then_indexed() -> None:
    plan = compare(spec_of((MAILBOXES,)), LiveState("app", server=MONGOS_ROLE))
    assert plan.operations == (
        CreateCollection("mailboxes", collection_validator(MAILBOXES), "strict", "error"),
        CreateIndexes("mailboxes", (USER_EMAIL_MODEL,), commit_quorum=QUORUM),  # starts with the key
        ShardCollection("mailboxes", (("userId", 1),)),
        CreateIndexes("mailboxes", (SEEN_MODEL,), commit_quorum=QUORUM),
    )
    text = plan_text(plan, "target")
    assert "  + shard collection mailboxes on {userId: 1} (shardCollection)" in text


def test_a_shard_key_without_a_declared_index_gets_one() -> None:
    coll = replace(MAILBOXES, indexes=(SEEN,), shard=ShardKey((("email", "hashed"),), chunks=64))
    ops = compare(spec_of((coll,)), LiveState("app", server=MONGOS_ROLE)).operations
    assert ops[1:] == (
        CreateIndexes("mailboxes", (IndexModel("email_hashed", (("email", "hashed"),), {}),), commit_quorum=QUORUM),
        ShardCollection("mailboxes", (("email", "hashed"),), chunks=64),
        CreateIndexes("mailboxes", (SEEN_MODEL,), commit_quorum=QUORUM),
    )
    assert ops[2].describe() == ["shard collection mailboxes on {email: hashed} (64 initial chunks) (shardCollection)"]


def test_an_existing_unsharded_collection_is_sharded_once_its_key_index_exists() -> None:
    plan = compare(spec_of((MAILBOXES,)), live_mailboxes(USER_EMAIL_MODEL))
    assert plan.operations == (
        ShardCollection("mailboxes", (("userId", 1),)),
        CreateIndexes("mailboxes", (SEEN_MODEL,), commit_quorum=QUORUM),
    )
    plan = compare(spec_of((MAILBOXES,)), live_mailboxes(USER_EMAIL_MODEL, SEEN_MODEL))
    assert plan.operations == (ShardCollection("mailboxes", (("userId", 1),)),)


def test_a_collection_sharded_as_declared_needs_nothing() -> None:
    live = live_mailboxes(USER_EMAIL_MODEL, SEEN_MODEL, shard=LiveShard((("userId", 1),)))
    assert compare(spec_of((MAILBOXES,)), live).operations == ()


def test_a_key_that_extends_the_live_one_is_blocked_with_refine_named() -> None:
    coll = replace(MAILBOXES, shard=ShardKey((("userId", 1), ("email", 1))))
    live = live_mailboxes(USER_EMAIL_MODEL, SEEN_MODEL, shard=LiveShard((("userId", 1),)))
    plan = compare(spec_of((coll,)), live)
    (blocked,) = plan.blocked
    assert blocked.reason == (
        "sharded on {userId: 1}, declared {userId: 1, email: 1}: apply never changes a shard key; the new key "
        "extends the old one, so refine it once an index on the new key exists: "
        'db.adminCommand({refineCollectionShardKey: "app.mailboxes", key: {userId: 1, email: 1}})'
    )
    assert "1 blocked: apply will refuse to run" in summary(plan)


def test_another_key_is_blocked_with_reshard_named() -> None:
    live = live_mailboxes(USER_EMAIL_MODEL, SEEN_MODEL, shard=LiveShard((("email", "hashed"),)))
    (blocked,) = compare(spec_of((MAILBOXES,)), live).blocked
    assert blocked.reason.endswith(
        'reshard it (MongoDB 5.0+, copies the whole collection): '
        'db.adminCommand({reshardCollection: "app.mailboxes", key: {userId: 1}})'
    )
    assert blocked.reason.startswith('sharded on {email: "hashed"}, declared {userId: 1}')
    unique = live_mailboxes(USER_EMAIL_MODEL, SEEN_MODEL, shard=LiveShard((("userId", 1),), unique=True))
    assert "reshardCollection" in compare(spec_of((MAILBOXES,)), unique).blocked[0].reason


def test_split_points_of_object_id_fields_are_object_ids() -> None:
    point = "65a1b2c3d4e5f6a7b8c9d0e1"
    coll = replace(MAILBOXES, shard=ShardKey((("userId", 1),), split_at=({"userId": point},)))
    ops = compare(spec_of((coll,)), LiveState("app", server=MONGOS_ROLE)).operations
    shard = next(op for op in ops if isinstance(op, ShardCollection))
    assert shard.split_at == ({"userId": ObjectId(point)},)


def test_off_a_mongos_the_declarations_are_one_note_line_and_no_change() -> None:
    other = replace(MAILBOXES, name="emailevents", model="EmailEvent")
    server = ServerRole(REPLICA_SET, "rs0", "db1:27017", "e")
    plan = compare(spec_of((MAILBOXES, other)), LiveState("app", server=server))
    notes = [op for op in plan.operations if isinstance(op, ShardingUnavailable)]
    assert notes == [ShardingUnavailable("", ("mailboxes", "emailevents"), "replica set 'rs0' (primary db1:27017)")]
    assert not any(isinstance(op, ShardCollection) for op in plan.operations)
    # The shard-key index is created all the same, first in its batch.
    batch = next(op for op in plan.operations if isinstance(op, CreateIndexes))
    assert batch.indexes[0] == USER_EMAIL_MODEL
    quiet = compare(spec_of((MAILBOXES,)), live_mailboxes(USER_EMAIL_MODEL, SEEN_MODEL, server=ServerRole()))
    assert quiet.changes == () and summary(quiet) == "No changes: the database matches the spec."
    text = plan_text(quiet, "target")
    assert text[1:] == ["", "sharding", "  ? shard: declared on mailboxes; not applied: a standalone server is "
                        "not a mongos (shard-key indexes are still created)", "",
                        "No changes: the database matches the spec."]


def test_a_sharded_collection_without_a_declaration_is_a_note_not_a_change() -> None:
    live = live_mailboxes(USER_EMAIL_MODEL, SEEN_MODEL, shard=LiveShard((("userId", 1),)))
    plan = compare(spec_of((replace(MAILBOXES, shard=None),)), live)
    assert plan.operations == (UndeclaredShardKey("mailboxes", (("userId", 1),)),) and plan.changes == ()
    assert plan.operations[0].describe() == [
        "sharded on {userId: 1}, not declared: left as it is (declare it with shard:)"]
