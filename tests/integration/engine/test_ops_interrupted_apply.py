"""Operator scenario: an apply stopped mid-way by Ctrl-C (SIGINT) or by its orchestrator (SIGTERM:
`docker stop`, a cancelled CI job, a Kubernetes Job deleted), then run again: the stopped apply
records what it did and what it did not, releases the lock, and the next one goes on at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from bootstrap.engine.history import APPLIES
from bootstrap.engine.lock import LOCKS
from bootstrap.local.servers import RedisServer
from tests.conftest import subprocess_env


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_apply_stopped_mid_way_records_what_it_did_and_releases_the_lock(
    config_dir: Path, mongo_uri: str, redis_server: RedisServer, stop: signal.Signals
) -> None:
    env = subprocess_env(MONGODB_URI=mongo_uri, REDIS_URL=redis_server.uri)
    process = subprocess.Popen(
        [sys.executable, "-m", "bootstrap", "apply", "--config", str(config_dir)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # the first operation done: the apply holds the lock and is mid-way
        if line.startswith("+ "):
            process.send_signal(stop)
            break
    out, err = process.communicate(timeout=60)
    if "Applied:" in out:
        pytest.skip("the apply finished before the signal reached it")
    assert (process.returncode, err.strip().splitlines()[-1]) == (
        (130, "interrupted") if stop == signal.SIGINT else (143, "terminated")
    ), err
    assert "Traceback" not in err

    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    try:
        db = client.get_default_database()
        assert db[LOCKS].count_documents({}) == 0, "the lease was left behind: the next apply waits for it"
        records = list(db[APPLIES].find())
        assert len(records) == 1, "the operations this apply did are recorded nowhere"
        assert records[0]["outcome"] == "interrupted" and records[0]["operations"]
        assert records[0]["error"].startswith("interrupted (Ctrl-C)" if stop == signal.SIGINT else "terminated")
        if records[0]["notDone"]:  # else the signal came after the last operation (a busy machine)
            assert "may or may not have taken effect" in records[0]["error"]
    finally:
        client.close()

    started = time.monotonic()
    again = subprocess.run(
        [sys.executable, "-m", "bootstrap", "apply", "--config", str(config_dir)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "waiting for another apply" not in again.stdout + again.stderr
    assert time.monotonic() - started < 15
