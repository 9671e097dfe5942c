"""LocalServer's process handling (bootstrap.local.servers) with a tiny `python -c` server: start
waits until the port accepts, an early exit is reported with the end of the log, stop and kill end
the process. The real servers are exercised by every integration test through the fixtures."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from bootstrap.errors import ServerError
from bootstrap.local.processes import group_alive
from bootstrap.local.servers import LocalServer

LISTEN = """
import socket, sys, time
time.sleep(float(sys.argv[2]))  # slow to start, like a real server
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
print("listening", flush=True)
while True:
    server.accept()[0].close()
"""


class TinyServer(LocalServer):
    name = "tiny"

    def __init__(self, data_dir: Path, script: str = LISTEN, delay: float = 0.3) -> None:
        super().__init__(data_dir)
        self.script, self.delay = script, delay

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script, str(self.port), str(self.delay)]

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"


def accepting(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_start_returns_once_the_port_accepts_and_stop_ends_the_process(tmp_path: Path) -> None:
    with TinyServer(tmp_path / "tiny") as server:
        assert accepting(server.port)
        pid = server.pid
        assert pid is not None and group_alive(pid)
        assert "listening" in (tmp_path / "tiny" / "tiny.log").read_text()
    assert server.pid is None and not group_alive(pid) and not accepting(server.port)


def test_an_early_exit_is_an_error_with_the_end_of_its_log(tmp_path: Path) -> None:
    script = "import sys; print('bad setting on line 3', file=sys.stderr); sys.exit(4)"
    server = TinyServer(tmp_path / "tiny", script)
    with pytest.raises(ServerError) as caught:
        server.start()
    message = str(caught.value)
    assert message.startswith("tiny exited with code 4 at start-up; see ") and "tiny.log" in message
    assert message.endswith("bad setting on line 3")
    assert server.pid is None


def test_a_server_that_never_accepts_is_stopped_and_reported(tmp_path: Path) -> None:
    server = TinyServer(tmp_path / "tiny", "import time; time.sleep(60)")
    with pytest.raises(ServerError, match=r"tiny did not accept connections on port \d+ within 1s"):
        server.start(timeout=1)
    assert server.pid is None


def test_kill_then_restart_on_the_same_port(tmp_path: Path) -> None:
    server = TinyServer(tmp_path / "tiny", delay=0)
    server.start()
    port, pid = server.port, server.pid
    server.kill()
    assert pid is not None and not group_alive(pid) and not accepting(port)
    server.restart()
    try:
        assert server.port == port and accepting(port) and server.pid != pid
    finally:
        server.stop()
