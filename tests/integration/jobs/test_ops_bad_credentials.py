"""Operator scenario: a worker or the scheduler started with a Redis password that is wrong (a rotated
secret, a typo in the deployment). Bad credentials fail at once (README, "Connecting retries"); the
process should exit non-zero with the one clear, masked line the commands print, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.local.servers import RedisServer
from tests.support.jobs_project import open_project, wait_for


@pytest.mark.parametrize("process", ["worker", "scheduler"])
def test_a_process_whose_redis_refuses_the_password_exits_with_one_clear_line(
    tmp_path: Path, mongo_uri: str, process: str
) -> None:
    server = RedisServer(tmp_path / "redis", password="the-right-one")
    server.start()
    try:
        with open_project(tmp_path, mongo_uri, server.uri) as project:
            project.env["REDIS_URL"] = f"redis://:a-wrong-one@127.0.0.1:{server.port}/0"
            started = project.start_worker("delta-sync") if process == "worker" else project.start_scheduler()
            code = wait_for(lambda: started.poll() is not None, 60, f"the {process} to exit") and started.poll()
            log = project.log(process)
            assert code != 0, log
            assert "refused the connection" in log and "a-wrong-one" not in log, log
            assert "Traceback" not in log, log
    finally:
        server.stop()
