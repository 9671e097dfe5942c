"""`validate`, `plan` and `apply` never load the models' runtime (pydantic): only generated code,
handlers and tests import it."""

from __future__ import annotations

import subprocess
import sys

COMMAND_MODULES = [
    "bootstrap.cli.validate",
    "bootstrap.cli.plan",
    "bootstrap.cli.apply",
    "bootstrap.engine.apply",
    "bootstrap.spec.load",
    "bootstrap.codegen.artifacts",  # what generate renders models.py from
]


def test_commands_do_not_import_pydantic() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in COMMAND_MODULES)
        + "print(sorted(m for m in ('pydantic', 'bootstrap.models') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
