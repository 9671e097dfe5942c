"""Review rev5: the new unclosed-IPv6 check on the MongoDB URI misnames a password holding `[` or
`]` (common in generated passwords) as an IPv6 address.

`MONGODB_URI='mongodb://app:pa[ss9@db.internal:27017/msedb'` -> `mongodb.uri: invalid MongoDB URI
(Invalid IPv6 URL)` (seen): the user looks for an address to fix, while the problem is the
unescaped password; a `:` in the same place gets pymongo's "Username and password must be escaped
according to RFC 3986, use urllib.parse.quote_plus". The Redis URL check already says "expected
redis://[[user]:password@]host..." when the URL has an `@`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.spec.load import load_spec

CONFIG = Path(__file__).resolve().parents[3] / "config"


@pytest.mark.parametrize(
    "uri", ["mongodb://app:pa[ss9@db.internal:27017/msedb", "mongodb://app:pa]ss9@db.internal/msedb"]
)
def test_a_bracket_in_the_password_is_said_to_need_escaping(tmp_path: Path, uri: str) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    with pytest.raises(ConfigError) as caught:
        load_spec(config, env={"MONGODB_URI": uri})
    said = " ".join(str(finding) for finding in caught.value.findings)
    assert "Invalid IPv6 URL" not in said and "escape it" in said, said
    assert "ss9" not in said
