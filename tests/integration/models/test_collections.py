"""Typed collections on a real server: what is stored (defaults, timestamps, casting, every field
kind), reads with projections, checked updates, references resolved in one query per field, the
async collections and a handler that asks for `models`."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
from types import ModuleType
from typing import Any

import pytest
from bson import Decimal128, Int64, ObjectId
from pymongo import AsyncMongoClient
from pymongo.database import Database

from bootstrap.errors import InvalidDocument
from bootstrap.jobs.handlers import Job, call_handler
from bootstrap.models import AsyncModels, Models
from tests.integration.models.conftest import Commands

OID = "65a1b2c3d4e5f6a7b8c9d0e1"


def types_of(db: Database[Any], collection: str, doc_id: ObjectId, fields: dict[str, str]) -> None:
    """Each field is stored with the BSON type named (asked of the server with $type)."""
    for field, bson_type in fields.items():
        assert db[collection].count_documents({"_id": doc_id, field: {"$type": bson_type}}) == 1, field


def test_insert_writes_defaults_timestamps_and_cast_values(db: Database[Any], models: ModuleType) -> None:
    events = Models(db)[models.EmailEvent]
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    event = events.insert_one(
        {
            "userId": OID,
            "mailboxId": OID,
            "messageId": "m1",
            "eventType": "arrived",
            "receivedAt": "2024-03-04T05:06:07Z",
        }
    )
    stored = db["emailevents"].find_one({"_id": event.id})
    assert stored is not None
    assert (stored["importance"], stored["hasAttachments"], stored["isRead"]) == ("normal", False, False)
    assert stored["createdAt"] == stored["updatedAt"] and "timestamp" in stored
    assert event.createdAt is not None and event.createdAt >= before
    types_of(
        db,
        "emailevents",
        event.id,
        {"userId": "objectId", "mailboxId": "objectId", "receivedAt": "date", "timestamp": "date", "createdAt": "date"},
    )


def test_every_field_kind_is_stored_as_its_type_and_read_back(db: Database[Any], models: ModuleType) -> None:
    kinds = Models(db)[models.Kind]
    other = ObjectId()
    built = models.Kind(
        title="abc",
        code="x123",
        level="high",
        score=2.5,
        count=7,
        big=2**40,
        ratio=0.5,
        price=decimal.Decimal("9.99"),
        choice=2,
        flag=True,
        owner=OID,
        box={"inner": "in"},
        loose={"any": [1]},
        tags=["a", "b"],
        nums=[1, None, 2.5],
        parts=[{"name": "p", "ref": other}],
        labels={"x": 1},
        notes={"n": {"deep": True}},
        extra=[1, "two"],
        maybe=None,
        from_="sender",
        json_=True,
    )
    kinds.insert_one(built)
    types_of(
        db,
        "kinds",
        built.id,
        {
            "title": "string",
            "score": "double",
            "count": "int",
            "big": "long",
            "ratio": "double",
            "price": "decimal",
            "flag": "bool",
            "when": "date",
            "since": "date",
            "owner": "objectId",
            "box": "object",
            "tags": "array",
            "parts.ref": "objectId",
            "labels.x": "int",
            "maybe": "null",
            "from": "string",
            "json": "bool",
        },
    )
    assert db["kinds"].find_one({"_id": built.id}, {"box": 1})["box"] == {"inner": "in", "depth": 0}
    back = kinds.get(str(built.id))
    assert back is not None and back.to_document() == built.to_document()
    assert back.price == decimal.Decimal("9.99") and back.from_ == "sender" and back.when.tzinfo is not None


def test_problems_are_found_before_anything_is_sent(db: Database[Any], models: ModuleType, commands: Commands) -> None:
    kinds = Models(db)[models.Kind]
    with pytest.raises(InvalidDocument) as caught:
        kinds.insert_one({"title": "abc", "flag": "yes", "maybe": None, "box": {"inner": 1}})
    assert [path for path, _ in caught.value.problems] == ["flag", "box.inner"]
    with pytest.raises(InvalidDocument, match=r"tags\.0"):
        kinds.update_one({"_id": OID}, set={"tags.0": 5})
    with pytest.raises(InvalidDocument, match="title"):
        kinds.update_many({}, unset=["title"])
    assert commands.named("insert") == [] and commands.named("update") == []


def test_updates_are_checked_cast_and_move_updated_at(db: Database[Any], models: ModuleType) -> None:
    events = Models(db)[models.EmailEvent]
    event = events.insert_one(models.EmailEvent(userId=OID, mailboxId=OID, messageId="m", eventType="arrived"))
    result = events.update_one({"_id": str(event.id)}, set={"isRead": True, "metadata.automatedByRule": OID})
    assert result.modified_count == 1
    stored = db["emailevents"].find_one({"_id": event.id})
    assert stored is not None and stored["isRead"] is True and stored["updatedAt"] > stored["createdAt"]
    types_of(db, "emailevents", event.id, {"metadata.automatedByRule": "objectId"})
    # An upsert that inserts gets createdAt and the declared defaults, as Mongoose's does.
    events.update_one(
        {"userId": OID, "mailboxId": OID, "messageId": "new", "eventType": "read", "isRead": True},
        set={"subject": "hi"},
        upsert=True,
    )
    inserted = db["emailevents"].find_one({"messageId": "new"})
    assert inserted is not None and inserted["importance"] == "normal" and "createdAt" in inserted
    assert inserted["isRead"] is True  # the query's value, not the default


def test_reads_are_typed_with_projections_filters_counts_and_deletes(db: Database[Any], models: ModuleType) -> None:
    events = Models(db)[models.EmailEvent]
    events.insert_many(
        [
            models.EmailEvent(userId=OID, mailboxId=OID, messageId=f"m{i}", eventType="read", subject=f"s{i}")
            for i in range(5)
        ]
    )
    found = events.find({"userId": OID}, sort=[("messageId", -1)], limit=3)
    assert [e.messageId for e in found] == ["m4", "m3", "m2"] and all(isinstance(e, models.EmailEvent) for e in found)
    partial = events.find_one({"messageId": "m1"}, projection=["subject"])
    assert partial is not None and partial.subject == "s1" and "messageId" in partial.missing()
    with pytest.raises(AttributeError):
        _ = partial.messageId
    with pytest.raises(InvalidDocument, match="projection"):
        events.replace_one(partial)
    assert events.count({"eventType": "read"}) == 5
    assert events.delete_one({"messageId": "m0"}) == 1 and events.delete_many({"userId": OID}) == 4


def test_a_document_the_validator_would_refuse_is_reported_on_read(db: Database[Any], models: ModuleType) -> None:
    bad = {"userId": OID, "mailboxId": ObjectId(), "messageId": "m", "eventType": "arrived"}  # userId: a string
    db["emailevents"].insert_one(bad, bypass_document_validation=True)
    with pytest.raises(InvalidDocument, match="userId"):
        Models(db)[models.EmailEvent].find()


def test_references_resolve_in_one_query_per_field(db: Database[Any], models: ModuleType, commands: Commands) -> None:
    bound = Models(db)
    user = bound[models.User].insert_one(models.User(email="u@example.com"))
    boxes = bound[models.Mailbox].insert_many(
        [models.Mailbox(userId=user.id, email=f"box{i}@example.com") for i in range(4)]
    )
    events = bound[models.EmailEvent].insert_many(
        [
            models.EmailEvent(userId=user.id, mailboxId=boxes[i % 4].id, messageId=f"m{i}", eventType="arrived")
            for i in range(40)
        ]
    )
    commands.sent.clear()
    mailboxes = bound.resolve(events, models.EmailEventRefs.mailboxId)
    users = bound.resolve(events, models.EmailEventRefs.userId)
    assert commands.named("find") == ["mailboxes", "users"]  # one query per reference field, not per event
    assert {e.mailboxId for e in events} == set(mailboxes) and users[user.id].email == "u@example.com"
    assert all(isinstance(m, models.Mailbox) for m in mailboxes.values())
    assert bound.resolve(events, models.EmailEventRefs.metadata__automatedByRule) == {}  # no ids: no query
    assert len(commands.named("find")) == 2


def test_async_collections_and_a_handler_that_asks_for_models(
    mongo_uri: str, db: Database[Any], models: ModuleType
) -> None:
    generated = models

    async def record(messageId: str, mailboxId: str, models: AsyncModels) -> str:  # as a handler is written
        events = models[generated.EmailEvent]
        event = await events.insert_one(
            generated.EmailEvent(userId=OID, mailboxId=mailboxId, messageId=messageId, eventType="arrived")
        )
        again = await events.find_one({"_id": event.id})
        assert again is not None and again.messageId == messageId
        boxes = await models.resolve([again], generated.EmailEventRefs.mailboxId)
        return boxes[again.mailboxId].email

    async def main() -> str:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
        try:
            adb = client.get_default_database()
            box = await AsyncModels(adb)[models.Mailbox].insert_one(models.Mailbox(userId=OID, email="a@example.com"))
            job = Job(id="j1", queue="q", task="t", attempt=1, labels={})
            email: str = await call_handler(record, job, {"messageId": "m1", "mailboxId": str(box.id)}, db=adb)
            assert await AsyncModels(adb)[models.EmailEvent].count({"mailboxId": str(box.id)}) == 1
            return email
        finally:
            await client.close()

    assert asyncio.run(main()) == "a@example.com"


def test_long_and_decimal_values_round_trip(db: Database[Any], models: ModuleType) -> None:
    kinds = Models(db)[models.Kind]
    db["kinds"].insert_one({"title": "abc", "flag": False, "maybe": "m", "big": Int64(5), "price": Decimal128("1.5")})
    read = kinds.find_one({"title": "abc"})
    assert read is not None and read.big == 5 and read.price == decimal.Decimal("1.5")
