"""All terminal output goes through here, so tests can capture it and commands stay consistent."""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from bootstrap.redact import mask, mask_data

# Control characters but newline and tab: a value from outside printed as it is (a job id from
# Redis) could drive the terminal (clear a line, retitle the window).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _shown(text: str) -> str:
    """`text` masked, its control characters (see _CONTROL) written as escapes (`\\x1b`)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], mask(text))


def out(text: str = "", *, stream: TextIO | None = None) -> None:
    """A line for the user (stdout): results, plans, reports. Credentials are masked here too."""
    print(_shown(text), file=stream or sys.stdout, flush=True)


def err(text: str) -> None:
    """A line about a problem (stderr); a JSON object when logs are JSON, so stderr stays parseable."""
    text = _shown(text)  # masked before JSON escapes a newline that ends a URL into `\n`
    if os.environ.get("BOOTSTRAP_LOG_FORMAT", "").lower() == "json":
        text = json.dumps({"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": "ERROR",
                           "logger": "bootstrap", "message": text})
    print(text, file=sys.stderr, flush=True)


def clear_screen() -> None:
    """Clear the terminal (`status --watch` between refreshes): the one escape sequence printed."""
    print("\033[2J\033[H", end="", flush=True)


def out_json(data: Any) -> None:
    out(json.dumps(mask_data(data), indent=2, sort_keys=False, default=str))


def ask(question: str) -> bool:
    """A yes/no question on the terminal; no terminal (CI, pipes) means no."""
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def span(seconds: float) -> str:
    """A duration as people read it: 42s, 3m05s, 2h07m, 1d4h."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"
