"""`.bootstrap/up.json`: written private and whole, read only while its `up` lives, and used by the
other commands for the servers that are not configured, with one line saying so."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap.cli.common import use_servers_of_up
from bootstrap.local.upstate import ChildState, UpState, remove_state, running_up, state_path, write_state

MONGO = "mongodb://app:s3cr3t-pw@127.0.0.1:41001/msedb"
REDIS = "redis://:r3d-pw@127.0.0.1:41002/0"


@pytest.fixture
def alive() -> Iterator[int]:
    """A process whose command line names bootstrap, as `bootstrap up`'s does."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "bootstrap", "up"])
    yield process.pid
    process.kill()
    process.wait(10)


def state(pid: int) -> UpState:
    child = ChildState("worker a", 123, "running", 0, ".bootstrap/logs/worker-a.log")
    return UpState(pid=pid, started="now", mongodb_uri=MONGO, redis_url=REDIS, children=(child,), wiring="w1")


def test_written_private_and_read_back_while_up_lives(tmp_path: Path, alive: int) -> None:
    path = state_path(tmp_path)
    write_state(path, state(alive))
    assert path.stat().st_mode & 0o777 == 0o600
    assert running_up(tmp_path) == state(alive)


def test_a_file_whose_up_is_gone_is_ignored(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_state(state_path(tmp_path), state(int(finished.stdout)))
    assert running_up(tmp_path) is None


def test_a_process_that_is_not_bootstrap_does_not_count(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        write_state(state_path(tmp_path), state(other.pid))
        assert running_up(tmp_path) is None
    finally:
        other.kill()
        other.wait(10)


def test_garbage_is_ignored_and_only_its_writer_removes_it(tmp_path: Path, alive: int) -> None:
    path = state_path(tmp_path)
    path.parent.mkdir()
    path.write_text("{not json")
    assert running_up(tmp_path) is None
    write_state(path, state(alive))
    remove_state(path, os.getpid())
    assert path.exists()
    remove_state(path, alive)
    assert not path.exists()


def test_commands_use_the_servers_not_configured_and_say_so_masked(
    tmp_path: Path, alive: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_state(state_path(tmp_path), state(alive))
    for name in ("MONGODB_URI", "REDIS_URL", "REDIS_HOST"):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.INFO, logger="bootstrap.cli"):
        use_servers_of_up(tmp_path / "config")
    assert os.environ["MONGODB_URI"] == MONGO and os.environ["REDIS_URL"] == REDIS
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        f"using the servers of `bootstrap up` (pid {alive}): MongoDB mongodb://app:****@127.0.0.1:41001/msedb, "
        "Redis redis://:****@127.0.0.1:41002/0"
    ]


def test_configured_servers_win(
    tmp_path: Path, alive: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write_state(state_path(tmp_path), state(alive))
    monkeypatch.setenv("MONGODB_URI", "mongodb://elsewhere:27017/x")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("REDIS_HOST", "redis.internal")
    with caplog.at_level(logging.INFO, logger="bootstrap.cli"):
        use_servers_of_up(tmp_path / "config")
    assert os.environ["MONGODB_URI"] == "mongodb://elsewhere:27017/x" and "REDIS_URL" not in os.environ
    assert caplog.records == []


def test_with_no_up_and_no_variable_a_failed_connection_says_how_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse
    import shutil

    from bootstrap.cli.common import spec_from
    from bootstrap.connect import retry
    from tests.conftest import SHIPPED_CONFIG

    config = Path(shutil.copytree(SHIPPED_CONFIG, tmp_path / "config"))  # no `bootstrap up` runs there
    monkeypatch.setattr(retry, "HINTS", {"Redis": "left by an earlier command"})
    for name in ("MONGODB_URI", "REDIS_URL", "REDIS_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6379/0")
    spec_from(argparse.Namespace(command="status", config=config))
    assert retry.HINTS == {
        "MongoDB": "no `bootstrap up` runs for this project and MONGODB_URI is not set: start `bootstrap up`, "
        "or set MONGODB_URI"
    }
