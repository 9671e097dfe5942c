"""Spec.hash: the same declarations give the same hash anywhere; any declared change changes it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bootstrap.spec.load import load_spec

SHIPPED = Path(__file__).resolve().parents[3] / "config"


def copy(tmp_path: Path, name: str = "project") -> Path:
    config = tmp_path / name / "config"
    shutil.copytree(SHIPPED, config)
    return config


def edit(config: Path, file: str, old: str, new: str) -> None:
    path = config / file
    text = path.read_text()
    assert text.count(old) == 1, (file, old)
    path.write_text(text.replace(old, new))


def hash_of(config: Path, env: dict[str, str] | None = None) -> str:
    return load_spec(config, env or {}).hash()


def test_hash_is_short_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", hash_of(SHIPPED))


def test_same_config_same_hash() -> None:
    assert hash_of(SHIPPED) == hash_of(SHIPPED)


def test_hash_does_not_depend_on_where_the_config_is(tmp_path: Path) -> None:
    assert hash_of(copy(tmp_path, "a")) == hash_of(copy(tmp_path, "b")) == hash_of(SHIPPED)


@pytest.mark.parametrize(
    "env",
    [
        {"MONGODB_URI": "mongodb://prod-db.internal:27017/msedb"},
        {"MONGODB_URI": "mongodb://user:secret@other:27018/msedb?replicaSet=rs0"},
        {"REDIS_URL": "redis://cache.internal:6380/3"},
        {"REDIS_HOST": "cache", "REDIS_PORT": "6390"},
    ],
)
def test_connection_environment_does_not_change_the_hash(env: dict[str, str]) -> None:
    assert hash_of(SHIPPED, env) == hash_of(SHIPPED)


def test_comments_and_layout_do_not_change_the_hash(tmp_path: Path) -> None:
    config = copy(tmp_path)
    edit(
        config,
        "collections/users.yaml",
        "  - keys: {email: 1}\n    unique: true\n",
        "  # the login\n  - keys:\n      email: 1\n    unique: true    # one account per address\n",
    )
    edit(config, "queues.yaml", "  concurrency: 10\n", "  concurrency:   10\n\n")
    assert hash_of(config) == hash_of(SHIPPED)


def test_writing_a_default_explicitly_does_not_change_the_hash(tmp_path: Path) -> None:
    config = copy(tmp_path)
    edit(
        config,
        "collections/users.yaml",
        "  - keys: {email: 1}\n    unique: true\n",
        "  - keys: {email: 1}\n    unique: true\n    sparse: false\n    name: email_1\n",
    )
    assert hash_of(config) == hash_of(SHIPPED)


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("collections/emailevents.yaml", "    ttl: 90d\n", "    ttl: 30d\n"),
        ("collections/users.yaml", "  - keys: {microsoftId: 1}\n    unique: true\n", "  - keys: {microsoftId: 1}\n"),
        ("collections/users.yaml", "  - keys: {email: 1}\n", "  - keys: {email: -1}\n"),
        ("collections/mailboxes.yaml", "  - keys: {userId: 1}\n", "  - keys: {userId: 1}\n    name: by_user\n"),
        ("collections/rules.yaml", "  - keys: {graphRuleId: 1}\n    sparse: true\n", "  - keys: {graphRuleId: 1}\n"),
        ("collections/users.yaml", "  lastLoginAt: date\n", "  lastLoginAt: date\n  locale: string\n"),
        ("collections/users.yaml", "  email: {type: string, required: true}\n", "  email: {type: string}\n"),
        ("collections/users.yaml", "default: user}", "default: admin}"),
        ("queues.yaml", "max_count: 200}", "max_count: 201}"),
        ("schedules.yaml", "    every: 15m\n", "    every: 16m\n"),
        ("schedules.yaml", 'cron: "0 2 * * *"', 'cron: "0 3 * * *"'),
        ("schedules.yaml", "attempts: 3,", "attempts: 4,"),
    ],
)
def test_declared_change_changes_the_hash(tmp_path: Path, file: str, old: str, new: str) -> None:
    config = copy(tmp_path)
    edit(config, file, old, new)
    assert hash_of(config) != hash_of(SHIPPED)
