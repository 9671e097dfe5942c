"""A TTL index on a date the application may leave out is a warning: those documents never expire.
`validate` prints it and still succeeds."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bootstrap.cli.main import main
from bootstrap.errors import WARNING, Finding
from bootstrap.spec.load import load_spec

CONFIG = Path(__file__).resolve().parents[3] / "config"
ENV = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}
EVENTS = "collections/emailevents.yaml"


def edited(tmp_path: Path, old: str, new: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    path = config / EVENTS
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    return config


def warnings_of(config: Path) -> list[Finding]:
    found: list[Finding] = []
    load_spec(config, env=ENV, warnings=found)
    return found


def test_the_shipped_config_has_no_warning() -> None:
    assert warnings_of(CONFIG) == []


def test_a_ttl_on_an_optional_date_without_default_is_a_warning(tmp_path: Path) -> None:
    config = edited(tmp_path, "  timestamp: {type: date, default: now}", "  timestamp: date")
    (warning,) = warnings_of(config)
    assert warning.severity == WARNING and warning.file.endswith("emailevents.yaml")
    assert warning.path == "indexes[3].ttl" and "documents without `timestamp` never expire" in warning.message
    assert str(warning).startswith(f"{warning.file}:{warning.line}:{warning.column}: warning: indexes[3].ttl: ")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("  timestamp: {type: date, default: now}", "  timestamp: {type: date, required: true}"),
        ("  - keys: {timestamp: 1}\n    ttl: 90d", "  - keys: {createdAt: 1}\n    ttl: 90d"),  # set on insert
    ],
)
def test_no_warning_when_every_document_has_the_date(tmp_path: Path, old: str, new: str) -> None:
    assert warnings_of(edited(tmp_path, old, new)) == []


def test_validate_prints_warnings_and_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    config = edited(tmp_path, "  timestamp: {type: date, default: now}", "  timestamp: date")
    run: Callable[..., int] = main
    assert run(["validate", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    assert ": warning: indexes[3].ttl: documents without `timestamp` never expire" in captured.err
    assert "valid (" in captured.out
    assert run(["validate", "--config", str(config), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["severity"] == "warning" and entry["path"] == "indexes[3].ttl"
