"""Finding messages: no credentials, readable values."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"


def findings(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_spec(SHIPPED, env)
    return [str(f) for f in caught.value.findings]


@pytest.mark.parametrize(
    "uri",
    [
        "postgres://admin:s3cret@db.internal/msedb",
        "postgres://admin:s3/cr@et@db.internal/msedb",
        "mongodb://admin:s3cret@db.internal:99999/msedb",
        "mongodb://admin:s3cret@db.internal/msedb?replicaSet",
        "mongodb://:s3cret@db.internal:0x1/msedb",
    ],
)
def test_mongodb_password_is_never_printed(uri: str) -> None:
    shown = findings({"MONGODB_URI": uri})
    assert shown
    assert not any("s3" in line or "cret" in line for line in shown), shown


@pytest.mark.parametrize("url", ["http://:s3cret@cache:6379/0", "redis://user:s3cret@cache:63x9/0"])
def test_redis_password_is_never_printed(url: str) -> None:
    shown = findings({"REDIS_URL": url})
    assert shown
    assert not any("s3cret" in line for line in shown), shown


def test_long_values_are_shortened(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    queues = config / "queues.yaml"
    queues.write_text(queues.read_text().replace("max_count: 200}", f"max_count: {10**100}}}"))
    with pytest.raises(ConfigError) as caught:
        load_spec(config, {})
    (finding,) = caught.value.findings
    assert finding.message.endswith("... is too large (expected at most 10000000)")
    assert len(finding.message) < 120


@pytest.mark.parametrize(
    ("written", "env"),
    [("  key_prefix:\n", {}), ("  key_prefix: ${P-msedb}\n", {"P": ""})],  # nothing written; set but empty
)
def test_an_empty_value_is_said_as_such(tmp_path: Path, written: str, env: dict[str, str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(SHIPPED, config)
    settings = config / "bootstrap.yaml"
    settings.write_text(settings.read_text().replace("  key_prefix: msedb\n", written))
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env)
    (finding,) = caught.value.findings
    assert finding.message == "expected a string, got nothing (an empty value)", finding.message  # not "null None"
