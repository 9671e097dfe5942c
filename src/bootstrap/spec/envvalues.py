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
  loading takes: interpolation, YAML's typing of the scalar, the field's JSON Schema, the conversion
  of a duration to seconds and `validate`'s checks of that one field (its duration's range, a cron,
  a time zone). Checks across fields run wherever the spec is loaded with that environment
  (`validate`, `plan`, `apply`).

Not tagged: true, false and null (bool and None cannot be subclassed), which are written as they
were where `generate` ran; loading warns of each (`untagged`).
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from bootstrap.errors import WARNING, ContractError, Finding, InterpolationError
from bootstrap.spec.interpolate import interpolate
from bootstrap.spec.limits import duration_limits, range_problem
from bootstrap.spec.yamlload import Document, PathKey, dotted

# The kinds of file whose values reach the generated job wiring (collections reach models.py only).
JOB_KINDS = frozenset({"bootstrap", "queues", "schedules"})
_KEYS = frozenset({"$env", "tag", "duration", "kind", "file", "path"})  # a marker's, exactly
_DATA = "$data"  # wraps a mapping of the user's (schedule kwargs) that looks like a marker or like this


class FromEnv:
    """Where a tagged value came from (mixed into int, float and str; set by `_tag`)."""

    template: str  # the scalar as written: `${WORKER_CONCURRENCY:-10}`
    tag: str | None  # how its text is typed: None text, "" as YAML reads it (unquoted), else `!!int`'s tag
    kind: str  # of the file: bootstrap, queues or schedules (which JSON Schema checks it)
    file: str  # its name (queues.yaml), never a machine's path: it goes into generated code
    path: PathKey  # in the file
    duration: bool  # turned from a duration into seconds

    def marker(self) -> dict[str, Any]:
        return {
            "$env": self.template,
            "tag": self.tag,
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
            "template": template, "tag": doc.typed.get(path), "kind": kind, "file": file, "path": path,
            "duration": False,
        }  # fmt: skip
        return _tag(value, origin)

    return replace(doc, data=walk(doc.data, ()))


def untagged(doc: Document, kind: str) -> list[Finding]:
    """A warning for each `${...}` of a job file whose value is true, false or null: generated code
    holds it as it is here, the same in every environment."""
    if kind not in JOB_KINDS:
        return []
    found = []
    for path, template in doc.templates.items():
        value = _at(doc.data, path)
        if value is None or isinstance(value, bool):
            shown = "null" if value is None else str(value).lower()
            found.append(
                doc.finding(
                    path,
                    f"{template} is {shown} here: generated code holds {shown} in every "
                    "environment (only numbers and text are resolved where a process runs)",
                )
            )
    return [replace(f, severity=WARNING) for f in found]


def _at(data: Any, path: PathKey) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


_MISSING = object()


def seconds(raw: Any, value: float) -> float:
    """`value`, the seconds of the duration `raw`, tagged as `raw` is."""
    if not isinstance(raw, FromEnv):
        return value
    return _tag(value, {**raw.__dict__, "duration": True})  # type: ignore[no-any-return]


def keep_float(value: float) -> float:
    """`float(value)` that keeps a tag (a tagged float is returned as it is)."""
    return value if isinstance(value, float) else float(value)


def markers(data: Any) -> Any:
    """JSON-like `data` with each tagged value replaced by its marker (and a mapping of the user's
    that would read as a marker wrapped, so it stays data)."""
    if isinstance(data, FromEnv):
        return data.marker()
    if isinstance(data, Mapping):
        out = {key: markers(value) for key, value in data.items()}
        return {_DATA: out} if out.keys() in (_KEYS, {_DATA}) else out
    if isinstance(data, list | tuple):
        return [markers(value) for value in data]
    return data


def resolve(data: Any, env: Mapping[str, str]) -> Any:
    """`data` with each marker replaced by its value in `env`; ContractError naming the file, the
    field and the template when one cannot be resolved or is not what the field accepts."""
    if isinstance(data, Mapping):
        if data.keys() == _KEYS:
            return _resolve(data, env)
        if data.keys() == {_DATA} and isinstance(data[_DATA], Mapping):
            return {key: resolve(value, env) for key, value in data[_DATA].items()}
        return {key: resolve(value, env) for key, value in data.items()}
    if isinstance(data, list):
        return [resolve(value, env) for value in data]
    return data


def _resolve(marker: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    try:
        path: PathKey = tuple(marker["path"])
        where, template = f"{marker['file']} {dotted(path)}", str(marker["$env"])
    except (TypeError, ValueError, KeyError):
        raise ContractError(f"a malformed value marker {dict(marker)!r} (run `bootstrap generate`)") from None
    try:
        value: Any = interpolate(template, env)
        if marker["tag"] is not None:
            value = _typed(value, marker["tag"])
        problem = _problem(str(marker["kind"]), path, value, bool(marker["duration"]))
    except (InterpolationError, ValueError, yaml.YAMLError) as exc:  # UnicodeError is a ValueError
        raise ContractError(f"{where}: {template}: {_plain(exc)}") from None
    if problem:
        raise ContractError(f"{where}: {template} is {_shown(value)} here: {problem}")
    if marker["duration"]:
        from bootstrap.spec.durations import parse_duration

        return parse_duration(value)
    return value


def _problem(kind: str, path: PathKey, value: Any, duration: bool) -> str | None:
    """What `validate` says of `value` at `path`: its schema, then the checks of that one field."""
    from bootstrap.spec import schema_check

    problem = schema_check.field_problem(kind, path, value)
    if problem or value is None:
        return problem
    last = path[-1] if path else None
    if duration:
        from bootstrap.spec.durations import parse_duration

        limits = duration_limits(path)
        return range_problem(parse_duration(value), *limits) if limits else None
    if last == "timezone" and isinstance(value, str):
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return f"'{value}' is not a known time zone (expected an IANA name such as UTC or Europe/Paris)"
    if last == "cron" and isinstance(value, str):
        from bootstrap.spec.checks import cron_problem

        return cron_problem(value)
    return None


_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()


def _typed(text: str, tag: str) -> Any:
    """What YAML makes of a scalar with this text: `tag` "" as unquoted (YAML reads the text), else
    with that explicit tag; as loading does after interpolation."""
    if not tag:
        tag = _RESOLVER.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if tag.endswith((":str", ":timestamp")):  # dates stay text, as when loading
        return text
    value = _CONSTRUCTOR.construct_object(ScalarNode(tag, text))
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _shown(value: Any) -> str:
    """A resolved value in an error: printable, whatever bytes the environment held."""
    return ascii(value) if isinstance(value, str) else repr(value)


def _plain(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
