"""Dotted field paths resolved against a model, as MongoDB writes them: `sender.domain`,
`actions.0.order` (also `actions.$.order`, `actions.$[].order`), `deltaLinks.inbox` (a map key).

Updates validate each `$set` value against the type found at its path, and filters cast strings
to ObjectIds and dates where the path says so.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Annotated, Any

import bson
from pydantic import BaseModel, TypeAdapter

_FREE: Any = Any


@dataclass(frozen=True)
class Slot:
    """What may stand at a path: its annotation (Any in free-form parts) and whether the field
    there is required (then it may not be removed)."""

    path: str
    annotation: Any
    required: bool = False

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.annotation)

    @property
    def free(self) -> bool:
        return self.annotation is _FREE

    def convert(self, value: Any) -> Any:
        """`value` validated (with casting) and made BSON-ready; pydantic's ValidationError if not."""
        if self.free:
            return value
        from bootstrap.models.document import to_bson

        return to_bson(self.adapter.validate_python(value))

    @cached_property
    def scalar(self) -> str | None:
        """'objectId' or 'date' when the values here (or the elements of an array here) are
        ObjectIds or dates: the kinds a filter casts strings to."""
        base = _strip(self.annotation)
        if typing.get_origin(base) is list:
            base = _strip(typing.get_args(base)[0])
        if base is bson.ObjectId:
            return "objectId"
        if base is dt.datetime:
            return "date"
        return None


class PathError(ValueError):
    """A path that the model does not declare (or that reaches into a value that has no fields)."""


def _strip(annotation: Any) -> Any:
    """The type under Annotated[...] and `| None`."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin is typing.Union or origin is types.UnionType:
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def field_annotation(model: type[BaseModel], attr: str) -> Any:
    """The field's annotation with its constraints (Annotated metadata), as declared."""
    info = model.model_fields[attr]
    metadata = [m for m in info.metadata if type(m) is not object]  # not Document's default marker
    return Annotated[(info.annotation, *metadata)] if metadata else info.annotation


def resolve(model: type[BaseModel], path: str) -> Slot:
    """The slot at `path` (MongoDB's field names, dotted) in documents of `model`; PathError when
    the model does not declare it. Cached per model and path shape (`a.0.b` and `a.1.b` alike)."""
    shape = ".".join("0" if step.isdigit() else step for step in path.split("."))
    return _resolve(model, shape)


@lru_cache(maxsize=4096)
def _resolve(model: type[BaseModel], path: str) -> Slot:
    current: Any = model
    required = False
    steps = path.split(".")
    for number, step in enumerate(steps):
        base = _strip(current)
        where = ".".join(steps[:number]) or model.__name__
        if _is_model(base):
            attributes: dict[str, str] = getattr(base, "__attributes__", {})
            attr = attributes.get(step)
            if attr is None:
                if base.model_config.get("extra") == "forbid":
                    raise PathError(f"'{step}' is not a field of {where} (undeclared fields are not allowed)")
                return Slot(path, _FREE)
            current, required = field_annotation(base, attr), base.model_fields[attr].is_required()
        elif typing.get_origin(base) is list:
            if not (step.isdigit() or step == "$" or (step.startswith("$[") and step.endswith("]"))):
                raise PathError(f"'{step}' in {path}: {where} is an array (expected an index, $ or $[])")
            current, required = typing.get_args(base)[0], False
        elif typing.get_origin(base) is dict:
            current, required = typing.get_args(base)[1], False
        elif base is Any:
            return Slot(path, _FREE)
        else:
            raise PathError(f"'{step}' in {path}: {where} has no fields")
    if _strip(current) is Any:
        return Slot(path, _FREE, required)
    return Slot(path, current, required)
