"""Security review (robustness of the URI checks): odd connection strings end in `internal error`
instead of a finding with file and line.

- `MONGODB_URI='mongodb://app:pw@[::1/db'` (an unclosed IPv6 bracket): `validate` itself ends with
  `internal error: ValueError: Invalid IPv6 URL` (spec/build.py `database_from_uri` calls
  `urlsplit` before the URI is checked).
- `REDIS_URL='redis://:pw@h:6379/0?socket_timeout=abc'`: `validate` says the config is valid, then
  every command that connects (`plan`, `apply`, `up`, the workers) ends with `internal error:
  ValueError: Invalid value for 'socket_timeout' in connection URL.`
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec

CONFIG = Path(__file__).resolve().parents[3] / "config"
GOOD = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}


@pytest.mark.parametrize(
    "env",
    [
        {**GOOD, "MONGODB_URI": "mongodb://app:Pw9@[::1/db"},
        {**GOOD, "REDIS_URL": "redis://:Pw9@127.0.0.1:6379/0?socket_timeout=abc"},
    ],
    ids=["mongodb-unclosed-ipv6", "redis-bad-query-option"],
)
def test_an_odd_uri_is_a_finding(tmp_path: Path, env: dict[str, str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env=env)
    assert "Pw9" not in str(caught.value)
