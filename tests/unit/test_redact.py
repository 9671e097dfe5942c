"""The credential mask, on the URLs and messages that reach logs and output."""

from __future__ import annotations

import pytest

from bootstrap.redact import has_password, mask


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mongodb://app:S3cret@db:27017/msedb", "mongodb://app:****@db:27017/msedb"),
        ("redis://:tail@secretpart@h:6379/0", "redis://:****@h:6379/0"),  # "@" inside the password
        ("redis://:Zx9q/Kd8@h:6379/0", "redis://:****@h:6379/0"),  # "/" inside the password
        ("mongodb+srv://u:p%40ss@cluster.example.net/db", "mongodb+srv://u:****@cluster.example.net/db"),
        ("x mongodb://a:b@h/db and redis://:c@r/0 y", "x mongodb://a:****@h/db and redis://:****@r/0 y"),
        ("mongodb://h/db?authSource=admin&password=hunter2", "mongodb://h/db?authSource=admin&password=****"),
        ("mongodb://reader@h/db", "mongodb://reader@h/db"),  # a user name alone is not a secret
        ("no url here", "no url here"),
    ],
)
def test_mask(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_has_password() -> None:
    assert has_password("${MONGODB_URI:-mongodb://u:pw@localhost/db}")
    assert not has_password("${MONGODB_URI:-mongodb://127.0.0.1:27017/msedb}")
