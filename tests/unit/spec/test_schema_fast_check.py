"""The fast schema check (jsonschema-rs) agrees with jsonschema: valid exactly when jsonschema finds
no error, so a document is never let through that jsonschema would report.

On the shipped files, on every file of the bad-input corpus, on random mutations of the shipped
documents, and on values chosen for the edges of each keyword (True is not 1, 1.0 is an integer,
`pattern` searches).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from bootstrap.spec.load import read_document
from bootstrap.spec.schema_check import _validator, is_valid

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "config"
CORPUS = ROOT / "tests" / "corpus"
KINDS = {"bootstrap.yaml": "bootstrap", "queues.yaml": "queues", "schedules.yaml": "schedules"}


def kind_of(path: Path) -> str | None:
    if path.parent.name == "collections":
        return "collection"
    return KINDS.get(path.name)


def agree(kind: str, data: Any) -> None:
    check = is_valid(kind)
    expected = not any(True for _ in _validator(kind).iter_errors(data))
    assert check(data) is expected, (kind, data)


def loaded(path: Path, env: dict[str, str]) -> Any:
    """The data of `path` as the schema sees it (interpolated), or None when it does not load."""
    doc, _ = read_document(path, env, path.name)
    return None if doc is None else doc.data


def documents(case: Path) -> Iterator[tuple[str, Any]]:
    env_file = case / "env.json"
    env = json.loads(env_file.read_text()) if env_file.exists() else {}
    for path in sorted((case / "overlay").rglob("*.y*ml")):
        kind, data = kind_of(path), loaded(path, env)
        if kind is not None and data is not None:
            yield kind, data


@pytest.mark.parametrize("path", sorted(SHIPPED.rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_documents_are_valid_both_ways(path: Path) -> None:
    kind = kind_of(path)
    assert kind is not None
    data = loaded(path, {})
    agree(kind, data)
    assert is_valid(kind)(data) is True


@pytest.mark.parametrize("case", sorted(p for p in CORPUS.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_corpus_documents_agree(case: Path) -> None:
    for kind, data in documents(case):
        agree(kind, data)


SHIPPED_DATA = [(kind_of(p), loaded(p, {})) for p in sorted(SHIPPED.rglob("*.yaml"))]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([0.0, 1.0, 1.5, -1.0, 2**31 + 0.0])
    | st.sampled_from(["", "string", "int", "object", "map", "1", "15m", "90d", "1h30m", "x y", "Users", "users"])
    | st.text(max_size=8)
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SHIPPED_DATA), st.data(), values, st.sampled_from(["replace", "delete", "insert"]))
def test_mutated_documents_agree(document: tuple[str, Any], data: st.DataObject, value: Any, how: str) -> None:
    kind, original = document
    mutated = copy.deepcopy(original)
    where = data.draw(st.sampled_from(list(paths(mutated))))
    if not where:
        mutated = value
    else:
        parent = mutated
        for part in where[:-1]:
            parent = parent[part]
        last = where[-1]
        if how == "delete":
            del parent[last]
        elif how == "insert" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["type", "name", "fields", "extra", "ttl", "required"]))] = value
        else:
            parent[last] = value
    agree(str(kind), mutated)


# --- keyword edges, on a schema of our own ------------------------------------------------------

EDGE_SCHEMA = {
    "$id": "edge.schema.json",
    "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}, "required": ["v"]}},
    "type": "object",
    "properties": {
        "int": {"type": "integer", "minimum": 1, "maximum": 3},
        "num": {"type": ["number", "null"], "exclusiveMinimum": 0, "exclusiveMaximum": 10},
        "enum": {"enum": [1, "a", None, [1, 2], {"k": True}]},
        "const": {"const": False},
        "text": {"type": "string", "pattern": "b+", "minLength": 2, "maxLength": 4},
        "list": {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 2},
        "map": {"type": "object", "minProperties": 1, "maxProperties": 2, "propertyNames": {"pattern": "^[a-z]+$"},
                "additionalProperties": {"type": "integer"}},
        "choice": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "one": {"oneOf": [{"type": "integer"}, {"minimum": 5}]},
        "all": {"allOf": [{"type": "integer"}, {"not": {"const": 4}}]},
        "cond": {"if": {"type": "string"}, "then": {"minLength": 3}, "else": {"type": "integer"}},
        "tree": {"$ref": "#/$defs/node"},
    },
    "additionalProperties": False,
}

EDGE_VALUES = [
    None, True, False, 0, 1, 2, 3, 4, 5, 1.0, 2.5, 3.0, 10, 10.0, -1, "", "a", "b", "bb", "abbc", "abbbbc", "xyz",
    [], [True], [1], [True, False, True], {}, {"a": 1}, {"A": 1}, {"a": True}, {"a": 1, "b": 2, "c": 3},
    [1, 2], [1, 2.0], {"k": True}, {"k": 1}, {"v": 1}, {"v": 1, "next": {"v": 2}}, {"v": 1, "next": {}},
]


def test_keyword_edges_agree_with_jsonschema() -> None:
    import jsonschema_rs

    check = jsonschema_rs.validator_for(EDGE_SCHEMA).is_valid
    validator = Draft202012Validator(EDGE_SCHEMA)
    for key in EDGE_SCHEMA["properties"]:
        for value in EDGE_VALUES:
            document = {key: value}
            assert check(document) is validator.is_valid(document), document
    assert check({"other": 1}) is False
    assert check([]) is False
