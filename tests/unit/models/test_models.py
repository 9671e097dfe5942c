"""The generated models without a server: defaults, casting, presence, every field kind, the exact
(strict) reading of documents, update paths and filters, references."""

from __future__ import annotations

import datetime as dt
import decimal
from types import ModuleType
from typing import Any

import pytest
from bson import Decimal128, Int64, ObjectId
from pydantic import ValidationError

from bootstrap.errors import InvalidDocument
from bootstrap.models import document as _d
from bootstrap.models.collection import _Core

OID = "65a1b2c3d4e5f6a7b8c9d0e1"


def kind(models: ModuleType, **values: Any) -> Any:
    return models.Kind(**{"title": "abc", "flag": True, "maybe": None, **values})


def errors(caught: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {".".join(map(str, e["loc"])): e["type"] for e in caught.value.errors()}


def test_defaults_are_applied_and_written_and_absent_fields_are_not(models: ModuleType) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    doc = kind(models).to_document()
    assert doc["level"] == "low" and doc["ratio"] == 1.0 and type(doc["ratio"]) is float  # double
    assert doc["since"] == dt.datetime(2024, 1, 31, tzinfo=dt.UTC)
    assert before <= doc["when"] <= dt.datetime.now(dt.UTC) and doc["when"].microsecond % 1000 == 0
    assert doc["json"] is False and "json_" not in doc  # a renamed field keeps its name in MongoDB
    assert isinstance(doc["_id"], ObjectId) and doc["maybe"] is None  # required and nullable: written null
    for absent in ("code", "score", "box", "tags", "extra", "from", "createdAt", "updatedAt"):
        assert absent not in doc, absent  # optional and not given: not written


def test_mongoose_defaults_of_the_shipped_models(models: ModuleType) -> None:
    event = models.EmailEvent(userId=ObjectId(), mailboxId=ObjectId(), messageId="m1", eventType="arrived")
    doc = event.to_document()
    assert (doc["importance"], doc["hasAttachments"], doc["isRead"]) == ("normal", False, False)
    assert isinstance(doc["timestamp"], dt.datetime) and doc["timestamp"].tzinfo is not None
    # Nested defaults: the subdocument is created with them, as Mongoose does.
    assert models.User(email="a@example.com").to_document()["preferences"] == {
        "automationPaused": False,
        "aggressiveness": "moderate",
    }
    assert models.Rule(userId=ObjectId(), mailboxId=ObjectId(), name="r").stats.totalExecutions == 0


def test_strings_are_cast_to_object_ids_and_dates(models: ModuleType) -> None:
    event = models.EmailEvent(
        userId=OID, mailboxId=OID, messageId="m", eventType="read", receivedAt="2024-05-06T07:08:09.123456+02:00"
    )
    assert event.userId == ObjectId(OID)
    assert event.receivedAt == dt.datetime(2024, 5, 6, 5, 8, 9, 123000, tzinfo=dt.UTC)  # UTC, milliseconds
    assert kind(models, ratio=3).ratio == 3.0 and kind(models, price="1.25").price == decimal.Decimal("1.25")
    assert kind(models, count=7.0).count == 7 and kind(models, big=Int64(5)).big == 5


def test_a_bad_value_names_its_field_path(models: ModuleType) -> None:
    with pytest.raises(ValidationError) as caught:
        kind(models, title="Abc", box={"inner": 5}, parts=[{"name": "p"}, {}], owner="nope", tags=["a", "a"])
    assert errors(caught) == {
        "title": "string_pattern_mismatch",
        "box.inner": "string_type",
        "parts.1.name": "missing",
        "owner": "object_id",
        "tags": "unique_items",
    }


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"title": "a"}, "title"),  # too short
        ({"title": "abcdefghijklm"}, "title"),  # too long
        ({"code": None}, "code"),  # nullable: false: may be left out, not null
        ({"code": "12"}, "code"),
        ({"level": "mid"}, "level"),
        ({"score": 11}, "score"),
        ({"score": True}, "score"),
        ({"count": 2**31}, "count"),
        ({"count": -6}, "count"),
        ({"big": 2**63}, "big"),
        ({"ratio": "1.5"}, "ratio"),
        ({"choice": 4}, "choice"),
        ({"flag": 1}, "flag"),
        ({"when": 1700000000}, "when"),
        ({"when": "yesterday"}, "when"),
        ({"box": {"inner": "x", "other": 1}}, "box.other"),  # additional_fields: false
        ({"box": "x"}, "box"),
        ({"loose": []}, "loose"),
        ({"tags": []}, "tags"),
        ({"tags": ["a", "b", "c", "d"]}, "tags"),
        ({"nums": [1, "2"]}, "nums.1"),
        ({"labels": {"a": "1"}}, "labels.a"),
        ({"notes": ["not", "a", "map"]}, "notes"),
        ({"undeclared": 1}, "undeclared"),
    ],
)
def test_every_kind_rejects_what_its_validator_rejects(models: ModuleType, values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        kind(models, **values)
    assert field in errors(caught), errors(caught)


def test_required_fields_must_be_given(models: ModuleType) -> None:
    with pytest.raises(ValidationError) as caught:
        models.Kind(title="abc")
    assert errors(caught) == {"flag": "missing", "maybe": "missing"}


def test_documents_are_read_exactly_as_the_validator_reads_them(models: ModuleType) -> None:
    good = kind(models, owner=ObjectId(), price=decimal.Decimal("2.5"), box={"inner": "i"}).to_document()
    assert good["price"] == Decimal128("2.5")
    back = models.Kind.from_document(good)
    assert back.to_document() == good and back.price == decimal.Decimal("2.5")
    # No casting on read: what the server would refuse, the model refuses.
    for field, value in [("owner", OID), ("when", "2024-01-01T00:00:00Z"), ("ratio", 1), ("count", Int64(3))]:
        with pytest.raises(ValidationError):
            models.Kind.from_document({**good, field: value})
    assert models.Kind.from_document({**good, "big": Int64(3)}).big == 3
    # Attribute names are not MongoDB names: in a document they are undeclared fields.
    for attribute in ("from_", "json_", "id"):
        with pytest.raises(ValidationError):
            models.Kind.from_document({**good, attribute: "x"})


def test_presence_null_and_absent_are_kept_apart(models: ModuleType) -> None:
    given_null = kind(models, score=None).to_document()
    assert given_null["score"] is None and "score" not in kind(models).to_document()
    read = models.Kind.from_document({**kind(models).to_document(), "score": None})
    assert "score" in read.to_document()


def test_assignment_is_checked(models: ModuleType) -> None:
    event = models.EmailEvent(userId=OID, mailboxId=OID, messageId="m", eventType="read")
    event.importance = "high"
    assert event.to_document()["importance"] == "high"
    with pytest.raises(ValidationError):
        event.importance = "urgent"


def test_updates_are_checked_per_field_path(models: ModuleType) -> None:
    core = _Core(models.Kind)
    values = {"box.inner": "x", "tags.0": "t", "labels.k": 3, "notes.any.thing": [1], "owner": OID}
    update = core.update(values, (), False)
    assert update["$set"]["owner"] == ObjectId(OID) and isinstance(update["$set"]["updatedAt"], dt.datetime)
    assert core.update({"box": {"inner": "x"}}, (), False)["$set"]["box"] == {"inner": "x", "depth": 0}
    with pytest.raises(InvalidDocument) as caught:
        core.update({"box.inner": 5, "labels.k": "x", "score": 99}, ["title"], False)
    paths = [path for path, _ in caught.value.problems]
    assert paths == ["box.inner", "labels.k", "score", "title"], caught.value.problems
    for bad in ({"undeclared": 1}, {"box.nope": 1}, {"tags.x": "t"}, {"title.x": 1}):
        with pytest.raises(InvalidDocument):
            core.update(bad, (), False)
    upsert = _Core(models.EmailEvent).update({"isRead": True}, (), True)
    assert upsert["$setOnInsert"]["importance"] == "normal" and "isRead" not in upsert["$setOnInsert"]
    assert "createdAt" in upsert["$setOnInsert"]


def test_filters_cast_ids_and_dates(models: ModuleType) -> None:
    core = _Core(models.EmailEvent)
    query = core.filter(
        {"userId": OID, "_id": {"$in": [OID]}, "timestamp": {"$gte": "2024-01-01"}, "$or": [{"mailboxId": OID}]}
    )
    assert query["userId"] == ObjectId(OID) and query["_id"] == {"$in": [ObjectId(OID)]}
    assert query["timestamp"]["$gte"] == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert query["$or"] == [{"mailboxId": ObjectId(OID)}]
    assert core.filter({"messageId": OID, "undeclared": OID}) == {"messageId": OID, "undeclared": OID}
    with pytest.raises(InvalidDocument, match="userId"):
        core.filter({"userId": "nope"})


def test_references_know_their_target_and_collect_ids_through_arrays(models: ModuleType) -> None:
    assert models.EmailEventRefs.mailboxId.target is models.Mailbox
    assert models.EmailEventRefs.metadata__automatedByRule.target is models.Rule
    ids = [ObjectId() for _ in range(3)]
    docs = [
        kind(models, owner=ids[0], parts=[{"name": "a", "ref": ids[1]}, {"name": "b", "ref": ids[0]}]),
        kind(models, parts=[{"name": "c", "ref": ids[2]}]),
    ]
    assert models.KindRefs.parts__ref.ids(docs) == [ids[1], ids[0], ids[2]]
    assert models.KindRefs.owner.ids(docs) == [ids[0]]


def test_every_shipped_collection_has_its_model(models: ModuleType) -> None:
    names = [
        "AuditLog",
        "EmailEvent",
        "Mailbox",
        "Notification",
        "Pattern",
        "Rule",
        "StagedEmail",
        "User",
        "WebhookSubscription",
    ]
    assert set(names) <= set(models.__all__)
    assert {getattr(models, n).__collection__ for n in names} == {
        "auditlogs",
        "emailevents",
        "mailboxes",
        "notifications",
        "patterns",
        "rules",
        "stagedemails",
        "users",
        "webhooksubscriptions",
    }


# --- a required field with a default (schema walk M3) ----------------------------------------------


class _Level(_d.Subdocument):
    level: str = _d.default("low", required=True)


class _Rule(_d.Document):
    __collection__ = "rules"
    color: str = _d.default("blue", required=True)
    inner: _Level | None = None


def test_a_required_field_with_a_default_fills_new_models_and_is_required_in_stored_ones() -> None:
    """The validator requires the field; the default is for new documents (Mongoose's). Reading a
    stored document without it is refused, as the server refuses its updates, in a subdocument too."""
    assert _Rule().to_document()["color"] == "blue"
    with pytest.raises(ValidationError, match=r"required field\(s\) color missing"):
        _Rule.from_document({"_id": ObjectId()})
    with pytest.raises(ValidationError) as caught:
        _Rule.from_document({"_id": ObjectId(), "color": "red", "inner": {}})
    assert caught.value.errors()[0]["loc"] == ("inner",)
    assert _Rule.from_document({"_id": ObjectId(), "color": "red", "inner": {"level": "x"}}).inner == _Level(level="x")
