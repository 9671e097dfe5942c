"""Files shipped inside the package: JSON Schemas and Jinja2 templates."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any


def schemas_dir() -> Traversable:
    return files("bootstrap") / "schemas"


def templates_dir() -> Traversable:
    return files("bootstrap") / "templates"


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema `name` (e.g. "collection.schema.json"), parsed once."""
    loaded: dict[str, Any] = json.loads((schemas_dir() / name).read_text(encoding="utf-8"))
    return loaded
