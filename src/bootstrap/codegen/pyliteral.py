"""Python literals for generated code, safe for any value from YAML and already in `ruff format`
style: strings are double-quoted ASCII with every other character escaped, containers are expanded
one item per line with trailing commas."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string(text: str) -> str:
    """A double-quoted Python string literal in plain ASCII (json.dumps would split characters
    outside the BMP into surrogate pairs, which Python reads as two characters)."""
    out = []
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def literal(value: Any, indent: int = 0) -> str:
    pad, inner = " " * indent, " " * (indent + 4)
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be written as a literal")
        return repr(value)
    if isinstance(value, str):
        return string(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = [f"{inner}{string(str(k))}: {literal(v, indent + 4)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, Sequence):
        if not value:
            return "[]"
        items = [f"{inner}{literal(v, indent + 4)}," for v in value]
        return "[\n" + "\n".join(items) + f"\n{pad}]"
    raise TypeError(f"cannot write {type(value).__name__} as a literal")
