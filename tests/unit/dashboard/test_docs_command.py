"""`bootstrap docs` writes the collections and their Mermaid diagram; `--check` tells a stale file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import copy_config


def test_docs_writes_then_checks(tmp_path: Path, cli: Callable[..., Any]) -> None:
    config = copy_config(tmp_path / "project" / "config", "docs-test")
    target = tmp_path / "project" / "docs" / "collections.md"
    assert cli("docs", "--config", str(config), "--check").code == 1  # nothing written yet
    result = cli("docs", "--config", str(config))
    assert result.code == 0 and "wrote" in result.out
    text = target.read_text()
    assert "```mermaid\nerDiagram\n" in text and 'stagedemails }o--|| users : "userId"' in text
    assert cli("docs", "--config", str(config), "--check").code == 0
    users = config / "collections" / "users.yaml"
    users.write_text(users.read_text().replace("model: User", "model: Member"))
    stale = cli("docs", "--config", str(config), "--check")
    assert stale.code == 1 and "not up to date" in stale.err
    assert target.read_text() == text  # --check writes nothing
