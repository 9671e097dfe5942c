"""A database with the shipped collections and the every-kind collection applied (validators and
indexes), and their generated models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pymongo import MongoClient, monitoring
from pymongo.database import Database

from bootstrap.engine.apply import apply
from bootstrap.engine.ops import Options
from bootstrap.spec.model import Spec
from tests.support.generated_models import load_models, spec_with_kinds


class Commands(monitoring.CommandListener):
    """The commands a client sends, by name (with the collection for reads and writes)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append((event.command_name, event.command.get(event.command_name)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def named(self, name: str) -> list[Any]:
        return [target for command, target in self.sent if command == name]


@pytest.fixture(scope="session")
def kinds_spec(tmp_path_factory: pytest.TempPathFactory) -> Spec:
    return spec_with_kinds(tmp_path_factory.mktemp("kinds"))


@pytest.fixture(scope="session")
def models(kinds_spec: Spec, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return load_models(kinds_spec, Path(tmp_path_factory.mktemp("modules")))


@pytest.fixture
def commands() -> Commands:
    return Commands()


@pytest.fixture
def db(mongo_uri: str, kinds_spec: Spec, commands: Commands) -> Iterator[Database[Any]]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, event_listeners=[commands])
    database = client.get_default_database()
    apply(kinds_spec, database, None, Options(), lambda line: None)
    commands.sent.clear()
    yield database
    client.drop_database(database.name)
    client.close()
