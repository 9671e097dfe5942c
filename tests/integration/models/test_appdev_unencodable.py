"""Values the models accept but BSON cannot hold, met while writing an app on the generated models
(text from JSON request bodies, free-form `details`).

README "Using the models": "Anything that does not fit raises before anything is sent, naming each
field path"; "A mapping given to a collection method raises `bootstrap.errors.InvalidDocument`".
These pass every model check and fail later, in the driver's BSON encoder, with `UnicodeEncodeError`
or `bson.errors.InvalidDocument` (another class with the same name), naming no field: an app that
answers 400 on `bootstrap.errors.InvalidDocument` answers 500 instead."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from bson import ObjectId
from pymongo.database import Database

from bootstrap.errors import InvalidDocument
from bootstrap.models import Models

# `json.loads('"\\ud800"')` gives this: a lone surrogate, which UTF-8 (and so BSON) cannot encode.
LONE_SURROGATE = "a\ud800b"


def _event(**fields: Any) -> dict[str, Any]:
    return {"userId": ObjectId(), "mailboxId": ObjectId(), "messageId": "m-1", "eventType": "read", **fields}


def test_a_lone_surrogate_in_a_string_field_is_an_invalid_document(db: Database[Any], models: ModuleType) -> None:
    with pytest.raises(InvalidDocument) as raised:
        Models(db)[models.EmailEvent].insert_one(_event(subject=LONE_SURROGATE))
    assert [path for path, _ in raised.value.problems] == ["subject"]


def test_a_lone_surrogate_in_a_set_value_is_an_invalid_document(db: Database[Any], models: ModuleType) -> None:
    events = Models(db)[models.EmailEvent]
    event = events.insert_one(_event())
    with pytest.raises(InvalidDocument) as raised:
        events.update_one({"_id": event.id}, set={"sender.name": LONE_SURROGATE})
    assert [path for path, _ in raised.value.problems] == ["sender.name"]


def test_a_nul_in_a_map_key_is_an_invalid_document(db: Database[Any], models: ModuleType) -> None:
    with pytest.raises(InvalidDocument) as raised:
        Models(db)[models.Mailbox].insert_one({"userId": ObjectId(), "email": "a@x", "deltaLinks": {"in\x00box": "d"}})
    assert raised.value.problems and raised.value.problems[0][0].startswith("deltaLinks")


def test_a_value_bson_has_no_type_for_in_a_free_form_object_is_an_invalid_document(
    db: Database[Any], models: ModuleType
) -> None:
    entry = {"userId": ObjectId(), "action": "rule_created", "targetType": "rule", "details": {"tags": {"a", "b"}}}
    with pytest.raises(InvalidDocument) as raised:
        Models(db)[models.AuditLog].insert_one(entry)
    assert raised.value.problems and raised.value.problems[0][0].startswith("details")
