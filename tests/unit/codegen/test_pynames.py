"""Python names for declared fields: usable names are kept, the others renamed, never colliding."""

from __future__ import annotations

import keyword

import pytest
from pydantic import BaseModel

from bootstrap.codegen.pynames import RESERVED, attribute_name, class_name, usable
from bootstrap.models.document import Document


def test_reserved_names_cover_base_model_and_the_document_api() -> None:
    public = {n for n in dir(BaseModel) if not n.startswith("_") and not n.startswith("model_")}
    api = {n for n in dir(Document) if not n.startswith("_") and not n.startswith("model_")} - set(
        Document.model_fields
    )
    assert public <= RESERVED and api <= RESERVED | {"id"}, (public | api) - RESERVED


@pytest.mark.parametrize(
    ("field", "attr"),
    [
        ("email", "email"),
        ("from", "from_"),
        ("class", "class_"),
        ("json", "json_"),
        ("id", "id_"),
        ("_secret", "secret_"),
        ("__", "field_"),
        ("_1x", "field_1x_"),
        ("model_config", "field_model_config_"),
        ("type", "type"),  # a soft keyword is a fine attribute
    ],
)
def test_attribute_names(field: str, attr: str) -> None:
    assert attribute_name(field) == attr
    assert attr.isidentifier() and not keyword.iskeyword(attr) and not attr.startswith("_")


def test_renamed_fields_never_take_a_name_in_use() -> None:
    assert attribute_name("from", {"from_"}) == "from__"
    assert not usable("from") and usable("from_")


def test_class_names_for_collections_without_a_model() -> None:
    assert class_name("email_events") == "EmailEvents" and class_name("users") == "Users"
