"""All terminal output goes through here, so tests can capture it and commands stay consistent."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO


def out(text: str = "", *, stream: TextIO | None = None) -> None:
    """A line for the user (stdout): results, plans, reports."""
    print(text, file=stream or sys.stdout, flush=True)


def err(text: str) -> None:
    """A line about a problem (stderr)."""
    print(text, file=sys.stderr, flush=True)


def out_json(data: Any) -> None:
    out(json.dumps(data, indent=2, sort_keys=False, default=str))
