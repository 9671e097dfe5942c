"""Operator scenario: Redis is down while a worker or the scheduler starts (a deploy during an
outage), so it sits in its start-up connect retries (about 3 minutes with the shipped
`connect_retry`); then the orchestrator stops it (`docker stop`, a rollback, `bootstrap up`'s Ctrl-C).
README: "On SIGTERM a worker ... exits 0: within `shutdown_timeout` plus a few seconds, always";
"SIGTERM stops a scheduler cleanly"."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer, free_port
from tests.support.jobs_project import open_project, wait_for


@pytest.mark.parametrize("process", ["worker", "scheduler"])
def test_sigterm_during_the_start_up_connect_retries_stops_it_at_once_and_cleanly(
    tmp_path: Path, mongo_uri: str, redis_server: RedisServer, process: str
) -> None:
    with open_project(tmp_path, mongo_uri, redis_server.uri) as project:
        project.env["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
        started = project.start_worker("delta-sync") if process == "worker" else project.start_scheduler()
        wait_for(lambda: "not reachable (retry 1 of" in project.log(process), 30, "the first connect retry")
        started.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        wait_for(lambda: started.poll() is not None, 20, f"the {process} to exit", interval=0.2)
        code = started.poll()
        log = project.log(process)
        assert time.monotonic() - stopped < 10, log  # delta-sync's shutdown_timeout is 30 s: nothing runs yet
        assert code == 0, log
        assert "Traceback" not in log, log
