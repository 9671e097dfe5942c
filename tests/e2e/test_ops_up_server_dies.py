"""Operator scenario: the local Redis that `bootstrap up` started dies under it (the OOM killer, a
stray `kill`). `up` says so and starts it again on its port and data (it used not to watch its
servers at all: its terminal went quiet while the workers retried in their log files)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

from tests.conftest import copy_config
from tests.e2e.test_up import DONE, env_without_servers, fast_schedule, listening, start_up


def test_up_says_so_when_its_local_redis_dies(tmp_path: Path) -> None:
    project = tmp_path / "project"
    fast_schedule(copy_config(project / "config", "msedb"))
    state = project / ".bootstrap"
    with start_up(project, env_without_servers()) as up:
        up.wait_for(DONE, 120)  # the workers are connected and running jobs
        processes = json.loads((state / "processes.json").read_text())
        [redis_pid] = [e["pid"] for e in processes if e["name"] == "redis-server"]
        port = json.loads((state / "ports.json").read_text())["redis"]
        before = len(up.text)
        os.killpg(redis_pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        back = re.compile(
            rf"redis-server \(port {port}\) exited with code -?\d+; see .*\n"
            rf".*redis-server is running again on port {port}"
        )
        while time.monotonic() < deadline and not back.search(up.text[before:]):
            time.sleep(0.2)
        after = up.text[before:]
        # (no Ctrl-C: workers cut off from Redis take up's whole stop timeout; leaving kills the group)
        assert back.search(after), f"up did not say that its Redis died and runs again; it printed:\n{after}"
        assert listening(port)
        restarted = [
            e["pid"] for e in json.loads((state / "processes.json").read_text()) if e["name"] == "redis-server"
        ]
        assert restarted and restarted != [redis_pid]  # the new one is recorded: a later up stops it
