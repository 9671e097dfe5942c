"""Security review: a YAML string with a lone surrogate passes `validate`, then breaks the generated
package and `apply`.

YAML's double-quoted `"\\ud800"` is a str Python holds but UTF-8 cannot encode. `validate` says the
config is valid and `generate` writes models.py, but importing it fails (pydantic: `SchemaError:
error extracting str '\\ud800'`) and `apply` ends with `internal error: UnicodeEncodeError ...
surrogates not allowed` (BSON strings are UTF-8). Seen with an enum value; a default, a pattern
or a schedule's kwargs carry it the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec

CONFIG = Path(__file__).resolve().parents[3] / "config"
ENV = {"MONGODB_URI": "mongodb://127.0.0.1:27017/msedb", "REDIS_URL": "redis://127.0.0.1:6379/0"}
SHIPPED = "role: {type: string, enum: [admin, user], default: user}"


def test_validate_refuses_a_lone_surrogate(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    users = config / "collections" / "users.yaml"
    text = users.read_text()
    assert SHIPPED in text
    users.write_text(text.replace(SHIPPED, 'role: {type: string, enum: [admin, user, "\\ud800"], default: user}'))
    with pytest.raises(ConfigError):
        load_spec(config, env=ENV)


def test_the_lone_surrogate_is_named_at_its_line(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    users = config / "collections" / "users.yaml"
    text = users.read_text()
    users.write_text(text.replace(SHIPPED, 'role: {type: string, enum: [admin, user, "\\ud800"], default: user}'))
    line = next(n for n, row in enumerate(users.read_text().splitlines(), 1) if "ud800" in row)
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env=ENV)
    [finding] = caught.value.findings
    assert finding.line == line and "\\ud800 is a lone surrogate (half of a pair)" in finding.message, finding
