"""The generated models of the shipped spec plus the every-kind collection, imported once."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tests.support.generated_models import load_models, spec_with_kinds


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    folder = tmp_path_factory.mktemp("models")
    return load_models(spec_with_kinds(folder), Path(folder) / "modules")
