"""`records.encode`, a job record as JSON (pure): orjson where it can, and what it stores is what
`json.dumps(record, default=str)` stored before it (values JSON has no type for as their text),
checked by value after parsing; a record that neither can encode (keys JSON cannot name, a value that
contains itself) is still stored, the field that cannot be as text, since an exception here would
fail the acknowledging flush the record goes with."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import uuid
from typing import Any

import pytest

from bootstrap.jobs.records import encode


@dataclasses.dataclass
class Point:
    x: int = 1


class Name(str):
    pass


VALUES: dict[str, Any] = {
    "big int": 2**70,
    "big int inside": [1, {"n": -(2**65)}],
    "big int key": {2**70: 1},
    "non-str keys": {1: "a", 2.5: "b", False: "c", None: "d"},
    "naive datetime": datetime.datetime(2026, 1, 2, 3, 4, 5),
    "aware datetime": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    "date": datetime.date(2026, 1, 2),
    "time": datetime.time(1, 2, 3),
    "dataclass": Point(),
    "uuid": uuid.UUID(int=1),
    "decimal": decimal.Decimal("1.5"),
    "set": {1},
    "bytes": b"ab",
    "tuple": (1, "2"),
    "str subclass": Name("n"),
    "lone surrogate": "\ud800",
    "unicode": "é ✓",
}


@pytest.mark.parametrize("name", list(VALUES))
def test_a_record_is_stored_as_json_dumps_with_default_str_stored_it(name: str) -> None:
    record = {"id": "j-1", "kwargs": {"value": VALUES[name]}, "result": None}
    assert json.loads(encode(record)) == json.loads(json.dumps(record, default=str))


def circular() -> list[Any]:
    found: list[Any] = []
    found.append(found)
    return found


def deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value", [{(1, 2): "tuple key"}, circular(), deep(100_000)], ids=["tuple key", "circular", "deep"]
)
def test_a_record_neither_encoder_can_write_is_stored_with_that_field_as_text(value: Any) -> None:
    record = {"id": "j-2", "task": "t", "kwargs": {"bad": value}, "labels": {"attempt": 1}, "result": 3}
    stored = json.loads(encode(record))
    assert stored["id"] == "j-2" and stored["task"] == "t" and stored["result"] == 3
    assert stored["labels"] == {"attempt": 1}
    assert isinstance(stored["kwargs"], str) and stored["kwargs"].startswith("not JSON")
    assert len(stored["kwargs"]) < 300
