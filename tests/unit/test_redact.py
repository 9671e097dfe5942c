"""The credential mask, on the URLs and messages that reach logs and output."""

from __future__ import annotations

import pytest

from bootstrap.redact import has_password, mask, mask_value


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
        # Characters a character class stopped at (issue: the password was printed in clear).
        ("REDIS_URL=redis://:R3d'isS3cQwE@127.0.0.1:6379/0", "REDIS_URL=redis://:****@127.0.0.1:6379/0"),
        ("'redis://:R3d'isS3cQwE@127.0.0.1:6379/0'", "'redis://:****@127.0.0.1:6379/0'"),
        ('redis://:a"b<c>d@h:1/0 x', "redis://:****@h:1/0 x"),
        ("Redis redis://:pass word here@h:6379/0 not reachable", "Redis redis://:****@h:6379/0 not reachable"),
        ("redis://:ab://cd@h:1/0", "redis://:****@h:1/0"),
        ("redis://:p@x y@h:1/0", "redis://:****@h:1/0"),
        ("redis://:p?w#d@[::1]:6379/0", "redis://:****@[::1]:6379/0"),
        ("mongodb://u:p@h1:27017,h2:27017/db?replicaSet=rs", "mongodb://u:****@h1:27017,h2:27017/db?replicaSet=rs"),
        ('{"url": "redis://:x\'y@r:1/0", "n": 1}', '{"url": "redis://:****@r:1/0", "n": 1}'),
        ("a: redis://:one@r/0\nb: redis://:two@s/0", "a: redis://:****@r/0\nb: redis://:****@s/0"),
    ],
)
def test_mask(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_has_password() -> None:
    assert has_password("${MONGODB_URI:-mongodb://u:pw@localhost/db}")
    assert not has_password("${MONGODB_URI:-mongodb://127.0.0.1:27017/msedb}")


PASSWORD_CHARACTERS = "'\"<> @/:?#%&=;,(){}[]|\\`~!$^*+"


@pytest.mark.parametrize("char", list(PASSWORD_CHARACTERS))
def test_no_password_character_escapes_the_mask(char: str) -> None:
    secret = f"Sx{char}Qw{char}9z"
    for url in (f"redis://:{secret}@127.0.0.1:6379/0", f"mongodb://app:{secret}@db.internal:27017/msedb"):
        for line in (url, f"connecting to {url} now", f"'{url}'", f'"url": "{url}"', f"x={url}; retry"):
            assert "Sx" not in mask(line), line


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("mongodb:/admin:Sup3r@db:27017/msedb", "mongodb:/admin:****@db:27017/msedb"),
        ("mongodb+srv//admin:Sup3r@c.example.net/m", "mongodb+srv//admin:****@c.example.net/m"),
        ("redis//:Sup3r@r:6379/0", "redis//:****@r:6379/0"),
        ("admin:Sup3r@db:27017/msedb", "admin:****@db:27017/msedb"),  # no scheme at all
        ("mongodb:admin:Sup:3r@db", "mongodb:****@db"),  # generous: never a piece of the password
        ("mongodb://u:Sup3r@db/x", "mongodb://u:****@db/x"),  # a real URL: as mask() does
        ("ann@example.com", "ann@example.com"),  # a user name alone is no secret
        ("redis://r:6379/0", "redis://r:6379/0"),
    ],
)
def test_a_config_value_hides_the_password_of_a_mistyped_connection_string(value: str, shown: str) -> None:
    assert mask_value(value) == shown
