"""A job message read without pydantic (`message.parse`) is taken exactly as taskiq's TaskiqMessage
would take it: the same messages accepted, with the same values; the rest refused (pure)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from taskiq import TaskiqMessage

from bootstrap.errors import BootstrapError
from bootstrap.jobs.message import JobMessage, json_arguments, of, parse

# JSON values of every type, for the fields and their contents.
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
label_types = st.dictionaries(
    st.sampled_from(["attempt", "x"]), st.one_of(st.integers(1, 6), st.booleans(), values), max_size=2
)


def fields(base: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {**base, **overrides}


good = {"task_id": "j-1", "task_name": "t", "labels": {"attempt": "2"}, "args": [1], "kwargs": {"a": {"b": [1]}}}


def outcome(raw: bytes) -> tuple[str, Any]:
    """('ok', fields) or ('refused', the exception's type) for one reader."""
    try:
        message = parse(raw)
    except (ValidationError, ValueError, TypeError) as exc:
        return "refused", type(exc).__name__
    return "ok", (message.task_id, message.task_name, message.labels, message.args, message.kwargs)


def taskiq_outcome(raw: bytes) -> tuple[str, Any]:
    try:
        model = TaskiqMessage.model_validate_json(raw)
        model.parse_labels()
    except (ValidationError, ValueError, TypeError) as exc:
        return "refused", type(exc).__name__
    return "ok", (model.task_id, model.task_name, model.labels, model.args, model.kwargs)


@settings(max_examples=400)
@given(
    st.dictionaries(
        st.sampled_from(["task_id", "task_name", "labels", "args", "kwargs", "labels_types", "other"]),
        st.one_of(values, label_types),
    ),
    st.booleans(),
)
def test_any_message_is_taken_as_taskiq_takes_it(overrides: dict[str, Any], start_good: bool) -> None:
    raw = json.dumps(fields(good, **overrides) if start_good else overrides).encode()
    mine, theirs = outcome(raw), taskiq_outcome(raw)
    assert mine[0] == theirs[0], (raw, mine, theirs)
    if mine[0] == "ok":
        assert mine[1] == theirs[1]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"task_id":"j","task_name":"t","labels":{},"args":[' + b"9" * 30 + b'],"kwargs":{}}',  # beyond 64 bits
        b'{"task_id":"j","task_name":"t","labels":{"n":1.0},"labels_types":{"n":"2"},"args":[],"kwargs":{}}',
        b'{"task_id":"j","task_name":"t","labels":{},"labels_types":{"n":1.0},"args":[],"kwargs":{}}',
        b'{"task_id":"j","task_name":"t","labels":{"b":"dHJ1ZQ=="},"labels_types":{"b":6},"args":[],"kwargs":{}}',
        b'{"task_id":"j","task_id":"k","task_name":"t","labels":{},"args":[],"kwargs":{}}',  # repeated key
        b"[1, 2]",
        b'{"task_id":"j","task_name":"t","labels":{"n":NaN},"args":[Infinity],"kwargs":{}}',
        b"\xff",
        b'{"task_id":"j\\ud800","task_name":"t","labels":{},"args":[],"kwargs":{}}',  # a lone surrogate
    ],
)
def test_edge_cases_are_taken_as_taskiq_takes_them(raw: bytes) -> None:
    assert repr(outcome(raw)) == repr(taskiq_outcome(raw))  # repr: NaN is not equal to itself


def test_labels_are_parsed_by_their_declared_type_and_the_taskiq_model_carries_the_same_job() -> None:
    raw = json.dumps(fields(good, labels={"attempt": "3", "flag": "True"}, labels_types={"attempt": 2, "flag": 5}))
    message = parse(raw.encode())
    assert isinstance(message, JobMessage) and message.labels == {"attempt": 3, "flag": True}
    model = of(message)
    assert isinstance(model, TaskiqMessage)
    assert (model.task_id, model.labels, model.args, model.kwargs) == (
        "j-1",
        {"attempt": 3, "flag": True},
        [1],
        good["kwargs"],
    )
    assert of(model) is model


@pytest.mark.parametrize(
    "kwargs",
    [{"x": float("nan")}, {"x": float("inf")}, {"deep": [{"y": -float("inf")}]}],
    ids=["nan", "infinity", "nested"],
)
def test_json_arguments_refuses_nan_and_infinity(kwargs: dict[str, Any]) -> None:
    with pytest.raises(BootstrapError, match="NaN and Infinity are not JSON numbers"):
        json_arguments([], kwargs)


def test_json_arguments_leaves_other_values_to_pydantic() -> None:
    looped: list[Any] = []
    looped.append(looped)
    json_arguments([datetime(2026, 1, 1, tzinfo=UTC), {1, 2}], {"when": date(2026, 1, 1), "n": 1.5})
    json_arguments([looped], {})  # not ours to word: pydantic refuses it with its own reason
