"""Shared fixtures: real servers (SecantusDB for MongoDB, redis-server), a copy of the shipped config
per test, and an in-process CLI runner."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from bootstrap.cli.main import main
from bootstrap.local.servers import MongoServer, RedisServer
from tests.support.redis_topologies import RedisCluster, SentinelSet

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "config"


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    server = MongoServer(tmp_path_factory.mktemp("mongo"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may freeze (SIGSTOP its group), fill or stop."""
    server = RedisServer(tmp_path / "own-redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_mongo(tmp_path: Path) -> Iterator[MongoServer]:
    """A SecantusDB of this test's own, which it may stop or restart mid-plan (see
    tests/support/mongo_hooks.py); the hook armed for it is disarmed after the test."""
    server = MongoServer(tmp_path / "own-mongo")
    server.start()
    yield server
    from tests.support.mongo_hooks import OnCommand

    OnCommand.armed = None
    server.stop()


@pytest.fixture
def own_redis_config(
    tmp_path: Path, mongo_uri: str, own_redis: RedisServer, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A copy of the shipped config on `own_redis` and this test's database."""
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("REDIS_URL", own_redis.uri)
    return copy_config(tmp_path / "project" / "config", key_prefix)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A 3-master Redis Cluster (started only for tests that ask for it: about 2 s)."""
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    """A Redis master, its replica and sentinels watching them (Redis 7 where the tests have it)."""
    found = SentinelSet(tmp_path / "sentinel")
    found.start()
    yield found
    found.stop()


@dataclass(frozen=True)
class RedisTarget:
    url: str
    mode: str  # redis.mode: standalone or cluster


@pytest.fixture
def redis_target(request: pytest.FixtureRequest) -> RedisTarget:
    """The standalone test Redis; with BOTH_MODES, that and the 3-master cluster in turn."""
    mode = getattr(request, "param", "standalone")
    if mode == "cluster":
        return RedisTarget(request.getfixturevalue("redis_cluster").uri, mode)
    return RedisTarget(request.getfixturevalue("redis_server").uri, mode)


# Run a test on standalone Redis and on a 3-master cluster: for the tests where the mode matters.
BOTH_MODES = pytest.mark.parametrize("redis_target", ["standalone", "cluster"], indirect=True)


@pytest.fixture
def mongo_uri(mongo_server: MongoServer) -> str:
    """A URI naming a database of its own for this test."""
    return f"{mongo_server.uri}t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def key_prefix() -> str:
    """Redis keys of their own for this test (the Redis server is shared)."""
    return f"t-{uuid.uuid4().hex[:10]}"


def copy_config(target: Path, key_prefix: str, redis: str = "") -> Path:
    """The shipped config copied to `target`, its Redis keys under `key_prefix`; `redis`: lines added
    to its `redis:` section (`  mode: cluster\n`)."""
    shutil.copytree(SHIPPED_CONFIG, target)
    settings = target / "bootstrap.yaml"
    settings.write_text(settings.read_text().replace("key_prefix: msedb\n", f"key_prefix: {key_prefix}\n{redis}"))
    return target


@pytest.fixture
def seed_db(mongo_uri: str) -> Iterator[Database[Any]]:
    """This test's database, to fill by hand as another tool (the seed's ODM) would have: dropped after."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    database = client.get_default_database()
    yield database
    client.drop_database(database.name)
    client.close()


@pytest.fixture
def config_dir(
    tmp_path: Path,
    mongo_uri: str,
    redis_server: RedisServer,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A copy of the shipped config, pointed at this test's database and Redis keys."""
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("REDIS_URL", redis_server.uri)
    return copy_config(tmp_path / "project" / "config", key_prefix)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `bootstrap ARGS...` in this process; returns exit code and captured output."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(extra)
    return env
