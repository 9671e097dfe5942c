"""rev6 review: the generated spec.py names the project folder relative to the package (ae2de1f)."""

from __future__ import annotations

import shutil
from pathlib import Path

from bootstrap.codegen.render import render, wiring_hash
from bootstrap.spec.load import load_spec
from tests.conftest import SHIPPED_CONFIG

ENV = {"MONGODB_URI": "mongodb://localhost:27017/msedb", "REDIS_URL": "redis://localhost:6379/0"}


def _project(root: Path, name: str) -> Path:
    config = shutil.copytree(SHIPPED_CONFIG, root / name / "config")
    settings = config / "bootstrap.yaml"
    text = settings.read_text()
    assert "  output: generated\n" in text
    settings.write_text(text.replace("  output: generated\n", "  output: ../gen\n  allow_outside_project: true\n"))
    return config


def test_the_wiring_does_not_depend_on_the_project_folder_name(tmp_path: Path) -> None:
    one = load_spec(_project(tmp_path / "a", "msedb"), ENV)
    two = load_spec(_project(tmp_path / "b", "msedb-ci-checkout"), ENV)
    assert render(one)["spec.py"] == render(two)["spec.py"]
    assert wiring_hash(one, workers=True) == wiring_hash(two, workers=True)


def test_a_package_outside_the_project_imports_handlers_from_pythonpath(tmp_path: Path) -> None:
    text = render(load_spec(_project(tmp_path, "msedb"), ENV))["spec.py"]
    assert "project_dir" not in text and "import os" not in text
    assert 'RUNTIME = Runtime.from_literal({**CONTRACT, "schedules": SCHEDULES})' in text
    compile(text, "spec.py", "exec")
