"""The typed collections of one database: `AsyncModels(db)[EmailEvent]` (what handlers get as
`models`) or `Models(db)[EmailEvent]` (scripts), and references resolved in batches."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import bson
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from bootstrap.models.collection import AsyncModelCollection, ModelCollection
from bootstrap.models.document import Document, Reference

D = TypeVar("D", bound=Document)
S = TypeVar("S", bound=Document)
T = TypeVar("T", bound=Document)


class Models:
    """Typed collections on a synchronous pymongo Database."""

    def __init__(self, db: Database[Any]) -> None:
        self.db = db
        self._collections: dict[type[Document], ModelCollection[Any]] = {}

    def __getitem__(self, model: type[D]) -> ModelCollection[D]:
        found = self._collections.get(model)
        if found is None:
            found = self._collections[model] = ModelCollection(model, self.db)
        return found  # stored under its own model

    def resolve(self, documents: Iterable[S], ref: Reference[S, T]) -> dict[bson.ObjectId, T]:
        """The `ref.target` documents the documents point to, by id: one query (`$in`) for all."""
        ids = ref.ids(documents)
        return {doc.id: doc for doc in self[ref.target].find({"_id": {"$in": ids}})} if ids else {}


class AsyncModels:
    """Typed collections on an asynchronous pymongo AsyncDatabase (a worker's `db`)."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
        self._collections: dict[type[Document], AsyncModelCollection[Any]] = {}

    def __getitem__(self, model: type[D]) -> AsyncModelCollection[D]:
        found = self._collections.get(model)
        if found is None:
            found = self._collections[model] = AsyncModelCollection(model, self.db)
        return found  # stored under its own model

    async def resolve(self, documents: Iterable[S], ref: Reference[S, T]) -> dict[bson.ObjectId, T]:
        """The `ref.target` documents the documents point to, by id: one query (`$in`) for all."""
        ids = ref.ids(documents)
        return {doc.id: doc for doc in await self[ref.target].find({"_id": {"$in": ids}})} if ids else {}
