"""Review rev5: `validate` reads the Redis URL's query options with redis-py's `parse_url`, which
checks the values of the options it knows but passes any other name through to the connection
class: a misspelled option (`?socket_timout=5`) passes `validate`, then `status`, `health`, `plan`
and the workers end with `internal error: TypeError: AbstractConnection.__init__() got an unexpected
keyword argument 'socket_timout'` (seen with `bootstrap status` and `bootstrap health`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec

CONFIG = Path(__file__).resolve().parents[3] / "config"
GOOD = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}


@pytest.mark.xfail(strict=True, reason="an unknown Redis URL option passes validate; every command then crashes")
def test_an_unknown_redis_url_option_is_a_finding(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env={**GOOD, "REDIS_URL": "redis://127.0.0.1:6379/0?socket_timout=5"})
    assert "socket_timout" in str(caught.value)
