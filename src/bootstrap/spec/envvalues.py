"""Values of the job layer's YAML written as `${VAR}`: resolved again where the job layer runs.

One generated package is committed and run in every environment (staging, production), so a value
that comes from the environment (`concurrency: ${WORKER_CONCURRENCY:-10}`) must not be written into it
as the value it had where `generate` ran: `generate --check` would fail in every other environment,
and their workers would run another environment's settings.

- Loading tags such a value (`tagged`): an `EnvInt`, `EnvFloat` or `EnvStr` is the plain value
  (everything that reads it sees an int, float or str) plus where it came from.
- Building the spec and the runtime contract keep the tag on the values they copy, and on durations
  turned into seconds (`seconds`).
- Generation writes each tagged value as a marker, plain data holding its template (`markers`).
- The generated package resolves the markers when a process starts (`resolve`), through the steps
  loading takes: interpolation, YAML's typing of an unquoted scalar, the field's JSON Schema and the
  conversion of a duration to seconds. Checks across fields (`bootstrap validate`, `plan`, `apply`)
  run wherever the spec is loaded with that environment.

Not tagged: true/false (bool cannot be subclassed) and values computed from others. They are written
as they were where `generate` ran (README: "Several environments").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from bootstrap.errors import ContractError, InterpolationError
from bootstrap.spec.interpolate import interpolate
from bootstrap.spec.yamlload import Document, PathKey, dotted

# The kinds of file whose values reach the generated job wiring (collections reach models.py only).
JOB_KINDS = frozenset({"bootstrap", "queues", "schedules"})
_KEYS = frozenset({"$env", "retyped", "duration", "kind", "file", "path"})  # a marker's, exactly


class FromEnv:
    """Where a tagged value came from (mixed into int, float and str; set by `_tag`)."""

    template: str  # the scalar as written: `${WORKER_CONCURRENCY:-10}`
    retyped: bool  # written unquoted: YAML types the interpolated text
    kind: str  # of the file: bootstrap, queues or schedules (which JSON Schema checks it)
    file: str  # its name (queues.yaml), never a machine's path: it goes into generated code
    path: PathKey  # in the file
    duration: bool  # turned from a duration into seconds

    def marker(self) -> dict[str, Any]:
        return {
            "$env": self.template,
            "retyped": self.retyped,
            "duration": self.duration,
            "kind": self.kind,
            "file": self.file,
            "path": list(self.path),
        }


class EnvInt(int, FromEnv):
    pass


class EnvFloat(float, FromEnv):
    pass


class EnvStr(str, FromEnv):
    pass


def _tag(value: Any, origin: Mapping[str, Any]) -> Any:
    if isinstance(value, bool):  # before int: bool is an int
        return value
    for base, tagged_type in ((int, EnvInt), (float, EnvFloat), (str, EnvStr)):
        if isinstance(value, base):
            out = tagged_type(value)
            out.__dict__.update(origin)
            return out
    return value


def tagged(doc: Document, kind: str) -> Document:
    """`doc` with each value that came from a `${...}` scalar tagged (a copy; `doc` is unchanged)."""
    if kind not in JOB_KINDS or not doc.templates:
        return doc
    file = Path(doc.file).name

    def walk(value: Any, path: PathKey) -> Any:
        if isinstance(value, dict):
            return {key: walk(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, (*path, i)) for i, item in enumerate(value)]
        template = doc.templates.get(path)
        if template is None:
            return value
        origin = {
            "template": template, "retyped": path in doc.retyped, "kind": kind, "file": file, "path": path,
            "duration": False,
        }  # fmt: skip
        return _tag(value, origin)

    return replace(doc, data=walk(doc.data, ()))


def seconds(raw: Any, value: float) -> float:
    """`value`, the seconds of the duration `raw`, tagged as `raw` is."""
    if not isinstance(raw, FromEnv):
        return value
    return _tag(value, {**raw.__dict__, "duration": True})  # type: ignore[no-any-return]


def keep_float(value: float) -> float:
    """`float(value)` that keeps a tag (a tagged float is returned as it is)."""
    return value if isinstance(value, float) else float(value)


def markers(data: Any) -> Any:
    """JSON-like `data` with each tagged value replaced by its marker."""
    if isinstance(data, FromEnv):
        return data.marker()
    if isinstance(data, Mapping):
        return {key: markers(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [markers(value) for value in data]
    return data


def resolve(data: Any, env: Mapping[str, str]) -> Any:
    """`data` with each marker replaced by its value in `env`; ContractError naming the file, the
    field and the template when one cannot be resolved or is not what the field accepts."""
    if isinstance(data, Mapping):
        if data.keys() == _KEYS:
            return _resolve(data, env)
        return {key: resolve(value, env) for key, value in data.items()}
    if isinstance(data, list):
        return [resolve(value, env) for value in data]
    return data


def _resolve(marker: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    path: PathKey = tuple(marker["path"])
    where = f"{marker['file']} {dotted(path)}"
    template = marker["$env"]
    try:
        value: Any = interpolate(template, env)
        if marker["retyped"]:
            value = _typed(value)
    except (InterpolationError, ValueError) as exc:
        raise ContractError(f"{where}: {template}: {exc}") from None
    problem = _schema_problem(marker["kind"], path, value)
    if problem:
        raise ContractError(f"{where}: {template} is {value!r} here: {problem}")
    if marker["duration"]:
        from bootstrap.spec.durations import parse_duration

        return parse_duration(value)
    return value


_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()


def _typed(text: str) -> Any:
    """What YAML makes of an unquoted scalar with this text, as loading does after interpolation."""
    tag: str = _RESOLVER.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if tag.endswith((":str", ":timestamp")):  # dates stay text, as when loading
        return text
    value = _CONSTRUCTOR.construct_object(ScalarNode(tag, text))
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _schema_problem(kind: str, path: PathKey, value: Any) -> str | None:
    """What the JSON Schema of a `kind` file says of `value` at `path`, or None when it is accepted.
    The schema checks a document holding `value` alone; problems elsewhere in it are not ours. The
    compiled validator answers; the message is the one `bootstrap validate` gives."""
    from bootstrap.spec import schema_check

    document: Any = value
    for part in reversed(path):
        document = [None] * part + [document] if isinstance(part, int) else {part: document}
    if not any(tuple(e.instance_path) == path for e in schema_check.validator_rs(kind).iter_errors(document)):
        return None
    messages = [f.message for f in schema_check.check(Document(kind, document), kind) if f.path == dotted(path)]
    return messages[0] if messages else "not accepted here"
