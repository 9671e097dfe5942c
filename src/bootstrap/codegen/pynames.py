"""Python names for declared fields and generated classes. Pure (no pydantic): used to render models.py.

A field's name in MongoDB (`from`, `_id`, `model_config`, `json`) is not always usable as an
attribute of a pydantic model: keywords are not identifiers, a leading `_` makes a private
attribute, and `BaseModel`'s own names (`model_dump`, `copy`) must not be shadowed. Such a field
gets another attribute name (`from_`) and keeps its own name in MongoDB (an alias).
"""

from __future__ import annotations

import keyword
from collections.abc import Iterable

# BaseModel's attributes (pinned by tests/unit/models/test_names.py against pydantic) and the
# Document API's own names; `id` is `_id`.
RESERVED = frozenset(
    {
        "construct",
        "copy",
        "dict",
        "from_orm",
        "json",
        "parse_file",
        "parse_obj",
        "parse_raw",
        "schema",
        "schema_json",
        "update_forward_refs",
        "validate",
        "id",
        "from_document",
        "to_document",
        "missing",
    }
)


def attribute_name(field: str, taken: Iterable[str] = ()) -> str:
    """The attribute a field named `field` gets: its own name when it is usable, else a variant
    (`from` -> `from_`, `_secret` -> `secret_`), made unique among `taken` by more underscores.
    Give the usable names of a class as `taken` first, so that they keep their names."""
    name = field
    if not usable(name):
        name = name.lstrip("_") or "field"
        if name[0].isdigit() or name.startswith("model_"):
            name = f"field_{name}"
        name += "_"  # marks a renamed field: `from` -> `from_`
    used = set(taken)
    while name in used:
        name += "_"
    return name


def usable(name: str) -> bool:
    """Whether a field named `name` can be an attribute under its own name."""
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and name not in RESERVED
        and not name.startswith(("_", "model_"))
    )


def class_name(collection: str) -> str:
    """A class name for a collection declared without `model:` (`email_events` -> `EmailEvents`)."""
    parts = [p for p in collection.split("_") if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "Model"
    return name if name[0].isalpha() else f"Model{name}"


def pascal(name: str) -> str:
    """`encryptedTokens` -> `EncryptedTokens`, `_raw_data` -> `RawData`: a part of a class name."""
    parts = [p for p in name.split("_") if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) or "Field"


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name2`, `name3` ... when taken; records the result in `taken`."""
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}{number}", number + 1
    taken.add(candidate)
    return candidate
