"""Runtime of the generated models (`<package>/models.py`, one class per collection): pydantic
models with MongoDB's semantics (`document`, `kinds`), typed collections on pymongo's sync and
async clients (`collection`, `bound`), references resolved in batches.

Imported by generated code, handlers and tests only: `validate`, `plan` and `apply` never load it
(it imports pydantic).
"""

from __future__ import annotations

from bootstrap.errors import InvalidDocument
from bootstrap.models.bound import AsyncModels, Models
from bootstrap.models.collection import AsyncModelCollection, ModelCollection
from bootstrap.models.document import Document, Reference, Subdocument

__all__ = [
    "AsyncModelCollection",
    "AsyncModels",
    "Document",
    "InvalidDocument",
    "ModelCollection",
    "Models",
    "Reference",
    "Subdocument",
]
