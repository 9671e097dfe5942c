"""Documents from a collection spec: hypothesis strategies for documents the spec allows, and
hand-made violations, one per field, for documents it forbids."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bson import Decimal128, Int64, ObjectId
from hypothesis import strategies as st

from bootstrap.spec.model import Collection, Field, FieldType, thaw

_KEY = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=8)
_DATES = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(microsecond=(d.microsecond // 1000) * 1000, tzinfo=UTC)
)
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31 - 1) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEY, inner, max_size=3),
    max_leaves=6,
)


def _numbers(fld: Field) -> st.SearchStrategy[Any]:
    low = fld.minimum if fld.minimum is not None else -1e9
    high = fld.maximum if fld.maximum is not None else 1e9
    ints = st.integers(int(-(-low // 1)), int(high // 1))
    floats = st.floats(low, high, allow_nan=False, allow_infinity=False)
    if fld.type is FieldType.INT:
        return st.integers(max(int(low), -(2**31)), min(int(high), 2**31 - 1))
    if fld.type is FieldType.LONG:
        return ints
    if fld.type is FieldType.DOUBLE:
        return floats
    if fld.type is FieldType.DECIMAL:
        return ints.map(lambda i: Decimal128(Decimal(i)))
    return ints | floats


def value(fld: Field) -> st.SearchStrategy[Any]:
    """Values the field allows (null included where it is nullable)."""
    base = _non_null(fld)
    return st.none() | base if fld.nullable else base


def _non_null(fld: Field) -> st.SearchStrategy[Any]:
    if fld.enum is not None:
        return st.sampled_from([v for v in thaw(fld.enum) if v is not None])
    kind = fld.type
    if kind is FieldType.STRING:
        low, high = fld.min_length or 0, fld.max_length or 20
        if fld.pattern:  # the pattern's strings, within the declared lengths (a pattern says none)
            return st.from_regex(fld.pattern).filter(lambda text: low <= len(text) <= high)
        return st.text(min_size=low, max_size=high)
    if kind.numeric:
        return _numbers(fld)
    if kind is FieldType.BOOL:
        return st.booleans()
    if kind is FieldType.DATE:
        return _DATES
    if kind is FieldType.OBJECT_ID:
        return st.binary(min_size=12, max_size=12).map(ObjectId)
    if kind is FieldType.OBJECT:
        return document(fld.fields) if fld.fields else st.dictionaries(_KEY, _JSONISH, max_size=3)
    if kind is FieldType.ARRAY:
        items = value(fld.items) if fld.items else _JSONISH
        high = min(fld.max_items if fld.max_items is not None else 4, 4)
        return st.lists(items, min_size=fld.min_items or 0, max_size=max(high, fld.min_items or 0))
    if kind is FieldType.MAP:
        return st.dictionaries(_KEY, value(fld.values) if fld.values else _JSONISH, max_size=3)
    return _JSONISH


def document(fields: tuple[Field, ...]) -> st.SearchStrategy[dict[str, Any]]:
    required = {f.name: value(f) for f in fields if f.required}
    optional = {f.name: value(f) for f in fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional)


def collection_document(coll: Collection) -> st.SearchStrategy[dict[str, Any]]:
    fields = coll.fields
    if coll.timestamps:
        fields += (Field("createdAt", FieldType.DATE), Field("updatedAt", FieldType.DATE))
    return document(fields)


# --- documents the spec forbids ----------------------------------------------------------------


def minimal(fields: tuple[Field, ...]) -> dict[str, Any]:
    """The smallest valid document: required fields only, with simple values."""
    return {f.name: _simple(f) for f in fields if f.required}


def _simple(fld: Field) -> Any:
    if fld.enum is not None:
        return thaw(fld.enum)[0]
    return {
        FieldType.STRING: "x" * max(fld.min_length or 1, 1),
        FieldType.BOOL: True,
        FieldType.DATE: datetime(2024, 1, 1, tzinfo=UTC),
        FieldType.OBJECT_ID: ObjectId(),
        FieldType.OBJECT: minimal(fld.fields),
        FieldType.ARRAY: [],
        FieldType.MAP: {},
        FieldType.ANY: {"free": "form"},
        FieldType.DECIMAL: Decimal128("1"),
        FieldType.DOUBLE: 1.5,
    }.get(fld.type, max(int(fld.minimum or 0), 0))


def _wrong_type(fld: Field) -> Any | None:
    if fld.type is FieldType.ANY:
        return None
    if fld.type is FieldType.STRING:
        return 12345
    if fld.type in (FieldType.OBJECT, FieldType.MAP, FieldType.ARRAY, FieldType.BOOL):
        return "not-this-type"
    return "2024-01-01" if fld.type is FieldType.DATE else "abc"


def violations(coll: Collection) -> Iterator[tuple[str, dict[str, Any]]]:
    """(what is wrong, document) pairs that the collection's validator must reject."""
    base = minimal(coll.fields)
    yield from _field_violations(coll.fields, base, [])


def _field_violations(
    fields: tuple[Field, ...], base: dict[str, Any], path: list[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    def at(fld: Field, replacement: Any, *, remove: bool = False) -> dict[str, Any]:
        doc = _copy(base)
        target = doc
        for part in path:
            target = target[part]
        if remove:
            target.pop(fld.name, None)
        else:
            target[fld.name] = replacement
        return doc

    for fld in fields:
        name = ".".join([*path, fld.name])
        wrong = _wrong_type(fld)
        if wrong is not None:
            yield f"{name}: wrong type", at(fld, wrong)
        if fld.required:
            yield f"{name}: missing", at(fld, None, remove=True)
        if not fld.nullable and fld.type is not FieldType.ANY:
            yield f"{name}: null", at(fld, None)
        if fld.enum is not None:
            outsider = "not-an-enum-value" if fld.type is FieldType.STRING else -999
            yield f"{name}: not in enum", at(fld, outsider)
        if fld.minimum is not None:
            yield f"{name}: below min", at(fld, fld.minimum - 1)
        if fld.maximum is not None:
            yield f"{name}: above max", at(fld, fld.maximum + 1)
        if fld.max_items is not None and fld.items is not None:
            yield f"{name}: too many items", at(fld, [_simple(fld.items)] * (fld.max_items + 1))
        if fld.type is FieldType.ARRAY and fld.items is not None and _wrong_type(fld.items) is not None:
            yield f"{name}[]: wrong item type", at(fld, [_wrong_type(fld.items)])
        if fld.type is FieldType.MAP and fld.values is not None and _wrong_type(fld.values) is not None:
            yield f"{name}{{}}: wrong value type", at(fld, {"k": _wrong_type(fld.values)})
        if fld.type is FieldType.OBJECT and fld.fields:
            nested = _copy(base)
            target = nested
            for part in path:
                target = target[part]
            target[fld.name] = minimal(fld.fields)
            yield from _field_violations(fld.fields, nested, [*path, fld.name])


def _copy(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _copy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_copy(v) for v in doc]
    return doc


# --- documents near the boundary, for comparing verdicts (models vs the server's validator) -------

_OBJECT_ID_HEX = "65a1b2c3d4e5f6a7b8c9d0e1"
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.sampled_from([2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 0, -1, 10, 11, 24, 25, 100, 101]),
    st.integers(-(2**40), 2**40).map(Int64),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.5, 1.5, 10.0, 10.5, 24.0]),
    st.integers(-100, 100).map(lambda i: Decimal128(Decimal(i))),
    st.text(max_size=14),
    st.sampled_from(["", "a", "ab", "abc", "Abc", "123", "x123", "low", "high", "arrived", "normal", "user"]),
    st.sampled_from([_OBJECT_ID_HEX, "2024-01-31T00:00:00Z", "not-an-id"]),
    _DATES,
    st.binary(min_size=12, max_size=12).map(ObjectId),
)
ANY_VALUE = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEY, inner, max_size=3),
    max_leaves=5,
)


def _near_value(fld: Field) -> st.SearchStrategy[Any]:
    """A value of the field's kind or close to it: valid, arbitrary, or valid-looking with wrong parts."""
    options = [value(fld), ANY_VALUE]
    if fld.type is FieldType.OBJECT and fld.fields:
        options.append(near_document(fld.fields, fld.additional_fields))
    if fld.type is FieldType.ARRAY:
        element = _near_value(fld.items) if fld.items is not None else ANY_VALUE
        options.append(st.lists(element, max_size=(fld.max_items or 3) + 1))
    if fld.type is FieldType.MAP:
        element = _near_value(fld.values) if fld.values is not None else ANY_VALUE
        options.append(st.dictionaries(_KEY, element, max_size=3))
    return st.one_of(options)


@st.composite
def near_document(draw: st.DrawFn, fields: tuple[Field, ...], additional: bool = True) -> dict[str, Any]:
    """A document that each field may or may not fit: every field is left out, valid, or drawn
    near or far from its kind; sometimes with an undeclared field."""
    doc: dict[str, Any] = {}
    for fld in fields:
        how = draw(st.sampled_from(["absent", "valid", "valid", "near"]))
        if how == "valid" or (how == "absent" and fld.required and draw(st.booleans())):
            doc[fld.name] = draw(value(fld))
        elif how == "near":
            doc[fld.name] = draw(_near_value(fld))
    if draw(st.integers(0, 5)) == 0:
        doc["zz" + draw(_KEY)] = draw(ANY_VALUE)
    return doc


def near_collection_document(coll: Collection) -> st.SearchStrategy[dict[str, Any]]:
    fields = coll.fields
    if coll.timestamps:
        fields += (Field("createdAt", FieldType.DATE), Field("updatedAt", FieldType.DATE))
    return near_document(fields, coll.additional_fields)
