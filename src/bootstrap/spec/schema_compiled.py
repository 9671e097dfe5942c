"""A fast yes/no answer to "is this document valid against its JSON Schema?".

Each shipped schema is compiled once per process into nested Python closures, one per keyword, for
the part of JSON Schema 2020-12 the schemas use (type, enum, const, properties, required,
additionalProperties, propertyNames, items, if/then/else, allOf/anyOf/oneOf/not, $ref, the numeric,
length and count bounds, pattern). Every keyword follows jsonschema's own semantics (`equal` for
enum and const: True is not 1; an integral float is an integer; `re.search` for pattern).

It answers only yes or no. A valid document, the usual case, is then done without jsonschema, which
is slow to import (its meta-schemas and referencing registry load at import) and slow to run (it
re-resolves every `$ref` and builds a validator per sub-schema). When the answer is no,
`schema_check` asks jsonschema for the errors, so every message and position comes from one place.
A schema using a keyword not listed here is not compiled at all (`compile_kind` returns None) and
jsonschema checks every document of that kind: an unknown keyword can never be skipped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any
from urllib.parse import unquote

from bootstrap import resources

Check = Callable[[Any], bool]

# Keywords that never affect validity (annotations, identifiers, our own `x-...` extensions).
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "definitions", "title", "description", "default", "examples",
     "deprecated", "readOnly", "writeOnly", "then", "else"}  # then/else are compiled with `if`
)
_ROOT = ""  # the fragment of a whole file
_OBJECT_KEYWORDS = frozenset(
    {"properties", "additionalProperties", "propertyNames", "required", "minProperties", "maxProperties"}
)


class Unsupported(Exception):
    """The schema uses a keyword this compiler does not implement."""


def _equal(one: Any, two: Any) -> bool:
    """jsonschema's `equal`: like ==, except that booleans never equal numbers, recursively."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(key in two and _equal(value, two[key]) for key, value in one.items())
    if isinstance(one, bool) or isinstance(two, bool):
        return False  # `one is two` was not true, so at most one of them is this boolean
    return bool(one == two)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


class _Compiler:
    """Compiles the schemas of one set of files; `$ref`s resolve by file name, as in `schema_check`."""

    def __init__(self) -> None:
        # One entry per referenced location, filled in after compiling it, so recursive references
        # (a field's items are fields) compile once and call each other.
        self.compiled: dict[tuple[str, str], Check] = {}

    def reference(self, base: str, ref: str) -> Check:
        target, _, fragment = ref.partition("#")
        file = target or base
        key = (file, fragment)
        if key not in self.compiled:
            holder: list[Check] = []
            self.compiled[key] = lambda value: holder[0](value)
            document = resources.schema(file)
            if fragment == _ROOT and document.get("$id", file) != file:
                raise Unsupported(f"$id {document['$id']!r} in {file}")  # refs would resolve elsewhere
            holder.append(self.schema(file, _pointer(document, fragment), root=fragment == _ROOT))
            self.compiled[key] = holder[0]
        return self.compiled[key]

    def schema(self, base: str, schema: Any, *, root: bool = False) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        if "$id" in schema and not root:
            raise Unsupported("$id below the root")  # a new base for the refs under it
        if "patternProperties" in schema:
            raise Unsupported("patternProperties")
        checks: list[Check] = []
        fused = _OBJECT_KEYWORDS.intersection(schema)
        if fused:
            checks.append(self.mapping(base, schema))
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS or keyword in fused or keyword.startswith("x-"):
                continue
            if keyword == "type" and value == "object" and fused:
                continue  # checked by `mapping`
            builder = getattr(self, "k_" + keyword.lstrip("$"), None)
            if builder is None:
                raise Unsupported(keyword)
            checks.append(builder(base, value, schema))
        if not checks:
            return _always
        if len(checks) == 1:
            return checks[0]
        return _every(checks)

    # --- one method per keyword: (base file, keyword value, whole schema) -> check -------------

    def k_ref(self, base: str, ref: str, _: dict[str, Any]) -> Check:
        return self.reference(base, ref)

    def k_type(self, _: str, types: str | list[str], __: dict[str, Any]) -> Check:
        names = [types] if isinstance(types, str) else types
        if any(name not in _TYPES for name in names):
            raise Unsupported(f"type {types!r}")
        tests = [_TYPES[name] for name in names]
        if len(tests) == 1:
            return tests[0]
        return lambda value: any(test(value) for test in tests)

    def k_enum(self, _: str, choices: list[Any], __: dict[str, Any]) -> Check:
        if all(isinstance(choice, str) for choice in choices):
            strings = frozenset(choices)
            return lambda value: isinstance(value, str) and value in strings
        return lambda value: any(_equal(choice, value) for choice in choices)

    def k_const(self, _: str, constant: Any, __: dict[str, Any]) -> Check:
        return lambda value: _equal(value, constant)

    def mapping(self, base: str, schema: dict[str, Any]) -> Check:
        """properties, additionalProperties, propertyNames, required, min/maxProperties (and
        `type: object`) as one check: one pass over the mapping instead of one per keyword."""
        properties = {name: self.schema(base, sub) for name, sub in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        others: Check | None = None if extra is False else self.schema(base, extra)
        names = self.schema(base, schema["propertyNames"]) if "propertyNames" in schema else None
        required = tuple(schema.get("required", ()))
        fewest, most = schema.get("minProperties", 0), schema.get("maxProperties")
        must_be_mapping = schema.get("type") == "object"

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return not must_be_mapping  # the other keywords apply to mappings only
            if len(value) < fewest or (most is not None and len(value) > most):
                return False
            for name in required:
                if name not in value:
                    return False
            for key, item in value.items():
                if names is not None and not names(key):
                    return False
                sub = properties.get(key, others)
                if sub is None or not sub(item):
                    return False
            return True

        return check

    def k_items(self, base: str, items: Any, schema: dict[str, Any]) -> Check:
        if "prefixItems" in schema:
            raise Unsupported("prefixItems")
        sub = self.schema(base, items)
        return lambda value: not isinstance(value, list) or all(sub(item) for item in value)

    def k_if(self, base: str, condition: Any, schema: dict[str, Any]) -> Check:
        test = self.schema(base, condition)
        then = self.schema(base, schema.get("then", True))
        otherwise = self.schema(base, schema.get("else", True))
        return lambda value: then(value) if test(value) else otherwise(value)

    def k_allOf(self, base: str, subs: list[Any], _: dict[str, Any]) -> Check:
        checks = [self.schema(base, sub) for sub in subs]
        return lambda value: all(check(value) for check in checks)

    def k_anyOf(self, base: str, subs: list[Any], _: dict[str, Any]) -> Check:
        checks = [self.schema(base, sub) for sub in subs]
        return lambda value: any(check(value) for check in checks)

    def k_oneOf(self, base: str, subs: list[Any], _: dict[str, Any]) -> Check:
        checks = [self.schema(base, sub) for sub in subs]
        return lambda value: sum(1 for check in checks if check(value)) == 1

    def k_not(self, base: str, sub: Any, _: dict[str, Any]) -> Check:
        check = self.schema(base, sub)
        return lambda value: not check(value)

    def k_pattern(self, _: str, pattern: str, __: dict[str, Any]) -> Check:
        search = re.compile(pattern).search
        return lambda value: not isinstance(value, str) or search(value) is not None

    def k_minimum(self, _: str, bound: float, __: dict[str, Any]) -> Check:
        return lambda value: not _is_number(value) or value >= bound

    def k_maximum(self, _: str, bound: float, __: dict[str, Any]) -> Check:
        return lambda value: not _is_number(value) or value <= bound

    def k_exclusiveMinimum(self, _: str, bound: float, __: dict[str, Any]) -> Check:
        return lambda value: not _is_number(value) or value > bound

    def k_exclusiveMaximum(self, _: str, bound: float, __: dict[str, Any]) -> Check:
        return lambda value: not _is_number(value) or value < bound

    def k_minLength(self, _: str, bound: int, __: dict[str, Any]) -> Check:
        return lambda value: not isinstance(value, str) or len(value) >= bound

    def k_maxLength(self, _: str, bound: int, __: dict[str, Any]) -> Check:
        return lambda value: not isinstance(value, str) or len(value) <= bound

    def k_minItems(self, _: str, bound: int, __: dict[str, Any]) -> Check:
        return lambda value: not isinstance(value, list) or len(value) >= bound

    def k_maxItems(self, _: str, bound: int, __: dict[str, Any]) -> Check:
        return lambda value: not isinstance(value, list) or len(value) <= bound


def _every(checks: list[Check]) -> Check:
    """All of `checks` (a loop: calls through a generator cost twice as much)."""

    def check(value: Any) -> bool:
        for each in checks:  # noqa: SIM110
            if not each(value):
                return False
        return True

    return check


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


def _pointer(document: Any, fragment: str) -> Any:
    """The part of `document` a JSON Pointer fragment (`/$defs/duration`) names."""
    node = document
    for part in fragment.split("/")[1:] if fragment else []:
        part = unquote(part).replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


@cache
def compile_kind(kind: str) -> Check | None:
    """The check for documents of `kind` ("collection", "queues", ...), compiled once per process;
    None when the schema uses a keyword not implemented here (jsonschema then checks every document)."""
    try:
        return _Compiler().reference(f"{kind}.schema.json", _ROOT)
    except Unsupported:
        return None
