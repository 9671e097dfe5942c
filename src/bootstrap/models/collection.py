"""Typed access to a collection, on pymongo's own clients: `ModelCollection` (sync, scripts) and
`AsyncModelCollection` (async, handlers and web apps), both thin over `_Core`, which does what
does not talk to the server: casting, defaults, timestamps, update and filter checks, reading
documents back into models.

Every check happens before the command is sent; a problem raises errors.InvalidDocument naming
each field path.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import bson
from bson.codec_options import CodecOptions
from pydantic import ValidationError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.results import UpdateResult

from bootstrap.errors import InvalidDocument
from bootstrap.models.document import READ_CONTEXT, Document
from bootstrap.models.encodable import bson_problems
from bootstrap.models.kinds import now
from bootstrap.models.paths import PathError, Slot, resolve

D = TypeVar("D", bound=Document)
Filter = Mapping[str, Any]
Sort = Sequence[tuple[str, int]]

_CASTING_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})
_LIST_OPERATORS = frozenset({"$in", "$nin", "$all"})
_LOGICAL = frozenset({"$and", "$or", "$nor"})


@contextmanager
def bulk() -> Iterator[None]:
    """Many models made at once: the cyclic garbage collector is paused meanwhile (it would walk
    every new model again and again; models hold no reference cycles). Nothing awaits inside."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def codec_options(given: CodecOptions[Any]) -> CodecOptions[dict[str, Any]]:
    """The database's codec options, decoding to plain dicts with naive dates: the models make
    them aware (the driver's own aware decoding costs more)."""
    options: CodecOptions[dict[str, Any]] = given.with_options(document_class=dict, tz_aware=False)
    return options


def problems_of(error: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """(field path, message) for each of pydantic's errors, paths dotted as in MongoDB."""
    found = []
    for item in error.errors(include_url=False):
        path = ".".join([prefix, *map(str, item["loc"])] if prefix else map(str, item["loc"]))
        shown = repr(item.get("input"))
        message = item["msg"] + (f" (got {shown[:60]})" if item["type"] != "missing" else "")
        found.append((path, message))
    return found


class _Core(Generic[D]):
    """Everything about a typed collection except sending commands."""

    def __init__(self, model: type[D]) -> None:
        if not getattr(model, "__collection__", ""):
            raise TypeError(f"{model.__name__} is not a collection's model (no __collection__)")
        self.model = model
        self.name = model.__collection__
        self.codec: CodecOptions[Any] = CodecOptions()  # the collection's, set by each kind (sync, async)
        self.timestamps = model.__timestamps__

    # --- writes ---------------------------------------------------------------------------------

    def new(self, document: D | Mapping[str, Any]) -> D:
        if isinstance(document, self.model):
            return document
        if isinstance(document, Document):
            raise TypeError(f"expected a {self.model.__name__}, got a {type(document).__name__}")
        try:
            return self.model.model_validate(document)
        except ValidationError as exc:
            raise InvalidDocument(self.model.__name__, problems_of(exc)) from None

    def for_insert(self, document: D | Mapping[str, Any], moment: dt.datetime) -> tuple[D, dict[str, Any]]:
        """The model (built from a mapping if need be) with its timestamps set, and what to send."""
        model = self.new(document)
        if self.timestamps:
            given = model.__pydantic_fields_set__
            for name in ("createdAt", "updatedAt"):
                if name not in given:  # set on insert unless the application set it
                    model.__dict__[name] = moment
                    given.add(name)
        return model, self.encodable(model.to_document())

    def encodable(self, document: dict[str, Any]) -> dict[str, Any]:
        """`document`, once it is known BSON can hold all of it (see models.encodable)."""
        problems = bson_problems(document, self.codec)
        if problems:
            raise InvalidDocument(self.model.__name__, problems)
        return document

    def for_replace(self, document: D) -> dict[str, Any]:
        missing = document.missing()
        if missing:
            problems = [(name, "not loaded (projection): cannot replace the document") for name in missing]
            raise InvalidDocument(self.model.__name__, problems)
        if self.timestamps:
            document.updatedAt = now()  # type: ignore[attr-defined]
        return self.encodable(document.to_document())

    def slot(self, path: str) -> Slot:
        try:
            return resolve(self.model, path)
        except PathError as exc:
            raise InvalidDocument(self.model.__name__, [(path, str(exc))]) from None

    def update(
        self, set: Mapping[str, Any] | None, unset: Iterable[str], upsert: bool, query: Filter | None = None
    ) -> dict[str, Any]:
        """An update document from `$set` values (checked against the field at each path) and
        `$unset` paths (required fields cannot be removed), with `updatedAt` when timestamps are
        on, and on upsert `createdAt` and the declared defaults in `$setOnInsert` (except for the
        fields the update or the query's equalities give)."""
        if isinstance(unset, str):
            unset = [unset]
        sets: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        for path, value in (set or {}).items():
            slot = self.slot(path)
            try:
                sets[path] = slot.convert(value)
            except ValidationError as exc:
                problems += problems_of(exc, path)
        removed = list(unset)
        for path in removed:
            if self.slot(path).required:
                problems.append((path, "is required: it cannot be removed"))
        if problems:
            raise InvalidDocument(self.model.__name__, problems)
        self.encodable(sets)
        if not sets and not removed:
            raise InvalidDocument(self.model.__name__, [("", "nothing to update (give set or unset)")])
        moment = now()
        if self.timestamps and "updatedAt" not in sets and "updatedAt" not in removed:
            sets["updatedAt"] = moment
        update: dict[str, Any] = {}
        if sets:
            update["$set"] = sets
        if removed:
            update["$unset"] = dict.fromkeys(removed, "")
        if upsert:
            given = [key for key in (query or {}) if not key.startswith("$")]
            on_insert = self._insert_defaults([*sets, *removed, *given], moment)
            if on_insert:
                update["$setOnInsert"] = on_insert
        return update

    def _insert_defaults(self, touched: list[str], moment: dt.datetime) -> dict[str, Any]:
        """What an upsert that inserts must add, as Mongoose does: createdAt and declared defaults
        (not for fields the update writes itself, which would conflict)."""

        def free(name: str) -> bool:
            return not any(p == name or p.startswith(f"{name}.") or name.startswith(f"{p}.") for p in touched)

        values: dict[str, Any] = {}
        if self.timestamps and free("createdAt"):
            values["createdAt"] = moment
        fields = self.model.model_fields
        for attr in sorted(self.model.__spec_defaults__ - {"id"}):
            name = self.model.__mongo_names__[attr]
            if free(name):
                value = fields[attr].get_default(call_default_factory=True, validated_data={})
                values[name] = self.slot(name).convert(value)
        return values

    # --- filters ----------------------------------------------------------------------------------

    def filter(self, query: Filter | None) -> dict[str, Any]:
        """`query` with strings cast to ObjectIds and dates where the field holds those (as
        Mongoose casts): `{"userId": "65a1..."}` finds the documents whose userId is that id."""
        if not query:
            return {}
        out: dict[str, Any] = {}
        for key, value in query.items():
            if key in _LOGICAL and isinstance(value, list | tuple):
                out[key] = [self.filter(item) for item in value]
            elif key.startswith("$"):
                out[key] = value
            else:
                out[key] = self._cast_condition(key, value)
        return out

    def _cast_condition(self, path: str, condition: Any) -> Any:
        try:
            slot = resolve(self.model, path)
        except PathError:
            return condition  # not declared: the server decides (it may be an extra field)
        if slot.scalar is None:
            return condition
        if isinstance(condition, Mapping) and condition and all(str(k).startswith("$") for k in condition):
            cast: dict[str, Any] = {}
            for op, operand in condition.items():
                if op in _CASTING_OPERATORS:
                    cast[op] = self._cast(slot, path, operand)
                elif op in _LIST_OPERATORS and isinstance(operand, list | tuple):
                    cast[op] = [self._cast(slot, path, item) for item in operand]
                else:
                    cast[op] = operand
            return cast
        return self._cast(slot, path, condition)

    def _cast(self, slot: Slot, path: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if slot.scalar == "objectId":
            if bson.ObjectId.is_valid(value) and len(value) == 24:
                return bson.ObjectId(value)
            problem = f"{value!r} is not an ObjectId (24 hexadecimal digits)"
            raise InvalidDocument(self.model.__name__, [(path, problem)])
        from bootstrap.models.kinds import parse_date

        try:
            return parse_date(value)
        except ValueError:
            raise InvalidDocument(self.model.__name__, [(path, f"{value!r} is not an ISO 8601 date")]) from None

    # --- reads ----------------------------------------------------------------------------------

    def projection(self, fields: Sequence[str] | None) -> dict[str, int] | None:
        if fields is None:
            return None
        for name in fields:
            if name not in self.model.__attributes__:
                raise InvalidDocument(self.model.__name__, [(name, "not a top-level field of the model")])
        return dict.fromkeys(fields, 1)

    def read_all(self, documents: list[dict[str, Any]], partial: bool) -> list[D]:
        if partial:
            return [self.read(raw, True) for raw in documents]
        # pydantic-core's validator called directly (what from_document does, minus a Python layer
        # per document); on a failure, documents are read one by one for the message.
        validate = self.model.__pydantic_validator__.validate_python
        with bulk():
            try:
                context = READ_CONTEXT
                return [validate(raw, strict=True, by_alias=True, by_name=False, context=context) for raw in documents]
            except ValidationError:
                pass
        return [self.read(raw, partial) for raw in documents]

    def read(self, raw: Mapping[str, Any], partial: bool) -> D:
        try:
            if partial:
                return self._partial(raw)
            return self.model.from_document(raw)
        except ValidationError as exc:
            where = f"{self.model.__name__} {raw.get('_id')!s}"
            raise InvalidDocument(where, problems_of(exc)) from None

    def _partial(self, raw: Mapping[str, Any]) -> D:
        """A model holding only the projected fields (the others are absent, not defaulted)."""
        model = self.model
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name, value in raw.items():
            attr = model.__attributes__.get(name)
            if attr is None:
                extra[name] = value
            else:
                adapter = resolve(model, name).adapter
                values[attr] = adapter.validate_python(value, strict=True, by_alias=True, by_name=False)
        built = model.__new__(model)
        object.__setattr__(built, "__dict__", values)
        object.__setattr__(built, "__pydantic_fields_set__", set(values))
        object.__setattr__(built, "__pydantic_extra__", extra if model.model_config.get("extra") == "allow" else None)
        object.__setattr__(built, "__pydantic_private__", None)
        return built


class ModelCollection(_Core[D]):
    """A collection's documents as `model` instances, on a synchronous pymongo Database."""

    def __init__(self, model: type[D], db: Database[Any]) -> None:
        super().__init__(model)
        self.raw: Collection[dict[str, Any]] = db.get_collection(
            self.name, codec_options=codec_options(db.codec_options)
        )
        self.codec = self.raw.codec_options

    def insert_one(self, document: D | Mapping[str, Any]) -> D:
        model, raw = self.for_insert(document, now())
        self.raw.insert_one(raw)
        return model

    def insert_many(self, documents: Iterable[D | Mapping[str, Any]], *, ordered: bool = True) -> list[D]:
        moment = now()
        with bulk():
            prepared = [self.for_insert(document, moment) for document in documents]
        if prepared:
            self.raw.insert_many([raw for _, raw in prepared], ordered=ordered)
        return [model for model, _ in prepared]

    def find(
        self,
        filter: Filter | None = None,
        *,
        projection: Sequence[str] | None = None,
        sort: Sort | None = None,
        skip: int = 0,
        limit: int = 0,
    ) -> list[D]:
        cursor = self.raw.find(self.filter(filter), self.projection(projection), skip=skip, limit=limit, sort=sort)
        return self.read_all(cursor.to_list(None), projection is not None)

    def find_one(self, filter: Filter | None = None, *, projection: Sequence[str] | None = None) -> D | None:
        raw = self.raw.find_one(self.filter(filter), self.projection(projection))
        return None if raw is None else self.read(raw, projection is not None)

    def get(self, id: bson.ObjectId | str) -> D | None:
        return self.find_one({"_id": id})

    def update_one(
        self, filter: Filter, *, set: Mapping[str, Any] | None = None, unset: Iterable[str] = (), upsert: bool = False
    ) -> UpdateResult:
        return self.raw.update_one(self.filter(filter), self.update(set, unset, upsert, filter), upsert=upsert)

    def update_many(
        self, filter: Filter, *, set: Mapping[str, Any] | None = None, unset: Iterable[str] = (), upsert: bool = False
    ) -> UpdateResult:
        return self.raw.update_many(self.filter(filter), self.update(set, unset, upsert, filter), upsert=upsert)

    def replace_one(self, document: D, *, upsert: bool = False) -> UpdateResult:
        return self.raw.replace_one({"_id": document.id}, self.for_replace(document), upsert=upsert)

    def delete_one(self, filter: Filter) -> int:
        return self.raw.delete_one(self.filter(filter)).deleted_count

    def delete_many(self, filter: Filter) -> int:
        return self.raw.delete_many(self.filter(filter)).deleted_count

    def count(self, filter: Filter | None = None) -> int:
        return self.raw.count_documents(self.filter(filter))


class AsyncModelCollection(_Core[D]):
    """A collection's documents as `model` instances, on an asynchronous pymongo AsyncDatabase."""

    def __init__(self, model: type[D], db: AsyncDatabase[Any]) -> None:
        super().__init__(model)
        self.raw: AsyncCollection[dict[str, Any]] = db.get_collection(
            self.name, codec_options=codec_options(db.codec_options)
        )
        self.codec = self.raw.codec_options

    async def insert_one(self, document: D | Mapping[str, Any]) -> D:
        model, raw = self.for_insert(document, now())
        await self.raw.insert_one(raw)
        return model

    async def insert_many(self, documents: Iterable[D | Mapping[str, Any]], *, ordered: bool = True) -> list[D]:
        moment = now()
        with bulk():
            prepared = [self.for_insert(document, moment) for document in documents]
        if prepared:
            await self.raw.insert_many([raw for _, raw in prepared], ordered=ordered)
        return [model for model, _ in prepared]

    async def find(
        self,
        filter: Filter | None = None,
        *,
        projection: Sequence[str] | None = None,
        sort: Sort | None = None,
        skip: int = 0,
        limit: int = 0,
    ) -> list[D]:
        cursor = self.raw.find(self.filter(filter), self.projection(projection), skip=skip, limit=limit, sort=sort)
        return self.read_all(await cursor.to_list(None), projection is not None)

    async def find_one(self, filter: Filter | None = None, *, projection: Sequence[str] | None = None) -> D | None:
        raw = await self.raw.find_one(self.filter(filter), self.projection(projection))
        return None if raw is None else self.read(raw, projection is not None)

    async def get(self, id: bson.ObjectId | str) -> D | None:
        return await self.find_one({"_id": id})

    async def update_one(
        self, filter: Filter, *, set: Mapping[str, Any] | None = None, unset: Iterable[str] = (), upsert: bool = False
    ) -> UpdateResult:
        return await self.raw.update_one(self.filter(filter), self.update(set, unset, upsert, filter), upsert=upsert)

    async def update_many(
        self, filter: Filter, *, set: Mapping[str, Any] | None = None, unset: Iterable[str] = (), upsert: bool = False
    ) -> UpdateResult:
        return await self.raw.update_many(self.filter(filter), self.update(set, unset, upsert, filter), upsert=upsert)

    async def replace_one(self, document: D, *, upsert: bool = False) -> UpdateResult:
        return await self.raw.replace_one({"_id": document.id}, self.for_replace(document), upsert=upsert)

    async def delete_one(self, filter: Filter) -> int:
        return (await self.raw.delete_one(self.filter(filter))).deleted_count

    async def delete_many(self, filter: Filter) -> int:
        return (await self.raw.delete_many(self.filter(filter))).deleted_count

    async def count(self, filter: Filter | None = None) -> int:
        return await self.raw.count_documents(self.filter(filter))
