"""A config folder the file system will not let us read (symbolic link loops, links to nothing, no
permission) gives findings naming the path, never an internal error."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bootstrap.cli.main import main
from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec
from tests.conftest import SHIPPED_CONFIG

LOOP = "a symbolic link loop"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return Path(shutil.copytree(SHIPPED_CONFIG, tmp_path / "config"))


def problems(config: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_spec(config)
    return [str(finding) for finding in raised.value.findings]


def loop(at: Path) -> None:
    """`at` -> `at`.other -> `at`: a symbolic link loop."""
    other = at.with_name(at.name + ".other")
    other.symlink_to(at.name)
    at.symlink_to(other.name)


def test_a_collection_file_in_a_symbolic_link_loop(config: Path) -> None:
    loop(config / "collections" / "looped.yaml")
    found = problems(config)
    assert f"config/collections/looped.yaml: cannot read: {LOOP} (a link that points back to itself)" in found


def test_a_collection_file_linking_to_nothing(config: Path) -> None:
    (config / "collections" / "gone.yaml").symlink_to("nowhere.yaml")
    assert problems(config) == ["config/collections/gone.yaml: cannot read: it is a symbolic link to nothing"]


def test_the_collections_folder_in_a_symbolic_link_loop(config: Path) -> None:
    shutil.rmtree(config / "collections")
    loop(config / "collections")
    found = problems(config)
    assert any(f.startswith(f"config/collections: cannot read: {LOOP}") for f in found), found


def test_the_config_folder_in_a_symbolic_link_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    loop(tmp_path / "config")
    assert problems(tmp_path / "config") == [f"config: cannot read: {LOOP} (a link that points back to itself)"]


def test_settings_in_a_symbolic_link_loop(config: Path) -> None:
    (config / "bootstrap.yaml").unlink()
    loop(config / "bootstrap.yaml")
    found = problems(config)
    assert any(f.startswith("config/bootstrap.yaml: cannot read:") for f in found), found


def failing_scandir(denied: Path) -> Callable[[object], object]:
    real = os.scandir

    def scandir(path: object) -> object:
        if Path(str(path)).resolve() == denied.resolve():
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)  # type: ignore[call-overload]

    return scandir


@pytest.mark.parametrize("folder", ["config", "config/collections"])
def test_an_unreadable_folder(config: Path, monkeypatch: pytest.MonkeyPatch, folder: str) -> None:
    """os.scandir refusing as it does for a folder without read permission (tests run as root here,
    where chmod cannot take that permission away; the test below does it for real elsewhere)."""
    monkeypatch.setattr(os, "scandir", failing_scandir(config.parent / folder))
    found = problems(config)
    assert any(f.startswith(f"{folder}: cannot read") and "Permission denied" in f for f in found), found


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their permissions")
def test_an_unreadable_collections_folder_for_real(config: Path) -> None:
    (config / "collections").chmod(0)
    try:
        found = problems(config)
    finally:
        (config / "collections").chmod(0o755)
    assert any(f.startswith("config/collections: cannot read") for f in found), found


def test_validate_reports_them_as_findings_not_internal_errors(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop(config / "collections" / "looped.yaml")
    (config / "collections" / "gone.yaml").symlink_to("nowhere.yaml")
    assert main(["validate", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "internal error" not in err, err
    assert "looped.yaml: cannot read" in err and "gone.yaml: cannot read" in err, err


def test_no_config_folder_says_where_it_looked_and_how_to_point_at_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # outside the project, as a new user in the wrong folder
    monkeypatch.delenv("BOOTSTRAP_CONFIG", raising=False)
    assert main(["validate"]) == 1
    err = capsys.readouterr().err
    assert f"config folder not found (looked for {tmp_path / 'config'}" in err
    assert "--config DIR" in err and "BOOTSTRAP_CONFIG" in err
