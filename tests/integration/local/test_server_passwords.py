"""The local servers behind a password (bootstrap.local.servers): Redis reads it from a private
config file (never from its command line), SecantusDB gets its user created on first start and
keeps it; a connection without the password is refused."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import redis
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from bootstrap.local.servers import Credentials, MongoServer, RedisServer

AWKWARD = 'a "quoted" \\ back\'slash and spaces'


def test_credentials_are_made_once_private_and_reused(tmp_path: Path) -> None:
    assert Credentials.load(tmp_path / "state") is None  # other commands never make them
    made = Credentials.load_or_create(tmp_path / "state")
    assert Credentials.load(tmp_path / "state") == made
    path = tmp_path / "state" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Credentials.load_or_create(tmp_path / "state") == made
    assert made.mongodb_password != made.redis_password and len(made.redis_password) >= 30
    path.write_text("{not json")
    remade = Credentials.load_or_create(tmp_path / "state")
    assert remade != made and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_redis_password_comes_from_a_private_config_file(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", password=AWKWARD)
    with server:
        assert server.pid is not None
        assert AWKWARD not in Path(f"/proc/{server.pid}/cmdline").read_text(errors="replace")
        assert stat.S_IMODE((tmp_path / "redis" / "redis.conf").stat().st_mode) == 0o600
        anonymous = redis.Redis(port=server.port, socket_timeout=5)
        with pytest.raises(redis.AuthenticationError):
            anonymous.set("k", "v")
        anonymous.close()
        client = redis.Redis(port=server.port, password=AWKWARD, socket_timeout=5)
        assert client.ping()
        client.close()


def test_mongo_user_is_created_on_first_start_then_required(tmp_path: Path) -> None:
    first = Credentials("bootstrap", "first-password", "unused")
    server = MongoServer(tmp_path / "mongo", credentials=first)
    server.start()
    try:
        nobody: MongoClient[dict[str, Any]] = MongoClient(server.uri, serverSelectionTimeoutMS=5000)
        with pytest.raises(OperationFailure, match="requires authentication"):
            nobody["app"]["x"].insert_one({"n": 1})
        nobody.close()
        client: MongoClient[dict[str, Any]] = MongoClient(server.database_uri("app"))
        client.get_default_database()["x"].insert_one({"n": 1})
        client.close()
    finally:
        server.stop()
    # Another password (credentials.json was lost): the user gets it, the data stays.
    second = Credentials("bootstrap", "second-password", "unused")
    server = MongoServer(tmp_path / "mongo", server.port, credentials=second)
    server.start()
    try:
        client = MongoClient(server.database_uri("app"))
        assert client.get_default_database()["x"].count_documents({}) == 1
        client.close()
        old: MongoClient[dict[str, Any]] = MongoClient(
            MongoServer(tmp_path / "x", server.port, credentials=first).database_uri("app"),
            serverSelectionTimeoutMS=5000,
        )
        with pytest.raises(OperationFailure, match="uthentication failed"):
            old.get_default_database()["x"].count_documents({})
        old.close()
    finally:
        server.stop()
