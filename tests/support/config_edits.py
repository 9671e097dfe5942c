"""Editing a copied config in place and applying it, as the walk tests do step after step."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Result


def edit(config_dir: Path, file: str, old: str, new: str) -> None:
    """Replace the first `old` in `file` of the config (which must hold it) with `new`."""
    path = config_dir / file
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def applied(cli: Callable[..., Result], config_dir: Path, *flags: str) -> Result:
    """`bootstrap apply` of the config, which must succeed."""
    result = cli("apply", "--config", str(config_dir), *flags)
    assert result.code == 0, result.err
    return result


def run_with_generated(config_dir: Path, script: str) -> str:
    """The output of `script` run in a new process that imports the package generated beside the
    config; its argument is MongoDB's URI."""
    env = {**os.environ, "PYTHONPATH": str(config_dir.parent / "generated")}
    done = subprocess.run(
        [sys.executable, "-c", script, os.environ["MONGODB_URI"]], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
