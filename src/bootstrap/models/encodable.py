"""What BSON cannot hold, found before a write is sent, with the field path.

The models check types, enums and ranges; a few values pass those and still cannot be encoded: text
holding a lone surrogate (what `json.loads('"\\ud800"')` gives), a field name with a NUL (a map's
key), a value of a type BSON has none for (a set in a free-form object). The driver would fail on
them with its own errors, naming no field. One encode of the whole write finds out whether there is
any (in C, a fraction of the driver's own encoding); only then the value is walked for the paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bson
from bson.codec_options import CodecOptions


def bson_problems(document: Mapping[str, Any], codec: CodecOptions[Any]) -> list[tuple[str, str]]:
    """(field path, message) for each value of `document` BSON cannot hold; [] when it encodes."""
    try:
        bson.encode(document, codec_options=codec)
    except Exception as exc:  # bson.errors.InvalidDocument, UnicodeEncodeError, OverflowError, ...
        return _walk(document, "", codec) or [("", f"cannot be stored in MongoDB: {exc}")]
    return []


def _walk(value: Any, path: str, codec: CodecOptions[Any]) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        found: list[tuple[str, str]] = []
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                found.append((where, f"a field name must be text, not {type(key).__name__}"))
            elif "\x00" in key:
                found.append((where, "a field name cannot hold a NUL character"))
            elif not _utf8(key):
                found.append((where, "a field name that is not valid Unicode (a lone surrogate) cannot be stored"))
            else:
                found += _walk(item, where, codec)
        return found
    if isinstance(value, list | tuple):
        return [problem for i, item in enumerate(value) for problem in _walk(item, f"{path}.{i}", codec)]
    if isinstance(value, str):
        return [] if _utf8(value) else [(path, "text that is not valid Unicode (a lone surrogate) cannot be stored")]
    try:
        bson.encode({"v": value}, codec_options=codec)
    except Exception as exc:
        return [(path, f"a {type(value).__name__} cannot be stored in MongoDB ({exc})")]
    return []


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
