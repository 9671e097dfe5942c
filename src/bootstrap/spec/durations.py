"""Durations as written in specs: `500ms`, `30s`, `15m`, `2h`, `90d`, `1w`, `1h30m`, or plain seconds."""

from __future__ import annotations

import re

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: int | float | str) -> float:
    """Seconds in `value`; ValueError when it is not a duration."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value} is negative")
        return float(value)
    text = value.strip()
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{value!r} is not a duration (expected e.g. 30s, 15m, 2h, 90d or seconds)")
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 5400 -> '1h30m', 0.5 -> '500ms'."""
    if seconds == 0:
        return "0s"
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    rest, out = int(seconds), ""
    for unit in ("d", "h", "m", "s"):  # 90d reads better than 12w6d
        size = int(_UNIT_SECONDS[unit])
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out
