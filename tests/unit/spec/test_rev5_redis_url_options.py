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


def test_an_unknown_redis_url_option_is_a_finding(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env={**GOOD, "REDIS_URL": "redis://127.0.0.1:6379/0?socket_timout=5"})
    [finding] = caught.value.findings
    assert finding.message == "invalid Redis URL: unknown option 'socket_timout'", finding


@pytest.mark.parametrize(
    ("query", "said"),
    [("protocol=9", "invalid Redis URL: protocol must be either 2 or 3"),
     ("socket_timeout=abc", "invalid Redis URL: Invalid value for 'socket_timeout' in connection URL.")],
)  # fmt: skip
def test_a_bad_option_value_is_a_finding_and_good_options_pass(tmp_path: Path, query: str, said: str) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env={**GOOD, "REDIS_URL": f"redis://:Pw9@127.0.0.1:6379/0?{query}"})
    assert [f.message for f in caught.value.findings] == [said]
    load_spec(config, env={**GOOD, "REDIS_URL": "redis://:Pw9@127.0.0.1:6379/0?socket_timeout=5&health_check_interval=2"})
