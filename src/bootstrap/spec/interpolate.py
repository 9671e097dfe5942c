"""`${VAR}` interpolation in YAML scalars, shell style.

Supported: `${VAR}` (must be set), `${VAR:-default}` (default when unset or empty), `${VAR-default}`
(default only when unset), `${VAR:?message}` (error with message when unset or empty), `$$` for a
literal `$`. Defaults may themselves contain `${...}`; like a shell, a default or message is expanded only
when it is used (an unused one must still be well-formed).

`KeepUnset(env)` is for the commands that connect to nothing (validate, generate, docs): a variable
that must be set and is not (a secret the CI job checking the config does not have) is kept as
written, `${VAR}`, and named in `unset`, instead of being an error, in the connection URLs only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from bootstrap.errors import InterpolationError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# Where a variable may be kept as written: the connection URLs and the Sentinel hosts, which
# generated code keeps as templates (resolved by each process: spec.load._build) and nothing else
# reads offline. Other values are checked by `generate` with the value they have (generated code
# holds their templates too: spec.envvalues), so a variable there must be set, or have a default.
URL_PATHS = frozenset({("mongodb", "uri"), ("redis", "url"), ("redis", "sentinel", "hosts")})


class KeepUnset(Mapping[str, str]):
    """`env`, where a required variable that is not set is kept as written (see the module), in
    the values at `paths` (for the others, `env` itself is used)."""

    def __init__(self, env: Mapping[str, str], paths: frozenset[tuple[str, ...]] = URL_PATHS) -> None:
        self.env = env
        self.paths = paths
        self.unset: list[str] = []  # names kept as written, in order, with repeats

    def __getitem__(self, name: str) -> str:
        return self.env[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


def _unset(env: Mapping[str, str], name: str, error: str) -> str:
    """What a required variable that is not set becomes: kept as written under KeepUnset, else an error."""
    if isinstance(env, KeepUnset):
        env.unset.append(name)
        return "${" + name + "}"
    raise InterpolationError(error)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Return `text` with every `${...}` expression replaced; raise InterpolationError on the first
    problem."""
    value, end = _expand(text, 0, env, nested=False, used=True)
    assert end == len(text)
    return value


def _expand(text: str, pos: int, env: Mapping[str, str], nested: bool, used: bool) -> tuple[str, int]:
    """Expand from `pos` until the end of `text` or, when nested, the `}` closing the current
    expression (returned position is just before it). When not `used`, only check the syntax."""
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if nested and char == "}":
            return "".join(out), pos
        if char != "$":
            out.append(char)
            pos += 1
            continue
        nxt = text[pos + 1 : pos + 2]
        if nxt == "$":
            out.append("$")
            pos += 2
        elif nxt == "{":
            value, pos = _expression(text, pos + 2, env, used)
            out.append(value)
        else:
            out.append("$")
            pos += 1
    if nested:
        raise InterpolationError("unclosed '${' (expected '}')")
    return "".join(out), pos


def _expression(text: str, pos: int, env: Mapping[str, str], used: bool) -> tuple[str, int]:
    """Parse `NAME[op word]}` starting just after `${`; return the value and the position after `}`."""
    match = _NAME.match(text, pos)
    if not match:
        raise InterpolationError(
            f"invalid variable name after '${{' at '{text[pos : pos + 20]}' (expected ${{NAME}} or "
            "${NAME:-default})"
        )
    name = match.group(0)
    pos = match.end()
    value = env.get(name)
    for op in (":-", ":?", "-", "?"):
        if text.startswith(op, pos):
            empty_counts = op.startswith(":")
            missing = value is None or (empty_counts and value == "")
            word, pos = _expand(text, pos + len(op), env, nested=True, used=used and missing)
            if op.endswith("-"):
                return (word if missing else value or ""), pos + 1
            if missing and used:
                return _unset(env, name, f"environment variable {name} is not set: {word or 'required'}"), pos + 1
            return value or "", pos + 1
    if not text.startswith("}", pos):
        raise InterpolationError(
            f"unexpected '{text[pos : pos + 1] or 'end of text'}' in ${{{name}...}} "
            "(expected '}', ':-default' or ':?message')"
        )
    if value is None and used:
        error = f"environment variable {name} is not set and has no default (set it, or write ${{{name}:-default}})"
        return _unset(env, name, error), pos + 1
    return value or "", pos + 1
