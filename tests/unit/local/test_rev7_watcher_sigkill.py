"""rev7 review: a local server runs under the parent watcher now (`kill_after`), whose exit is meant to
mirror the server's. A server killed alone by SIGKILL (the OOM killer's signal) is mirrored as exit
code 1 with a Python traceback in the server's log: `signal.signal(SIGKILL, SIG_DFL)` raises. `up`
then says "exited with code 1" for an OOM kill (before, on Linux, it saw -9)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from bootstrap.local.processes import Child
from tests.support.processes import children_of


def test_a_server_killed_alone_by_sigkill_is_mirrored_as_sigkill(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    child = Child("server", [sys.executable, "-c", "import time; time.sleep(30)"], log_path=log, kill_after=5)
    child.start()
    try:
        deadline = time.monotonic() + 10
        while not (server := children_of(child.pid or 0)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server, "the watcher's command did not start"
        os.kill(server[0], signal.SIGKILL)  # the server alone, as the OOM killer does
        code = child.wait(10)
        assert code == -signal.SIGKILL, (code, log.read_text())
        assert "Traceback" not in log.read_text()
    finally:
        child.kill()
