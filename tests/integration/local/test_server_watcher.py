"""The local servers (`bootstrap up`'s, the tests') run under the parent watcher, which SIGKILLs a
server still there `KILL_AFTER` seconds after its parent died hard and SIGTERM did not end it: a
SecantusDB was seen hanging in its shutdown after a SIGKILLed `up`, holding its port and data."""

from __future__ import annotations

from pathlib import Path

from bootstrap.local.processes import group_alive, is_running
from bootstrap.local.servers import KILL_AFTER, RedisServer


def test_servers_run_under_the_watcher_that_escalates_and_stop_as_before(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    pid = server.pid or 0
    try:
        assert server.child is not None and server.child.kill_after == KILL_AFTER
        assert "parentwatch" in " ".join(server.child.process.args)  # type: ignore[union-attr, arg-type]
        assert is_running(pid, "redis-server")  # `up`'s processes.json marker still matches the watcher
    finally:
        server.stop()
    assert not group_alive(pid)  # a stop reaches the server through the watcher's group
