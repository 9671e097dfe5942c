"""Security review: secrets carried by MongoDB URI options other than `password=` are printed in clear.

`redact.mask` hides the userinfo of a URL and `password=`/`token=`-style options, but only when the
option's name is exactly one of those words. pymongo reads two more secrets from the connection
string, and `plan`, `apply`, `status`, `up` and every "not reachable" log line print the URI
through `mask`:
- `tlsCertificateKeyFilePassword=...` (the password of the client certificate's key), seen printed
  by `bootstrap plan`: `MongoDB mongodb://app:****@h/db?tlsCertificateKeyFilePassword=KeyFilePw77
  not reachable ...`;
- `authMechanismProperties=AWS_SESSION_TOKEN:...` (MONGODB-AWS's session token).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.redact import mask
from bootstrap.spec.load import load_spec

URIS = [
    "mongodb://app:S3cret@db.internal:27017/msedb?tls=true&tlsCertificateKeyFile=/k.pem"
    "&tlsCertificateKeyFilePassword=KeyFilePw77",
    "mongodb://AKIAEXAMPLE:AwsSecretKey99@db.internal/msedb?authMechanism=MONGODB-AWS"
    "&authMechanismProperties=AWS_SESSION_TOKEN:SessionTok77",
]


@pytest.mark.parametrize("uri", URIS, ids=["tlsCertificateKeyFilePassword", "AWS_SESSION_TOKEN"])
def test_secret_uri_options_are_masked(uri: str) -> None:
    shown = mask(f"MongoDB {uri} not reachable (retry 1 of 10 in 0.7s)")
    assert "S3cret" not in shown and "AwsSecretKey99" not in shown  # the userinfo is masked today
    assert "KeyFilePw77" not in shown
    assert "SessionTok77" not in shown


# A Redis URL with no host (redis-py then connects to localhost) passes `validate`, and its
# password is printed in clear: `mask` only ends a userinfo at `@` followed by a host name.
# Seen: `REDIS_URL='redis://:SecretPw9@/0' bootstrap plan` -> `Redis redis://:SecretPw9@/0 not reachable`.
@pytest.mark.parametrize("url", ["redis://:SecretPw9@/0", "redis://:SecretPw9@:6379/0"], ids=["no-host", "port-only"])
def test_a_redis_url_without_host_is_masked(url: str) -> None:
    assert "SecretPw9" not in mask(f"Redis {url} not reachable (retry 1 of 10 in 0.6s)")


# The same gaps let a password written in bootstrap.yaml through: `validate` refuses
# `${REDIS_URL:-redis://:pw@host/0}` ("a password is written in the file: it would be copied into
# generated code"), but not these two, and `generate` copies them into generated/<package>/spec.py.
CONFIG = Path(__file__).resolve().parents[2] / "config"
SHIPPED_URL = "url: ${REDIS_URL:-redis://${REDIS_HOST:-127.0.0.1}:${REDIS_PORT:-6379}/0}"
SHIPPED_URI = "uri: ${MONGODB_URI:-mongodb://127.0.0.1:27017/msedb}"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (SHIPPED_URL, "url: ${REDIS_URL:-redis://:InFilePw9@:6379/0}"),
        (SHIPPED_URI, "uri: ${MONGODB_URI:-mongodb://h:27017/msedb?tls=true&tlsCertificateKeyFilePassword=InFilePw9}"),
    ],
    ids=["redis-no-host", "tlsCertificateKeyFilePassword"],
)
def test_a_password_written_in_bootstrap_yaml_is_refused(tmp_path: Path, old: str, new: str) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    path = config / "bootstrap.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(ConfigError):
        load_spec(config, env={})


def test_a_password_taken_from_its_own_variable_is_not_written_in_the_file(tmp_path: Path) -> None:
    """`redis://:${REDIS_PASSWORD}@host/0` keeps the password in the environment: validate takes it."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    path = config / "bootstrap.yaml"
    path.write_text(path.read_text().replace(SHIPPED_URL, "url: redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0"))
    spec = load_spec(config, env={"REDIS_PASSWORD": "FromEnv9", "MONGODB_URI": "mongodb://127.0.0.1/x"})
    assert spec.redis.url == "redis://:FromEnv9@127.0.0.1:6379/0"
    assert "FromEnv9" not in mask(f"Redis {spec.redis.url}")
    with pytest.raises(ConfigError):  # a default holding one is written in the file
        path.write_text(path.read_text().replace("${REDIS_PASSWORD}", "${REDIS_PASSWORD:-InFile9}"))
        load_spec(config, env={"MONGODB_URI": "mongodb://127.0.0.1/x"})


def test_an_empty_password_is_no_secret() -> None:
    assert mask("redis://:@127.0.0.1:6379/0") == "redis://:@127.0.0.1:6379/0"
    assert mask("redis://user:@h/0") == "redis://user:@h/0"
