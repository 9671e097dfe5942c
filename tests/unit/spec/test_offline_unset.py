"""A required variable that is not set: an error for the commands that connect (the value is needed),
kept as written with a warning for those that connect to nothing (validate, generate, docs), so a CI
job without the secrets can check the config. (These were the corpus cases 098 and 101.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.cli.main import main
from bootstrap.errors import WARNING, ConfigError, Finding
from bootstrap.spec.load import load_spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"
URIS = {
    "no default": ("  uri: ${MONGODB_URI}\n", "environment variable MONGODB_URI is not set and has no default"),
    "required": ("  uri: ${MONGODB_URI:?set MONGODB_URI to the cluster connection string}\n",
                 "environment variable MONGODB_URI is not set: set MONGODB_URI to the cluster connection string"),
}  # fmt: skip


def config_with(tmp_path: Path, uri_line: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    settings = config / "bootstrap.yaml"
    lines = [uri_line if line.strip().startswith("uri:") else line for line in settings.read_text().splitlines(True)]
    settings.write_text("".join(lines))
    return config


@pytest.mark.parametrize("case", URIS)
def test_an_unset_variable_is_an_error_where_the_value_is_needed(tmp_path: Path, case: str) -> None:
    line, message = URIS[case]
    with pytest.raises(ConfigError) as caught:
        load_spec(config_with(tmp_path, line), {})
    (finding,) = caught.value.findings
    assert (finding.line, finding.path) == (6, "mongodb.uri") and message in finding.message


@pytest.mark.parametrize("case", URIS)
def test_offline_an_unset_variable_is_kept_as_written_with_a_warning(tmp_path: Path, case: str) -> None:
    line, _ = URIS[case]
    warnings: list[Finding] = []
    spec = load_spec(config_with(tmp_path, line), {}, warnings, offline=True)
    assert spec.mongodb.uri.startswith("${MONGODB_URI")  # kept: not checked as a URI
    (warning,) = [w for w in warnings if w.path == "mongodb.uri"]
    assert warning.severity == WARNING and warning.line == 6
    assert "environment variable MONGODB_URI is not set: checked as written" in warning.message


def test_offline_a_value_from_the_environment_that_is_no_uri_is_still_refused(tmp_path: Path) -> None:
    """Only a variable that is not set is kept; a set one must still make a URI."""
    with pytest.raises(ConfigError) as caught:
        load_spec(config_with(tmp_path, URIS["no default"][0]), {"MONGODB_URI": "${NOT_A_URI}"}, offline=True)
    assert any("expected a MongoDB connection string" in f.message for f in caught.value.findings)


def test_validate_passes_and_plan_fails_without_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_with(tmp_path, URIS["no default"][0])
    monkeypatch.delenv("MONGODB_URI", raising=False)
    assert main(["validate", "--config", str(config)]) == 0
    assert "warning: mongodb.uri: environment variable MONGODB_URI is not set" in capsys.readouterr().err
    assert main(["plan", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "mongodb.uri: environment variable MONGODB_URI is not set and has no default" in err, err
    assert "Traceback" not in err
