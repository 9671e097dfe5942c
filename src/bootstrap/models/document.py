"""Base classes of the generated models: `Document` (one per collection) and `Subdocument` (an
object field with declared fields), plus what generated classes declare with: defaults and
references.

Presence matters in MongoDB: an optional field that is absent differs from one that is null. A
model writes the fields that were given, those with a declared default (Mongoose writes defaults
too) and its `_id`; an optional field left out reads as None and is not written (`to_document`).
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Generic, Self, TypeVar

import bson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError, PydanticUndefined

from bootstrap.models.kinds import ObjectId, now

__all__ = ["ConfigDict", "Document", "Field", "Reference", "Subdocument", "copy_of", "default", "now"]

_SPEC_DEFAULT = object()  # FieldInfo metadata: the field has a declared default, written on insert
_CAST = object()  # FieldInfo metadata: the declared default is cast to the field's type once
_REQUIRED = object()  # FieldInfo metadata: required in the validator, though a new model has a default
_READING = "bootstrap.read"  # validation context of `from_document`: a stored document, checked as stored
READ_CONTEXT = {_READING: True}  # for every read of stored documents (collection.read_all too)


def default(
    value: Any = PydanticUndefined,
    *,
    factory: Callable[[], Any] | None = None,
    validate: bool = False,
    name: str | None = None,
    required: bool = False,
) -> Any:
    """A declared default (`default:` in the spec): applied when the field is not given, and
    written. `validate` casts it to the field's type once, when the class is made (an ISO string
    to a date, an int to a double, dicts to subdocuments); `name` is the field's name in MongoDB
    when the attribute is named otherwise; `required`: the validator requires the field, so a stored
    document without it is refused by `from_document` as the server refuses it (the default is for
    new models)."""
    make: Any = Field  # one call for every combination of options (Field's overloads split them)
    info = make(default=value, default_factory=factory, validation_alias=name, serialization_alias=name)
    info.metadata.append(_SPEC_DEFAULT)
    if validate:
        info.metadata.append(_CAST)
    if required:
        info.metadata.append(_REQUIRED)
    return info


def copy_of(value: Any) -> Callable[[], Any]:
    """A factory for a mutable default (a list or dict declared in the spec): a fresh copy each time."""
    return lambda: copy.deepcopy(value)


class _Model(BaseModel):
    """What documents and subdocuments share: validation on assignment, presence tracking,
    MongoDB names, conversion to a BSON-ready dict."""

    model_config = ConfigDict(
        validate_assignment=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        protected_namespaces=(),
        extra="allow",
    )

    __spec_defaults__: ClassVar[frozenset[str]] = frozenset()
    __required_names__: ClassVar[tuple[str, ...]] = ()  # MongoDB names required although defaulted
    __mongo_names__: ClassVar[dict[str, str]] = {}  # attribute -> field name in MongoDB
    __attributes__: ClassVar[dict[str, str]] = {}  # field name in MongoDB -> attribute

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.model_fields
        cls.__mongo_names__ = {attr: info.serialization_alias or attr for attr, info in fields.items()}
        cls.__attributes__ = {name: attr for attr, name in cls.__mongo_names__.items()}
        cls.__spec_defaults__ = frozenset(attr for attr, info in fields.items() if _SPEC_DEFAULT in info.metadata)
        cls.__required_names__ = tuple(
            cls.__mongo_names__[attr] for attr, info in fields.items() if _REQUIRED in info.metadata
        )
        cast = [attr for attr, info in fields.items() if _CAST in info.metadata]
        if cast:
            _cast_defaults(cls, cast)

    def to_document(self) -> dict[str, Any]:
        """The document to write: MongoDB names, BSON-ready values (ObjectId, datetime,
        Decimal128), the fields given or defaulted (and undeclared ones kept) and nothing else.
        Written out by hand: several times faster than `model_dump(exclude_unset=True)`."""
        given, defaults, names = self.__pydantic_fields_set__, self.__spec_defaults__, self.__mongo_names__
        document: dict[str, Any] = {}
        for attr, value in self.__dict__.items():
            if attr in given or attr in defaults:
                document[names[attr]] = value if type(value) in _AS_IS else to_bson(value)
        extra = self.__pydantic_extra__
        if extra:
            for name, value in extra.items():
                document[name] = to_bson(value)
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Self:
        """A model of a document as the driver decoded it, checked exactly as the collection's
        validator checks it (pydantic's strict mode: no casting; fields by their MongoDB names
        only, so an undeclared `from_` or `id` stays undeclared); raises pydantic's
        ValidationError naming each field."""
        return cls.model_validate(document, strict=True, by_alias=True, by_name=False, context=READ_CONTEXT)

    @model_validator(mode="before")
    @classmethod
    def _stored_fields_present(cls, data: Any, info: ValidationInfo) -> Any:
        """Reading a stored document (`from_document`), this one or a subdocument of it: a field the
        validator requires must be there, though a new model would take its default."""
        if cls.__required_names__ and info.context and info.context.get(_READING) and isinstance(data, Mapping):
            missing = [name for name in cls.__required_names__ if name not in data]
            if missing:
                raise PydanticCustomError(
                    "missing", "required field(s) {names} missing (a default applies to new documents only)",
                    {"names": ", ".join(missing)},
                )  # fmt: skip
        return data


_AS_IS = frozenset({str, int, float, bool, type(None), bson.ObjectId, dt.datetime, bson.Int64, bson.Decimal128})


def to_bson(value: Any) -> Any:
    """A model's value as the driver takes it: subdocuments as dicts, Decimal as Decimal128."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    if isinstance(value, _Model):
        return value.to_document()
    if kind is list or kind is tuple:
        return [to_bson(item) for item in value]
    if isinstance(value, Mapping):
        return {key: to_bson(item) for key, item in value.items()}
    if isinstance(value, decimal.Decimal):
        return bson.Decimal128(value)
    return value


def _cast_defaults(cls: type[_Model], attrs: list[str]) -> None:
    """Declared defaults as the field's type holds them, cast once (in lax mode: strict reads
    would refuse an ISO string), then copied for each new model."""
    from bootstrap.models.paths import field_annotation

    for attr in attrs:
        info = cls.model_fields[attr]
        raw = info.get_default(call_default_factory=True, validated_data={})
        value = TypeAdapter(field_annotation(cls, attr)).validate_python(raw)
        info.metadata.remove(_CAST)
        info.default, info.default_factory = PydanticUndefined, _copier(value)
    cls.model_rebuild(force=True)


def _copier(value: Any) -> Callable[[], Any]:
    if isinstance(value, str | int | float | bool | bson.ObjectId | dt.datetime | decimal.Decimal) or value is None:
        return lambda: value  # immutable
    return lambda: copy.deepcopy(value)


class Subdocument(_Model):
    """An object field with declared fields."""


class Document(_Model):
    """The documents of one collection. `id` is `_id`, an ObjectId made when the model is built
    (as Mongoose does), so a document can be referred to before it is inserted."""

    __collection__: ClassVar[str] = ""
    __timestamps__: ClassVar[bool] = False

    id: ObjectId = Field(default_factory=bson.ObjectId, validation_alias="_id", serialization_alias="_id")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.__spec_defaults__ = cls.__spec_defaults__ | {"id"}

    def missing(self) -> list[str]:
        """Fields of the model this instance does not hold (left out by a projection)."""
        return [attr for attr in type(self).model_fields if attr not in self.__dict__]


S = TypeVar("S", bound=Document)
T = TypeVar("T", bound=Document)


class Reference(Generic[S, T]):
    """A `ref:` field of `source` models (a dotted path of attributes; arrays and maps on the way
    are looked into) holding ids of `target` documents. Generated as `<Model>Refs.<field>`."""

    def __init__(self, source: type[S], path: str, target: type[T]) -> None:
        self.source, self.path, self.target = source, path, target
        self.steps = tuple(path.split("."))

    def __repr__(self) -> str:
        return f"Reference({self.source.__name__}.{self.path} -> {self.target.__name__})"

    def ids(self, documents: Iterable[S]) -> list[bson.ObjectId]:
        """The distinct ids the documents hold in this field, in order of appearance."""
        found: dict[bson.ObjectId, None] = {}
        for document in documents:
            _collect(document, self.steps, found)
        return list(found)


def _collect(value: Any, steps: tuple[str, ...], found: dict[bson.ObjectId, None]) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _collect(item, steps, found)
    elif isinstance(value, dict):  # a map: its values
        for item in value.values():
            _collect(item, steps, found)
    elif isinstance(value, BaseModel) and steps:
        _collect(getattr(value, steps[0], None), steps[1:], found)
    elif isinstance(value, bson.ObjectId) and not steps:
        found[value] = None
