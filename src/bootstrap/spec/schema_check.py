"""JSON Schema validation of one loaded document, with errors turned into readable findings.

A document is first checked by jsonschema-rs (a compiled validator in Rust), which answers valid or
not in microseconds; only an invalid one goes through jsonschema, imported then, for its errors, so
every message and position comes from one place. Both follow JSON Schema 2020-12; a test holds them
to the same verdict on the shipped files, the whole bad-input corpus and random mutations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, Any

from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from bootstrap import resources
from bootstrap.errors import Finding
from bootstrap.redact import mask, mask_value
from bootstrap.spec.names import did_you_mean
from bootstrap.spec.yamlload import BOOL_HINT, Document, PathKey

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_FILES = ("common", "bootstrap", "collection", "queues", "schedules")


@cache
def validator_rs(kind: str) -> Any:
    """The compiled validator of a `kind` document (jsonschema-rs), once per process."""
    import jsonschema_rs

    registry = jsonschema_rs.Registry(
        [(f"{name}.schema.json", resources.schema(f"{name}.schema.json")) for name in SCHEMA_FILES]
    )
    return jsonschema_rs.validator_for(resources.schema(f"{kind}.schema.json"), registry=registry)


def is_valid(kind: str) -> Callable[[Any], bool]:
    """The yes/no check of a `kind` document."""
    check: Callable[[Any], bool] = validator_rs(kind).is_valid
    return check


@cache
def _registry() -> Any:
    """The schema files for jsonschema: cross-file `$ref`s resolve by file name (as editors do)."""
    from referencing import Registry, Resource

    return Registry().with_resources(
        (f"{name}.schema.json", Resource.from_contents(resources.schema(f"{name}.schema.json")))
        for name in SCHEMA_FILES
    )


@cache
def _validator(kind: str) -> Draft202012Validator:
    """A validator for `kind`."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(resources.schema(f"{kind}.schema.json"), registry=_registry())


# --- one value, on its own (spec.envvalues: a value a process resolves from its environment) ---------


def field_problem(kind: str, path: PathKey, value: Any) -> str | None:
    """What the schema of a `kind` file says of `value` written at `path`, as `bootstrap validate`
    says it; None when it is accepted (or the path leads to no schema of its own). Only the field's
    schema is compiled (by jsonschema-rs, small), and jsonschema is imported only to explain a refusal."""
    ref = _field_ref(kind, path)
    if ref is None or _field_validator(ref)(value):
        return None
    from jsonschema import Draft202012Validator

    for error in Draft202012Validator({"$ref": ref}, registry=_registry()).iter_errors(value):
        for finding in _findings(Document(kind, value), error):
            return finding.message
    return "not accepted here"


@cache
def _field_validator(ref: str) -> Callable[[Any], bool]:
    import jsonschema_rs

    registry = jsonschema_rs.Registry(
        [(f"{name}.schema.json", resources.schema(f"{name}.schema.json")) for name in SCHEMA_FILES]
    )
    check: Callable[[Any], bool] = jsonschema_rs.validator_for({"$ref": ref}, registry=registry).is_valid
    return check


@cache
def _field_ref(kind: str, path: PathKey) -> str | None:
    """`file.schema.json#/json/pointer` of the schema that `path` of a `kind` file is checked by:
    through properties, additionalProperties, items and `$ref`s, into the alternative of a oneOf or
    anyOf that has the key."""
    home, pointer = f"{kind}.schema.json", ""
    node: Any = resources.schema(home)
    for part in path:
        home, pointer, node = _through_refs(home, pointer, node)
        found = _child(node, part)
        if found is None:
            for word in ("oneOf", "anyOf"):
                for i, option in enumerate(node.get(word, [])):
                    where = _through_refs(home, f"{pointer}/{word}/{i}", option)
                    child = _child(where[2], part)
                    if child is not None:
                        home, pointer, node = where
                        found = child
                        break
                if found is not None:
                    break
        if found is None:
            return None
        pointer, node = f"{pointer}{found[0]}", found[1]
    return f"{home}#{pointer}"


def _child(node: Any, part: str | int) -> tuple[str, Any] | None:
    """(pointer suffix, schema) of `part` under `node`."""
    if not isinstance(node, dict):
        return None
    if isinstance(part, int):
        items = node.get("items")
        return ("/items", items) if isinstance(items, dict) else None
    properties = node.get("properties", {})
    if part in properties:
        return f"/properties/{_escape(part)}", properties[part]
    extra = node.get("additionalProperties")
    return ("/additionalProperties", extra) if isinstance(extra, dict) else None


def _through_refs(home: str, pointer: str, node: Any) -> tuple[str, str, Any]:
    """Follow `node`'s `$ref`s to the schema they name: (its file, its pointer, it)."""
    while isinstance(node, dict) and "$ref" in node:
        file, _, target = node["$ref"].partition("#")
        home, pointer = file or home, target
        node = resources.schema(home)
        for step in target.split("/")[1:]:
            node = node[step.replace("~1", "/").replace("~0", "~")]
    return home, pointer, node


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def check(doc: Document, kind: str) -> list[Finding]:
    """Every schema violation in `doc` (a `kind` file), one finding each."""
    if is_valid(kind)(doc.data):
        return []
    findings: list[Finding] = []
    for error in _validator(kind).iter_errors(doc.data):
        findings.extend(_findings(doc, error))
    return findings


def _findings(doc: Document, error: ValidationError) -> Iterable[Finding]:
    path: PathKey = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind in ("if", "then", "else") and error.context:  # pragma: no cover - flattened by jsonschema
        for sub in error.context:
            yield from _findings(doc, sub)
        return
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        known = list(schema.get("properties", {}))
        renamed: dict[str, str] = schema.get("x-renamed", {})  # old key -> what to write instead
        for key in error.instance:
            if key in renamed:
                yield doc.finding((*path, key), f"'{key}' is no longer accepted: {renamed[key]}", key=True)
            elif key not in known:
                yield doc.finding((*path, key), f"unknown key '{key}'{did_you_mean(key, known)}", key=True)
        return
    if kind == "propertyNames":
        return  # reported by the sub-error with the offending name
    if error.relative_schema_path and "propertyNames" in error.relative_schema_path:
        name = str(error.instance)
        yield doc.finding((*path, name), f"invalid name '{name}' (expected {_expected(schema)})", key=True)
        return
    # A missing key is reported on the key of the mapping that lacks it (`my-schedule:`), where it has one.
    yield doc.finding(path, _message(error, schema), key=kind == "required")


def _message(error: ValidationError, schema: dict[str, Any]) -> str:
    kind = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required key '{missing}'"
    if kind == "enum":
        choices = [str(c) for c in value]
        hint = did_you_mean(instance, choices)
        return f"{_show(instance)} is not allowed (expected one of: {', '.join(choices)}){hint}"
    if kind == "const":
        return f"{_show(instance)} is not allowed (expected {value!r})"
    if kind == "type":
        names = [str(name) for name in (value if isinstance(value, list) else [value])]
        wanted = " or ".join(_YAML_WORDS.get(name, name) for name in names)
        hint = BOOL_HINT if isinstance(instance, bool) and "string" in names else _quoteddid_you_mean(instance, names)
        if instance is None:  # `key:` with nothing after it, or a ${VAR} that is set but empty
            return f"expected {_article(wanted)}, got nothing (an empty value)"
        return f"expected {_article(wanted)}, got {_json_type(instance)} {_show(instance)}{hint}"
    if kind == "pattern":
        return f"{_show(instance)} is not valid (expected {_expected(schema)})"
    if kind in ("oneOf", "anyOf") and "x-expected" in schema:  # alternatives: say them in words
        return f"{_show(instance)} is not allowed (expected {schema['x-expected']})"
    if kind in ("minimum", "exclusiveMinimum"):
        return f"{_show(instance)} is too small (expected at least {value})"
    if kind in ("maximum", "exclusiveMaximum"):
        return f"{_show(instance)} is too large (expected at most {value})"
    if kind == "minProperties":
        return f"must not be empty (expected at least {value} entr{'y' if value == 1 else 'ies'})"
    if kind == "maxProperties":
        return f"has {len(instance)} entries (expected at most {value})"
    if kind == "minItems":
        return f"must have at least {value} item(s)"
    if kind == "minLength":
        return "must not be empty" if value == 1 else f"is too short (expected at least {value} characters)"
    if kind == "maxLength":
        return f"is too long ({len(str(instance))} characters, expected at most {value})"
    return error.message


_YAML_WORDS = {"object": "mapping", "array": "list"}  # JSON Schema's type names, as YAML users say them


def _quoteddid_you_mean(instance: object, wanted: list[str]) -> str:
    """A hint when a string was expected to be a number or boolean and would be one without quotes."""
    if not isinstance(instance, str):
        return ""
    tag: str = _RESOLVER.resolve(ScalarNode, instance, (True, False))  # type: ignore[no-untyped-call]
    kind = {"int": "integer", "float": "number", "bool": "boolean"}.get(tag.rsplit(":", 1)[-1], "")
    fits = kind in wanted or (kind == "integer" and "number" in wanted)
    return " (quoted, so it is text: remove the quotes)" if fits else ""


_RESOLVER = Resolver()


def _expected(schema: dict[str, Any]) -> str:
    return str(schema.get("x-expected") or f"a value matching {schema.get('pattern', 'the schema')}")


def _show(value: object) -> str:
    """A value quoted in a message: short, and with any password in a URL masked (in the strings
    of a list or mapping too: `uri: [mongodb:/u:p@h]`)."""
    text = repr(mask_value(value)) if isinstance(value, str) else mask(str(_masked(value)))
    return text if len(text) <= 60 else text[:57] + "..."


def _masked(value: object) -> object:
    if isinstance(value, str):
        return mask_value(value)
    if isinstance(value, dict):
        return {_masked(key): _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
    }.get(type(value), type(value).__name__)
