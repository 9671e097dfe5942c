"""`models.py` as generated: deterministic, ruff- and mypy --strict-clean for every field kind, and
values from YAML reach it escaped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bootstrap.codegen.models import models_inputs
from bootstrap.codegen.render import render_artifact
from tests.support.generated_models import MODELS, REPO, load_models, shipped_spec, spec_with_kinds

INJECTED_YAML = r"""name: odd
model: Odd
fields:
  kind:
    type: string
    enum: ['a"; import os; os.system("touch /tmp/pwned") #', "line\nbreak", "\u00e9\U0001F600", "back\\slash"]
    default: "line\nbreak"
  code: {type: string, pattern: '^"\d+''$', description: "x\"\"\" + 1"}
  weird: {type: number, enum: [1.5, 2]}
"""


def test_rendering_is_deterministic_and_lists_every_model(tmp_path: Path) -> None:
    spec = shipped_spec()
    assert render_artifact(MODELS, spec) == render_artifact(MODELS, shipped_spec())
    inputs = models_inputs(spec)
    documents = [c["name"] for c in inputs["classes"] if c["document"]]
    assert len(documents) == 9 and set(documents) <= set(inputs["all"])


def test_every_kind_renders_ruff_and_mypy_strict_clean(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(render_artifact(MODELS, spec_with_kinds(tmp_path)))
    settings = ["--config", str(REPO / "pyproject.toml"), "--no-cache"]
    ruff = [sys.executable, "-m", "ruff"]
    checked = subprocess.run([*ruff, "check", *settings, str(package)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout
    formatted = subprocess.run(
        [*ruff, "format", "--check", "--diff", *settings, str(package)], capture_output=True, text=True
    )
    assert formatted.returncode == 0, formatted.stdout
    usage = package / "usage.py"  # the typed API as an application uses it
    usage.write_text(
        "from bson import ObjectId\n\n"
        "from bootstrap.models import AsyncModels, Models\n\n"
        "from .models import EmailEvent, EmailEventRefs, Kind, Mailbox\n\n\n"
        "async def handler(models: AsyncModels) -> str:\n"
        "    events = models[EmailEvent]\n"
        "    event = await events.insert_one(\n"
        "        EmailEvent(userId=ObjectId(), mailboxId=ObjectId(), messageId='m', eventType='arrived')\n"
        "    )\n"
        "    found = await events.find({'_id': event.id})\n"
        "    boxes: dict[ObjectId, Mailbox] = await models.resolve(found, EmailEventRefs.mailboxId)\n"
        "    return boxes[event.mailboxId].email\n\n\n"
        "def script(models: Models) -> int:\n"
        "    kinds = models[Kind]\n"
        "    first = kinds.find_one({'title': 'abc'})\n"
        "    return 0 if first is None else len(first.title)\n"
    )
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "pkg"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert mypy.returncode == 0, mypy.stdout


def test_values_from_yaml_are_escaped(tmp_path: Path) -> None:
    spec = spec_with_kinds(tmp_path, {"odd.yaml": INJECTED_YAML})
    models = load_models(spec, tmp_path / "modules")
    assert not Path("/tmp/pwned").exists()
    field = models.Odd.model_fields["kind"]
    assert field.default == "line\nbreak"
    values = ['a"; import os; os.system("touch /tmp/pwned") #', "line\nbreak", "\u00e9\U0001f600", "back\\slash"]
    for value in values:
        assert models.Odd(kind=value).kind == value
    assert models.Odd(code="\"12'").code == "\"12'"
    assert models.Odd(weird=2.0).weird == 2.0
