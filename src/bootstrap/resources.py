"""Files shipped inside the package: JSON Schemas and Jinja2 templates."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

# Where the package lies as files (a normal install, an editable one), they are read from here:
# importlib.resources, needed only for a zipped package, takes longer to import than the schemas
# take to read.
_HERE = Path(__file__).resolve().parent


def schemas_dir() -> Traversable:
    from importlib.resources import files

    return files("bootstrap") / "schemas"


def templates_dir() -> Traversable:
    from importlib.resources import files

    return files("bootstrap") / "templates"


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema `name` (e.g. "collection.schema.json"), parsed once."""
    path = _HERE / "schemas" / name
    text = path.read_text(encoding="utf-8") if path.is_file() else (schemas_dir() / name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
