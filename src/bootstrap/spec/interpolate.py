"""`${VAR}` interpolation in YAML scalars, shell style.

Supported: `${VAR}` (must be set), `${VAR:-default}` (default when unset or empty), `${VAR-default}`
(default only when unset), `${VAR:?message}` (error with message when unset or empty), `$$` for a
literal `$`. Defaults may themselves contain `${...}`; like a shell, a default or message is expanded only
when it is used (an unused one must still be well-formed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bootstrap.errors import InterpolationError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
                raise InterpolationError(f"environment variable {name} is not set: {word or 'required'}")
            return value or "", pos + 1
    if not text.startswith("}", pos):
        raise InterpolationError(
            f"unexpected '{text[pos : pos + 1] or 'end of text'}' in ${{{name}...}} "
            "(expected '}', ':-default' or ':?message')"
        )
    if value is None and used:
        raise InterpolationError(
            f"environment variable {name} is not set and has no default "
            f"(set it, or write ${{{name}:-default}})"
        )
    return value or "", pos + 1
