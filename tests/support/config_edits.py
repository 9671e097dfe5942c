"""Editing a copied config in place and applying it, as the walk tests do step after step."""

from __future__ import annotations

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
