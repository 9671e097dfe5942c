"""One truth: for documents of every collection (valid ones, and ones near or far from each field's
kind), the models accept exactly what the collection's `$jsonSchema` validator accepts on a real
server; and what the models accept and write back, the server accepts too."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pymongo.database import Database
from pymongo.errors import WriteError

from bootstrap.engine.mongo.validator import collection_validator
from bootstrap.models.document import Document
from bootstrap.spec.model import Collection, Spec
from tests.support import docgen
from tests.support.msedb import MSEDB_COLLECTIONS

COLLECTIONS = [*MSEDB_COLLECTIONS, "kinds"]


def model_of(models: ModuleType, name: str) -> type[Document]:
    return next(m for m in vars(models).values() if isinstance(m, type) and getattr(m, "__collection__", None) == name)


def server_accepts(db: Database[Any], name: str, doc: dict[str, Any]) -> bool:
    try:
        db[name].insert_one(copy.deepcopy(doc))  # the driver adds _id to what it is given
    except WriteError as exc:
        assert exc.code == 121, exc  # a validation failure, nothing else
        return False
    return True


def model_accepts(model: type[Document], doc: dict[str, Any]) -> Document | None:
    try:
        return model.from_document(copy.deepcopy(doc))
    except ValidationError:
        return None


@pytest.mark.parametrize("name", COLLECTIONS)
def test_models_and_the_server_agree_on_every_document(
    kinds_spec: Spec, models: ModuleType, db: Database[Any], name: str
) -> None:
    coll: Collection = kinds_spec.collection(name)
    model = model_of(models, name)
    # The validator alone (no unique index may turn a valid document down); a second collection
    # receives what the models write.
    for target in (f"{name}_truth", f"{name}_written"):
        db.create_collection(target, validator=collection_validator(coll))
    seen = {"accepted": 0, "rejected": 0}

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.one_of(docgen.collection_document(coll), docgen.near_collection_document(coll)))
    def check(doc: dict[str, Any]) -> None:
        server = server_accepts(db, f"{name}_truth", doc)
        built = model_accepts(model, doc)
        assert server == (built is not None), f"server {'accepts' if server else 'rejects'}, models differ: {doc!r}"
        seen["accepted" if server else "rejected"] += 1
        if built is not None:
            assert server_accepts(db, f"{name}_written", built.to_document())

    check()
    assert seen["accepted"] >= 5 and seen["rejected"] >= 5, seen  # both verdicts were exercised


@pytest.mark.parametrize("name", COLLECTIONS)
def test_hand_made_violations_are_refused_by_both(
    kinds_spec: Spec, models: ModuleType, db: Database[Any], name: str
) -> None:
    coll = kinds_spec.collection(name)
    model = model_of(models, name)
    db.create_collection(f"{name}_truth", validator=collection_validator(coll))
    assert server_accepts(db, f"{name}_truth", docgen.minimal(coll.fields))
    assert model_accepts(model, docgen.minimal(coll.fields)) is not None
    for what, doc in docgen.violations(coll):
        assert not server_accepts(db, f"{name}_truth", doc), what
        assert model_accepts(model, doc) is None, what
