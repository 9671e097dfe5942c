"""The generated package is typed for the application that imports it (PEP 561).

README "Using the models": models.py "is ruff- and `mypy --strict`-clean". An app that imports the
package the way workers do (its folder on PYTHONPATH, or installed) and runs `mypy --strict` gets
`Skipping analyzing "msedb_jobs.models": module is installed, but missing library stubs or py.typed
marker [import-untyped]`: every model, collection and task is then Any (found while type-checking an
app written on the generated package; only MYPYPATH=generated works around it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.cli.main import main

CONFIG = Path(__file__).resolve().parents[3] / "config"


def test_generate_marks_the_package_as_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:27017/msedb")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    shutil.copytree(CONFIG, tmp_path / "config")
    assert main(["generate", "--config", str(tmp_path / "config")]) == 0
    package = tmp_path / "generated" / "msedb_jobs"
    assert (package / "models.py").exists()
    assert (package / "py.typed").exists()
