"""The `$jsonSchema` validator a collection spec implies.

MongoDB's dialect is draft 4 plus `bsonType`: no `$ref`, `format` or `default`; an optional field that
may hold null must say so explicitly, and `enum` is checked independently of the type (so a nullable
enum must list null too).
"""

from __future__ import annotations

from typing import Any

from bootstrap.spec.model import Collection, Field, FieldType, thaw

_BSON_TYPES: dict[FieldType, list[str]] = {
    FieldType.STRING: ["string"],
    FieldType.NUMBER: ["double", "int", "long", "decimal"],
    FieldType.INT: ["int"],
    FieldType.LONG: ["int", "long"],  # drivers send small integers as int32
    FieldType.DOUBLE: ["double"],
    FieldType.DECIMAL: ["decimal"],
    FieldType.BOOL: ["bool"],
    FieldType.DATE: ["date"],
    FieldType.OBJECT_ID: ["objectId"],
    FieldType.OBJECT: ["object"],
    FieldType.ARRAY: ["array"],
    FieldType.MAP: ["object"],
}


def collection_validator(coll: Collection) -> dict[str, Any]:
    """`{"$jsonSchema": ...}` for `coll`."""
    fields = list(coll.fields)
    if coll.timestamps:
        fields += [Field("createdAt", FieldType.DATE), Field("updatedAt", FieldType.DATE)]
    schema: dict[str, Any] = {"bsonType": "object"}
    if coll.description:
        schema["description"] = coll.description
    schema.update(_object_body(fields, coll.additional_fields, top_level=True))
    return {"$jsonSchema": schema}


def _object_body(fields: list[Field], additional: bool, *, top_level: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {}
    required = [f.name for f in fields if f.required]
    if required:
        body["required"] = required
    properties = {f.name: field_schema(f) for f in fields}
    if not additional and top_level and "_id" not in properties:
        properties = {"_id": {}, **properties}  # with additionalProperties false, _id must be listed
    if properties:
        body["properties"] = properties
    if not additional:
        body["additionalProperties"] = False
    return body


def field_schema(fld: Field) -> dict[str, Any]:
    if fld.type is FieldType.ANY:
        schema: dict[str, Any] = {}
        if fld.description:
            schema["description"] = fld.description
        return schema
    types = list(_BSON_TYPES[fld.type])
    if fld.nullable:
        types.append("null")
    schema = {"bsonType": types[0] if len(types) == 1 else types}
    if fld.description:
        schema["description"] = fld.description
    if fld.enum is not None:
        schema["enum"] = [*thaw(fld.enum), *([None] if fld.nullable and None not in fld.enum else [])]
    for option, key in (
        ("minimum", "minimum"),
        ("maximum", "maximum"),
        ("min_length", "minLength"),
        ("max_length", "maxLength"),
        ("pattern", "pattern"),
        ("min_items", "minItems"),
        ("max_items", "maxItems"),
    ):
        value = getattr(fld, option)
        if value is not None:
            schema[key] = value
    if fld.unique_items:
        schema["uniqueItems"] = True
    if fld.type is FieldType.OBJECT and (fld.fields or not fld.additional_fields):
        schema.update(_object_body(list(fld.fields), fld.additional_fields))
    if fld.type is FieldType.ARRAY and fld.items is not None:
        schema["items"] = field_schema(fld.items)
    if fld.type is FieldType.MAP and fld.values is not None:
        schema["additionalProperties"] = field_schema(fld.values)
    return schema
