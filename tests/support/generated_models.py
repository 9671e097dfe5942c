"""Generated models for tests: render `models.py` for a spec and import it, plus a collection that
declares every field kind (and names that Python forbids as attributes)."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

from bootstrap.codegen.artifacts import ARTIFACTS
from bootstrap.codegen.render import render_artifact
from bootstrap.spec.load import load_spec
from bootstrap.spec.model import Spec

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = REPO / "config"
ENV = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}
MODELS = next(a for a in ARTIFACTS if a.name == "models.py")

# Every kind, every option, and field names that cannot be attributes as they are.
KINDS_YAML = """\
name: kinds
model: Kind
timestamps: true
additional_fields: false
fields:
  title: {type: string, required: true, min_length: 2, max_length: 12, pattern: "^[a-z]"}
  code: {type: string, pattern: "[0-9]{3}", nullable: false}
  level: {type: string, enum: [low, high], default: low}
  score: {type: number, min: 0, max: 10}
  count: {type: int, min: -5, max: 1000}
  big: long
  ratio: {type: double, default: 1}
  price: decimal
  choice: {type: int, enum: [1, 2, 3]}
  flag: {type: bool, required: true}
  when: {type: date, default: now}
  since: {type: date, default: "2024-01-31T00:00:00Z"}
  owner: {type: objectId, ref: kinds}
  box:
    type: object
    additional_fields: false
    fields:
      inner: {type: string, required: true}
      depth: {type: int, default: 0}
  loose: object
  tags: {type: array, items: string, min_items: 1, max_items: 3, unique_items: true}
  nums: {type: array, items: {type: number, nullable: true}}
  parts:
    type: array
    items:
      type: object
      fields:
        name: {type: string, required: true}
        ref: {type: objectId, ref: kinds}
  labels: {type: map, values: int}
  notes: map
  extra: any
  maybe: {type: string, required: true, nullable: true}
  from: string
  json: {type: bool, default: false}
"""


def spec_with_kinds(tmp: Path, extra_yaml: dict[str, str] | None = None) -> Spec:
    """The shipped config plus the `kinds` collection (and any other collection files given)."""
    config = tmp / "config"
    if not config.exists():
        shutil.copytree(SHIPPED_CONFIG, config)
    (config / "collections" / "kinds.yaml").write_text(KINDS_YAML)
    for name, text in (extra_yaml or {}).items():
        (config / "collections" / name).write_text(text)
    return load_spec(config, env=ENV)


def shipped_spec() -> Spec:
    return load_spec(SHIPPED_CONFIG, env=ENV)


def load_models(spec: Spec, folder: Path) -> ModuleType:
    """`models.py` for `spec`, rendered into `folder` and imported under a name of its own."""
    text = render_artifact(MODELS, spec)
    name = "models_" + hashlib.sha256(text.encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(text)
    found = importlib.util.spec_from_file_location(name, path)
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module  # pydantic resolves the annotations through sys.modules
    found.loader.exec_module(module)
    return module
