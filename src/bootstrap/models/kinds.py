"""The spec's field kinds as pydantic annotations, with the semantics of the collection's
`$jsonSchema` validator (engine/mongo/validator.py), which is the reference.

Two modes. Validating a document as the driver decoded it (`Document.from_document`, every read:
pydantic's strict mode) is exact: a value is accepted when the validator would accept it, nothing
is converted. Building a model in Python (`EmailEvent(...)`, `model_validate`, updates: lax mode)
also casts, as Mongoose does: a string of 24 hexadecimal digits becomes an ObjectId, an ISO 8601
string a date, an int a double where the field is a double. Whatever is accepted is what the
validator accepts once written.

Dates are kept timezone-aware in UTC, to the millisecond (what BSON stores). Decimals are held as
`decimal.Decimal` and written as Decimal128.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Final, TypeAlias

import bson
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, Strict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_HEX = re.compile(r"[0-9a-fA-F]{24}")
UTC = dt.UTC


def _error(kind: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, context or None)


def now() -> dt.datetime:
    """The current time as BSON stores it: UTC, whole milliseconds."""
    moment = dt.datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class _Kind:
    """A kind with two schemas: strict (pydantic's strict mode, which `from_document` and every
    read use: exactly what the validator accepts, nothing converted) and lax (building models in
    Python: the same, plus casting)."""

    json_schema: ClassVar[dict[str, Any]] = {}

    def strict(self) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(lambda value: self.validate(value, False))

    def validate(self, value: Any, cast: bool) -> Any:
        raise NotImplementedError

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.lax_or_strict_schema(
            lax_schema=core_schema.no_info_plain_validator_function(lambda value: self.validate(value, True)),
            strict_schema=self.strict(),
            serialization=self._serialization(),
        )

    def _serialization(self) -> core_schema.SerSchema | None:
        return None

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return dict(self.json_schema)


class _ObjectId(_Kind):
    json_schema: ClassVar[dict[str, Any]] = {"type": "string", "pattern": "^[0-9a-fA-F]{24}$"}

    def strict(self) -> core_schema.CoreSchema:
        return core_schema.is_instance_schema(bson.ObjectId)  # native: every read goes through it

    def validate(self, value: Any, cast: bool) -> bson.ObjectId:
        if isinstance(value, bson.ObjectId):
            return value
        if isinstance(value, str) and cast:
            if _HEX.fullmatch(value):
                return bson.ObjectId(value)
            raise _error("object_id", "Input should be an ObjectId or a string of 24 hexadecimal digits")
        raise _error("object_id", "Input should be an ObjectId")

    def _serialization(self) -> core_schema.SerSchema:
        return core_schema.plain_serializer_function_ser_schema(str, when_used="json")


# A naive UTC date made aware by arithmetic: `_EPOCH + (value - _NAIVE_EPOCH)` is exact (timedeltas
# are whole microseconds) and many times cheaper than `value.replace(tzinfo=UTC)`, whose keyword
# call dominated reading documents (measured: ~0.2 us against ~2.4 us per date).
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)


def _utc_ms(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not UTC:
        value = _EPOCH + (value - _NAIVE_EPOCH) if value.tzinfo is None else value.astimezone(UTC)
    if value.microsecond % 1000:
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def _read_date(value: Any) -> dt.datetime:
    """A date as the driver decodes it (naive, meaning UTC: decoding them aware costs the driver
    more than this), made aware."""
    if type(value) is dt.datetime:
        tz = value.tzinfo
        if tz is None:
            return _EPOCH + (value - _NAIVE_EPOCH)
        return value if tz is UTC else value.astimezone(UTC)
    if isinstance(value, dt.datetime):
        return _utc_ms(value)
    raise _error("date", "Input should be a date (datetime)")


def parse_date(text: str) -> dt.datetime:
    """An ISO 8601 date or date-time (`Z` for UTC; without a zone, UTC) as BSON stores it."""
    return _utc_ms(dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")))


class _Date(_Kind):
    json_schema: ClassVar[dict[str, Any]] = {"type": "string", "format": "date-time"}

    def strict(self) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(_read_date)

    def validate(self, value: Any, cast: bool) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return _utc_ms(value)
        if isinstance(value, str) and cast:
            try:
                return parse_date(value)
            except ValueError:
                raise _error("date", "Input should be a date or an ISO 8601 date string") from None
        raise _error("date", "Input should be a date (datetime)")


def _int_in(value: int, bounds: tuple[int, int], kind: str) -> int:
    if not bounds[0] <= value <= bounds[1]:
        raise _error("int_range", f"Input should fit in a {kind}")
    return value


class _Number(_Kind):
    """`number`: any numeric BSON type (int, long, double, decimal). Decimals read as floats."""

    json_schema: ClassVar[dict[str, Any]] = {"type": "number"}

    def validate(self, value: Any, cast: bool) -> int | float:
        kind = type(value)
        if kind is float:
            return value  # type: ignore[no-any-return]
        if kind is int or (isinstance(value, int) and kind is not bool):
            return _int_in(value, INT64, "64-bit integer")
        if isinstance(value, float):
            return float(value)
        if isinstance(value, bson.Decimal128):
            return float(value.to_decimal())
        raise _error("number", "Input should be a number")


class _Integer(_Kind):
    """`int` (32 bits, BSON int only) or `long` (64 bits, BSON int or long)."""

    json_schema: ClassVar[dict[str, Any]] = {"type": "integer"}

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.bounds = INT32 if bits == 32 else INT64
        self.label = f"{bits}-bit integer"

    def validate(self, value: Any, cast: bool) -> int:
        kind = type(value)
        if kind is int or (self.bits == 64 and kind is bson.Int64):
            return _int_in(value, self.bounds, self.label)
        if cast and kind is not bool:
            # Casting: other int types (a long for an int field), and floats without a fraction.
            if isinstance(value, int):
                return _int_in(int(value), self.bounds, self.label)
            if isinstance(value, float) and value.is_integer():
                return _int_in(int(value), self.bounds, self.label)
        raise _error("int_type", f"Input should be a {self.label}")


class _Double(_Kind):
    json_schema: ClassVar[dict[str, Any]] = {"type": "number"}

    def strict(self) -> core_schema.CoreSchema:
        return core_schema.is_instance_schema(float)

    def validate(self, value: Any, cast: bool) -> float:
        if isinstance(value, float):
            return value
        if isinstance(value, int) and type(value) is not bool and cast:
            return float(value)
        raise _error("float_type", "Input should be a double (float)")


class _Decimal(_Kind):
    json_schema: ClassVar[dict[str, Any]] = {"type": "string", "format": "decimal"}

    def validate(self, value: Any, cast: bool) -> decimal.Decimal:
        if isinstance(value, bson.Decimal128):
            return value.to_decimal()
        if isinstance(value, decimal.Decimal):
            return _decimal128_safe(value)
        if cast and type(value) is not bool and isinstance(value, int | float | str):
            try:
                return _decimal128_safe(decimal.Decimal(str(value)))
            except decimal.InvalidOperation:
                pass
        raise _error("decimal_type", "Input should be a decimal (Decimal or Decimal128)")

    def _serialization(self) -> core_schema.SerSchema:
        return core_schema.plain_serializer_function_ser_schema(
            lambda value, info: bson.Decimal128(value) if info.mode == "python" else str(value),
            info_arg=True,
        )


def _decimal128_safe(value: decimal.Decimal) -> decimal.Decimal:
    try:
        bson.Decimal128(value)
    except (decimal.InvalidOperation, ValueError, TypeError):
        raise _error("decimal_type", "Input does not fit in a Decimal128") from None
    return value


# --- the kinds, as generated code names them ------------------------------------------------------

String: TypeAlias = Annotated[str, Strict()]
Bool: TypeAlias = Annotated[bool, Strict()]
Number: TypeAlias = Annotated[float, _Number()]
Int: TypeAlias = Annotated[int, _Integer(32)]
Long: TypeAlias = Annotated[int, _Integer(64)]
Double: TypeAlias = Annotated[float, _Double()]
Decimal: TypeAlias = Annotated[decimal.Decimal, _Decimal()]
Date: TypeAlias = Annotated[dt.datetime, _Date()]
ObjectId: TypeAlias = Annotated[bson.ObjectId, _ObjectId()]
Object: TypeAlias = dict[Annotated[str, Strict()], Any]  # an object with no declared fields


# --- constraints (Annotated metadata) -----------------------------------------------------------


class _After:
    """Metadata that checks a value after its kind accepted it."""

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))


class Text(_After):
    """String constraints: length in characters (code points, as MongoDB counts) and a regular
    expression searched anywhere in the value (not anchored, as in `$jsonSchema`)."""

    def __init__(self, *, min_length: int | None = None, max_length: int | None = None, pattern: str | None = None):
        self.min_length, self.max_length, self.pattern = min_length, max_length, pattern
        self._search: Callable[[str], Any] | None = re.compile(pattern).search if pattern is not None else None

    def check(self, value: str) -> str:
        if self.min_length is not None and len(value) < self.min_length:
            raise _error(
                "string_too_short", "String should have at least {min_length} characters", min_length=self.min_length
            )
        if self.max_length is not None and len(value) > self.max_length:
            raise _error(
                "string_too_long", "String should have at most {max_length} characters", max_length=self.max_length
            )
        if self._search is not None and self._search(value) is None:
            raise _error("string_pattern_mismatch", "String should match pattern '{pattern}'", pattern=self.pattern)
        return value


class Range(_After):
    """Numbers: inclusive bounds (`min`, `max`)."""

    def __init__(self, *, ge: float | None = None, le: float | None = None) -> None:
        self.ge, self.le = ge, le

    def check(self, value: Any) -> Any:
        if self.ge is not None and not value >= self.ge:
            raise _error("greater_than_equal", "Input should be greater than or equal to {ge}", ge=self.ge)
        if self.le is not None and not value <= self.le:
            raise _error("less_than_equal", "Input should be less than or equal to {le}", le=self.le)
        return value


class OneOf(_After):
    """A numeric enum: the value must equal one of these (numerically: 2 == 2.0, as in MongoDB)."""

    def __init__(self, *values: Any) -> None:
        self.values = values

    def check(self, value: Any) -> Any:
        if value is not None and not any(value == v and type(v) is not bool for v in self.values):
            raise _error("enum", "Input should be one of {expected}", expected=", ".join(map(repr, self.values)))
        return value


class Items(_After):
    """Arrays: how many elements, and whether they must be distinct (compared as MongoDB compares
    them: 1 and 1.0 are equal, true and 1 are not, embedded documents field by field in order)."""

    def __init__(self, *, min_items: int | None = None, max_items: int | None = None, unique: bool = False):
        self.min_items, self.max_items, self.unique = min_items, max_items, unique

    def check(self, value: list[Any]) -> list[Any]:
        if self.min_items is not None and len(value) < self.min_items:
            raise _error("too_short", "List should have at least {min_items} items", min_items=self.min_items)
        if self.max_items is not None and len(value) > self.max_items:
            raise _error("too_long", "List should have at most {max_items} items", max_items=self.max_items)
        if self.unique and len({comparable(item) for item in value}) != len(value):
            raise _error("unique_items", "List items should be distinct")
        return value


class _NotNull(_After):
    """An optional field that may be absent but not null (`nullable: false`)."""

    def check(self, value: Any) -> Any:
        if value is None:
            raise _error("not_null", "Input should not be null (the field may be left out instead)")
        return value


NOT_NULL: Final = _NotNull()


class Ref:
    """An ObjectId field that points into another collection (`ref:`); read by Document."""

    def __init__(self, collection: str) -> None:
        self.collection = collection

    def __repr__(self) -> str:
        return f"Ref({self.collection!r})"


def comparable(value: Any) -> Any:
    """A hashable key under which two values are equal exactly when MongoDB finds them equal."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, bson.Decimal128 | decimal.Decimal):
        number = value.to_decimal() if isinstance(value, bson.Decimal128) else value
        return ("number", number)
    if isinstance(value, Mapping):
        return ("object", tuple((k, comparable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("array", tuple(comparable(v) for v in value))
    to_document = getattr(value, "to_document", None)
    if to_document is not None:
        return comparable(to_document())
    if isinstance(value, str | bson.ObjectId | dt.datetime) or value is None:
        return (type(value).__name__, value)
    return ("other", repr(value))
